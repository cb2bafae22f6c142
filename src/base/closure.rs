//! The closure base: the interpreter and every shared library a dynamic binary needs, resolved
//! the way the loader does (RPATH/RUNPATH, ld.so.conf, default dirs) inside a root directory,
//! and copied into the layer at their real paths with every symlink on the way.

use crate::elf_read::{DynamicDeps, FileSource, Headers, ReadError};
use crate::inspect::{open_regular, Linkage, NotRegular};
use crate::layer::{Content, LayerError, Tree};
use crate::packages::{Db, Package};
use crate::printable::printable;
use goblin::elf::header::{machine_to_str, EM_NONE};
use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
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
    #[error(
        "{} in {}: too many levels of symbolic links (the kernel follows at most {MAX_LINKS})",
        printable(path),
        shown(root)
    )]
    SymlinkLoop { path: String, root: PathBuf },
    #[error(transparent)]
    Layer(#[from] LayerError),
}

/// Symlinks followed in one resolution before giving up, as Linux does (ELOOP).
const MAX_LINKS: usize = 40;

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
        let root = fs::canonicalize(root).ok()?;
        let binary = fs::canonicalize(binary).ok()?;
        let rel = binary.strip_prefix(&root).ok()?;
        Some(format!("/{}", rel.to_string_lossy()))
    }
}

/// Resolves the full closure of a binary with `linkage`. Interpreter first, then libraries in
/// load order.
pub fn resolve(
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
    set_owners(root, &mut out);
    Ok(out)
}

/// Records each library's package: by the path it was found at, else by its real path.
fn set_owners(root: &Path, libs: &mut [Resolved]) {
    let real = |p: &str| walk(root, p, &mut |_, _| {}).ok();
    let paths: Vec<(String, Option<String>)> = libs
        .iter()
        .map(|l| (l.path.clone(), real(&l.path)))
        .collect();
    let wanted: Vec<String> = paths
        .iter()
        .flat_map(|(p, r)| std::iter::once(p.clone()).chain(r.clone()))
        .collect();
    let db = Db::open(root, &wanted);
    for (lib, (path, real)) in libs.iter_mut().zip(&paths) {
        lib.package = db
            .owner(path)
            .or_else(|| real.as_deref().and_then(|r| db.owner(r)))
            .cloned();
    }
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
            let host = host_path(root, &real);
            let (dir, file) = image_path.rsplit_once('/').unwrap_or(("", image_path));
            let mut dir_links = Vec::new();
            let real_dir = walk(root, dir, &mut |l, t| {
                dir_links.push((l.to_string(), t.to_string()))
            })
            .unwrap_or_else(|_| dir.to_string());
            for (link, target) in dir_links {
                tree.symlink(&link, &target)?;
            }
            tree.file(
                &format!("{real_dir}/{file}"),
                Content::Host(host.clone()),
                normal_mode(&host)?,
            )?;
            continue;
        }
        for (link, target) in links {
            tree.symlink(&link, &target)?;
        }
        let host = host_path(root, &real);
        let mode = normal_mode(&host)?;
        tree.file(&real, Content::Host(host), mode)?;
    }
    Ok(())
}

