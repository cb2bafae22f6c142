//! What `binpack python PATH` runs: a script (`app.py`, run as `python /app/app.py`) in the
//! nearest project directory holding its requirements, or a project directory whose
//! pyproject.toml declares one console script (`[project.scripts]`), run through a small
//! launcher as pip's own console scripts do.

use super::PythonError;
use std::path::{Path, PathBuf};

/// Where the app's files go in the image.
pub const APP_DIR: &str = "/app";

/// What runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A script, relative to the project directory.
    Script(String),
    /// A console script of the project, installed with it: its name and `module:attr`.
    Console { name: String, target: String },
}

/// The project: its directory, what runs, and what its dependencies are listed in.
#[derive(Clone, Debug)]
pub struct Project {
    pub dir: PathBuf,
    pub entry: Entry,
    /// requirements.txt or pyproject.toml, when the project has dependencies.
    pub requirements: Option<PathBuf>,
    /// The project's name (pyproject's, else its directory's).
    pub name: String,
}

/// Files that list dependencies, in the order binpack prefers them: a pinned list first.
const REQUIREMENT_FILES: &[&str] = &["requirements.txt", "pyproject.toml"];

/// Finds the project of `path` (a script or a directory); `requirements` overrides the file
/// the dependencies are read from.
pub fn locate(path: &Path, requirements: Option<&Path>) -> Result<Project, PythonError> {
    let meta = std::fs::metadata(path).map_err(|source| PythonError::NoEntry {
        path: path.to_path_buf(),
        source,
    })?;
    let abs = std::fs::canonicalize(path).map_err(|source| PythonError::NoEntry {
        path: path.to_path_buf(),
        source,
    })?;
    let mut project = match meta.is_dir() {
        true => console_project(&abs)?,
        false => script_project(&abs),
    };
    if let Some(r) = requirements {
        if !r.is_file() {
            return Err(PythonError::NoRequirements(r.to_path_buf()));
        }
        project.requirements = Some(std::fs::canonicalize(r).unwrap_or_else(|_| r.into()));
    }
    Ok(project)
}

/// A script's project: the nearest directory from the script's up that lists requirements,
/// not above the top of a git work tree; else the script's own directory, with none.
fn script_project(script: &Path) -> Project {
    let start = script.parent().unwrap_or(Path::new("/"));
    let found = start.ancestors().find_map(|d| {
        let listed = REQUIREMENT_FILES
            .iter()
            .map(|f| d.join(f))
            .find(|f| f.is_file());
        match listed {
            Some(f) => Some(Some((d.to_path_buf(), f))),
            // The top of the work tree: nothing above it is the project's.
            None if d.join(".git").exists() => Some(None),
            None => None,
        }
    });
    let (dir, requirements) = match found.flatten() {
        Some((d, f)) => (d, Some(f)),
        None => (start.to_path_buf(), None),
    };
    let rel = script.strip_prefix(&dir).unwrap_or(script);
    Project {
        name: dir_name(&dir),
        entry: Entry::Script(rel.to_string_lossy().into_owned()),
        requirements,
        dir,
    }
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into())
}

/// A directory's project: its pyproject.toml's one console script.
fn console_project(dir: &Path) -> Result<Project, PythonError> {
    let file = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&file).map_err(|_| PythonError::NoPyproject {
        dir: dir.to_path_buf(),
    })?;
    let bad = |why: String| PythonError::BadPyproject {
        file: file.clone(),
        why,
    };
    let doc: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let project = doc.get("project").and_then(|p| p.as_table());
    let scripts = project
        .and_then(|p| p.get("scripts"))
        .and_then(|s| s.as_table());
    let scripts: Vec<(String, String)> = scripts
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    let [(name, target)] = <[(String, String); 1]>::try_from(scripts).map_err(|s| {
        let names: Vec<_> = s.iter().map(|(k, _)| k.as_str()).collect();
        PythonError::ConsoleScripts {
            file: file.clone(),
            found: names.join(", "),
        }
    })?;
    let pname = project.and_then(|p| p.get("name")).and_then(|n| n.as_str());
    Ok(Project {
        name: pname.map_or_else(|| dir_name(dir), str::to_string),
        entry: Entry::Console { name, target },
        requirements: Some(file),
        dir: dir.to_path_buf(),
    })
}

