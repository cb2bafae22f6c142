//! The closure base: the interpreter and every shared library a dynamic binary needs, resolved
//! the way the loader does (RPATH/RUNPATH, ld.so.conf, default dirs) inside a root directory,
//! and copied into the layer at their real paths with every symlink on the way.

mod ldconf;

use crate::base::root::*;
pub use crate::base::root::{dir_in_root, open_in_root, read_file_in_root};
use ldconf::*;
pub use ldconf::{conf_only_dirs, ld_so_conf_dirs};

use crate::base::packages::{Db, Package};
use crate::elf::inspect::Linkage;
use crate::elf::read::{DynamicDeps, FileSource, Headers, ReadError};
use crate::image::layer::{LayerError, Tree};
use crate::support::printable::printable;
use goblin::elf::header::{machine_to_str, EM_NONE};
use std::collections::{HashSet, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One library as the loader finds it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Resolved {
    /// The DT_NEEDED name (or the interpreter path).
    pub name: String,
    /// The absolute path (inside the root) the file is read from.
    pub path: String,
    /// Where the loader will open it in the image, when that differs from `path`: libraries
    /// found through the executable's `$ORIGIN`, which is `/app` in the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_path: Option<String>,
    /// Who needs it.
    pub needed_by: String,
    /// The package that owns it in the root, when its package database says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClosureError {
    #[error("{} (needed by {}) is not in {}: searched {}{}", printable(name), printable(needed_by), shown(root), printable(&searched.join(":")), skipped_note(skipped))]
    NotFound {
        name: String,
        needed_by: String,
        root: PathBuf,
        searched: Vec<String>,
        /// Files of that name the loader would pass over, each with why.
        skipped: Vec<String>,
    },
    #[error("the interpreter {} is not in {}", printable(path), shown(root))]
    NoInterpreter { path: String, root: PathBuf },
    #[error("{what} {} in {} is refused: {}; only ELF files of the binary's class and machine are copied into the image", printable(path), shown(root), printable(reason))]
    Refused {
        what: &'static str,
        path: String,
        root: PathBuf,
        reason: String,
    },
    #[error("reading {}: {source}", shown(path))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: not a valid shared library: {}",
        printable(path),
        printable(reason)
    )]
    BadLibrary { path: String, reason: String },
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    Layer(#[from] LayerError),
}

fn shown(path: &Path) -> String {
    printable(&path.to_string_lossy()).into_owned()
}

fn skipped_note(skipped: &[String]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    format!(" (passed over: {})", printable(&skipped.join("; ")))
}

/// A search directory: where to look in the root, and what the loader will see in the image.
/// They differ only for the executable's `$ORIGIN`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Dir {
    host: String,
    image: String,
}

/// A loaded object: what it needs and where its loader looks.
struct Object {
    /// How it is named in messages (its image path).
    name: String,
    needed: Vec<String>,
    runpath: Vec<Dir>,
    /// Its DT_RPATH followed by those of the objects that loaded it, up to the executable
    /// (glibc searches the chain when the object has no DT_RUNPATH).
    rpath_chain: Vec<Dir>,
}

/// Where a binary is: its path in the image, and (when it lies inside the root) its path
/// there, for `$ORIGIN`.
pub struct Origin<'a> {
    pub image_path: &'a str,
    pub root_path: Option<&'a str>,
}

impl Origin<'_> {
    /// The in-root path of the host file `binary`, when it lies inside `root`.
    pub fn root_path_of(root: &Path, binary: &Path) -> Option<String> {
        crate::base::root::root_path_of(root, binary)
    }
}

/// Resolves the full closure of a binary with `linkage`. Interpreter first, then libraries in
/// load order, each with its package.
pub fn resolve(
    root: &Path,
    linkage: &Linkage,
    origin: &Origin,
) -> Result<Vec<Resolved>, ClosureError> {
    let mut out = resolve_unowned(root, linkage, origin)?;
    set_owners(root, &mut out);
    Ok(out)
}

