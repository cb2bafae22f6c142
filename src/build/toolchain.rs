//! Where the build stage runs go, node and esbuild: on the host, or in a toolchain container
//! (docker or podman) with the project mounted read-only, the output directory mounted
//! writable and handed back to the caller, and the tool caches in named volumes.

use crate::cache;
use crate::engine::Engine;
use crate::progress::Progress;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The pinned toolchain data binpack ships (`runtimes/toolchains.json`).
const TOOLCHAINS: &str = include_str!("../../runtimes/toolchains.json");

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

/// An I/O failure on one path: what was being done, to which path, and why it failed (an
/// io::Error alone prints `No such file or directory` and nothing else).
#[derive(Debug, thiserror::Error)]
#[error("{doing} {}: {source}", path.display())]
pub struct FileError {
    /// `reading`, `creating a temporary directory in`, ...
    pub doing: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

/// For `map_err`: an io::Error from `doing` on `path`.
pub fn file_error(doing: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FileError {
    let path = path.to_path_buf();
    move |source| FileError {
        doing,
        path,
        source,
    }
}

/// A fresh private directory in the system's temporary directory, named so that a later run
/// removes it if this one is killed.
pub fn temp_dir() -> Result<tempfile::TempDir, FileError> {
    tempfile::Builder::new()
        .prefix(&crate::cleanup::private_prefix())
        .tempdir()
        .map_err(file_error(
            "creating a temporary directory in",
            &std::env::temp_dir(),
        ))
}

/// [`cache::entry`], its own I/O failures (making the entry's temporary directory, renaming
/// it into place) named by the entry's path; `fill`'s errors pass through as they are.
pub fn cache_entry<E: From<FileError>>(
    dest: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<PathBuf, E> {
    enum Failed<E> {
        Cache(io::Error),
        Fill(E),
    }
    impl<E> From<io::Error> for Failed<E> {
        fn from(e: io::Error) -> Self {
            Failed::Cache(e)
        }
    }
    cache::entry(dest, |tmp| fill(tmp).map_err(Failed::Fill)).map_err(|e| match e {
        Failed::Cache(source) => file_error("creating the cache entry", dest)(source).into(),
        Failed::Fill(e) => e,
    })
}

/// What of a command's output reaches the user; the rest is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// Nothing: stdout is returned, stderr dropped.
    Nothing,
    /// Its stderr; stdout is returned.
    Stderr,
    /// All of it, on binpack's stderr so that `--json` keeps stdout clean; only the status
    /// is returned.
    All,
}

/// Runs a toolchain's commands: the seam between a builder and the processes it starts, so
/// that its tests can answer with canned output and need no toolchain.
pub trait Exec {
    /// `program args` run from `cwd` with `env` added (see [`Runner::command`]). An error is
    /// a command that could not start, named by the program actually spawned.
    fn run(
        &self,
        program: &OsStr,
        args: &[OsString],
        cwd: &Path,
        env: &[(&str, String)],
        show: Show,
    ) -> Result<Output, FileError>;
}

/// The real [`Exec`]: a [`Runner`]'s commands, with the caller's variables named in
/// `pass_env` passed into a container.
pub struct Commands<'a> {
    pub runner: &'a Runner,
    pub pass_env: &'a [&'a str],
}