/// The launcher of a console script `module:attr`, as pip writes one.
pub fn launcher(target: &str) -> Result<String, PythonError> {
    let bad = || PythonError::BadScript(target.to_string());
    let (module, attr) = target.split_once(':').ok_or_else(bad)?;
    let (module, attr) = (module.trim(), attr.trim());
    // An extra (`mod:main [extra]`) is pip's to honour at install time; it is ignored here.
    let attr = attr.split_whitespace().next().ok_or_else(bad)?;
    let ident = |s: &str| {
        s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
    };
    if !ident(module) || !ident(attr) {
        return Err(bad());
    }
    let head = attr.split('.').next().unwrap_or(attr);
    Ok(format!(
        "import sys\nfrom {module} import {head}\nif __name__ == \"__main__\":\n    sys.exit({attr}())\n"
    ))
}

/// Directories of a project that are never the app's: version control, virtual
/// environments, caches, build output (binpack's own `dist/` among them).
const NOT_APP: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    "dist",
    "build",
    ".idea",
    ".vscode",
];

/// The app's own files: (image path under /app, host path), sorted. A directory holding
/// `pyvenv.cfg` is a virtual environment and never ships, whatever its name.
pub fn app_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, PythonError> {
    let mut out = Vec::new();
    let keep = |name: &str, is_dir: bool, _: usize| match is_dir {
        true => !NOT_APP.contains(&name) && !name.ends_with(".egg-info"),
        false => !name.ends_with(".pyc") && name != "pyvenv.cfg",
    };
    walk_app(dir, APP_DIR, &mut out, &keep).map_err(|source| PythonError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    out.retain(|(_, host)| !is_image_archive(host));
    out.sort();
    Ok(out)
}

/// An image archive (binpack's own output, `-o app.tar` in the project, or `docker save`'s):
/// a tar whose first entry is an OCI layout's or a Docker archive's. Never the app's file.
fn is_image_archive(path: &Path) -> bool {
    use std::io::Read;
    if path.extension().is_none_or(|e| e != "tar") {
        return false;
    }
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    let name = header.split(|b| *b == 0).next().unwrap_or(&[]);
    let image = [
        &b"blobs/"[..],
        b"oci-layout",
        b"index.json",
        b"manifest.json",
    ];
    read.is_ok() && image.iter().any(|p| name.starts_with(p))
}

fn walk_app(
    dir: &Path,
    image: &str,
    out: &mut Vec<(String, PathBuf)>,
    keep: &dyn Fn(&str, bool, usize) -> bool,
) -> std::io::Result<()> {
    if dir.join("pyvenv.cfg").exists() {
        return Ok(());
    }
    let mut sub = Vec::new();
    super::stdlib::walk(dir, image, 0, &mut sub, &|n, d, _| !d && keep(n, d, 0))?;
    out.extend(sub);
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_dir() && keep(&name, true, 0) {
            walk_app(&e.path(), &format!("{image}/{name}"), out, keep)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launcher_calls_the_function() {
        let l = launcher("hello.cli:main").unwrap();
        assert!(l.contains("from hello.cli import main\n"));
        assert!(l.contains("sys.exit(main())"));
        let l = launcher("pkg:group.cmd").unwrap();
        assert!(l.contains("from pkg import group\n"));
        assert!(launcher("no colon").is_err());
        assert!(launcher("os:system('x')").is_err());
    }

    #[test]
    fn a_script_finds_its_requirements_above_it() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("src/app")).unwrap();
        std::fs::write(t.path().join("requirements.txt"), "flask\n").unwrap();
        std::fs::write(t.path().join("src/app/main.py"), "").unwrap();
        std::fs::create_dir_all(t.path().join(".venv")).unwrap();
        std::fs::write(t.path().join(".venv/pyvenv.cfg"), "").unwrap();
        let p = locate(&t.path().join("src/app/main.py"), None).unwrap();
        assert_eq!(p.entry, Entry::Script("src/app/main.py".into()));
        assert!(p.requirements.unwrap().ends_with("requirements.txt"));
        let files: Vec<_> = app_files(&p.dir)
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(files, ["/app/requirements.txt", "/app/src/app/main.py"]);
    }
}