/// [`resolve`] without the packages: a caller that resolves many objects (an app's native
/// modules) asks for the owners once, with [`set_owners`], since finding them reads every
/// package's file list.
pub fn resolve_unowned(
    root: &Path,
    linkage: &Linkage,
    origin: &Origin,
) -> Result<Vec<Resolved>, ClosureError> {
    let machine = Machine::of_linkage(linkage);
    let mut out = Vec::new();
    if let Some(interp) = &linkage.interpreter {
        check_interpreter(root, interp, &machine)?;
        out.push(Resolved {
            name: interp.clone(),
            path: interp.clone(),
            image_path: None,
            needed_by: origin.image_path.to_string(),
            package: None,
        });
    }
    let system: Vec<Dir> = system_dirs(root, linkage)
        .into_iter()
        .map(|d| Dir {
            host: d.clone(),
            image: d,
        })
        .collect();
    // The interpreter is already loaded: libc's DT_NEEDED on it by soname must not load it again.
    let mut seen: HashSet<String> = linkage
        .interpreter
        .iter()
        .filter_map(|i| i.rsplit('/').next())
        .map(String::from)
        .collect();
    let mut queue = VecDeque::from([executable(origin, linkage)]);
    while let Some(obj) = queue.pop_front() {
        for name in &obj.needed {
            if !seen.insert(name.clone()) {
                continue;
            }
            let (path, image_path) = find(root, name, &obj, &system, &machine)?;
            queue.push_back(library(root, &path, image_path.as_deref(), &obj, linkage)?);
            out.push(Resolved {
                name: name.clone(),
                path,
                image_path,
                needed_by: obj.name.clone(),
                package: None,
            });
        }
    }
    Ok(out)
}

/// Records each library's package: by the path it was found at, else by its real path.
pub fn set_owners(root: &Path, libs: &mut [Resolved]) {
    set_owners_and(root, libs, &[]);
}

/// [`set_owners`], the database read once for `more` paths too (an app's native modules);
/// returned for their lookups.
pub fn set_owners_and(root: &Path, libs: &mut [Resolved], more: &[String]) -> Db {
    let real = |p: &str| walk(root, p, &mut |_, _| {}).ok();
    let paths: Vec<(String, Option<String>)> = libs
        .iter()
        .map(|l| (l.path.clone(), real(&l.path)))
        .collect();
    let wanted: Vec<String> = paths
        .iter()
        .flat_map(|(p, r)| std::iter::once(p.clone()).chain(r.clone()))
        .chain(more.iter().cloned())
        .collect();
    let db = Db::open(root, &wanted);
    for (lib, (path, real)) in libs.iter_mut().zip(&paths) {
        lib.package = db
            .owner(path)
            .or_else(|| real.as_deref().and_then(|r| db.owner(r)))
            .cloned();
    }
    db
}

fn dir_of(path: &str) -> String {
    path.rsplit_once('/')
        .map(|(d, _)| d.to_string())
        .unwrap_or_default()
}

/// The executable as the first loaded object.
fn executable(origin: &Origin, linkage: &Linkage) -> Object {
    let exe_origin = Dir {
        // Without a place in the root, $ORIGIN paths of the executable cannot be searched.
        host: origin
            .root_path
            .map(dir_of)
            .unwrap_or_else(|| "/nonexistent".into()),
        image: dir_of(origin.image_path),
    };
    let exe_expand = |v: &[String]| {
        v.iter()
            .map(|d| expand(d, &exe_origin, linkage))
            .collect::<Vec<_>>()
    };
    Object {
        name: origin.image_path.to_string(),
        needed: linkage.needed.clone(),
        runpath: exe_expand(&linkage.runpath),
        // The executable's DT_RPATH counts only when it has no DT_RUNPATH.
        rpath_chain: if linkage.runpath.is_empty() {
            exe_expand(&linkage.rpath)
        } else {
            vec![]
        },
    }
}

/// The library found at `path` (seen at `image_path` in the image), loaded by `parent`.
fn library(
    root: &Path,
    path: &str,
    image_path: Option<&str>,
    parent: &Object,
    linkage: &Linkage,
) -> Result<Object, ClosureError> {
    let seen_as = image_path.unwrap_or(path).to_string();
    let lib_dir = Dir {
        host: dir_of(path),
        image: dir_of(&seen_as),
    };
    let deps = read_object(root, path)?;
    let own = |v: &[String]| {
        v.iter()
            .map(|d| expand(d, &lib_dir, linkage))
            .collect::<Vec<_>>()
    };
    let mut rpath_chain = own(&deps.rpath);
    rpath_chain.extend(parent.rpath_chain.iter().cloned());
    Ok(Object {
        name: seen_as,
        needed: deps.needed,
        runpath: own(&deps.runpath),
        rpath_chain,
    })
}

