//! Who owns a file in a root: the package databases scanners read (dpkg's status and
//! `info/*.list`, apk's `lib/apk/db/installed`). The closure records each library's owner, so
//! the image can carry that package's metadata (distroless-style `status.d/<pkg>` entries)
//! and the SBOM and `binpack inspect` can name it.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// Which package database a package comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    Dpkg,
    Apk,
}

/// The package that owns a file, with its database entry as the root has it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Package {
    pub manager: Manager,
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The source package (dpkg `Source:`, apk `o:`), without its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Its entry in the database, as written there (one dpkg stanza or apk block), ending in
    /// a newline.
    #[serde(skip)]
    pub entry: String,
}

/// A root's package databases, read once.
#[derive(Default)]
pub struct Db {
    /// Owned path -> index in `packages`.
    owners: HashMap<String, usize>,
    packages: Vec<Package>,
    /// The root's `/etc/os-release`, when it has one.
    pub os_release: Option<String>,
}

impl Db {
    /// Reads the dpkg or apk database of `root`; a root with neither gives an empty one (every
    /// file is then unowned). Unreadable or odd entries are skipped: ownership is metadata.
    pub fn open(root: &Path) -> Db {
        let mut db = Db {
            os_release: os_release(root),
            ..Db::default()
        };
        if let Some(status) = read(root, "var/lib/dpkg/status") {
            db.read_dpkg(root, &status);
        } else if let Some(installed) = read(root, "lib/apk/db/installed") {
            db.read_apk(&installed);
        }
        db
    }

    /// The package owning `path` (an absolute path in the root), trying the usrmerge twin
    /// (`/lib/x` for `/usr/lib/x` and back): the databases list a file where its package put it.
    pub fn owner(&self, path: &str) -> Option<&Package> {
        let twin = match path.strip_prefix("/usr") {
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => format!("/usr{path}"),
        };
        let i = self.owners.get(path).or_else(|| self.owners.get(&twin))?;
        Some(&self.packages[*i])
    }

    fn read_dpkg(&mut self, root: &Path, status: &str) {
        // (name, arch) -> index; `info/<name>.list` or `info/<name>:<arch>.list` says which.
        let mut by_name: HashMap<(String, String), usize> = HashMap::new();
        for stanza in status.split("\n\n").filter(|s| !s.trim().is_empty()) {
            let field = |k: &str| field(stanza, k);
            let (Some(name), Some(version)) = (field("Package"), field("Version")) else {
                continue;
            };
            if !field("Status").is_some_and(|s| s.ends_with(" installed")) {
                continue;
            }
            let architecture = field("Architecture").unwrap_or_default();
            by_name.insert((name.clone(), architecture.clone()), self.packages.len());
            self.packages.push(Package {
                manager: Manager::Dpkg,
                name,
                version,
                architecture,
                source: field("Source").map(|s| s.split(' ').next().unwrap_or("").to_string()),
                entry: format!("{}\n", stanza.trim_matches('\n')),
            });
        }
        let Ok(dir) = fs::read_dir(root.join("var/lib/dpkg/info")) else {
            return;
        };
        let mut lists: Vec<_> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        lists.sort();
        for list in lists {
            let Some(stem) = list
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".list"))
            else {
                continue;
            };
            let index = match stem.split_once(':') {
                Some((n, a)) => by_name.get(&(n.to_string(), a.to_string())).copied(),
                None => by_name
                    .iter()
                    .find(|((n, _), _)| n == stem)
                    .map(|(_, i)| *i),
            };
            let (Some(index), Ok(files)) = (index, fs::read_to_string(&list)) else {
                continue;
            };
            for f in files.lines().filter(|f| f.contains(".so")) {
                self.owners.entry(f.to_string()).or_insert(index);
            }
        }
    }

    fn read_apk(&mut self, installed: &str) {
        for block in installed.split("\n\n").filter(|s| !s.trim().is_empty()) {
            let line = |k: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(k).map(String::from))
            };
            let (Some(name), Some(version)) = (line("P:"), line("V:")) else {
                continue;
            };
            let index = self.packages.len();
            let mut dir = String::new();
            for l in block.lines() {
                if let Some(d) = l.strip_prefix("F:") {
                    dir = d.to_string();
                } else if let Some(f) = l.strip_prefix("R:") {
                    self.owners
                        .entry(format!("/{dir}/{f}").replace("//", "/"))
                        .or_insert(index);
                }
            }
            self.packages.push(Package {
                manager: Manager::Apk,
                name,
                version,
                architecture: line("A:").unwrap_or_default(),
                source: line("o:"),
                entry: format!("{}\n", block.trim_matches('\n')),
            });
        }
    }
}

/// A dpkg control field's value (first line only: the ones used here are one line).
fn field(stanza: &str, key: &str) -> Option<String> {
    stanza.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim().to_string())
    })
}

/// The root's `/etc/os-release` (or the `/usr/lib/os-release` it usually links to).
pub fn os_release(root: &Path) -> Option<String> {
    read(root, "etc/os-release").or_else(|| read(root, "usr/lib/os-release"))
}

fn read(root: &Path, rel: &str) -> Option<String> {
    fs::read_to_string(root.join(rel)).ok()
}

/// The files scanners read for `packages` (each once, sorted): a distroless-style
/// `/var/lib/dpkg/status.d/<name>` per dpkg package, apk's `installed` db with only these
/// packages; empty when there are none.
pub fn database_files(packages: &[&Package]) -> Vec<(String, Vec<u8>)> {
    let mut pkgs: Vec<&Package> = packages.to_vec();
    pkgs.sort();
    pkgs.dedup();
    let mut out = Vec::new();
    let mut apk = String::new();
    for p in pkgs {
        match p.manager {
            Manager::Dpkg => out.push((
                format!("/var/lib/dpkg/status.d/{}", p.name),
                p.entry.clone().into_bytes(),
            )),
            Manager::Apk => {
                apk.push_str(&p.entry);
                apk.push('\n');
            }
        }
    }
    if !apk.is_empty() {
        out.push(("/lib/apk/db/installed".into(), apk.into_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_owner_through_usrmerge_and_multiarch_lists() {
        let root = tempfile::tempdir().unwrap();
        let info = root.path().join("var/lib/dpkg/info");
        fs::create_dir_all(&info).unwrap();
        fs::write(
            root.path().join("var/lib/dpkg/status"),
            "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9\n\n\
             Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n",
        )
        .unwrap();
        fs::write(
            info.join("libc6:amd64.list"),
            "/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n",
        )
        .unwrap();
        let db = Db::open(root.path());
        let p = db.owner("/usr/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str(), p.source.as_deref()),
            ("libc6", "2.36-9", Some("glibc"))
        );
        assert!(db.owner("/usr/lib/libfoo.so").is_none());
        let files = database_files(&[p, p]);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, "/var/lib/dpkg/status.d/libc6");
        assert!(files[0].1.ends_with(b"Version: 2.36-9\n"));
    }

    #[test]
    fn apk_owner() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("lib/apk/db")).unwrap();
        fs::write(
            root.path().join("lib/apk/db/installed"),
            "C:Q1x\nP:musl\nV:1.2.5-r0\nA:x86_64\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\n\n",
        )
        .unwrap();
        let db = Db::open(root.path());
        let p = db.owner("/lib/ld-musl-x86_64.so.1").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("musl", "1.2.5-r0"));
        let files = database_files(&[p]);
        assert_eq!(files[0].0, "/lib/apk/db/installed");
    }
}
