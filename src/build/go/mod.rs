//! `go build` with CGO_ENABLED=0 into a static ELF (or, asked, with cgo into a dynamic one
//! packed on its library closure), with the host's go or in a toolchain container.

mod builder;
pub use builder::GoBuilder;

use super::toolchain::{
    file_error, temp_dir, volume, Commands, Exec, FileError, Show, Toolchain, ToolchainError,
};
use super::{git, Built};
use crate::support::cleanup::Tracked;
use crate::support::platform::Platform;
use crate::support::progress::Progress;
use serde::Deserialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;

mod cgo;

/// What to build.
#[derive(Clone, Debug)]
pub struct GoBuild {
    /// A directory (built from inside it) or a package path.
    pub package: String,
    pub platform: Platform,
    /// Extra `go build` flags, passed before the package.
    pub flags: Vec<String>,
    /// Extra ldflags, appended to binpack's `-s -w -buildid=`.
    pub ldflags: Option<String>,
    /// Embed Go's time zone database (the `timetzdata` tag, ~400 KB): scratch has no
    /// /usr/share/zoneinfo, and `time.LoadLocation` fails without one or the other.
    pub tzdata: bool,
    /// Build with CGO_ENABLED=1: a dynamic binary, packed on its library closure.
    pub cgo: bool,
}

/// How to get go, for the errors that say it is missing.
pub const INSTALL: &str = "Go 1.21 or later (on Debian: apt-get install -t bookworm-backports golang-1.23-go, then add /usr/lib/go-1.23/bin to PATH)";

#[derive(Debug, thiserror::Error)]
pub enum GoError {
    #[error(
        "go not found on PATH: install {INSTALL}, or build in a container with --toolchain docker"
    )]
    NotFound,
    #[error("no such directory: {}", .0.display())]
    NoSuchDirectory(PathBuf),
    #[error("{import_path} is package {name}, not a main package: binpack go builds commands (package main)")]
    NotMain { import_path: String, name: String },
    #[error("{}", cgo::needs_cgo_message(.packages))]
    NeedsCgo { packages: Vec<String> },
    #[error("{}", cgo::stub_message(.packages))]
    CgoLeftOut { packages: Vec<cgo::LeftOut> },
    #[error("--cgo for {platform} needs a C cross compiler, {cc}: {}", cgo::cross_way_out(.cc, .in_container))]
    NoCrossCompiler {
        platform: String,
        cc: String,
        in_container: bool,
    },
    #[error("go list {package}: {message}")]
    List { package: String, message: String },
    #[error("go build failed (its output is above)")]
    BuildFailed,
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    #[error("{what}: {source}")]
    Spawn {
        what: &'static str,
        source: FileError,
    },
    #[error(transparent)]
    File(#[from] FileError),
}

/// The fields of `go list -json` binpack reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedPackage {
    #[serde(default)]
    name: String,
    #[serde(default)]
    import_path: String,
    error: Option<ListError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListError {
    err: String,
}

/// The caller's Go settings passed into a toolchain container (paths on the host, like
/// GOPATH and GOCACHE, are not: the container has its own, in the cache volume).
const PASS_ENV: &[&str] = &[
    "GOFLAGS",
    "GOPROXY",
    "GOPRIVATE",
    "GONOPROXY",
    "GONOSUMDB",
    "GOSUMDB",
    "GOINSECURE",
    "GO111MODULE",
    "GOEXPERIMENT",
    "GOTOOLCHAIN",
    "GOAMD64",
    "GOARM64",
];