/// The interpreter must be an ELF of the binary's class and machine: PT_INTERP is whatever the
/// binary says, and without this check any file in the root (`/etc/shadow`) would be copied.
fn check_interpreter(root: &Path, interp: &str, machine: &Machine) -> Result<(), ClosureError> {
    match machine.check(root, interp) {
        Ok(_) => Ok(()),
        Err(Refusal::Missing) => Err(ClosureError::NoInterpreter {
            path: interp.to_string(),
            root: root.to_path_buf(),
        }),
        Err(Refusal::Failed(e)) => Err(e),
        Err(Refusal::Bad(reason)) => Err(ClosureError::Refused {
            what: "the interpreter",
            path: interp.to_string(),
            root: root.to_path_buf(),
            reason,
        }),
    }
}

/// Where the loader finds `name` for `obj`: (path in the root, path in the image when it
/// differs). A name with a slash is opened as is and must be loadable; a bare name is looked
/// for in each directory, passing over files of the wrong kind as the loader does.
fn find(
    root: &Path,
    name: &str,
    obj: &Object,
    system: &[Dir],
    machine: &Machine,
) -> Result<(String, Option<String>), ClosureError> {
    let dirs = search_order(obj, system);
    let mut skipped = Vec::new();
    if name.contains('/') {
        match machine.check(root, name) {
            Ok(_) => return Ok((name.to_string(), None)),
            Err(Refusal::Missing) => {}
            Err(Refusal::Failed(e)) => return Err(e),
            Err(Refusal::Bad(reason)) => {
                return Err(ClosureError::Refused {
                    what: "the library",
                    path: name.to_string(),
                    root: root.to_path_buf(),
                    reason,
                })
            }
        }
    } else {
        for d in &dirs {
            let host = format!("{}/{name}", d.host.trim_end_matches('/'));
            let image = lexical(&format!("{}/{name}", d.image.trim_end_matches('/')));
            match machine.check(root, &host) {
                Ok(_) => {
                    let image = (image != host).then_some(image);
                    return Ok((host, image));
                }
                Err(Refusal::Missing) => {}
                Err(Refusal::Failed(e)) => skipped.push(format!("{host}: {e}")),
                Err(Refusal::Bad(reason)) => skipped.push(format!("{host}: {reason}")),
            }
        }
    }
    Err(ClosureError::NotFound {
        name: name.to_string(),
        needed_by: obj.name.clone(),
        root: root.to_path_buf(),
        searched: dirs.iter().map(|d| d.host.clone()).collect(),
        skipped,
    })
}

