//! What to build: the entry script named on the command line or by a package.json, the
//! project around it (where esbuild runs), the directory a container mounts, and where
//! `--asset` files go.

use super::NodeError;
use crate::build::toolchain::file_error;
use serde::Deserialize;
use std::io;
use std::path::{Path, PathBuf};

pub(super) fn entry_in_mount(entry: &Entry, mount: &Path) -> PathBuf {
    let abs = entry.project.join(&entry.relative);
    abs.strip_prefix(mount)
        .map(Path::to_path_buf)
        .unwrap_or(abs)
}

/// What a toolchain container mounts: the outermost directory from the project up that has
/// both package.json and node_modules (a workspace root, where dependencies are hoisted), else
/// the project.
pub(super) fn mount_root(project: &Path) -> PathBuf {
    project
        .ancestors()
        .filter(|d| d.join("package.json").is_file() && d.join("node_modules").is_dir())
        .last()
        .unwrap_or(project)
        .to_path_buf()
}

/// The app's entry script and the project around it.
#[derive(Debug)]
pub(super) struct Entry {
    /// The directory holding package.json (or the entry's directory): esbuild runs here, so
    /// the bundle holds no path of this machine.
    pub(super) project: PathBuf,
    /// The entry, relative to `project`.
    pub(super) relative: PathBuf,
    /// The program's name.
    pub(super) name: String,
}

#[derive(Deserialize)]
struct PackageJson {
    name: Option<String>,
    main: Option<String>,
    bin: Option<serde_json::Value>,
}

impl Entry {
    pub(super) fn resolve(entry: &Path) -> Result<Entry, NodeError> {
        if !entry.exists() {
            return Err(NodeError::NoSuchEntry(entry.to_path_buf()));
        }
        let entry = entry
            .canonicalize()
            .map_err(file_error("resolving the entry", entry))?;
        if entry.is_dir() {
            return Entry::from_package_json(entry);
        }
        let ext = entry.extension().and_then(|e| e.to_str()).unwrap_or("");
        let script = matches!(ext, "js" | "cjs" | "mjs" | "ts" | "mts" | "cts");
        if !script && !has_node_shebang(&entry) {
            return Err(NodeError::BadEntry(entry));
        }
        let dir = entry.parent().unwrap_or(Path::new("/"));
        let package = dir.ancestors().find(|d| d.join("package.json").is_file());
        // A dependency's own CLI (node_modules/json-server/lib/bin.js) runs in the app that
        // installed it: that app is the project, and the package names the image.
        let (project, name) = match installed_in(&entry) {
            Some(app) => (app, package.and_then(package_name)),
            None => {
                let project = package.unwrap_or(dir).to_path_buf();
                // The package's own entry, as `binpack node DIR` would pick it, is named as
                // DIR is: `binpack node server.js` and `binpack node .` make one image.
                let own = Entry::from_package_json(project.clone()).ok();
                let name = own.filter(|o| project.join(&o.relative) == entry);
                (project, name.map(|o| o.name))
            }
        };
        Ok(Entry {
            relative: entry.strip_prefix(&project).unwrap_or(&entry).to_path_buf(),
            name: name.unwrap_or_else(|| file_stem(&entry)),
            project,
        })
    }

    /// The entry a directory's package.json names.
    fn from_package_json(entry: PathBuf) -> Result<Entry, NodeError> {
        let pj = entry.join("package.json");
        // No package.json: not an app directory. Another failure is that file's.
        let text = std::fs::read_to_string(&pj).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => NodeError::BadEntry(entry.clone()),
            _ => file_error("reading", &pj)(e).into(),
        })?;
        let pkg: PackageJson = serde_json::from_str(&text).map_err(|e| NodeError::PackageJson {
            path: pj.clone(),
            why: e.to_string(),
        })?;
        let pkg_name = pkg.name.as_deref().map(unscoped);
        // `bin` (a path, or a map of command -> path), else `main`, else index.js as npm does.
        let (name, script) = match &pkg.bin {
            Some(serde_json::Value::String(s)) => (pkg_name.clone(), s.clone()),
            Some(serde_json::Value::Object(m)) if !m.is_empty() => {
                let (cmd, path) = pkg_name
                    .as_ref()
                    .and_then(|n| m.get_key_value(n))
                    .unwrap_or_else(|| m.iter().next().expect("non-empty"));
                let path = path.as_str().ok_or_else(|| NodeError::PackageJson {
                    path: pj.clone(),
                    why: format!("bin.{cmd} is not a path"),
                })?;
                (Some(cmd.clone()), path.to_string())
            }
            _ => (
                pkg_name.clone(),
                pkg.main.clone().unwrap_or_else(|| "index.js".into()),
            ),
        };
        let file = entry.join(&script);
        if !file.is_file() {
            return Err(NodeError::PackageJson {
                path: pj,
                why: format!("it names the entry {script}, which does not exist"),
            });
        }
        // `"main": "../../.aws/credentials.js"` would bundle a host file into the image.
        let real = file
            .canonicalize()
            .map_err(file_error("resolving", &file))?;
        if !real.starts_with(&entry) {
            return Err(NodeError::PackageJson {
                path: pj,
                why: format!(
                    "it names the entry {script}, which is {}, outside the project: binpack builds only what lies inside it",
                    real.display()
                ),
            });
        }
        let name = name.unwrap_or_else(|| file_stem(&file));
        Ok(Entry {
            relative: PathBuf::from(script.trim_start_matches("./")),
            project: entry,
            name,
        })
    }
}