/// Builds the package with `toolchain` and returns the executable.
pub fn build(
    spec: &GoBuild,
    toolchain: &Toolchain,
    progress: &dyn Progress,
) -> Result<Built, GoError> {
    let program = match toolchain {
        Toolchain::Host => which::which("go").map_err(|_| GoError::NotFound)?,
        Toolchain::Container(_) => PathBuf::from("go"),
    };
    let (workdir, target) = locate(&spec.package)?;
    let out_dir = Tracked::new(temp_dir()?);
    let workdir = workdir
        .canonicalize()
        .map_err(file_error("resolving the package directory", &workdir))?;
    let runner = toolchain.runner(&module_root(&workdir), out_dir.path(), &volume("go-cache"));
    let mut env = go_env(&spec.platform, runner.in_container());
    let user_cc = std::env::var("CC").ok();
    env.extend(cgo::cross_compiler(spec, toolchain, user_cc.as_deref())?);
    let commands = Commands {
        runner: &runner,
        pass_env: PASS_ENV,
    };
    let go = Go {
        exec: &commands,
        program,
        cwd: workdir,
        env,
        spec,
        target,
    };
    let name = go.build_one(out_dir.path(), &runner.path(out_dir.path()))?;
    let out = out_dir.path().join(&name);
    let mut built = Built::new(out, name, out_dir);
    let artifact = &mut built.artifact;
    artifact.provenance.vcs = git::describe(&go.cwd);
    artifact.provenance.platform = Some(spec.platform.clone());
    // Go's database is embedded (`timetzdata`), or left out on purpose (--no-tzdata).
    artifact.own_tzdata = true;
    // The host's root is the default. A container's is an image export, needed only for a
    // dynamic binary; which one is known from the flags (see `links_dynamically`).
    let goflags = std::env::var("GOFLAGS").unwrap_or_default();
    if matches!(toolchain, Toolchain::Container(_)) && links_dynamically(spec, &goflags) {
        artifact.root = toolchain.library_root(progress)?;
    }
    artifact.provenance.built_on = Some(toolchain.built_on());
    Ok(built)
}

/// The target platform as go's environment, and the caches for a container build.
fn go_env(platform: &Platform, in_container: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("GOOS", platform.os.clone()),
        ("GOARCH", platform.arch.clone()),
    ];
    let arm_version = platform
        .variant
        .as_deref()
        .and_then(|v| v.strip_prefix('v'));
    match (arm_version, platform.arch.as_str()) {
        (Some(v), "arm") => env.push(("GOARM", v.to_string())),
        // amd64's variant is a microarchitecture level; none is go's default (v1).
        (Some(v), "amd64") => env.push(("GOAMD64", format!("v{v}"))),
        _ => {}
    }
    if in_container {
        // The caches live in the named volume, so a second container build is fast.
        env.push(("GOPATH", "/cache/go".into()));
        env.push(("GOCACHE", "/cache/go-build".into()));
    }
    env
}

/// One package's `go` commands, run through [`Exec`] (a fake one in the tests).
struct Go<'a> {
    exec: &'a dyn Exec,
    /// `go`: a path on the host, a name in a container.
    program: PathBuf,
    cwd: PathBuf,
    /// The platform's variables (and a container's caches); CGO_ENABLED is added per command.
    env: Vec<(&'static str, String)>,
    spec: &'a GoBuild,
    /// The package argument.
    target: String,
}

