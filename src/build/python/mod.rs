//! `binpack python`: a CPython program in three layers, each byte-identical while its inputs
//! are: the interpreter with its standard library (the same for every app on that Python and
//! platform), the dependencies (the same while the requirements are), the app's own files.
//!
//! The interpreter's layout is read from the interpreter (interp.rs); what of its stdlib ships
//! is stdlib.rs's rule; uv installs the dependencies into a private cached directory
//! (install.rs); every `.py` is compiled to hash-based bytecode (bytecode.rs); entry.rs finds
//! the project and what runs. Shared libraries the interpreter, the stdlib's extensions and
//! the wheels' extensions need come from the root through the closure, like any ELF's.

pub mod bytecode;
pub mod entry;
pub mod install;
pub mod interp;
pub mod metadata;
pub mod optional;
pub mod platform;
pub mod run;
pub mod source;
pub mod stdlib;

use crate::build::{BuildCx, BuildError, Builder, Built, Component, Ecosystem, FileLayer};
use crate::support::cleanup::Tracked;
use crate::support::platform::Platform;
use entry::{Entry, Project};
use interp::Interp;
use run::Py;
use std::path::{Path, PathBuf};

/// What to build.
#[derive(Clone, Debug)]
pub struct PythonBuild {
    /// The main script, or a directory with a pyproject.toml declaring one console script.
    pub path: PathBuf,
    /// The interpreter; None: the `python3` on PATH.
    pub python: Option<PathBuf>,
    /// The file listing the dependencies, instead of the project's requirements.txt or
    /// pyproject.toml.
    pub requirements: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error("{}: {source}; give the app's main script (app.py) or a project directory with a pyproject.toml", path.display())]
    NoEntry {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no such requirements file: {}", .0.display())]
    NoRequirements(PathBuf),
    #[error("{} has no pyproject.toml: for a directory binpack runs its pyproject's one [project.scripts] entry; give the main script instead (binpack python {}/app.py)", dir.display(), dir.display())]
    NoPyproject { dir: PathBuf },
    #[error("{}: {why}", file.display())]
    BadPyproject { file: PathBuf, why: String },
    #[error("{} declares {} console scripts in [project.scripts] ({found}); binpack runs one: give its main script instead", file.display(), if found.is_empty() { "no".to_string() } else { found.split(", ").count().to_string() })]
    ConsoleScripts { file: PathBuf, found: String },
    #[error("console script {0:?} is not `module:function`")]
    BadScript(String),
    #[error("python3 not found on PATH: install Python 3 (apt-get install python3) or name one with --python PATH")]
    NotFound,
    #[error("running {}: {source}", program.display())]
    Run {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a working Python interpreter: {why}", python.display())]
    NotPython { python: PathBuf, why: String },
    #[error("{} is {implementation}, not CPython: binpack python packs CPython", python.display())]
    NotCPython {
        python: PathBuf,
        implementation: String,
    },
    #[error("{} reports no site-packages directory", python.display())]
    NoSitePackages { python: PathBuf },
    #[error("uv (the installer binpack uses) could not be installed with {} -m pip ({why}); install pip for it, or put uv on PATH", python.display())]
    NoUv { python: PathBuf, why: String },
    #[error("{what} failed: {output}\n{hint}")]
    Install {
        what: String,
        output: String,
        hint: String,
    },
    #[error("compiling bytecode into {}: {why}", dir.display())]
    Compile { dir: PathBuf, why: String },
    #[error("the extension {extension} of {package} cannot load in the image: {why}; install the library into the root{hint} and build again")]
    MissingLibrary {
        extension: String,
        package: String,
        why: String,
        hint: String,
    },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] crate::build::toolchain::FileError),
    #[error(transparent)]
    Platform(#[from] Box<platform::PlatformError>),
    #[error(transparent)]
    Toolchain(#[from] crate::build::toolchain::ToolchainError),
    #[error("a python toolchain container builds for its own platform, {}; for {platform}, build on the host with --root {platform}=DIR (the README's Python section says how to make one)", crate::support::platform::Platform::host())]
    ContainerPlatform { platform: Platform },
    #[error("--root {platform}=DIR with a python toolchain container: the container's image is the build's root; drop --root, or build on the host from that root (--toolchain host)")]
    ContainerRoot { platform: Platform },
}

impl From<std::io::Error> for PythonError {
    fn from(source: std::io::Error) -> Self {
        PythonError::Write {
            path: PathBuf::from("binpack's cache"),
            source,
        }
    }
}

/// One layer's files: (absolute image path, host path), and the image paths of the shared
/// objects among them whose libraries the closure must resolve.
#[derive(Clone, Debug, Default)]
pub struct Files {
    pub files: Vec<(String, PathBuf)>,
    pub native: Vec<String>,
}

/// The program as three layers, before it becomes an artifact.
#[derive(Clone, Debug)]
pub struct Layout {
    pub interp: Interp,
    pub project: Project,
    /// The interpreter's stdlib and its extensions (the executable itself is the artifact's).
    pub runtime: Files,
    pub dependencies: Files,
    pub app: Files,
    /// The entrypoint's arguments after the interpreter.
    pub args: Vec<String>,
    pub notes: Vec<String>,
    /// The installed distributions: (name, version, license).
    pub distributions: Vec<metadata::Distribution>,
}

/// The CA bundle reaches what Python programs verify TLS with: `ssl`'s default context reads
/// SSL_CERT_FILE (set by the back half); requests reads REQUESTS_CA_BUNDLE (else certifi's
/// own bundle); pycurl and requests also read CURL_CA_BUNDLE.
pub const CA_ENV: &[&str] = &["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"];

/// Builds `spec` for `platform` with `py` (the host's interpreter, or the toolchain image's),
/// or another platform's from `root`.
pub fn build(
    spec: &PythonBuild,
    platform: &Platform,
    (py, root): (&Py, &Path),
    cache: Option<&Path>,
    progress: &dyn crate::support::progress::Progress,
) -> Result<Built, PythonError> {
    let work = Tracked::new(crate::build::toolchain::temp_dir()?);
    let root = root.to_path_buf();
    let l = layout(spec, platform, (py, &root), work.path(), cache, progress)?;
    let name = l.project.name.clone();
    let mut built = Built::new(l.interp.executable.clone(), name, work);
    let a = &mut built.artifact;
    a.image_path = Some(l.interp.image_executable());
    a.args = l.args;
    // Output reaches `docker logs` as it is printed, as every Python Dockerfile sets.
    a.env = vec!["PYTHONUNBUFFERED=1".into()];
    a.workdir = Some(entry::APP_DIR.into());
    a.root = root;
    a.files = FileLayer {
        files: l.runtime.files,
        native: l.runtime.native,
    };
    a.layers = [l.dependencies, l.app]
        .into_iter()
        .map(|f| FileLayer {
            files: f.files,
            native: f.native,
        })
        .collect();
    a.ca_env = CA_ENV.iter().map(|s| s.to_string()).collect();
    // zoneinfo reads /usr/share/zoneinfo (the tzdata package from PyPI only when installed).
    a.own_tzdata = false;
    a.notes = l.notes;
    let p = &mut a.provenance;
    p.runtime = Some(l.interp.describe());
    p.platform = Some(platform.clone());
    p.vcs = crate::build::git::describe(&l.project.dir);
    p.built_on = Some(match &py.place {
        run::Place::Host => crate::build::BuiltOn::Host,
        run::Place::Container(m) => crate::build::BuiltOn::Container {
            engine: m.container.engine.to_string(),
            image: m.container.image.clone(),
        },
    });
    p.components = l
        .distributions
        .into_iter()
        .map(|d| Component {
            ecosystem: Ecosystem::Pypi,
            name: d.name,
            version: d.version,
            license: d.license,
        })
        .collect();
    Ok(built)
}

/// `binpack python`'s builder.
pub struct PythonBuilder {
    pub spec: PythonBuild,
}

impl Builder for PythonBuilder {
    fn name(&self) -> &'static str {
        "python"
    }

    fn describe(&self) -> String {
        format!("python {}", self.spec.path.display())
    }

    fn platforms(&self) -> &'static [&'static str] {
        &["linux/amd64", "linux/arm64"]
    }

    fn tool(&self) -> Option<crate::build::Tool> {
        // `--python` is a host interpreter: the build is the host's.
        if self.spec.python.is_some() {
            return None;
        }
        Some(crate::build::Tool {
            program: "python3",
            install: "Python 3 (apt-get install python3 python3-pip)",
            off_path: &[],
        })
    }

    fn build(&self, platform: &Platform, cx: &BuildCx) -> Result<Built, BuildError> {
        let built = run::select(&self.spec, platform, cx).and_then(|(py, root)| {
            build(&self.spec, platform, (&py, &root), cx.cache, cx.progress)
        });
        built.map_err(BuildError::new)
    }
}