/// The project's own copy of a tool (`node_modules/.bin/esbuild`), from the project itself
/// only: never from a directory above it, which may be anyone's (`/tmp/x` above `/tmp/x/app`).
/// Its real path lies inside the project and belongs to this user.
pub(super) fn own_copy(project: &Path, rel: &str) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let path = project.join(rel);
    let real = path.canonicalize().ok()?;
    let meta = real.metadata().ok()?;
    let mine = Some(meta.uid()) == crate::support::cleanup::effective_uid();
    (meta.is_file() && mine && real.starts_with(project)).then_some(path)
}

/// An executable script without an extension that starts `#!/usr/bin/env node` (a package's
/// `bin`).
fn has_node_shebang(file: &Path) -> bool {
    let mut head = [0u8; 128];
    let n = std::fs::File::open(file)
        .and_then(|mut f| io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    let line = head[..n].split(|b| *b == b'\n').next().unwrap_or(&[]);
    let Some(line) = line.strip_prefix(b"#!") else {
        return false;
    };
    // `#!/usr/bin/node` or `#!/usr/bin/env node` (not nodemon).
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let program = words.next().unwrap_or("").rsplit('/').next().unwrap_or("");
    match program {
        "env" => words.find(|w| !w.starts_with('-')) == Some("node"),
        p => p == "node",
    }
}

/// The app that installed `file`: the directory holding the outermost `node_modules` of its
/// path, when it has a package.json (a global install's prefix is no app).
fn installed_in(file: &Path) -> Option<PathBuf> {
    file.ancestors()
        .filter(|d| d.file_name().is_some_and(|n| n == "node_modules"))
        .last()
        .and_then(Path::parent)
        .filter(|app| app.join("package.json").is_file())
        .map(Path::to_path_buf)
}

/// The unscoped name in `dir`'s package.json (`@scope/x` is `x`).
fn package_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    let name = serde_json::from_str::<PackageJson>(&text).ok()?.name?;
    Some(unscoped(&name))
}

/// A package's name without its scope (`@scope/x` is `x`): the image's name.
fn unscoped(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_string()
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into())
}

/// Where an asset goes, relative to the app directory: its path inside the project, else its
/// file name.
pub(super) fn asset_path(project: &Path, asset: &Path) -> Result<(String, PathBuf), NodeError> {
    let host = asset.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => NodeError::NoSuchEntry(asset.to_path_buf()),
        _ => file_error("resolving the asset", asset)(e).into(),
    })?;
    let rel = host
        .strip_prefix(project)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| PathBuf::from(host.file_name().unwrap_or_default()));
    Ok((rel.to_string_lossy().into_owned(), host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_failures_name_their_path() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        // A package.json that cannot be read is that file's error, not a bad entry.
        std::fs::create_dir(p.join("package.json")).unwrap();
        let err = Entry::resolve(p).unwrap_err().to_string();
        let pj = p.canonicalize().unwrap().join("package.json");
        assert!(
            err.starts_with(&format!("reading {}: ", pj.display())),
            "{err}"
        );
        // An asset below a file.
        std::fs::write(p.join("file"), "").unwrap();
        let below = p.join("file/asset");
        let err = asset_path(p, &below).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "resolving the asset {}: Not a directory (os error 20)",
                below.display()
            )
        );
    }

    #[test]
    fn entries_from_files_and_package_json() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().canonicalize().unwrap();
        std::fs::create_dir_all(p.join("src")).unwrap();
        std::fs::write(p.join("src/cli.js"), "").unwrap();
        std::fs::write(p.join("server.mjs"), "").unwrap();
        std::fs::write(p.join("notes.txt"), "").unwrap();
        let table = [
            (
                r#"{"name":"@acme/tool","bin":{"tool":"./src/cli.js"}}"#,
                "tool",
                "src/cli.js",
            ),
            (
                r#"{"name":"@acme/tool","bin":"src/cli.js"}"#,
                "tool",
                "src/cli.js",
            ),
            (r#"{"name":"web","main":"server.mjs"}"#, "web", "server.mjs"),
        ];
        for (pj, name, rel) in table {
            std::fs::write(p.join("package.json"), pj).unwrap();
            let e = Entry::resolve(&p).unwrap();
            assert_eq!(
                (e.name.as_str(), e.relative.to_str().unwrap()),
                (name, rel),
                "{pj}"
            );
            assert_eq!(e.project, p);
        }
        // The package's own entry named by its file is the package's image, as `.` is;
        // another script of the package is its own.
        assert_eq!(Entry::resolve(&p.join("server.mjs")).unwrap().name, "web");
        assert_eq!(Entry::resolve(&p.join("src/cli.js")).unwrap().name, "cli");
        std::fs::write(p.join("package.json"), r#"{"main":"gone.js"}"#).unwrap();
        assert!(Entry::resolve(&p)
            .unwrap_err()
            .to_string()
            .contains("gone.js, which does not exist"));
        let e = Entry::resolve(&p.join("src/cli.js")).unwrap();
        assert_eq!(
            (e.name.as_str(), e.relative.to_str().unwrap()),
            ("cli", "src/cli.js")
        );
        assert!(matches!(
            Entry::resolve(&p.join("notes.txt")),
            Err(NodeError::BadEntry(_))
        ));
        assert!(matches!(
            Entry::resolve(&p.join("nope.js")),
            Err(NodeError::NoSuchEntry(_))
        ));
    }
}