impl Go<'_> {
    fn run(
        &self,
        what: &'static str,
        cgo: &str,
        args: Vec<OsString>,
        show: Show,
    ) -> Result<Output, GoError> {
        let mut env = self.env.clone();
        env.push(("CGO_ENABLED", cgo.to_string()));
        self.exec
            .run(self.program.as_os_str(), &args, &self.cwd, &env, show)
            .map_err(|source| GoError::Spawn { what, source })
    }

    /// `fixed` args, then the user's flags, then the package.
    fn args(&self, fixed: &[&str]) -> Vec<OsString> {
        let fixed = fixed.iter().map(OsString::from);
        let flags = self.spec.flags.iter().map(OsString::from);
        fixed
            .chain(flags)
            .chain([OsString::from(&self.target)])
            .collect()
    }

    fn list_failed(&self, message: impl Into<String>) -> GoError {
        GoError::List {
            package: self.spec.package.clone(),
            message: message.into(),
        }
    }

    /// The one main package `go list` finds, or why there is none.
    fn list(&self) -> Result<ListedPackage, GoError> {
        let args = self.args(&["list", "-e", "-json"]);
        let listed = self.run("go list", self.cgo_enabled(), args, Show::Stderr)?;
        // A pattern (./...) lists several packages: binpack builds one command.
        let pkgs: Vec<ListedPackage> = serde_json::Deserializer::from_slice(&listed.stdout)
            .into_iter::<ListedPackage>()
            .collect::<Result<_, _>>()
            .map_err(|e| self.list_failed(format!("unreadable output: {e}")))?;
        let pkg = match <[ListedPackage; 1]>::try_from(pkgs) {
            Ok([one]) => one,
            Err(many) if many.is_empty() && !listed.status.success() => {
                return Err(self.list_failed("failed (its output is above)"))
            }
            Err(many) => {
                return Err(self.list_failed(format!(
                    "matches {} packages; binpack go builds one main package",
                    many.len()
                )))
            }
        };
        if let Some(e) = &pkg.error {
            // With CGO_ENABLED=0 a cgo package lists as "build constraints exclude all Go files".
            return Err(self
                .cgo_users()
                .unwrap_or_else(|| self.list_failed(e.err.trim())));
        }
        if !listed.status.success() {
            return Err(self.list_failed("failed (its output is above)"));
        }
        if pkg.name != "main" {
            return Err(GoError::NotMain {
                import_path: pkg.import_path,
                name: pkg.name,
            });
        }
        Ok(pkg)
    }

    /// Builds into the directory `dir` (`go_dir` as go sees it), named by go itself as it
    /// names commands, and returns the name. `go list` (a whole extra pass over the package
    /// graph) runs only when the build did not give one executable, to say why.
    fn build_one(&self, dir: &Path, go_dir: &Path) -> Result<String, GoError> {
        let mut out = go_dir.as_os_str().to_owned();
        out.push("/");
        self.build(Path::new(&out))?;
        let names: Vec<String> = std::fs::read_dir(dir)
            .map_err(file_error("listing the build output", dir))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(file_error("listing the build output", dir))?;
        match <[String; 1]>::try_from(names) {
            Ok([name]) => Ok(name),
            Err(_) => Err(self.explain().unwrap_or(GoError::BuildFailed)),
        }
    }

    /// Why the build gave no single main package, as `go list` tells it.
    fn explain(&self) -> Option<GoError> {
        self.list().err()
    }

    /// `go build` into `out` (a path as go sees it): stripped, reproducible, static unless
    /// cgo was asked for.
    fn build(&self, out: &Path) -> Result<(), GoError> {
        let mut ldflags = "-s -w -buildid=".to_string();
        if let Some(extra) = &self.spec.ldflags {
            ldflags.push(' ');
            ldflags.push_str(extra);
        }
        let out = out.to_string_lossy();
        let goflags = std::env::var("GOFLAGS").unwrap_or_default();
        let fixed = ["build", "-trimpath", "-ldflags", &ldflags, "-o", &out];
        let args = fixed
            .iter()
            .map(|s| s.to_string())
            .chain(build_flags(self.spec, &goflags))
            .chain([self.target.clone()])
            .map(OsString::from)
            .collect();
        // go's own output reaches the user unchanged.
        let built = self.run("go build", self.cgo_enabled(), args, Show::All)?;
        if !built.status.success() {
            // Not a main package, several, none: `go list` says which; else maybe cgo.
            let why = self.explain();
            let why = why.or_else(|| (!self.spec.cgo).then(|| self.cgo_users()).flatten());
            return Err(why.unwrap_or(GoError::BuildFailed));
        }
        // A package's cgo-less stand-in builds fine and fails in the container.
        if self.spec.cgo {
            return Ok(());
        }
        self.check_cgo_left_out()
    }

    /// CGO_ENABLED for every command but the cgo questions.
    fn cgo_enabled(&self) -> &'static str {
        if self.spec.cgo {
            "1"
        } else {
            "0"
        }
    }
}

