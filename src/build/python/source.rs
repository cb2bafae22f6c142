//! The project's sources copied for a build backend to run in: `uv pip install DIR` (a console
//! script's project) and the metadata hook of a pyproject with dynamic dependencies write
//! `build/` and `*.egg-info` beside the sources, which are the user's, and read-only in a
//! toolchain container. The copy keeps everything a backend may read (`.git` for
//! setuptools-scm, as a link to the original) but virtual environments, bytecode and earlier
//! build outputs; the compilers it runs map the copy's temporary path to a fixed one, so that
//! a C or Rust extension's debug paths, and so its build ID, are the same on every build.

use super::PythonError;
use std::path::{Path, PathBuf};

/// Where the copy's path is mapped to in what compilers write.
const MAPPED: &str = "/src";

/// Version-control directories: linked, not copied (they may be large; a backend only reads
/// them).
const LINKED: &[&str] = &[".git", ".hg"];

/// The copy of a project in a build's temporary directory, made when first needed: an
/// unchanged project whose dependencies are cached needs none.
pub struct Copy<'a> {
    dir: &'a Path,
    dest: PathBuf,
}

impl<'a> Copy<'a> {
    pub fn new(dir: &'a Path, work: &Path) -> Copy<'a> {
        Copy {
            dir,
            dest: work.join("source"),
        }
    }

    /// Where the copy is (or will be).
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// `file` of the project in the copy, which is made now if it is not yet; itself when it
    /// lies outside the project.
    pub fn of(&self, file: &Path) -> Result<PathBuf, PythonError> {
        let Ok(rel) = file.strip_prefix(self.dir) else {
            return Ok(file.to_path_buf());
        };
        if !self.dest.exists() {
            // Whole or not at all: a failed copy is not taken for a made one.
            let tmp = self.dest.with_file_name("source.partial");
            copy(self.dir, &tmp)?;
            std::fs::rename(&tmp, &self.dest).map_err(|source| PythonError::Write {
                path: self.dest.clone(),
                source,
            })?;
        }
        Ok(self.dest.join(rel))
    }
}

/// Copies the project `dir` into `dest` (which must not exist).
pub fn copy(dir: &Path, dest: &Path) -> Result<PathBuf, PythonError> {
    copy_dir(dir, dest, 0)?;
    Ok(dest.to_path_buf())
}

/// Whether the directory `name` at `depth` (0: the project's top) stays out of the copy.
fn skipped(dir: &Path, name: &str, depth: usize) -> bool {
    let outputs = depth == 0 && (name == "build" || name == "dist");
    outputs
        || name == "__pycache__"
        || name.ends_with(".egg-info")
        || dir.join("pyvenv.cfg").is_file()
}

fn copy_dir(dir: &Path, dest: &Path, depth: usize) -> Result<(), PythonError> {
    let read = |source| PythonError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let write = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PythonError::Write { path, source }
    };
    std::fs::create_dir_all(dest).map_err(write(dest))?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let (from, to) = (e.path(), dest.join(e.file_name()));
        let name = e.file_name().to_string_lossy().into_owned();
        let kind = e.file_type().map_err(read)?;
        if kind.is_symlink() {
            let target = std::fs::read_link(&from).map_err(read)?;
            std::os::unix::fs::symlink(target, &to).map_err(write(&to))?;
        } else if kind.is_dir() && depth == 0 && LINKED.contains(&name.as_str()) {
            std::os::unix::fs::symlink(&from, &to).map_err(write(&to))?;
        } else if kind.is_dir() {
            if !skipped(&from, &name, depth) {
                copy_dir(&from, &to, depth + 1)?;
            }
        } else if kind.is_file() && !name.ends_with(".pyc") {
            std::fs::copy(&from, &to).map_err(write(&to))?;
        }
    }
    Ok(())
}

/// The compilers' flags that write `copy` as [`MAPPED`]: the caller's own CFLAGS, CXXFLAGS and
/// RUSTFLAGS, with the mapping added.
pub fn build_env(copy: &Path) -> Vec<(&'static str, String)> {
    let c = format!("-ffile-prefix-map={}={MAPPED}", copy.display());
    let rust = format!("--remap-path-prefix={}={MAPPED}", copy.display());
    [("CFLAGS", &c), ("CXXFLAGS", &c), ("RUSTFLAGS", &rust)]
        .into_iter()
        .map(|(k, add)| {
            let own = std::env::var(k).unwrap_or_default();
            (k, format!("{own} {add}").trim().to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_keeps_packages_and_leaves_out_builds_and_environments() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("proj");
        for d in [
            "pkg/build",
            "build/lib",
            ".venv/lib",
            "pkg/__pycache__",
            "x.egg-info",
            ".git",
        ] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        for f in [
            "pyproject.toml",
            "pkg/__init__.py",
            "pkg/build/__init__.py",
            "build/lib/old.py",
            ".venv/pyvenv.cfg",
            "pkg/__pycache__/x.pyc",
            "x.egg-info/PKG-INFO",
            ".git/HEAD",
        ] {
            std::fs::write(p.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("pkg/__init__.py", p.join("link.py")).unwrap();
        let dest = t.path().join("copy");
        copy(&p, &dest).unwrap();
        let mut found: Vec<String> = walk(&dest);
        found.sort();
        assert_eq!(
            found,
            [
                ".git",
                "link.py",
                "pkg/__init__.py",
                "pkg/build/__init__.py",
                "pyproject.toml"
            ]
        );
        assert_eq!(
            std::fs::read_link(dest.join(".git")).unwrap(),
            p.join(".git")
        );
        assert_eq!(
            std::fs::read_link(dest.join("link.py")).unwrap(),
            Path::new("pkg/__init__.py")
        );
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let ty = e.file_type().unwrap();
                if ty.is_dir() {
                    stack.push(e.path());
                } else {
                    let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
                    out.push(rel.display().to_string());
                }
            }
        }
        out
    }
}