/// The interpreter to use: `--python`, else the `python3` on PATH.
pub fn python(spec: &PythonBuild) -> Result<PathBuf, PythonError> {
    match &spec.python {
        Some(p) => Ok(p.clone()),
        None => which::which("python3").map_err(|_| PythonError::NotFound),
    }
}

/// The three layers of `spec` for `platform`, files under `work` (a temporary directory) and
/// `cache` (binpack's cache; None: everything is made again in `work`).
pub fn layout(
    spec: &PythonBuild,
    platform: &Platform,
    (py, root): (&Py, &Path),
    work: &Path,
    cache: Option<&Path>,
    progress: &dyn crate::support::progress::Progress,
) -> Result<Layout, PythonError> {
    let project = entry::locate(&spec.path, spec.requirements.as_deref())?;
    let store = cache.map_or_else(|| work.join("cache"), Path::to_path_buf);
    let read = Interp::read(py)?;
    let mut interp = match py.in_container() {
        true => run::in_root(read, root, platform)?,
        false => platform::interp(read, platform, root)?,
    };
    let store = interp.runner.store_in(&store)?;
    interp.runner = interp.runner.for_project(&project, work, &store);
    let copy = source::Copy::new(&project.dir, work);
    if runs_backend(&project) {
        interp.runner.env.extend(source::build_env(copy.path()));
    }
    let python = interp.runner.clone();
    progress.stage(&format!("python {}: the standard library", interp.version));
    let (runtime, mut notes) = runtime_files(&interp, root, &store)?;
    let dependencies = match &project.requirements {
        Some(r) => {
            progress.stage(&format!("installing the dependencies of {}", r.display()));
            // A pyproject's dependencies may be computed by its build backend.
            let pyproject = r.file_name() == Some("pyproject.toml".as_ref());
            let from = || match pyproject {
                true => copy.of(r),
                false => Ok(r.clone()),
            };
            dependency_files(&interp, platform, (r, &from), &store, progress)?
        }
        None => {
            notes.push(format!("no requirements.txt or pyproject.toml in {} or above: the app gets the standard library only", project.dir.display()));
            Files::default()
        }
    };
    check_native(root, &dependencies, &interp)?;
    progress.stage("the app's files");
    let (app, args) = app_files(
        &interp,
        platform,
        (&project, &copy),
        &python,
        work,
        &store,
        progress,
    )?;
    check_native(root, &app, &interp)?;
    let (mut runtime, mut dependencies, mut app) = (runtime, dependencies, app);
    notes.extend(optional::place(&mut runtime, &mut dependencies, &mut app));
    let site = interp.image_site()?;
    let distributions = metadata::distributions(&dependencies.files, &app.files, &site);
    Ok(Layout {
        interp,
        project,
        runtime,
        dependencies,
        app,
        args,
        notes,
        distributions,
    })
}

