//! Which files of the interpreter's standard library go into the image: all of it that a
//! program can import, and nothing that only serves development: never its own
//! site-packages (another project's packages), the test suites (`test/`, 119 MB on a pyenv
//! install; `*/test`, `*/tests`), `config-*` (the 25 MB static libpython), idlelib, tkinter and
//! turtledemo and turtle (no display in a container, no libtk), ensurepip (pip's wheels), lib2to3,
//! pydoc_data (the interactive help()'s texts), the extension modules of CPython's own tests
//! (`_testcapi`, `xxlimited`), or the host's `__pycache__` (timestamp bytecode, stale in the
//! image: see bytecode.rs).
//!
//! The extension modules of `lib-dynload` are all shipped, since a program may import any of
//! them by a name chosen at run time (but five only reached by naming them: optional.rs); one
//! whose libraries the root lacks is left out with a note (it could never load). The sources
//! of what compiles stay out: the bytecode ships in their place (bytecode.rs says why).

use super::interp::Interp;
use crate::base::closure::{self, Origin};
use std::path::{Path, PathBuf};

/// Directories of the standard library's top level never shipped.
const TOP_LEVEL_OUT: &[&str] = &[
    "site-packages",
    "dist-packages",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "lib-dynload",
    // The keyword and topic texts of the interactive help(); pydoc says they are missing.
    "pydoc_data",
];

/// Modules of the top level never shipped: turtle imports tkinter first thing, which never
/// ships, so it could not be imported anyway.
const TOP_LEVEL_FILES_OUT: &[&str] = &["turtle.py"];

/// Extension modules never shipped: CPython's own test suite's, and tkinter's (`_tkinter`:
/// the tkinter package stays out, and it pulls Tcl/Tk and X11 into the closure).
const TEST_EXTENSIONS: &[&str] = &[
    "_tkinter",
    "_test",
    "_ctypes_test",
    "_xxtestfuzz",
    "xxlimited",
    "xxsubtype",
];

/// Directory names never shipped at any depth: test suites and old bytecode.
const ANYWHERE_OUT: &[&str] = &["__pycache__", "test", "tests", "idle_test"];

/// Whether the entry `name` (a directory when `dir`) at `depth` (0: the stdlib's top) stays.
fn keep(name: &str, dir: bool, depth: usize) -> bool {
    if dir {
        let top = depth == 0 && (TOP_LEVEL_OUT.contains(&name) || name.starts_with("config-"));
        return !top && !ANYWHERE_OUT.contains(&name);
    }
    let top = depth == 0 && TOP_LEVEL_FILES_OUT.contains(&name);
    !(top || name.ends_with(".pyc") || name.ends_with(".pyo") || name.ends_with(".exe"))
}

/// The standard library's files: (image path, host path), sorted. A symlink is shipped as
/// the file it names (Debian's sitecustomize.py points into /etc); a dangling one is not. In
/// another root (a platform's, a toolchain image's) a link is followed inside that root:
/// `/etc/python3.11/sitecustomize.py` is the root's file, never this machine's.
pub fn files(interp: &Interp) -> Result<Vec<(String, PathBuf)>, std::io::Error> {
    let mut out = Vec::new();
    let top = Path::new(&interp.stdlib);
    let image = interp.image_path(&interp.stdlib);
    let root = interp.root.as_path();
    let in_root = |link: &Path| {
        let inside = link.strip_prefix(root).ok()?;
        let (_, host) =
            crate::base::root::open_in_root(root, &format!("/{}", inside.display())).ok()?;
        host.is_file().then_some(host)
    };
    match root == Path::new("/") {
        true => walk(top, &image, 0, &mut out, &keep)?,
        false => walk_with(top, &image, 0, &mut out, &keep, &in_root)?,
    }
    out.sort();
    Ok(out)
}

/// Every regular file under `dir` that `keep` accepts, as (image path under `image`, host
/// path). Symlinked directories are not followed.
pub fn walk(
    dir: &Path,
    image: &str,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
    keep: &dyn Fn(&str, bool, usize) -> bool,
) -> Result<(), std::io::Error> {
    let on_host = |link: &Path| std::fs::canonicalize(link).ok().filter(|r| r.is_file());
    walk_with(dir, image, depth, out, keep, &on_host)
}