/// `a/./b/../c` -> `a/c`, without touching the filesystem (for paths in the image).
fn lexical(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Expands `$ORIGIN`, `$LIB` and `$PLATFORM`-free entries of RPATH/RUNPATH for an object in
/// `origin`.
fn expand(entry: &str, origin: &Dir, l: &Linkage) -> Dir {
    let lib = if is_64(l) { "lib64" } else { "lib" };
    let with = |o: &str| {
        entry
            .replace("${ORIGIN}", o)
            .replace("$ORIGIN", o)
            .replace("${LIB}", lib)
            .replace("$LIB", lib)
    };
    Dir {
        host: with(&origin.host),
        image: with(&origin.image),
    }
}

/// Copies every resolved path into `tree`: symlinks as symlinks, files at their real paths.
pub fn add_to_tree(root: &Path, libs: &[Resolved], tree: &mut Tree) -> Result<(), ClosureError> {
    for lib in libs {
        let mut links = Vec::new();
        let real = walk(root, &lib.path, &mut |link, target| {
            links.push((link.to_string(), target.to_string()))
        })?;
        if let Some(image_path) = &lib.image_path {
            // Found through the executable's $ORIGIN: the file goes where the loader will look,
            // through the same directory symlinks the root has there (/lib -> usr/lib).
            let (content, mode) = file_content(root, &real)?;
            let (dir, file) = image_path.rsplit_once('/').unwrap_or(("", image_path));
            let mut dir_links = Vec::new();
            let real_dir = walk(root, dir, &mut |l, t| {
                dir_links.push((l.to_string(), t.to_string()))
            })
            .unwrap_or_else(|_| dir.to_string());
            for (link, target) in dir_links {
                tree.symlink(&link, &target)?;
            }
            tree.file(&format!("{real_dir}/{file}"), content, mode)?;
            continue;
        }
        for (link, target) in links {
            tree.symlink(&link, &target)?;
        }
        let (content, mode) = file_content(root, &real)?;
        tree.file(&real, content, mode)?;
    }
    Ok(())
}

/// 64-bit targets also search `lib64` (and expand `$LIB` to it).
fn is_64(l: &Linkage) -> bool {
    l.platform.elf_machine().is_some_and(|(_, is_64)| is_64)
}

/// The ELF class and machine a library must have to be loaded with the binary.
struct Machine {
    machine: u16,
    is_64: bool,
}

impl Machine {
    fn of_linkage(l: &Linkage) -> Machine {
        // An architecture outside the table matches no library: none is of machine EM_NONE.
        let (machine, is_64) = l.platform.elf_machine().unwrap_or((EM_NONE, true));
        Machine { machine, is_64 }
    }

    /// The symlink-free path of `path` in the root when it is a regular file that is an ELF
    /// of this class and machine. The loader passes over anything else while searching.
    fn check(&self, root: &Path, path: &str) -> Result<String, Refusal> {
        let real = walk(root, path, &mut |_, _| {}).map_err(Refusal::of_walk)?;
        let (mut file, _) = open_in_root(root, &real).map_err(|e| match e {
            RootError::Io { source, .. } if is_missing(&source) => Refusal::Missing,
            RootError::Io { source, .. } => Refusal::Bad(source.to_string()),
            e => Refusal::Failed(e.into()),
        })?;
        let mut head = [0u8; 20];
        if file.read_exact(&mut head).is_err() || !head.starts_with(b"\x7fELF") {
            return Err(Refusal::Bad("not an ELF file".into()));
        }
        let machine = if head[5] == 1 {
            u16::from_le_bytes([head[18], head[19]])
        } else {
            u16::from_be_bytes([head[18], head[19]])
        };
        let found = Machine {
            machine,
            is_64: head[4] == 2,
        };
        if found.machine != self.machine || found.is_64 != self.is_64 {
            return Err(Refusal::Bad(format!(
                "an ELF for {}, the binary is for {}",
                found.describe(),
                self.describe()
            )));
        }
        Ok(real)
    }

    fn describe(&self) -> String {
        let bits = if self.is_64 { 64 } else { 32 };
        format!("{} ({bits}-bit)", machine_to_str(self.machine))
    }
}

/// Why a path cannot be loaded.
enum Refusal {
    /// Nothing there: the loader keeps searching.
    Missing,
    /// Something there that is not a loadable ELF: why.
    Bad(String),
    /// The path could not be resolved (a symlink loop, no permission).
    Failed(ClosureError),
}

impl Refusal {
    fn of_walk(e: RootError) -> Refusal {
        match e {
            RootError::Io { source, .. } if is_missing(&source) => Refusal::Missing,
            e => Refusal::Failed(e.into()),
        }
    }
}

/// The dynamic section of the library at `path` in the root, read range by range (not the
/// whole library).
fn read_object(root: &Path, path: &str) -> Result<DynamicDeps, ClosureError> {
    let (file, host) = open_in_root(root, path)?;
    let io = |source| ClosureError::Io {
        path: host.clone(),
        source,
    };
    let len = file.metadata().map_err(io)?.len();
    let src = FileSource { file: &file, len };
    let bad = |e: ReadError| match e {
        ReadError::Io(source) => io(source),
        ReadError::Malformed(reason) => ClosureError::BadLibrary {
            path: path.to_string(),
            reason,
        },
    };
    let headers = Headers::read(&src).map_err(bad)?;
    DynamicDeps::read(&src, &headers).map_err(bad)
}

/// glibc's order: the RPATH chain (only when the object has no RUNPATH), then RUNPATH, then
/// the system directories. LD_LIBRARY_PATH is the runtime environment's business, not the
/// image's.
fn search_order(obj: &Object, system: &[Dir]) -> Vec<Dir> {
    let mut dirs: Vec<Dir> = Vec::new();
    if obj.runpath.is_empty() {
        dirs.extend(obj.rpath_chain.iter().cloned());
    }
    dirs.extend(obj.runpath.iter().cloned());
    dirs.extend(system.iter().cloned());
    let mut seen = HashSet::new();
    dirs.retain(|d| seen.insert(d.host.clone()));
    dirs
}

#[cfg(test)]
mod tests;