/// Whether a build backend may run in the project's copy (source.rs says why): for a console
/// script's project, or dependencies listed in a pyproject.toml.
fn runs_backend(project: &Project) -> bool {
    let pyproject = (project.requirements.as_deref())
        .is_some_and(|r| r.file_name() == Some("pyproject.toml".as_ref()));
    pyproject || matches!(project.entry, Entry::Console { .. })
}

/// A cache entry's name for `text`.
fn digest(text: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// The stdlib's files and bytecode (compiled once per interpreter into the cache), its
/// loadable extensions as native objects, and notes for those left out.
fn runtime_files(
    interp: &Interp,
    root: &Path,
    store: &Path,
) -> Result<(Files, Vec<String>), PythonError> {
    let read_err = |source| PythonError::Read {
        path: PathBuf::from(&interp.stdlib),
        source,
    };
    let sources = stdlib::files(interp).map_err(read_err)?;
    // Known by the interpreter and the list of files (which changes with binpack's rule).
    let names: String = sources.iter().map(|(i, _)| format!("{i}\n")).collect();
    let key = digest(&format!(
        "binpack-python-stdlib/2\n{}\n{names}",
        interp.identity()
    ));
    let dir = store.join("python/stdlib").join(key);
    let pyc = compiled(&interp.runner, &sources, &dir, bytecode::Mode::Sourceless)?;
    let (extensions, notes) = extensions_cached(interp, root, &dir)?;
    let native = extensions.iter().map(|(i, _)| i.clone()).collect();
    // A source whose bytecode exists stays out (bytecode.rs says why); one that did not
    // compile, and every data file, stays in.
    let compiled: std::collections::HashSet<&str> = pyc.iter().map(|(i, _)| i.as_str()).collect();
    let sources: Vec<_> = sources
        .into_iter()
        .filter(|(image, _)| !compiled.contains(format!("{image}c").as_str()))
        .collect();
    let mut files: Vec<_> = sources.into_iter().chain(pyc).chain(extensions).collect();
    files.extend(zoneinfo(interp, root));
    files.sort();
    Ok((Files { files, native }, notes))
}

/// The loadable extension modules (image path, host path) and notes on those left out.
type Extensions = (Vec<(String, PathBuf)>, Vec<String>);

/// [`stdlib::extensions`], remembered in the stdlib's cache entry `dir` while the root's
/// /etc/ld.so.cache is unchanged (installing a library runs ldconfig): checking each
/// module's closure takes a second.
fn extensions_cached(interp: &Interp, root: &Path, dir: &Path) -> Result<Extensions, PythonError> {
    let ld_cache = std::fs::metadata(root.join("etc/ld.so.cache"));
    let stamp = ld_cache.map(|m| {
        use std::os::unix::fs::MetadataExt;
        format!("{}.{}:{}", m.mtime(), m.mtime_nsec(), m.size())
    });
    let file = dir.join(format!(
        "dynload-{}.json",
        digest(&format!("{stamp:?}{}", root.display()))
    ));
    if let Ok(bytes) = std::fs::read(&file) {
        if let Ok((kept, notes)) = serde_json::from_slice(&bytes) {
            return Ok((kept, notes));
        }
    }
    let found = stdlib::extensions(interp, root);
    let bytes = serde_json::to_vec(&found).expect("paths serialize");
    // Not remembered without a stamp to know it by.
    if stamp.is_ok() {
        let _ = crate::support::cache::write_file(&file, &bytes);
    }
    Ok(found)
}

/// The root's time zone files, which `zoneinfo` reads (it falls back to the `tzdata`
/// distribution only when that is installed), when the back half would not add them: it adds
/// them (with tzdata's package entry) for an executable that shows it reads them, which a
/// stub linked to libpython3.X.so does not.
fn zoneinfo(interp: &Interp, root: &Path) -> Option<(String, PathBuf)> {
    let dir = crate::base::zoneinfo::DIR;
    let host = root.join(dir.trim_start_matches('/'));
    let added_anyway = crate::base::zoneinfo::wanted(&interp.executable);
    (!added_anyway && host.is_dir()).then(|| (dir.to_string(), host))
}

/// The `.pyc` of `sources`, compiled into the cache entry `dir` once; its list is kept there.
fn compiled(
    python: &Py,
    sources: &[(String, PathBuf)],
    dir: &Path,
    mode: bytecode::Mode,
) -> Result<Vec<(String, PathBuf)>, PythonError> {
    let list = dir.join("pyc.list");
    crate::build::toolchain::cache_entry(dir, |tmp| -> Result<(), PythonError> {
        let pyc = bytecode::compile(python, sources, &tmp.join("pyc"), mode)?;
        let names: String = pyc.iter().map(|(i, _)| format!("{i}\n")).collect();
        std::fs::write(tmp.join("pyc.list"), names).map_err(|source| PythonError::Write {
            path: tmp.join("pyc.list"),
            source,
        })
    })?;
    let names = std::fs::read_to_string(&list).map_err(|source| PythonError::Read {
        path: list.clone(),
        source,
    })?;
    let pyc_dir = dir.join("pyc");
    Ok(names
        .lines()
        .map(|i| (i.to_string(), pyc_dir.join(i.trim_start_matches('/'))))
        .collect())
}

/// The installed dependencies (a cache entry known by the requirements, the interpreter and
/// the platform) with their bytecode, under the interpreter's site-packages in the image.
fn dependency_files(
    interp: &Interp,
    platform: &Platform,
    (requirements, from): (&Path, &dyn Fn() -> Result<PathBuf, PythonError>),
    store: &Path,
    progress: &dyn crate::support::progress::Progress,
) -> Result<Files, PythonError> {
    let key = install::key(requirements, interp, platform)?;
    let dir = store.join("python/deps").join(key);
    let python = &interp.runner;
    let site = interp.image_site()?;
    if !dir.exists() {
        let uv = install::uv(python, store, progress)?;
        crate::build::toolchain::cache_entry(&dir, |tmp| -> Result<(), PythonError> {
            let target = tmp.join("site");
            install::install(&uv, python, interp, platform, &from()?, &target)?;
            let sources = site_files(&target, &site)?;
            bytecode::compile(
                python,
                &sources,
                &tmp.join("pyc"),
                bytecode::Mode::Unchecked,
            )?;
            Ok(())
        })?;
    }
    let mut files = site_files(&dir.join("site"), &site)?;
    let pyc_dir = dir.join("pyc");
    if pyc_dir.is_dir() {
        let mut pyc = Vec::new();
        stdlib::walk(&pyc_dir, "", 0, &mut pyc, &|_, _, _| true).map_err(|source| {
            PythonError::Read {
                path: pyc_dir.clone(),
                source,
            }
        })?;
        files.extend(pyc);
    }
    files.sort();
    let native = native_of(&files);
    Ok(Files { files, native })
}

/// An installed tree's files as (image path under `site`, host path): no `bin/` (scripts
/// whose first line names the host's interpreter) and no bytecode but binpack's.
fn site_files(target: &Path, site: &str) -> Result<Vec<(String, PathBuf)>, PythonError> {
    let mut out = Vec::new();
    if !target.is_dir() {
        return Ok(out);
    }
    let keep = |name: &str, dir: bool, depth: usize| match dir {
        true => name != "__pycache__" && !(depth == 0 && name == "bin"),
        false => !name.ends_with(".pyc"),
    };
    stdlib::walk(target, site, 0, &mut out, &keep).map_err(|source| PythonError::Read {
        path: target.to_path_buf(),
        source,
    })?;
    Ok(out)
}

/// The extension modules among `files`: shared objects outside the wheels' vendored
/// `*.libs` directories (those are found through the modules' `$ORIGIN` run paths).
fn native_of(files: &[(String, PathBuf)]) -> Vec<String> {
    files
        .iter()
        .map(|(i, _)| i)
        .filter(|i| i.ends_with(".so") && !i.split('/').any(|d| d.ends_with(".libs")))
        .cloned()
        .collect()
}

/// Refuses an extension module whose libraries the root does not have, naming it, its
/// distribution and the Debian package that has the library when binpack knows it.
fn check_native(root: &Path, layer: &Files, interp: &Interp) -> Result<(), PythonError> {
    let site = interp.image_site()?;
    for image in &layer.native {
        let Some((_, host)) = layer.files.iter().find(|(i, _)| i == image) else {
            continue;
        };
        if let Err(why) = stdlib::loadable(root, image, host) {
            return Err(PythonError::MissingLibrary {
                extension: image.clone(),
                package: metadata::owner(&layer.files, &site, image),
                hint: metadata::debian_hint(&why),
                why,
            });
        }
    }
    Ok(())
}

/// The app layer and the entrypoint's arguments: a script's project files with their
/// bytecode; or the project installed (without its dependencies) and a launcher of its
/// console script.
fn app_files(
    interp: &Interp,
    platform: &Platform,
    (project, copy): (&Project, &source::Copy),
    python: &Py,
    work: &Path,
    store: &Path,
    progress: &dyn crate::support::progress::Progress,
) -> Result<(Files, Vec<String>), PythonError> {
    let (mut files, args) = match &project.entry {
        Entry::Script(rel) => {
            let files = entry::app_files(&project.dir)?;
            (files, vec![format!("{}/{rel}", entry::APP_DIR)])
        }
        Entry::Console { name, target } => {
            let uv = install::uv(python, store, progress)?;
            let installed = work.join("project");
            let source = copy.of(&project.dir)?;
            install::install_project(&uv, python, interp, platform, &source, &installed)?;
            let mut files = site_files(&installed, &interp.image_site()?)?;
            let launcher = work.join("launcher").join(name);
            write(&launcher, entry::launcher(target)?.as_bytes())?;
            let image = format!("{}/{name}", entry::APP_DIR);
            files.push((image.clone(), launcher));
            (files, vec![image])
        }
    };
    let pyc = bytecode::compile(
        python,
        &files,
        &work.join("app-pyc"),
        bytecode::Mode::Checked,
    )?;
    files.extend(pyc);
    files.sort();
    let native = native_of(&files);
    Ok((Files { files, native }, args))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), PythonError> {
    let err = |source| PythonError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(err)?;
    }
    std::fs::write(path, bytes).map_err(|source| PythonError::Write {
        path: path.to_path_buf(),
        source,
    })
}
