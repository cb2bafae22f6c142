//! Shared libraries ship without symbols and debug info, as Debian ships its own.
//!
//! Why: an interpreter built from source (pyenv, `make altinstall`) keeps them, and its
//! libpython3.11.so was then a third of a flask image (23 MB; 5.7 MB stripped, as `strip
//! --strip-unneeded` leaves it); wheels keep them too (aiohttp's, multidict's, cryptography's
//! extension modules: 24 MB, 15.6 MB stripped), and the multi-stage Dockerfiles binpack
//! replaces strip them by hand. Only shared objects (`*.so*`) are stripped, in every layer;
//! their dynamic symbols, which loading needs, stay. The program itself and executables ship
//! as built: a crash report from them keeps its names. In the runtime layer executables are
//! stripped too (an interpreter's own binary), but never the entrypoint's program. The
//! stripped copy is kept in binpack's cache, known by the source's stat identity, so that a
//! rebuild does not strip it again; it is used only while it hashes to the digest recorded
//! when it was made.

use crate::image::layer::{Content, Node, Tree};
use crate::sea::inject;
use crate::support::cache::stamp::{settled, Stamp, Times};
use crate::support::digest::Digest;
use std::path::{Path, PathBuf};

/// [`strip_tree`] for each tree: the lowest is the runtime's.
pub fn strip_trees(trees: &mut [Tree], keep: &Path, dir: &Path, cache: Option<&Path>) {
    for (i, tree) in trees.iter_mut().enumerate() {
        strip_tree(tree, keep, dir, cache, i == 0);
    }
}

/// Replaces, in `tree`, each host ELF file but `keep` that has a symbol table or debug info
/// with a stripped copy: kept in binpack's `cache` (when on) under the source's path and
/// stat identity, else written under `dir`. A file that cannot be read or stripped ships as
/// it is: stripping only saves space.
fn strip_tree(tree: &mut Tree, keep: &Path, dir: &Path, cache: Option<&Path>, runtime: bool) {
    let wanted: Vec<(String, PathBuf, u32)> = tree
        .iter()
        .filter_map(|(path, node)| match node {
            Node::File {
                content: Content::Host(host),
                mode,
            } if host != keep && elf_like(path, *mode, runtime) && has_symbols(host) => {
                Some((path.to_string(), host.clone(), *mode))
            }
            _ => None,
        })
        .collect();
    for (path, host, mode) in wanted {
        let out = cache.and_then(|c| cached_copy(c, &host)).or_else(|| {
            // Named by the source: another platform's tree with the same file shares it.
            let name = Digest::of(host.as_os_str().as_encoded_bytes());
            let out = dir.join(format!("stripped-{}", name.hex()));
            (out.is_file() || strip_to(&host, &out)).then_some(out)
        });
        if let Some(out) = out {
            tree.replace_file(&path, Content::Host(out), mode);
        }
    }
}

/// The stripped copy of `host` in the cache entry known by its path, its stat identity and
/// this rule's version; none for a file changed in the last moments (its identity could still
/// change without showing it). The entry is made whole or not at all, and used only while its
/// copy hashes to the digest written beside it: a copy damaged in place is made again.
fn cached_copy(cache: &Path, host: &Path) -> Option<PathBuf> {
    let (stamp, newest) = Stamp::of(host, Times::Both);
    if !settled(newest, std::time::SystemTime::now()) {
        return None;
    }
    let key = format!(
        "binpack-strip-lib/2\n{}\n{}",
        host.display(),
        stamp.as_str()
    );
    let dest = cache
        .join("stripped-lib")
        .join(Digest::of(key.as_bytes()).hex());
    let digest_of = |p: &Path| -> std::io::Result<String> {
        let (d, _) = Digest::of_reader(&mut std::fs::File::open(p)?)?;
        Ok(d.hex().to_string())
    };
    for _ in 0..2 {
        let entry = crate::support::cache::entry(&dest, |tmp| -> std::io::Result<()> {
            inject::strip_object(host, &tmp.join("lib")).map_err(std::io::Error::other)?;
            std::fs::write(tmp.join("digest"), digest_of(&tmp.join("lib"))?)
        })
        .ok()?;
        let lib = entry.join("lib");
        let recorded = std::fs::read_to_string(entry.join("digest")).ok();
        if recorded.is_some() && recorded == digest_of(&lib).ok() {
            return Some(lib);
        }
        let _ = std::fs::remove_dir_all(&entry);
    }
    None
}

/// Strips `host` into `out` through a temporary name, so that `out` is whole or absent.
fn strip_to(host: &Path, out: &Path) -> bool {
    // Unique in the process too: two platforms' trees may strip the same file at once.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = out.with_extension(format!("tmp{n}"));
    let done = inject::strip_object(host, &tmp).is_ok() && std::fs::rename(&tmp, out).is_ok();
    if !done {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// A shared object by its name, or in the runtime layer an executable by its mode: the
/// thousands of other files (an interpreter's bytecode) are not opened.
fn elf_like(path: &str, mode: u32, runtime: bool) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.contains(".so") || (runtime && mode & 0o111 != 0)
}

/// Whether `path` is an ELF file with a symbol table or DWARF sections.
fn has_symbols(path: &Path) -> bool {
    use goblin::elf::section_header::SHT_SYMTAB;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    let src = crate::elf::read::FileSource { file: &file, len };
    let Ok(h) = crate::elf::read::Headers::read(&src) else {
        return false;
    };
    h.section_headers.iter().any(|s| s.sh_type == SHT_SYMTAB) || h.section(b".debug_info").is_some()
}
