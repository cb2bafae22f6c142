//! `go build` with CGO_ENABLED=0 into a static ELF, with the host's go or in a toolchain
//! container.

use super::toolchain::{volume, Toolchain, ToolchainError};
use super::{git, Built};
use crate::cleanup::Tracked;
use crate::inspect;
use crate::platform::Platform;
use crate::progress::Progress;
use serde::Deserialize;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
    #[error("{} {} \"C\" (cgo), so the program cannot be built with CGO_ENABLED=0; remove the cgo dependency, or build the binary yourself and pack it with `binpack bin`", packages.join(", "), if packages.len() == 1 { "imports" } else { "import" })]
    NeedsCgo { packages: Vec<String> },
    #[error("go list {package}: {message}")]
    List { package: String, message: String },
    #[error("go build failed (its output is above)")]
    BuildFailed,
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    #[error("running {what}: {source}")]
    Spawn {
        what: &'static str,
        source: io::Error,
    },
}

/// The fields of `go list -json` binpack reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedPackage {
    #[serde(default)]
    name: String,
    #[serde(default)]
    import_path: String,
    #[serde(default)]
    dir: String,
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
    let go = match toolchain {
        Toolchain::Host => which::which("go").map_err(|_| GoError::NotFound)?,
        Toolchain::Container(_) => PathBuf::from("go"),
    };
    let (workdir, target) = locate(&spec.package)?;
    let spawn = |what| move |source| GoError::Spawn { what, source };
    let out_dir = Tracked::new(
        tempfile::Builder::new()
            .prefix("binpack-go-")
            .tempdir()
            .map_err(spawn("mkdtemp"))?,
    );
    let workdir = workdir
        .canonicalize()
        .map_err(spawn("resolving the package directory"))?;
    let runner = toolchain.runner(&module_root(&workdir), out_dir.path(), &volume("go-cache"));
    let mut env = vec![
        ("GOOS", spec.platform.os.clone()),
        ("GOARCH", spec.platform.arch.clone()),
    ];
    if let Some(v) = spec
        .platform
        .variant
        .as_deref()
        .and_then(|v| v.strip_prefix('v'))
    {
        if spec.platform.arch == "arm" {
            env.push(("GOARM", v.to_string()));
        }
    }
    if runner.in_container() {
        // The caches live in the named volume, so a second container build is fast.
        env.push(("GOPATH", "/cache/go".into()));
        env.push(("GOCACHE", "/cache/go-build".into()));
    }
    let go_cmd = |cgo: &str, args: &[OsString]| {
        let mut env = env.clone();
        env.push(("CGO_ENABLED", cgo.to_string()));
        runner.command(go.as_os_str(), args, &workdir, &env, PASS_ENV)
    };
    let args = |fixed: &[&str], extra: &[String], last: &[OsString]| -> Vec<OsString> {
        let fixed = fixed.iter().map(OsString::from);
        let extra = extra.iter().map(OsString::from);
        fixed.chain(extra).chain(last.iter().cloned()).collect()
    };
    let target_arg = [OsString::from(&target)];

    let listed = go_cmd(
        "0",
        &args(&["list", "-e", "-json"], &spec.flags, &target_arg),
    )
    .stderr(Stdio::inherit())
    .output()
    .map_err(spawn("go list"))?;
    // A pattern (./...) lists several packages: binpack builds one command.
    let listed_pkgs: Vec<ListedPackage> = serde_json::Deserializer::from_slice(&listed.stdout)
        .into_iter::<ListedPackage>()
        .collect::<Result<_, _>>()
        .map_err(|e| GoError::List {
            package: spec.package.clone(),
            message: format!("unreadable output: {e}"),
        })?;
    let pkg = match <[ListedPackage; 1]>::try_from(listed_pkgs) {
        Ok([one]) => one,
        Err(many) if many.is_empty() && !listed.status.success() => {
            return Err(GoError::List {
                package: spec.package.clone(),
                message: "failed (its output is above)".into(),
            })
        }
        Err(many) => {
            return Err(GoError::List {
                package: spec.package.clone(),
                message: format!(
                    "matches {} packages; binpack go builds one main package",
                    many.len()
                ),
            })
        }
    };
    let cgo_users = || {
        let list = args(&["list", "-e", "-deps", "-f", CGO_USERS], &[], &target_arg);
        cgo_users(go_cmd("1", &list))
    };
    if let Some(e) = &pkg.error {
        return Err(cgo_users().unwrap_or_else(|| GoError::List {
            package: spec.package.clone(),
            message: e.err.trim().to_string(),
        }));
    }
    if !listed.status.success() {
        return Err(GoError::List {
            package: spec.package.clone(),
            message: "failed (its output is above)".into(),
        });
    }
    if pkg.name != "main" {
        return Err(GoError::NotMain {
            import_path: pkg.import_path,
            name: pkg.name,
        });
    }

    let name = program_name(&pkg.import_path, &pkg.dir);
    let out = out_dir.path().join(&name);
    let mut ldflags = "-s -w -buildid=".to_string();
    if let Some(extra) = &spec.ldflags {
        ldflags.push(' ');
        ldflags.push_str(extra);
    }
    let mut build_args: Vec<OsString> = ["build", "-trimpath", "-ldflags", &ldflags, "-o"]
        .iter()
        .map(OsString::from)
        .collect();
    build_args.push(runner.path(&out).into_os_string());
    build_args.extend(spec.flags.iter().map(OsString::from));
    build_args.extend(target_arg.iter().cloned());
    // go's own output reaches the user unchanged, on stderr so `--json` keeps stdout clean.
    let status = go_cmd("0", &build_args)
        .stdout(Stdio::from(io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .map_err(spawn("go build"))?;
    if !status.success() {
        return Err(cgo_users().unwrap_or(GoError::BuildFailed));
    }
    let mut built = Built::new(out, name, out_dir);
    let artifact = &mut built.artifact;
    artifact.provenance.vcs = git::describe(&runner.host_path(Path::new(&pkg.dir)));
    artifact.provenance.platform = Some(spec.platform.clone());
    // The host's root is the default. A container's is an image export: spared for a static
    // binary (the CGO_ENABLED=0 rule), the only case where reading the binary here pays.
    if matches!(toolchain, Toolchain::Container(_))
        && !inspect::inspect_file(&artifact.executable).is_ok_and(|l| l.is_static)
    {
        artifact.root = toolchain.library_root(progress)?;
    }
    artifact.provenance.toolchain = Some(toolchain.describe());
    Ok(built)
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

/// `go list -deps -f` template naming the non-standard packages that need cgo.
const CGO_USERS: &str = "{{if and .CgoFiles (not .Standard)}}{{.ImportPath}}{{end}}";

/// After a failure: which packages of the build need cgo (`list` runs `go list -deps` with
/// [`CGO_USERS`])? None when none do.
fn cgo_users(mut list: Command) -> Option<GoError> {
    let out = list.stderr(Stdio::null()).output().ok()?;
    let packages: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    (!packages.is_empty()).then_some(GoError::NeedsCgo { packages })
}

/// The executable's name the way `go build` picks it: the last element of the import path,
/// skipping a major-version suffix (`/v2`).
fn program_name(import_path: &str, dir: &str) -> String {
    let from_dir = || {
        Path::new(dir)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    };
    if import_path == "command-line-arguments" || import_path.is_empty() {
        return from_dir().unwrap_or_else(|| "app".into());
    }
    let mut parts: Vec<&str> = import_path.split('/').collect();
    let is_major =
        |s: &str| s.len() > 1 && s.starts_with('v') && s[1..].chars().all(|c| c.is_ascii_digit());
    if parts.len() > 1 && parts.last().is_some_and(|l| is_major(l)) {
        parts.pop();
    }
    parts.last().unwrap_or(&"app").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_names() {
        for (ip, dir, want) in [
            ("example.com/hello", "/x/hello", "hello"),
            ("example.com/cmd/server/v2", "/x", "server"),
            ("v2", "/x", "v2"),
            ("command-line-arguments", "/src/tool", "tool"),
        ] {
            assert_eq!(program_name(ip, dir), want);
        }
    }

    #[test]
    fn locate_paths_and_packages() {
        let d = tempfile::tempdir().unwrap();
        let (wd, t) = locate(d.path().to_str().unwrap()).unwrap();
        assert_eq!((wd.as_path(), t.as_str()), (d.path(), "."));
        assert_eq!(
            locate("example.com/cmd/app").unwrap(),
            (PathBuf::from("."), "example.com/cmd/app".to_string())
        );
        assert!(matches!(
            locate("./does/not/exist"),
            Err(GoError::NoSuchDirectory(_))
        ));
    }
}
