//! A toolchain image's shared libraries exported into the cache: the root a dynamic
//! program built in a container gets its closure from. Or its whole filesystem, for a builder
//! that takes more than libraries from it (python: the interpreter and its standard library).

use super::*;
use exec::container_name;

impl Container {
    /// The image's shared libraries and loader configuration, extracted once per image ID into
    /// the cache (whole or not at all).
    pub(super) fn library_root(&self, progress: &dyn Progress) -> Result<PathBuf, ToolchainError> {
        self.export_root("", "the libraries", wanted, progress)
    }

    /// The image's whole filesystem (but /dev, /proc, /sys and device files), extracted once
    /// per image ID into the cache.
    pub fn filesystem_root(&self, progress: &dyn Progress) -> Result<PathBuf, ToolchainError> {
        self.export_root("-fs", "the filesystem", whole, progress)
    }

    /// The entries of the image's filesystem that `filter` keeps, in the cache entry
    /// `roots/<engine>-<id><suffix>`.
    fn export_root(
        &self,
        suffix: &str,
        what: &str,
        filter: fn(&Path, bool) -> bool,
        progress: &dyn Progress,
    ) -> Result<PathBuf, ToolchainError> {
        let key = self.id.trim_start_matches("sha256:");
        let dest = cache::dir().join("roots").join(format!(
            "{}-{}{suffix}",
            self.engine,
            &key[..key.len().min(32)]
        ));
        if dest.exists() {
            return Ok(dest);
        }
        progress.stage(&format!("extracting {what} of {}", self.image));
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
            let extracted = extract(stdout, tmp, filter);
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

/// Whether an entry of an image's filesystem belongs in a copy of all of it: not the kernel's
/// filesystems, whose mount points an export lists.
fn whole(path: &Path, _is_dir: bool) -> bool {
    let p = path.to_string_lossy();
    let p = p.trim_start_matches("./");
    !["dev", "proc", "sys"]
        .iter()
        .any(|k| p == *k || p.strip_prefix(k).is_some_and(|r| r.starts_with('/')))
}

/// Extracts the entries of an image's filesystem tar that `filter` keeps into `dest`.
fn extract(reader: impl io::Read, dest: &Path, filter: fn(&Path, bool) -> bool) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    // Permission bits only: no set-uid program of an image lands in the cache.
    archive.set_preserve_permissions(false);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        let path = entry.path()?.into_owned();
        let device = kind.is_block_special() || kind.is_character_special() || kind.is_fifo();
        if path.components().any(|c| matches!(c, Component::ParentDir))
            || device
            || !filter(&path, kind.is_dir())
        {
            continue;
        }
        match entry.unpack_in(dest) {
            // A directory the image keeps read-only (/root 0550) must still take its entries,
            // and be removable with the cache entry.
            Ok(_) if kind.is_dir() => owner_writable(&dest.join(&path))?,
            Ok(_) => {}
            // A hard link to a file that was left out: the file it names is not a library.
            Err(_) if kind.is_hard_link() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn owner_writable(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::symlink_metadata(dir)?.permissions().mode();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for (path, want) in [
            ("usr/bin/python3.11", true),
            ("./etc/passwd", true),
            ("dev/null", false),
            ("proc", false),
            ("sys/kernel", false),
            ("devices", true),
        ] {
            assert_eq!(whole(Path::new(path), false), want, "{path}");
        }
    }

    #[test]
    fn a_whole_filesystem_drops_set_uid_and_keeps_read_only_directories_writable() {
        use std::os::unix::fs::PermissionsExt;
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(data.len() as u64);
            h.set_path(path).unwrap();
            h.set_cksum();
            tar.append(&h, data).unwrap();
        };
        add("usr/bin/", tar::EntryType::Directory, 0o755, b"");
        add("usr/bin/su", tar::EntryType::Regular, 0o4755, b"su");
        add("root/", tar::EntryType::Directory, 0o550, b"");
        add("root/.profile", tar::EntryType::Regular, 0o644, b"p");
        let bytes = tar.into_inner().unwrap();
        let d = tempfile::tempdir().unwrap();
        extract(&bytes[..], d.path(), whole).unwrap();
        let mode = |p: &str| {
            std::fs::metadata(d.path().join(p))
                .unwrap()
                .permissions()
                .mode()
        };
        assert_eq!(mode("usr/bin/su") & 0o7777, 0o755);
        assert_eq!(mode("root") & 0o777, 0o750);
        assert_eq!(std::fs::read(d.path().join("root/.profile")).unwrap(), b"p");
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
        extract(&bytes[..], d.path(), wanted).unwrap();
        assert_eq!(
            std::fs::read(d.path().join("lib/x/libz.so.1")).unwrap(),
            b"z"
        );
        assert!(!d.path().join("usr/lib/go").exists());
        assert!(!d.path().join("usr/bin").exists());
    }
}
