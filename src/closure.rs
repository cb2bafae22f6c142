//! The closure base: the interpreter and every shared library a dynamic binary needs, resolved
//! the way the loader does (RPATH/RUNPATH, ld.so.conf, default dirs) inside a root directory,
//! and copied into the layer at their real paths with every symlink on the way.

use crate::inspect::{DynamicDeps, Linkage};
use crate::layer::{Content, LayerError, Tree};
use goblin::elf::header::EM_NONE;
use goblin::elf::Elf;
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
}

#[derive(Debug, thiserror::Error)]
pub enum ClosureError {
    #[error("{name} (needed by {needed_by}) is not in {}: searched {}", root.display(), searched.join(":"))]
    NotFound {
        name: String,
        needed_by: String,
        root: PathBuf,
        searched: Vec<String>,
    },
    #[error("the interpreter {path} is not in {}", root.display())]
    NoInterpreter { path: String, root: PathBuf },
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid shared library: {reason}")]
    BadLibrary { path: String, reason: String },
    #[error("too many levels of symbolic links resolving {0}")]
    SymlinkLoop(String),
    #[error(transparent)]
    Layer(#[from] LayerError),
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
    let mut out = Vec::new();
    if let Some(interp) = &linkage.interpreter {
        if walk(root, interp, &mut |_, _| {}).is_err() {
            return Err(ClosureError::NoInterpreter {
                path: interp.clone(),
                root: root.to_path_buf(),
            });
        }
        out.push(Resolved {
            name: interp.clone(),
            path: interp.clone(),
            image_path: None,
            needed_by: origin.image_path.to_string(),
        });
    }
    let machine = Machine::of_linkage(linkage);
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
    let dir_of = |p: &str| {
        p.rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default()
    };
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
    let mut queue = VecDeque::from([Object {
        name: origin.image_path.to_string(),
        needed: linkage.needed.clone(),
        runpath: exe_expand(&linkage.runpath),
        // The executable's DT_RPATH counts only when it has no DT_RUNPATH.
        rpath_chain: if linkage.runpath.is_empty() {
            exe_expand(&linkage.rpath)
        } else {
            vec![]
        },
    }]);
    while let Some(obj) = queue.pop_front() {
        for name in &obj.needed {
            if !seen.insert(name.clone()) {
                continue;
            }
            let dirs = search_order(&obj, &system);
            let found = if name.contains('/') {
                Some((name.clone(), None)).filter(|(p, _)| machine.matches(root, p))
            } else {
                dirs.iter()
                    .map(|d| {
                        let host = format!("{}/{name}", d.host.trim_end_matches('/'));
                        let image = lexical(&format!("{}/{name}", d.image.trim_end_matches('/')));
                        (host.clone(), (image != host).then_some(image))
                    })
                    .find(|(host, _)| machine.matches(root, host))
            };
            let Some((path, image_path)) = found else {
                return Err(ClosureError::NotFound {
                    name: name.clone(),
                    needed_by: obj.name.clone(),
                    root: root.to_path_buf(),
                    searched: dirs.iter().map(|d| d.host.clone()).collect(),
                });
            };
            let shown = image_path.clone().unwrap_or_else(|| path.clone());
            let lib_dir = Dir {
                host: dir_of(&path),
                image: dir_of(&shown),
            };
            let deps = read_object(root, &path)?;
            let own = |v: &[String]| {
                v.iter()
                    .map(|d| expand(d, &lib_dir, linkage))
                    .collect::<Vec<_>>()
            };
            let mut rpath_chain = own(&deps.rpath);
            rpath_chain.extend(obj.rpath_chain.iter().cloned());
            queue.push_back(Object {
                name: shown,
                needed: deps.needed,
                runpath: own(&deps.runpath),
                rpath_chain,
            });
            out.push(Resolved {
                name: name.clone(),
                path,
                image_path,
                needed_by: obj.name.clone(),
            });
        }
    }
    Ok(out)
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
/// bits), and must not reach the image.
fn normal_mode(host: &Path) -> Result<u32, ClosureError> {
    let meta = fs::metadata(host).map_err(|source| ClosureError::Io {
        path: host.to_path_buf(),
        source,
    })?;
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
    walk_depth(root, path, on_link, 0)
}

fn walk_depth(
    root: &Path,
    path: &str,
    on_link: &mut dyn FnMut(&str, &str),
    depth: usize,
) -> Result<String, ClosureError> {
    if depth > 40 {
        return Err(ClosureError::SymlinkLoop(path.to_string()));
    }
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
        let meta = fs::symlink_metadata(&host).map_err(|source| ClosureError::Io {
            path: host.clone(),
            source,
        })?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&host).map_err(|source| ClosureError::Io {
                path: host.clone(),
                source,
            })?;
            let target = target.to_string_lossy().into_owned();
            on_link(&candidate, &target);
            let joined = if target.starts_with('/') {
                target
            } else {
                format!("{real}/{target}")
            };
            real = walk_depth(root, &joined, on_link, depth + 1)?;
        } else {
            real = candidate;
        }
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