/// The user's build flags with binpack's: `-buildvcs=false` unless the user set it (a host
/// build sees the .git, a container build does not: stamping would make their digests
/// differ; the revision is in the image's labels either way), and the `timetzdata` tag merged
/// into the user's `-tags` (go keeps only the last `-tags`; the command line's replaces
/// GOFLAGS').
fn build_flags(spec: &GoBuild, goflags: &str) -> Vec<String> {
    let mut flags = Vec::new();
    let vcs_set = |s: &str| s.contains("-buildvcs");
    if !vcs_set(goflags) && !spec.flags.iter().any(|f| vcs_set(f)) {
        flags.push("-buildvcs=false".to_string());
    }
    let mut user = spec.flags.clone();
    if !spec.tzdata {
        flags.extend(user);
        return flags;
    }
    let with_tag = |tags: &str| {
        let tags = tags.trim_matches(['\'', '"']);
        // Space-separated is the old spelling; go reads commas when there are any.
        let tags = if tags.contains(',') {
            tags.to_string()
        } else {
            tags.split_whitespace().collect::<Vec<_>>().join(",")
        };
        if tags.is_empty() {
            TZDATA_TAG.to_string()
        } else {
            format!("{tags},{TZDATA_TAG}")
        }
    };
    let mut merged = false;
    let mut i = 0;
    while i < user.len() {
        let flag = user[i].trim_start_matches('-');
        if let Some(v) = flag.strip_prefix("tags=") {
            user[i] = format!("-tags={}", with_tag(v));
            merged = true;
        } else if flag == "tags" && i + 1 < user.len() {
            user[i + 1] = with_tag(&user[i + 1]);
            merged = true;
            i += 1;
        }
        i += 1;
    }
    if !merged {
        let from_goflags = goflags
            .split_whitespace()
            .find_map(|f| f.trim_start_matches('-').strip_prefix("tags="));
        flags.push(format!("-tags={}", with_tag(from_goflags.unwrap_or(""))));
    }
    flags.extend(user);
    flags
}

/// The build tag that embeds Go's time zone database.
const TZDATA_TAG: &str = "timetzdata";

/// Whether the binary will be dynamic, told from the flags rather than by reading the binary
/// (the build stage does not inspect). With CGO_ENABLED=0 go links internally into a static
/// binary unless asked otherwise. Measured with Go 1.23: `-buildmode=pie` gives a dynamic
/// PIE with an interpreter (ld-linux) and no DT_NEEDED on amd64, arm64 and ppc64le (and
/// fails elsewhere); `-linkmode=external` and the c-shared and plugin buildmodes fail
/// ("requires external (cgo) linking"), so counting them as dynamic costs nothing. GOFLAGS
/// (passed into a container) counts as much as `--build-flag`. A cgo build is dynamic.
fn links_dynamically(spec: &GoBuild, goflags: &str) -> bool {
    // cgo links with the C toolchain, against libc at least.
    if spec.cgo {
        return true;
    }
    let text = [goflags, spec.ldflags.as_deref().unwrap_or("")]
        .into_iter()
        .chain(spec.flags.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    // `-buildmode=pie`, `-buildmode pie`, `-ldflags=-linkmode=external`, quoted or not.
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == '=')
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|w| match w {
        ["buildmode", mode] => !matches!(*mode, "exe" | "default"),
        ["linkmode", mode] => *mode == "external",
        _ => false,
    })
}

/// What a toolchain container mounts: the nearest directory with go.work, else go.mod, else
/// the package directory itself.
fn module_root(dir: &Path) -> PathBuf {
    ["go.work", "go.mod"]
        .iter()
        .find_map(|f| dir.ancestors().find(|d| d.join(f).is_file()))
        .unwrap_or(dir)
        .to_path_buf()
}

/// The working directory and the package argument for `go`: a directory is built from inside.
fn locate(package: &str) -> Result<(PathBuf, String), GoError> {
    let path = Path::new(package);
    // `./cmd/...` is a pattern for go, not a directory.
    let path_like = !package.contains("...")
        && (package.starts_with('.') || package.starts_with('/') || path.is_dir());
    if !path_like {
        return Ok((PathBuf::from("."), package.to_string()));
    }
    if !path.is_dir() {
        return Err(GoError::NoSuchDirectory(path.to_path_buf()));
    }
    Ok((path.to_path_buf(), ".".to_string()))
}

#[cfg(test)]
mod tests;
