//! Who owns a file in a root: the package databases scanners read (dpkg's status and
//! `info/*.list`, apk's `lib/apk/db/installed`). The closure records each library's owner, so
//! the image can carry that package's metadata (distroless-style `status.d/<pkg>` entries)
//! and the SBOM and `binpack inspect` can name it.

use crate::base::root::{dir_in_root, read_file_in_root};
use aho_corasick::AhoCorasick;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::Path;

/// The largest database file read (Debian's status is ~1 MB on a desktop).
const DB_LIMIT: u64 = 64 << 20;

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
    /// Reads, from the dpkg or apk database of `root`, the owners of the files `wanted`
    /// (absolute paths in the root); a root with neither gives an empty one (every file is
    /// then unowned). Unreadable or odd entries are skipped: ownership is metadata.
    pub fn open(root: &Path, wanted: &[String]) -> Db {
        let mut db = Db {
            os_release: os_release(root),
            ..Db::default()
        };
        if let Some(status) = read(root, "var/lib/dpkg/status") {
            db.read_dpkg(root, &status, wanted);
        } else if let Some(installed) = read(root, "lib/apk/db/installed") {
            db.read_apk(&installed);
        }
        db
    }

    /// The package owning `path` (an absolute path in the root), trying the usrmerge twin
    /// (`/lib/x` for `/usr/lib/x` and back): the databases list a file where its package put it.
    pub fn owner(&self, path: &str) -> Option<&Package> {
        let i = self
            .owners
            .get(path)
            .or_else(|| self.owners.get(&twin(path)))?;
        Some(&self.packages[*i])
    }

    /// Only what `wanted` needs: the `info/*.list` files hold ~100k lines on a desktop-sized
    /// system, so they are searched for the wanted file names (Aho-Corasick) rather than
    /// parsed, and only the owning packages' stanzas are parsed.
    fn read_dpkg(&mut self, root: &Path, status: &str, wanted: &[String]) {
        let owned = owned_in_lists(root, wanted);
        let mut by_list: HashMap<&str, usize> = HashMap::new();
        for stanza in status.split("\n\n") {
            // Package is always a stanza's first field.
            let Some(name) = stanza
                .trim_start_matches('\n')
                .strip_prefix("Package: ")
                .and_then(|r| r.lines().next())
            else {
                continue;
            };
            let field = |k: &str| field(stanza, k);
            let architecture = field("Architecture").unwrap_or_default();
            let list = owned
                .keys()
                .find(|l| *l == name || l.strip_prefix(name) == Some(&format!(":{architecture}")));
            let (Some(list), Some(version)) = (list, field("Version")) else {
                continue;
            };
            if !field("Status").is_some_and(|s| s.ends_with(" installed")) {
                continue;
            }
            by_list.insert(list.as_str(), self.packages.len());
            self.packages.push(Package {
                manager: Manager::Dpkg,
                name: name.to_string(),
                version,
                architecture,
                source: field("Source").map(|s| s.split(' ').next().unwrap_or("").to_string()),
                entry: format!("{}\n", stanza.trim_matches('\n')),
            });
        }
        for (list, files) in &owned {
            let Some(i) = by_list.get(list.as_str()) else {
                continue;
            };
            for f in files {
                self.owners.entry(f.clone()).or_insert(*i);
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

/// `/lib/x` for `/usr/lib/x` and back.
fn twin(path: &str) -> String {
    match path.strip_prefix("/usr") {
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => format!("/usr{path}"),
    }
}

/// The `info/*.list` files (by name without `.list`: `pkg` or `pkg:arch`) listing any of
/// `wanted` (or its usrmerge twin), with the paths they list.
fn owned_in_lists(root: &Path, wanted: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let names: BTreeSet<&str> = wanted.iter().filter_map(|w| w.rsplit('/').next()).collect();
    let wanted: HashSet<String> = wanted.iter().flat_map(|w| [w.clone(), twin(w)]).collect();
    let Ok(ac) = AhoCorasick::new(&names) else {
        return out;
    };
    for (stem, bytes) in lists(root).iter() {
        for m in ac.find_iter(bytes) {
            let start = memchr::memrchr(b'\n', &bytes[..m.start()]).map_or(0, |i| i + 1);
            let end = memchr::memchr(b'\n', &bytes[m.end()..]).map_or(bytes.len(), |i| m.end() + i);
            let line = String::from_utf8_lossy(&bytes[start..end]).into_owned();
            if wanted.contains(&line) {
                out.entry(stem.to_string()).or_default().push(line);
            }
        }
    }
    out
}

/// The `info/*.list` files of `root` (name without `.list`, contents), read once per process:
/// a build asks for owners several times (the executable's closure, each layer's native
/// modules, the time zone files), and each reading was 900 files on a Debian desktop.
fn lists(root: &Path) -> std::sync::Arc<Vec<(String, Vec<u8>)>> {
    type Lists = std::sync::Arc<Vec<(String, Vec<u8>)>>;
    static READ: std::sync::Mutex<BTreeMap<std::path::PathBuf, Lists>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut read = READ.lock().unwrap_or_else(|e| e.into_inner());
    read.entry(root.to_path_buf())
        .or_insert_with(|| std::sync::Arc::new(read_lists(root)))
        .clone()
}

fn read_lists(root: &Path) -> Vec<(String, Vec<u8>)> {
    let info = "/var/lib/dpkg/info";
    let Some(dir) = dir_in_root(root, info).and_then(|d| fs::read_dir(d).ok()) else {
        return vec![];
    };
    let mut out = Vec::new();
    for entry in dir.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".list") else {
            continue;
        };
        // Regular files only (the directory entry's type, no extra call): a symlink could
        // lead out of the root.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        // Bounded like the status file: a root's database is input, not trusted.
        let mut bytes = Vec::new();
        let read = fs::File::open(entry.path()).and_then(|f| {
            std::io::Read::read_to_end(&mut std::io::Read::take(f, DB_LIMIT), &mut bytes)
        });
        if read.is_ok() {
            out.push((stem.to_string(), bytes));
        }
    }
    out
}

/// Debian policy's package names: lower-case letters, digits, `+`, `-`, `.`.
fn is_package_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
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
    let bytes = read_file_in_root(root, &format!("/{rel}"), DB_LIMIT)?;
    String::from_utf8(bytes).ok()
}