    /// The loader skips a file of the wrong class or machine and keeps searching.
    fn matches(&self, root: &Path, path: &str) -> bool {
        let Ok(real) = walk(root, path, &mut |_, _| {}) else {
            return false;
        };
        let mut head = [0u8; 20];
        let ok = fs::File::open(host_path(root, &real))
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok();
        let little = head[5] == 1;
        let machine = if little {
            u16::from_le_bytes([head[18], head[19]])
        } else {
            u16::from_be_bytes([head[18], head[19]])
        };
        ok && head.starts_with(b"\x7fELF")
            && (head[4] == 2) == self.is_64
            && machine == self.machine
    }
}

/// The dynamic section of the library at `path` in the root.
fn read_object(root: &Path, path: &str) -> Result<DynamicDeps, ClosureError> {
    let real = walk(root, path, &mut |_, _| {})?;
    let host = host_path(root, &real);
    let bytes = fs::read(&host).map_err(|source| ClosureError::Io {
        path: host.clone(),
        source,
    })?;
    let elf = Elf::parse(&bytes).map_err(|e| ClosureError::BadLibrary {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    Ok(DynamicDeps::of(&elf))
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
    read_ld_so_conf(root, "/etc/ld.so.conf", &mut dirs, 0);
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

/// Reads a text file at `path` inside the root, following symlinks within the root.
fn read_in_root(root: &Path, path: &str) -> Result<String, ClosureError> {
    let real = walk(root, path, &mut |_, _| {})?;
    let host = host_path(root, &real);
    fs::read_to_string(&host).map_err(|source| ClosureError::Io { path: host, source })
}

/// ld.so.conf: one directory per line, `include GLOB` lines, `#` comments.
fn read_ld_so_conf(root: &Path, file: &str, out: &mut Vec<String>, depth: usize) {
    // Read through the root's own symlinks, never the host's.
    let Ok(text) = read_in_root(root, file) else {
        return;
    };
    if depth > 8 {
        return;
    }
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            let pattern = pattern.trim();
            let abs = if pattern.starts_with('/') {
                pattern.to_string()
            } else {
                let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                format!("{dir}/{pattern}")
            };
            // The pattern's directory resolved inside the root, its file part globbed there.
            let (dir, file_glob) = abs.rsplit_once('/').unwrap_or(("", abs.as_str()));
            let Ok(real_dir) = walk(root, if dir.is_empty() { "/" } else { dir }, &mut |_, _| {})
            else {
                continue;
            };
            let host_pattern = host_path(root, &format!("{real_dir}/{file_glob}"));
            let mut matches: Vec<PathBuf> = glob::glob(&host_pattern.to_string_lossy())
                .map(|paths| paths.filter_map(Result::ok).collect())
                .unwrap_or_default();
            matches.sort();
            for m in matches {
                if let Ok(rel) = m.strip_prefix(root) {
                    let inner = format!("/{}", rel.to_string_lossy());
                    read_ld_so_conf(root, &inner, out, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            out.push(line.to_string());
        }
    }
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
            Err(ClosureError::SymlinkLoop(_))
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
        read_ld_so_conf(r, "/etc/ld.so.conf", &mut dirs, 0);
        assert_eq!(dirs, ["/opt/first", "/opt/a", "/opt/b"]);
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
