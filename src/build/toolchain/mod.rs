//! Where the build stage runs go, node and esbuild: on the host, or in a toolchain container
//! (docker or podman) with the project mounted read-only, the output directory mounted
//! writable and handed back to the caller, and the tool caches in named volumes.

mod exec;
mod export;
mod files;

pub use exec::{volume, Commands, Exec, Mirrored, Runner, Show};
pub use export::wanted;
pub use files::{cache_entry, file_error, temp_dir, FileError};

use crate::support::cache;
use crate::support::engine::Engine;
use crate::support::progress::Progress;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The pinned toolchain data binpack ships (`runtimes/toolchains.json`).
const TOOLCHAINS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/runtimes/toolchains.json"
));

/// `--toolchain`: where the build runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The host's tool when it is on PATH, else docker, else podman
    #[default]
    Auto,
    /// The tool found on PATH
    Host,
    /// A toolchain container run by docker
    Docker,
    /// A toolchain container run by podman
    Podman,
}

/// What the user asked for: where, which image, which network.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub kind: Kind,
    /// Overrides the pinned toolchain image.
    pub image: Option<String>,
    /// The container's network (`none` for a hermetic build); None is the engine's default.
    pub network: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    #[error("{tool} is not on PATH and neither docker nor podman is there to run a {tool} toolchain container: install {install}, or docker (apt-get install docker.io) or podman")]
    Nothing { tool: String, install: String },
    #[error("--toolchain {engine}: {engine} is not on PATH; install it (on Debian: apt-get install {package})")]
    NoEngine {
        engine: Engine,
        package: &'static str,
    },
    #[error("{engine} is installed but its engine does not answer ({detail}); {hint}, or pick another --toolchain")]
    EngineDown {
        engine: Engine,
        detail: String,
        hint: &'static str,
    },
    #[error("--toolchain host: {tool} not found on PATH: install {install}")]
    HostMissing { tool: String, install: String },
    /// Another error, and where the tool is installed off PATH (or that it is not).
    #[error("{cause}; {found}")]
    OffPath {
        cause: Box<ToolchainError>,
        found: String,
    },
    #[error("--toolchain host: {0} only apply to a toolchain container; drop them or use --toolchain docker|podman")]
    HostWithContainerOptions(&'static str),
    #[error("toolchain image {image} is not in {engine}'s images and cannot be pulled: {detail}")]
    ImageUnavailable {
        image: String,
        engine: Engine,
        detail: String,
    },
    #[error("toolchain image {image} is pinned by digest and {engine} has no image with that digest; it cannot be pulled ({detail}); {hint}")]
    PinnedUnavailable {
        image: String,
        engine: Engine,
        detail: String,
        hint: String,
    },
    #[error("{what} with --toolchain {engine}: {detail}")]
    Run {
        what: String,
        engine: Engine,
        detail: String,
    },
    #[error("extracting the libraries of {image} into {}: {source}", dest.display())]
    Extract {
        image: String,
        dest: PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    File(#[from] FileError),
}

/// A resolved toolchain: the host, or an engine with an image that is present.
#[derive(Clone, Debug)]
pub enum Toolchain {
    Host,
    Container(Container),
}

#[derive(Clone, Debug)]
pub struct Container {
    pub engine: Engine,
    pub image: String,
    /// The image's ID: what its library root is cached under.
    id: String,
    network: Option<String>,
    /// The engine maps container root to the caller (rootless): no chown needed.
    rootless: bool,
}

impl Container {
    /// A docker container of a made-up image, for other modules' unit tests.
    #[cfg(test)]
    pub fn for_tests() -> Container {
        Container {
            engine: Engine::Docker,
            image: "python:3".into(),
            id: "sha256:00".into(),
            network: None,
            rootless: false,
        }
    }

    /// What names the image exactly (its ID), for cache keys.
    pub fn describe(&self) -> String {
        format!("{} {} {}", self.engine, self.image, self.id)
    }
}

/// The pinned toolchain data: esbuild's version, node's npm packages, the toolchain images.
pub(crate) fn pinned() -> serde_json::Value {
    serde_json::from_str(TOOLCHAINS).expect("runtimes/toolchains.json is valid JSON")
}

/// The pinned image for `tool` (`go`, `node`), by tag and digest.
pub fn pinned_image(tool: &str) -> String {
    pinned()["images"][tool]
        .as_str()
        .unwrap_or_else(|| panic!("runtimes/toolchains.json pins an image for {tool}"))
        .to_string()
}

impl Toolchain {
    /// Picks where `tool` runs. `install` says how to get the tool on the host, for the error
    /// when nothing can build; that error says too whether the tool is installed off PATH.
    pub fn select(
        req: &Request,
        tool: &super::Tool,
        progress: &dyn Progress,
    ) -> Result<Toolchain, ToolchainError> {
        let (program, install) = (tool.program, tool.install);
        Self::select_on_path(req, program, install, progress).map_err(|e| match e {
            ToolchainError::HostMissing { .. } | ToolchainError::Nothing { .. } => {
                off_path_note(tool, e)
            }
            ToolchainError::NoEngine { .. } | ToolchainError::EngineDown { .. }
                if req.kind == Kind::Auto =>
            {
                off_path_note(tool, e)
            }
            e => e,
        })
    }

    fn select_on_path(
        req: &Request,
        tool: &str,
        install: &str,
        progress: &dyn Progress,
    ) -> Result<Toolchain, ToolchainError> {
        // An image or a network only make sense in a container: under auto they ask for one.
        let container_options = match (&req.image, &req.network) {
            (Some(_), Some(_)) => Some("--toolchain-image and --network"),
            (Some(_), None) => Some("--toolchain-image"),
            (None, Some(_)) => Some("--network"),
            (None, None) => None,
        };
        let candidates = match req.kind {
            Kind::Host => {
                return match container_options {
                    Some(o) => Err(ToolchainError::HostWithContainerOptions(o)),
                    None if which::which(tool).is_err() => Err(ToolchainError::HostMissing {
                        tool: tool.into(),
                        install: install.into(),
                    }),
                    None => Ok(Toolchain::Host),
                }
            }
            Kind::Auto if container_options.is_none() && which::which(tool).is_ok() => {
                return Ok(Toolchain::Host)
            }
            Kind::Auto => Engine::on_path(),
            Kind::Docker => vec![Engine::Docker],
            Kind::Podman => vec![Engine::Podman],
        };
        if candidates.is_empty() {
            return Err(ToolchainError::Nothing {
                tool: tool.into(),
                install: install.into(),
            });
        }
        // The first engine that answers; when none does, the first one's error.
        let mut first_error = None;
        let mut answered = None;
        for engine in candidates {
            let found = which::which(engine.to_string()).map_err(|_| ToolchainError::NoEngine {
                engine,
                package: engine.package(),
            });
            match found.and_then(|_| engine_rootless(engine)) {
                Ok(rootless) => {
                    answered = Some((engine, rootless));
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let Some((engine, rootless)) = answered else {
            return Err(first_error.expect("at least one engine was tried"));
        };
        let image = req.image.clone().unwrap_or_else(|| pinned_image(tool));
        let id = ensure_image(engine, &image, progress)?;
        Ok(Toolchain::Container(Container {
            engine,
            image,
            id,
            network: req.network.clone(),
            rootless,
        }))
    }

    /// A runner for one build: `src` is mounted read-only, `out` writable, `volume` (a named
    /// volume) at `/cache`.
    pub fn runner(&self, src: &Path, out: &Path, volume: &str) -> Runner {
        match self {
            Toolchain::Host => Runner::Host,
            Toolchain::Container(c) => {
                // The caller owns the directory it just created: its uid/gid are the caller's.
                let owner = std::fs::metadata(out)
                    .ok()
                    .map(|m| {
                        use std::os::unix::fs::MetadataExt;
                        (m.uid(), m.gid())
                    })
                    .filter(|_| !c.rootless);
                Runner::Container {
                    container: c.clone(),
                    src: src.to_path_buf(),
                    out: out.to_path_buf(),
                    volume: volume.to_string(),
                    owner,
                }
            }
        }
    }

    /// The filesystem the artifact's shared libraries come from: `/` on the host, the
    /// toolchain image's libraries for a container build (the binary runs against the
    /// libraries it was built with).
    pub fn library_root(&self, progress: &dyn Progress) -> Result<PathBuf, ToolchainError> {
        match self {
            Toolchain::Host => Ok(PathBuf::from("/")),
            Toolchain::Container(c) => c.library_root(progress),
        }
    }

    /// Where an artifact built with it was built.
    pub fn built_on(&self) -> super::BuiltOn {
        match self {
            Toolchain::Host => super::BuiltOn::Host,
            Toolchain::Container(c) => super::BuiltOn::Container {
                engine: c.engine.to_string(),
                image: c.image.clone(),
            },
        }
    }

    /// How the summary names it.
    pub fn describe(&self) -> String {
        match self {
            Toolchain::Host => "host".into(),
            Toolchain::Container(c) => format!("{} {}", c.engine, c.image),
        }
    }
}

/// The newest `tool` installed off PATH (where its builder says it often is), for the error
/// that says how to use it.
pub fn off_path(tool: &super::Tool) -> Option<PathBuf> {
    let found = (tool.off_path.iter())
        .filter_map(|p| glob::glob(p).ok())
        .flat_map(|paths| paths.flatten())
        .filter(|p| p.is_file());
    newest(found)
}

/// The path with the highest version numbers in it: go-1.9 < go-1.23, not as strings.
fn newest(paths: impl Iterator<Item = PathBuf>) -> Option<PathBuf> {
    paths.max_by_key(|p| {
        let v = p.to_string_lossy();
        let digits = v.split(|c: char| !c.is_ascii_digit());
        digits
            .filter_map(|d| d.parse::<u32>().ok())
            .collect::<Vec<_>>()
    })
}

/// `cause`, with where `tool` is installed off PATH and how to use it, or that it is not.
fn off_path_note(tool: &super::Tool, cause: ToolchainError) -> ToolchainError {
    if tool.off_path.is_empty() {
        return cause;
    }
    let (places, program) = (tool.off_path, tool.program);
    let found = match off_path(tool) {
        Some(p) => {
            let dir = p.parent().unwrap_or(Path::new("/")).display().to_string();
            format!("{program} is installed in {dir}, which is not on PATH: `export PATH={dir}:$PATH` to build with it on the host")
        }
        None => format!(
            "no {program} is installed off PATH either (looked for {})",
            places.join(", ")
        ),
    };
    ToolchainError::OffPath {
        cause: Box::new(cause),
        found,
    }
}

/// Runs `engine args`, returning stdout, or the last line of stderr as the error.
fn engine_output(engine: Engine, args: &[&str]) -> Result<String, String> {
    let out = Command::new(engine.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(last_line(&out.stderr))
    }
}

fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string()
}

/// Whether the engine answers, and whether it maps container root to the caller.
fn engine_rootless(engine: Engine) -> Result<bool, ToolchainError> {
    let format = match engine {
        Engine::Docker => "{{json .SecurityOptions}}",
        Engine::Podman => "{{.Host.Security.Rootless}}",
    };
    let hint = match engine {
        Engine::Docker => "start it (dockerd, or systemctl start docker)",
        Engine::Podman => "see `podman info` for what is wrong",
    };
    let info = engine_output(engine, &["info", "--format", format]).map_err(|detail| {
        ToolchainError::EngineDown {
            engine,
            detail,
            hint,
        }
    })?;
    Ok(info.contains("rootless") || info == "true")
}

/// The image's ID, pulling it first when the engine does not have it.
fn ensure_image(
    engine: Engine,
    image: &str,
    progress: &dyn Progress,
) -> Result<String, ToolchainError> {
    let inspect = || engine_output(engine, &["image", "inspect", "--format", "{{.Id}}", image]);
    if let Ok(id) = inspect() {
        return Ok(id);
    }
    progress.stage(&format!("pulling the toolchain image {image} ({engine})"));
    let unavailable = |detail| ToolchainError::ImageUnavailable {
        image: image.into(),
        engine,
        detail,
    };
    engine_output(engine, &["pull", "--quiet", image])
        .map_err(|detail| pinned_unavailable(engine, image, detail))?;
    inspect().map_err(unavailable)
}

/// The error for an image that cannot be pulled. A digest-pinned one the engine has by its tag
/// only (a local build, as scripts/toolchain-images.sh makes) is named, with how to use it.
fn pinned_unavailable(engine: Engine, image: &str, detail: String) -> ToolchainError {
    let Some((tagged, _)) = image.split_once("@sha256:") else {
        return ToolchainError::ImageUnavailable {
            image: image.into(),
            engine,
            detail,
        };
    };
    let local = engine_output(engine, &["image", "inspect", "--format", "{{.Id}}", tagged]).is_ok();
    let how = format!("--toolchain-image {tagged}, or toolchain-image = \"{tagged}\" under [go], [node] or [python] in binpack.toml");
    let hint = if local {
        format!(
            "{engine} has {tagged} with another digest (a local build?): to build with it, {how}"
        )
    } else {
        format!("pull it where its registry is reachable (`{engine} pull {image}`), or name an image {engine} has: {how}")
    };
    ToolchainError::PinnedUnavailable {
        image: image.into(),
        engine,
        detail,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_go_off_path_wins() {
        let paths = [
            "/usr/lib/go-1.9/bin/go",
            "/usr/lib/go-1.23/bin/go",
            "/usr/lib/go-1.19/bin/go",
        ];
        let newest = newest(paths.iter().map(PathBuf::from));
        assert_eq!(newest, Some(PathBuf::from("/usr/lib/go-1.23/bin/go")));
    }
}