/// 0755 for executables, 0644 for the rest: host modes depend on umask (and may carry setuid
/// bits), and must not reach the image. Checked again here, as the file is about to be copied:
/// only a regular file may be (the root may have changed since it was resolved).
fn normal_mode(host: &Path) -> Result<u32, ClosureError> {
    let meta = fs::metadata(host).map_err(|source| ClosureError::Io {
        path: host.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(ClosureError::Io {
            path: host.to_path_buf(),
            source: std::io::Error::other("not a regular file"),
        });
    }
    Ok(crate::layer::normal_mode(meta.permissions().mode()))
}

fn host_path(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// Resolves `path` inside `root` the way the kernel would with `root` as `/`, reporting each
/// symlink met (its path and target) and returning the symlink-free path.
fn walk(
    root: &Path,
    path: &str,
    on_link: &mut dyn FnMut(&str, &str),
) -> Result<String, ClosureError> {
    let mut links = 0;
    walk_from(root, path, on_link, &mut links).map_err(|e| match e {
        // Named by the path asked for, not the link where the count ran out.
        ClosureError::SymlinkLoop { root, .. } => ClosureError::SymlinkLoop {
            path: path.to_string(),
            root,
        },
        e => e,
    })
}

/// `links` counts every symlink followed in the whole resolution, as the kernel does: a limit
/// on nesting alone lets links that each name several others expand exponentially.
fn walk_from(
    root: &Path,
    path: &str,
    on_link: &mut dyn FnMut(&str, &str),
    links: &mut usize,
) -> Result<String, ClosureError> {
    let mut real = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            if let Some(i) = real.rfind('/') {
                real.truncate(i);
            }
            continue;
        }
        let candidate = format!("{real}/{comp}");
        let host = host_path(root, &candidate);
        let io = |source| ClosureError::Io {
            path: host.clone(),
            source,
        };
        let meta = fs::symlink_metadata(&host).map_err(io)?;
        if !meta.file_type().is_symlink() {
            real = candidate;
            continue;
        }
        *links += 1;
        if *links > MAX_LINKS {
            return Err(ClosureError::SymlinkLoop {
                path: candidate,
                root: root.to_path_buf(),
            });
        }
        let target = fs::read_link(&host).map_err(io)?;
        let target = target.to_string_lossy().into_owned();
        on_link(&candidate, &target);
        let joined = if target.starts_with('/') {
            target
        } else {
            format!("{real}/{target}")
        };
        real = walk_from(root, &joined, on_link, links)?;
    }
    Ok(real)
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
        let (mut file, _) = match open_regular(&host_path(root, &real)) {
            Ok(f) => f,
            Err(NotRegular::Io(e)) if is_missing(&e) => return Err(Refusal::Missing),
            Err(NotRegular::Io(e)) => return Err(Refusal::Bad(e.to_string())),
            Err(NotRegular::Kind(kind)) => {
                return Err(Refusal::Bad(format!("{kind}, not a regular file")))
            }
        };
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
    fn of_walk(e: ClosureError) -> Refusal {
        match e {
            ClosureError::Io { source, .. } if is_missing(&source) => Refusal::Missing,
            e => Refusal::Failed(e),
        }
    }
}

/// ENOENT, or ENOTDIR for a path through a file.
fn is_missing(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::NotADirectory
}

/// The regular file at `path` in the root, symlinks followed inside the root, open; and its
/// host path.
pub fn open_in_root(root: &Path, path: &str) -> Result<(fs::File, PathBuf), ClosureError> {
    let real = walk(root, path, &mut |_, _| {})?;
    let host = host_path(root, &real);
    let (file, _) = open_regular(&host).map_err(|e| ClosureError::Io {
        path: host.clone(),
        source: match e {
            NotRegular::Io(e) => e,
            NotRegular::Kind(kind) => std::io::Error::other(format!("{kind}, not a regular file")),
        },
    })?;
    Ok((file, host))
}

/// Reads the regular file at `path` in the root, at most `limit` bytes.
fn read_regular(root: &Path, path: &str, limit: u64) -> Result<Vec<u8>, ClosureError> {
    let (file, host) = open_in_root(root, path)?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|source| ClosureError::Io { path: host, source })?;
    Ok(bytes)
}

/// The regular file at `path` in the root, symlinks followed inside the root (a root's
/// `etc/os-release` linking to the host's `/etc/shadow` reads nothing), at most `limit` bytes.
pub fn read_file_in_root(root: &Path, path: &str, limit: u64) -> Option<Vec<u8>> {
    read_regular(root, path, limit).ok()
}

/// The host path of the directory `path` in the root, symlinks followed inside the root.
pub fn dir_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let host = host_path(root, &walk(root, path, &mut |_, _| {}).ok()?);
    fs::symlink_metadata(&host)
        .ok()
        .filter(|m| m.is_dir())
        .map(|_| host)
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