/// The package owning the host file `executable` when it lies inside `root` (`binpack bin
/// /usr/bin/curl`: curl's Debian package, not only its binary, for scanners).
pub fn executable_owner(root: &Path, executable: &Path) -> Option<Package> {
    let path = crate::base::root::root_path_of(root, executable)?;
    Db::open(root, std::slice::from_ref(&path))
        .owner(&path)
        .cloned()
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
            // A name from a crafted database must not make a path ("../x").
            Manager::Dpkg if !is_package_name(&p.name) => {}
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
        let wanted = [
            "/usr/lib/x86_64-linux-gnu/libc.so.6".to_string(),
            "/usr/lib/libfoo.so".into(),
        ];
        let db = Db::open(root.path(), &wanted);
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
    fn links_out_of_the_root_read_nothing() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.path().join("etc/os-release")).unwrap();
        assert_eq!(os_release(root.path()), None);
        fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        fs::write(root.path().join("usr/lib/os-release"), "ID=debian\n").unwrap();
        fs::remove_file(root.path().join("etc/os-release")).unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", root.path().join("etc/os-release"))
            .unwrap();
        assert_eq!(os_release(root.path()).as_deref(), Some("ID=debian\n"));
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
        let db = Db::open(root.path(), &[]);
        let p = db.owner("/lib/ld-musl-x86_64.so.1").unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("musl", "1.2.5-r0"));
        let files = database_files(&[p]);
        assert_eq!(files[0].0, "/lib/apk/db/installed");
    }

    #[test]
    fn an_empty_package_name_is_no_name() {
        assert!(!is_package_name("") && !is_package_name(".list"));
        assert!(is_package_name("libc6") && is_package_name("libstdc++6"));
    }
}