impl Exec for Commands<'_> {
    fn run(
        &self,
        program: &OsStr,
        args: &[OsString],
        cwd: &Path,
        env: &[(&str, String)],
        show: Show,
    ) -> Result<Output, FileError> {
        let mut cmd = self.runner.command(program, args, cwd, env, self.pass_env);
        match show {
            Show::Nothing => cmd.stderr(Stdio::null()),
            Show::Stderr => cmd.stderr(Stdio::inherit()),
            Show::All => cmd
                .stdout(Stdio::from(io::stderr()))
                .stderr(Stdio::inherit()),
        };
        let spawned = PathBuf::from(cmd.get_program());
        cmd.output().map_err(file_error("running", &spawned))
    }
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
        tool: &str,
        install: &str,
        progress: &dyn Progress,
    ) -> Result<Toolchain, ToolchainError> {
        Self::select_on_path(req, tool, install, progress).map_err(|e| match e {
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

/// Where a `tool` missing from PATH is often installed all the same: Debian's versioned Go
/// packages (golang-1.23-go puts go in /usr/lib/go-1.23/bin) and Go's own tarball.
const OFF_PATH: &[(&str, &[&str])] = &[("go", &["/usr/lib/go-*/bin/go", "/usr/local/go/bin/go"])];

/// The newest `tool` installed off PATH, for the error that says how to use it.
pub fn off_path(tool: &str) -> Option<PathBuf> {
    let patterns = OFF_PATH.iter().find(|(t, _)| *t == tool)?.1;
    let found = patterns
        .iter()
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
fn off_path_note(tool: &str, cause: ToolchainError) -> ToolchainError {
    let Some((_, places)) = OFF_PATH.iter().find(|(t, _)| *t == tool) else {
        return cause;
    };
    let found = match off_path(tool) {
        Some(p) => {
            let dir = p.parent().unwrap_or(Path::new("/")).display().to_string();
            format!("{tool} is installed in {dir}, which is not on PATH: `export PATH={dir}:$PATH` to build with it on the host")
        }
        None => format!(
            "no {tool} is installed off PATH either (looked for {})",
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
    let how = format!("--toolchain-image {tagged}, or toolchain-image = \"{tagged}\" under [go] or [node] in binpack.toml");
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

/// Builds commands for one build, on the host or in the container.
#[derive(Debug)]
pub enum Runner {
    Host,
    Container {
        container: Container,
        src: PathBuf,
        out: PathBuf,
        volume: String,
        owner: Option<(u32, u32)>,
    },
}

/// Proxy settings every toolchain needs to reach its registries: always passed in.
const PROXY_ENV: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

const SRC: &str = "/src";
const OUT: &str = "/out";

impl Runner {
    /// `program args` run from `cwd` (a host path inside the source or output directory)
    /// with `env` added. On the host `program` is a path; in a container it is looked up on
    /// the image's PATH, paths in `args` must come from [`Runner::path`], and the caller's
    /// variables named in `pass_env` (and the proxy settings) are passed in.
    pub fn command(
        &self,
        program: &OsStr,
        args: &[OsString],
        cwd: &Path,
        env: &[(&str, String)],
        pass_env: &[&str],
    ) -> Command {
        match self {
            Runner::Host => {
                let mut c = Command::new(program);
                c.args(args).current_dir(cwd).stdin(Stdio::null());
                for (k, v) in env {
                    c.env(k, v);
                }
                c
            }
            Runner::Container {
                container,
                src,
                out,
                volume,
                owner,
            } => {
                let mut c = Command::new(container.engine.to_string());
                let name = container_name(container.engine);
                c.args(["run", "--rm", "--pull", "never", "--name", &name]);
                if let Some(n) = &container.network {
                    c.arg(format!("--network={n}"));
                }
                c.arg("--mount")
                    .arg(bind(src, SRC, true))
                    .arg("--mount")
                    .arg(bind(out, OUT, false))
                    .arg("--mount")
                    .arg(format!("type=volume,source={volume},target=/cache"))
                    .arg("--workdir")
                    .arg(self.path(cwd));
                // git refuses repositories owned by another user; go build asks git for VCS
                // stamping when the module is a repository.
                let fixed = [
                    ("GIT_CONFIG_COUNT", "1".to_string()),
                    ("GIT_CONFIG_KEY_0", "safe.directory".into()),
                    ("GIT_CONFIG_VALUE_0", "*".into()),
                ];
                for (k, v) in fixed.iter().chain(env) {
                    c.arg("--env").arg(format!("{k}={v}"));
                }
                for k in PROXY_ENV.iter().chain(pass_env) {
                    if let Some(v) = std::env::var_os(k) {
                        let mut kv = OsString::from(format!("{k}="));
                        kv.push(v);
                        c.arg("--env").arg(kv);
                    }
                }
                c.arg(&container.image);
                // A root container would leave root-owned files: give /out back to the caller
                // whatever the program's status, and keep that status.
                if let Some((uid, gid)) = owner {
                    c.args([
                        "sh",
                        "-c",
                        &format!("\"$@\"; s=$?; chown -R {uid}:{gid} {OUT}; exit $s"),
                        "sh",
                    ]);
                }
                c.arg(program).args(args).stdin(Stdio::null());
                c
            }
        }
    }

    /// A shell script (the image's `sh`), for steps that are easier said in shell.
    pub fn script(&self, script: &str, cwd: &Path, pass_env: &[&str]) -> Command {
        let args = [OsString::from("-c"), OsString::from(script)];
        self.command(OsStr::new("sh"), &args, cwd, &[], pass_env)
    }

    /// `host` (inside the source or output directory) as the command sees it.
    pub fn path(&self, host: &Path) -> PathBuf {
        match self {
            Runner::Host => host.to_path_buf(),
            Runner::Container { src, out, .. } => {
                // Outside both mounts the path does not exist in the container: kept as it is,
                // so the tool's own "no such file" names it.
                map_path(host, &[(out, OUT), (src, SRC)]).unwrap_or_else(|| host.to_path_buf())
            }
        }
    }

    /// A path the command printed, back on the host.
    pub fn host_path(&self, seen: &Path) -> PathBuf {
        match self {
            Runner::Host => seen.to_path_buf(),
            Runner::Container { src, out, .. } => map_path(
                seen,
                &[
                    (Path::new(OUT), out.as_os_str()),
                    (Path::new(SRC), src.as_os_str()),
                ],
            )
            .unwrap_or_else(|| seen.to_path_buf()),
        }
    }

    pub fn in_container(&self) -> bool {
        matches!(self, Runner::Container { .. })
    }
}

/// A unique name for a container of this run, registered so that a signal removes it.
fn container_name(engine: Engine) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("binpack-{}-{n}", std::process::id());
    crate::cleanup::track_container(&engine.to_string(), &name);
    name
}

/// The named volume for a toolchain's caches: `$BINPACK_VOLUME_PREFIX-<what>`, the prefix
/// `binpack` unless set (a project or a test can keep its caches apart).
pub fn volume(what: &str) -> String {
    let prefix = std::env::var("BINPACK_VOLUME_PREFIX")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "binpack".into());
    format!("{prefix}-{what}")
}

fn bind(host: &Path, target: &str, readonly: bool) -> OsString {
    // --mount takes comma-separated fields (CSV): a path with a comma or a quote is quoted,
    // its quotes doubled.
    let text = host.to_string_lossy();
    let source = if text.contains([',', '"']) {
        OsString::from(format!("\"source={}\"", text.replace('"', "\"\"")))
    } else {
        let mut s = OsString::from("source=");
        s.push(host.as_os_str());
        s
    };
    let mut s = OsString::from("type=bind,");
    s.push(source);
    s.push(format!(",target={target}"));
    if readonly {
        s.push(",readonly");
    }
    s
}

/// `path` with the first matching prefix replaced.
fn map_path(path: &Path, table: &[(&Path, impl AsRef<OsStr>)]) -> Option<PathBuf> {
    table.iter().find_map(|(from, to)| {
        path.strip_prefix(from)
            .ok()
            .map(|rest| Path::new(to.as_ref()).join(rest))
    })
}

impl Container {
    /// The image's shared libraries and loader configuration, extracted once per image ID into
    /// the cache (whole or not at all).
    fn library_root(&self, progress: &dyn Progress) -> Result<PathBuf, ToolchainError> {
        let key = self.id.trim_start_matches("sha256:");
        let dest = cache::dir().join("roots").join(format!(
            "{}-{}",
            self.engine,
            &key[..key.len().min(32)]
        ));
        if dest.exists() {
            return Ok(dest);
        }
        progress.stage(&format!("extracting the libraries of {}", self.image));
        let run = |args: &[&str]| {
            engine_output(self.engine, args).map_err(|detail| ToolchainError::Run {
                what: format!("{} {}", self.engine, args[0]),
                engine: self.engine,
                detail,
            })
        };
        let name = container_name(self.engine);
        let cid = run(&["create", "--name", &name, &self.image, "sh"])?;
        let result = cache_entry(&dest, |tmp| -> Result<(), ToolchainError> {
            let export = format!("{} export", self.engine);
            let failed = |e: io::Error| ToolchainError::Run {
                what: export.clone(),
                engine: self.engine,
                detail: e.to_string(),
            };
            let mut child = Command::new(self.engine.to_string())
                .args(["export", &cid])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(failed)?;
            let stdout = child.stdout.take().expect("piped");
            let extracted = extract_libraries(stdout, tmp);
            let out = child.wait_with_output().map_err(failed)?;
            // A failed extraction breaks export's pipe: report the cause, not the symptom.
            extracted.map_err(|source| ToolchainError::Extract {
                image: self.image.clone(),
                dest: dest.clone(),
                source,
            })?;
            if !out.status.success() {
                return Err(ToolchainError::Run {
                    what: export,
                    engine: self.engine,
                    detail: last_line(&out.stderr),
                });
            }
            Ok(())
        });
        let _ = run(&["rm", "-f", &cid]);
        result
    }
}

/// Directories whose shared objects the loader may read.
const LIB_DIRS: &[&str] = &[
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "usr/lib",
    "usr/lib32",
    "usr/lib64",
    "usr/libx32",
    "usr/local/lib",
];

/// Whether an entry of an image's filesystem matters to the closure resolver: the loader's
/// configuration, shared objects (and their symlinks) under the library directories, and the
/// library directories that are themselves symlinks (`/lib -> usr/lib`). Everything else
/// (a Go toolchain's GOROOT under /usr/lib, say) is left out.
pub fn wanted(path: &Path, is_dir: bool) -> bool {
    let p = path.to_string_lossy();
    let p = p.trim_start_matches("./").trim_end_matches('/');
    if p == "etc/ld.so.conf" || p.starts_with("etc/ld.so.conf.d/") {
        return !is_dir;
    }
    if is_dir {
        return false;
    }
    if LIB_DIRS.contains(&p) {
        return true; // only a symlink reaches here: directories were excluded above
    }
    let in_lib_dir = LIB_DIRS
        .iter()
        .any(|d| p.strip_prefix(d).is_some_and(|r| r.starts_with('/')));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    in_lib_dir && (name.contains(".so") || name.starts_with("ld-"))
}

/// Extracts the wanted entries of an image's filesystem tar into `dest`.
fn extract_libraries(reader: impl io::Read, dest: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        let path = entry.path()?.into_owned();
        if path.components().any(|c| matches!(c, Component::ParentDir))
            || !wanted(&path, kind.is_dir())
        {
            continue;
        }
        match entry.unpack_in(dest) {
            Ok(_) => {}
            // A hard link to a file that was left out: the file it names is not a library.
            Err(_) if kind.is_hard_link() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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

    #[test]
    fn library_filter() {
        for (path, dir, want) in [
            ("usr/lib/x86_64-linux-gnu/libc.so.6", false, true),
            ("lib64/ld-linux-x86-64.so.2", false, true),
            ("lib", false, true), // the /lib -> usr/lib symlink
            ("usr/lib/x86_64-linux-gnu/", true, false),
            ("etc/ld.so.conf", false, true),
            ("etc/ld.so.conf.d/x86_64-linux-gnu.conf", false, true),
            ("usr/lib/go-1.23/bin/go", false, false),
            ("usr/local/lib/node_modules/npm/index.js", false, false),
            ("usr/bin/node", false, false),
            ("library/libc.so.6", false, false),
            ("etc/passwd", false, false),
        ] {
            assert_eq!(wanted(Path::new(path), dir), want, "{path}");
        }
    }

    #[test]
    fn extracts_only_libraries_and_keeps_links() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o755);
            h.set_size(data.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_path(path).unwrap();
            h.set_cksum();
            tar.append(&h, data).unwrap();
        };
        add("lib", tar::EntryType::Symlink, Some("usr/lib"), b"");
        add("usr/lib/x/", tar::EntryType::Directory, None, b"");
        add("usr/lib/x/libz.so.1.3", tar::EntryType::Regular, None, b"z");
        add(
            "usr/lib/x/libz.so.1",
            tar::EntryType::Symlink,
            Some("libz.so.1.3"),
            b"",
        );
        add(
            "usr/lib/x/libhard.so",
            tar::EntryType::Link,
            Some("usr/bin/gone"),
            b"",
        );
        add("usr/lib/go/bin/go", tar::EntryType::Regular, None, b"go");
        add("usr/bin/node", tar::EntryType::Regular, None, b"node");
        let bytes = tar.into_inner().unwrap();
        let d = tempfile::tempdir().unwrap();
        extract_libraries(&bytes[..], d.path()).unwrap();
        assert_eq!(
            std::fs::read(d.path().join("lib/x/libz.so.1")).unwrap(),
            b"z"
        );
        assert!(!d.path().join("usr/lib/go").exists());
        assert!(!d.path().join("usr/bin").exists());
    }

    #[test]
    fn cache_entries_name_their_path() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("file"), "").unwrap();
        let dest = d.path().join("file/entry");
        let err = cache_entry(&dest, |_| Ok::<(), FileError>(())).unwrap_err();
        let want = format!("creating the cache entry {}: File exists", dest.display());
        assert!(err.to_string().starts_with(&want), "{err}");
        // The filler's own error passes through untouched.
        let dest = d.path().join("entry");
        let err = cache_entry(&dest, |tmp| {
            std::fs::read(tmp.join("x")).map_err(file_error("reading", &tmp.join("x")))?;
            Ok::<(), FileError>(())
        })
        .unwrap_err();
        assert_eq!(err.doing, "reading");
        assert!(err.path.ends_with("x") && !dest.exists(), "{err}");
    }

    #[test]
    fn a_command_that_cannot_start_names_its_program() {
        let commands = Commands {
            runner: &Runner::Host,
            pass_env: &[],
        };
        let missing = OsStr::new("/nonexistent/bin/go");
        let err = commands
            .run(missing, &[], Path::new("/"), &[], Show::Nothing)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "running /nonexistent/bin/go: No such file or directory (os error 2)"
        );
        let ok = commands
            .run(
                OsStr::new("sh"),
                &["-c".into(), "echo $X; echo e >&2".into()],
                Path::new("/"),
                &[("X", "1".into())],
                Show::Nothing,
            )
            .unwrap();
        assert_eq!(
            (ok.status.success(), ok.stdout.as_slice()),
            (true, &b"1\n"[..])
        );
    }

    #[test]
    fn bind_mounts_quote_what_csv_needs() {
        for (path, want) in [
            ("/a/b", "type=bind,source=/a/b,target=/src,readonly"),
            ("/a,b", "type=bind,\"source=/a,b\",target=/src,readonly"),
            ("/a\"b", "type=bind,\"source=/a\"\"b\",target=/src,readonly"),
        ] {
            assert_eq!(bind(Path::new(path), "/src", true), OsString::from(want));
        }
    }

    #[test]
    fn paths_map_both_ways() {
        let r = Runner::Container {
            container: Container {
                engine: Engine::Docker,
                image: "golang:1".into(),
                id: "sha256:00".into(),
                network: None,
                rootless: false,
            },
            src: PathBuf::from("/home/u/proj"),
            out: PathBuf::from("/tmp/binpack-go-1"),
            volume: "v".into(),
            owner: Some((1000, 1000)),
        };
        assert_eq!(
            r.path(Path::new("/home/u/proj/cmd/app")),
            PathBuf::from("/src/cmd/app")
        );
        assert_eq!(
            r.path(Path::new("/tmp/binpack-go-1/app")),
            PathBuf::from("/out/app")
        );
        assert_eq!(
            r.host_path(Path::new("/src/cmd/app")),
            PathBuf::from("/home/u/proj/cmd/app")
        );
        let cmd = r.command(
            OsStr::new("go"),
            &["version".into()],
            Path::new("/home/u/proj/cmd/app"),
            &[("CGO_ENABLED", "0".into())],
            &[],
        );
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(
            joined.starts_with("run --rm --pull never --name binpack-"),
            "{joined}"
        );
        assert!(
            joined.contains("type=bind,source=/home/u/proj,target=/src,readonly"),
            "{joined}"
        );
        assert!(joined.contains("--workdir /src/cmd/app --env"), "{joined}");
        assert!(
            joined.contains("--env CGO_ENABLED=0 golang:1 sh -c"),
            "{joined}"
        );
        assert!(
            joined.ends_with("chown -R 1000:1000 /out; exit $s sh go version"),
            "{joined}"
        );
    }
}