/// The directories the loader searches after the object's own paths.
fn system_dirs(root: &Path, l: &Linkage) -> Vec<String> {
    if l.libc() == Some("musl") {
        // musl reads /etc/ld-musl-<arch>.path, else a fixed list.
        let arch = l
            .interpreter
            .as_deref()
            .and_then(|i| i.rsplit('/').next())
            .and_then(|f| f.strip_prefix("ld-musl-"))
            .and_then(|f| f.strip_suffix(".so.1"))
            .unwrap_or("");
        if let Ok(text) = read_in_root(root, &format!("/etc/ld-musl-{arch}.path")) {
            return text
                .split(['\n', ':'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        return vec!["/lib".into(), "/usr/local/lib".into(), "/usr/lib".into()];
    }
    let mut dirs = Vec::new();
    read_ld_so_conf(root, "/etc/ld.so.conf", &mut dirs, &mut HashSet::new(), 0);
    let triplet = l.platform.multiarch_triplet();
    dirs.push(format!("/lib/{triplet}"));
    dirs.push(format!("/usr/lib/{triplet}"));
    if is_64(l) {
        dirs.push("/lib64".into());
        dirs.push("/usr/lib64".into());
    }
    dirs.push("/lib".into());
    dirs.push("/usr/lib".into());
    dirs
}

/// Reads a text file at `path` inside the root, following symlinks within the root. A
/// configuration file larger than 1 MiB is not one a loader would read either.
fn read_in_root(root: &Path, path: &str) -> Result<String, ClosureError> {
    let bytes = read_regular(root, path, 1 << 20)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The directories `/etc/ld.so.conf` of `root` lists, includes followed (for the fuzz target
/// and tools; the search order adds the default directories after these).
pub fn ld_so_conf_dirs(root: &Path) -> Vec<String> {
    let mut dirs = Vec::new();
    read_ld_so_conf(root, "/etc/ld.so.conf", &mut dirs, &mut HashSet::new(), 0);
    dirs
}

/// ld.so.conf: one directory per line, `include GLOB` lines, `#` comments. Each file is read
/// once and each pattern expanded once (`seen`): includes that name each other would
/// otherwise be read a number of times exponential in their count.
fn read_ld_so_conf(
    root: &Path,
    file: &str,
    out: &mut Vec<String>,
    seen: &mut HashSet<String>,
    depth: usize,
) {
    // Read through the root's own symlinks, never the host's.
    let Ok(real) = walk(root, file, &mut |_, _| {}) else {
        return;
    };
    if depth > 8 || !seen.insert(real.clone()) {
        return;
    }
    let Ok(text) = read_in_root(root, &real) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            for inner in include_matches(root, file, pattern.trim(), seen) {
                read_ld_so_conf(root, &inner, out, seen, depth + 1);
            }
        } else if line.starts_with('/') {
            out.push(line.to_string());
        }
    }
}

/// The in-root paths an `include PATTERN` line of `file` names, sorted; none when the same
/// pattern was expanded before.
fn include_matches(
    root: &Path,
    file: &str,
    pattern: &str,
    seen: &mut HashSet<String>,
) -> Vec<String> {
    let abs = if pattern.starts_with('/') {
        pattern.to_string()
    } else {
        let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/{pattern}")
    };
    // The pattern's directory resolved inside the root, its file part globbed there.
    let (dir, file_glob) = abs.rsplit_once('/').unwrap_or(("", abs.as_str()));
    let Ok(real_dir) = walk(root, if dir.is_empty() { "/" } else { dir }, &mut |_, _| {}) else {
        return vec![];
    };
    let in_root = format!("{real_dir}/{file_glob}");
    if !seen.insert(format!("include {in_root}")) {
        return vec![];
    }
    let host_pattern = host_path(root, &in_root);
    let mut matches: Vec<PathBuf> = glob::glob(&host_pattern.to_string_lossy())
        .map(|paths| paths.filter_map(Result::ok).collect())
        .unwrap_or_default();
    matches.sort();
    matches
        .iter()
        .filter_map(|m| m.strip_prefix(root).ok())
        .map(|rel| format!("/{}", rel.to_string_lossy()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walk_reports_every_symlink_and_stays_in_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("usr/lib/x86_64-linux-gnu")).unwrap();
        fs::create_dir_all(r.join("usr/lib64")).unwrap();
        fs::write(r.join("usr/lib/x86_64-linux-gnu/ld-2.so"), b"x").unwrap();
        symlink("usr/lib64", r.join("lib64")).unwrap();
        symlink(
            "../lib/x86_64-linux-gnu/ld-2.so",
            r.join("usr/lib64/ld-linux.so.2"),
        )
        .unwrap();
        // An absolute target resolves inside the root, never on the host.
        symlink("/usr/lib64/ld-linux.so.2", r.join("abs")).unwrap();
        let mut links = Vec::new();
        let real = walk(r, "/abs", &mut |l, t| {
            links.push((l.to_string(), t.to_string()))
        })
        .unwrap();
        assert_eq!(real, "/usr/lib/x86_64-linux-gnu/ld-2.so");
        assert_eq!(
            links,
            [
                ("/abs".to_string(), "/usr/lib64/ld-linux.so.2".to_string()),
                (
                    "/usr/lib64/ld-linux.so.2".to_string(),
                    "../lib/x86_64-linux-gnu/ld-2.so".to_string()
                ),
            ]
        );
        let libs = vec![Resolved {
            name: "/lib64/ld-linux.so.2".into(),
            path: "/lib64/ld-linux.so.2".into(),
            image_path: None,
            needed_by: "/app/x".into(),
            package: None,
        }];
        let mut tree = Tree::new();
        add_to_tree(r, &libs, &mut tree).unwrap();
        assert!(
            matches!(tree.get("lib64"), Some(crate::layer::Node::Symlink { target }) if target == "usr/lib64")
        );
        assert!(matches!(
            tree.get("usr/lib/x86_64-linux-gnu/ld-2.so"),
            Some(crate::layer::Node::File { .. })
        ));

        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        assert!(matches!(
            walk(r, "/loop1", &mut |_, _| {}),
            Err(ClosureError::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn ld_so_conf_includes_are_followed_in_order() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("etc/ld.so.conf.d")).unwrap();
        fs::write(
            r.join("etc/ld.so.conf"),
            "# comment\n/opt/first\ninclude /etc/ld.so.conf.d/*.conf\n",
        )
        .unwrap();
        fs::write(r.join("etc/ld.so.conf.d/b.conf"), "/opt/b\n").unwrap();
        fs::write(r.join("etc/ld.so.conf.d/a.conf"), "/opt/a # trailing\n").unwrap();
        let mut dirs = Vec::new();
        read_ld_so_conf(r, "/etc/ld.so.conf", &mut dirs, &mut HashSet::new(), 0);
        assert_eq!(dirs, ["/opt/first", "/opt/a", "/opt/b"]);
    }

    #[test]
    fn ld_so_conf_files_that_include_each_other_are_read_once() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("etc/ld.so.conf.d")).unwrap();
        fs::write(r.join("etc/ld.so.conf"), "include ld.so.conf.d/*.conf\n").unwrap();
        for i in 0..3 {
            let text =
                format!("/opt/{i}\ninclude /etc/ld.so.conf.d/*.conf\ninclude /etc/ld.so.conf\n");
            fs::write(r.join(format!("etc/ld.so.conf.d/{i}.conf")), text).unwrap();
        }
        let mut dirs = Vec::new();
        read_ld_so_conf(r, "/etc/ld.so.conf", &mut dirs, &mut HashSet::new(), 0);
        assert_eq!(dirs, ["/opt/0", "/opt/1", "/opt/2"]);
    }

    #[test]
    fn search_order_follows_glibc() {
        let l = Linkage {
            platform: crate::platform::Platform::linux("amd64"),
            is_static: false,
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
            needed: vec![],
            runpath: vec![],
            rpath: vec![],
            go: None,
        };
        let d = |s: &str| Dir {
            host: s.into(),
            image: s.into(),
        };
        let system = vec![d("/lib")];
        // $ORIGIN of the executable: searched on the host where it is, seen as /app in the image.
        let exe = Dir {
            host: "/opt/app/bin".into(),
            image: "/app".into(),
        };
        let e = expand("$ORIGIN/../lib", &exe, &l);
        assert_eq!(
            (e.host.as_str(), e.image.as_str()),
            ("/opt/app/bin/../lib", "/app/../lib")
        );
        assert_eq!(expand("/r/$LIB", &exe, &l).host, "/r/lib64");
        assert_eq!(lexical("/app/../lib/libfoo.so"), "/lib/libfoo.so");
        let with_rpath = Object {
            name: "/app/x".into(),
            needed: vec![],
            runpath: vec![],
            rpath_chain: vec![d("/own"), d("/exe")],
        };
        let hosts = |v: Vec<Dir>| v.into_iter().map(|d| d.host).collect::<Vec<_>>();
        assert_eq!(
            hosts(search_order(&with_rpath, &system)),
            ["/own", "/exe", "/lib"]
        );
        let with_runpath = Object {
            runpath: vec![d("/run")],
            ..with_rpath
        };
        assert_eq!(
            hosts(search_order(&with_runpath, &system)),
            ["/run", "/lib"],
            "RPATHs are ignored when RUNPATH is present"
        );
    }
}
