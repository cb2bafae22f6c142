//! `go build` with CGO_ENABLED=0 into a static ELF, using the `go` on PATH.

use super::{git, Artifact};
use crate::cleanup::Tracked;
use crate::platform::Platform;
use serde::Deserialize;
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

#[derive(Debug, thiserror::Error)]
pub enum GoError {
    #[error("go not found on PATH: install Go 1.21 or later (on Debian: apt-get install -t bookworm-backports golang-1.23-go, then add /usr/lib/go-1.23/bin to PATH)")]
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

/// Builds the package and returns the executable.
pub fn build(spec: &GoBuild) -> Result<Artifact, GoError> {
    let go = which::which("go").map_err(|_| GoError::NotFound)?;
    let (workdir, target) = locate(&spec.package)?;
    let go_cmd = |cgo: &str| {
        let mut c = Command::new(&go);
        c.current_dir(&workdir)
            .env("CGO_ENABLED", cgo)
            .env("GOOS", &spec.platform.os)
            .env("GOARCH", &spec.platform.arch)
            .stdin(Stdio::null());
        if let Some(v) = spec
            .platform
            .variant
            .as_deref()
            .and_then(|v| v.strip_prefix('v'))
        {
            if spec.platform.arch == "arm" {
                c.env("GOARM", v);
            }
        }
        c
    };

    let listed = go_cmd("0")
        .args(["list", "-e", "-json"])
        .args(&spec.flags)
        .arg(&target)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| GoError::Spawn {
            what: "go list",
            source,
        })?;
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
    if let Some(e) = &pkg.error {
        return Err(
            cgo_users(&go_cmd, &target).unwrap_or_else(|| GoError::List {
                package: spec.package.clone(),
                message: e.err.trim().to_string(),
            }),
        );
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
    let out_dir = Tracked::new(
        tempfile::Builder::new()
            .prefix("binpack-go-")
            .tempdir()
            .map_err(|source| GoError::Spawn {
                what: "mkdtemp",
                source,
            })?,
    );
    let out = out_dir.path().join(&name);
    let mut ldflags = "-s -w -buildid=".to_string();
    if let Some(extra) = &spec.ldflags {
        ldflags.push(' ');
        ldflags.push_str(extra);
    }
    // go's own output reaches the user unchanged, on stderr so `--json` keeps stdout clean.
    let status = go_cmd("0")
        .args(["build", "-trimpath", "-ldflags", &ldflags, "-o"])
        .arg(&out)
        .args(&spec.flags)
        .arg(&target)
        .stdout(Stdio::from(io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .map_err(|source| GoError::Spawn {
            what: "go build",
            source,
        })?;
    if !status.success() {
        return Err(cgo_users(&go_cmd, &target).unwrap_or(GoError::BuildFailed));
    }
    let mut artifact = Artifact::built(out, name, out_dir);
    artifact.vcs = git::describe(Path::new(&pkg.dir));
    Ok(artifact)
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

/// After a failure: which non-standard packages in the build need cgo? None when none do.
fn cgo_users(go_cmd: &dyn Fn(&str) -> Command, target: &str) -> Option<GoError> {
    let out = go_cmd("1")
        .args([
            "list",
            "-e",
            "-deps",
            "-f",
            "{{if and .CgoFiles (not .Standard)}}{{.ImportPath}}{{end}}",
            target,
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
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