/// [`walk`], a symlink to a file shipped as what `resolve` makes of it (None: left out).
fn walk_with(
    dir: &Path,
    image: &str,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
    keep: &dyn Fn(&str, bool, usize) -> bool,
    resolve: &dyn Fn(&Path) -> Option<PathBuf>,
) -> Result<(), std::io::Error> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let kind = e.file_type()?;
        let image_path = format!("{image}/{name}");
        if kind.is_dir() {
            if keep(&name, true, depth) {
                walk_with(&path, &image_path, depth + 1, out, keep, resolve)?;
            }
        } else if keep(&name, false, depth) {
            // A symlink counts as the file it names, when that is a file.
            let real = match kind.is_symlink() {
                true => match resolve(&path) {
                    Some(r) => r,
                    None => continue,
                },
                false => path,
            };
            out.push((image_path, real));
        }
    }
    Ok(())
}

/// The lib-dynload extension modules, split into those whose libraries `root` has (image
/// path, host path) and notes naming each one left out and why.
pub fn extensions(interp: &Interp, root: &Path) -> (Vec<(String, PathBuf)>, Vec<String>) {
    let (mut kept, mut notes) = (Vec::new(), Vec::new());
    for dir in &interp.dynload {
        let mut found = Vec::new();
        let keep_so = |name: &str, d: bool, _: usize| {
            let test = TEST_EXTENSIONS.iter().any(|t| name.starts_with(t));
            !d && name.ends_with(".so") && !test
        };
        if walk(
            Path::new(dir),
            &interp.image_path(dir),
            1,
            &mut found,
            &keep_so,
        )
        .is_err()
        {
            continue;
        }
        for (image, host) in found {
            match loadable(root, &image, &host) {
                Ok(()) => kept.push((image, host)),
                Err(why) => notes.push(format!(
                    "left out the standard library's {}: {why}",
                    module_name(&image)
                )),
            }
        }
    }
    (kept, notes)
}

/// `_ssl` of `/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so`.
pub fn module_name(image: &str) -> &str {
    let file = image.rsplit('/').next().unwrap_or(image);
    file.split('.').next().unwrap_or(file)
}

/// Whether every library the shared object `host` needs is in `root`, as the loader finds it.
pub fn loadable(root: &Path, image: &str, host: &Path) -> Result<(), String> {
    let linkage = crate::elf::inspect::inspect_shared_object(host).map_err(|e| e.to_string())?;
    let root_path = Origin::root_path_of(root, host);
    let origin = Origin {
        image_path: image,
        root_path: root_path.as_deref(),
    };
    closure::resolve_unowned(root, &linkage, &origin)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_files_stay_out() {
        assert!(!keep("test", true, 0));
        assert!(!keep("config-3.11-x86_64-linux-gnu", true, 0));
        assert!(!keep("site-packages", true, 0));
        assert!(!keep("tests", true, 2));
        assert!(!keep("__pycache__", true, 1));
        assert!(!keep("os.cpython-311.pyc", false, 1));
        assert!(keep("json", true, 0));
        assert!(keep("os.py", false, 0));
        assert!(!keep("turtle.py", false, 0));
        assert!(
            keep("turtle.py", false, 1),
            "a package's own turtle module stays"
        );
        // A package's own `config` directory is no static libpython.
        assert!(keep("config-x", true, 1));
    }

    #[test]
    fn a_roots_absolute_link_is_followed_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let lib = root.join("usr/lib/python3.11");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(root.join("etc/python3.11")).unwrap();
        let site = root.join("etc/python3.11/sitecustomize.py");
        std::fs::write(&site, "# the root's\n").unwrap();
        std::os::unix::fs::symlink(
            "/etc/python3.11/sitecustomize.py",
            lib.join("sitecustomize.py"),
        )
        .unwrap();
        // One that only the host could satisfy is left out.
        std::os::unix::fs::symlink("/etc/hostname", lib.join("hostname.py")).unwrap();
        let exe = root.join("usr/bin/python3.11");
        let interp = Interp {
            stdlib: lib.to_string_lossy().into_owned(),
            root: root.to_path_buf(),
            ..Interp::example("/usr", &exe.to_string_lossy())
        };
        let found = files(&interp).unwrap();
        let real = std::fs::canonicalize(&site).unwrap();
        assert_eq!(
            found,
            vec![("/usr/lib/python3.11/sitecustomize.py".to_string(), real)]
        );
    }

    #[test]
    fn names_a_module_by_its_file() {
        let so = "/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so";
        assert_eq!(module_name(so), "_ssl");
    }
}
