//! Where the build's Python programs run: the interpreter (and uv, which it installs) on the
//! host, or in a toolchain container (`--toolchain docker|podman`) that sees the project,
//! binpack's cache and the build's temporary directory at their host paths, so that every
//! command is written the same way for both.

use super::entry::Project;
use super::interp::Interp;
use super::{PythonBuild, PythonError};
use crate::base::root::root_path_of;
use crate::build::toolchain::{Mirrored, Toolchain};
use crate::build::BuildCx;
use crate::support::platform::Platform;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the commands run.
#[derive(Clone, Debug, Default)]
pub enum Place {
    #[default]
    Host,
    Container(Mirrored),
}

/// The interpreter that runs the build's Python programs, and where.
#[derive(Clone, Debug, Default)]
pub struct Py {
    /// A host path, or one in the container's image (`python3`, looked up on its PATH).
    pub python: PathBuf,
    pub place: Place,
    /// Variables every command gets (the container's uv cache).
    pub env: Vec<(&'static str, String)>,
}

impl Py {
    pub fn host(python: PathBuf) -> Py {
        Py {
            python,
            ..Py::default()
        }
    }

    /// The interpreter, run from `cwd` (None: anywhere) with `env` added; the caller adds
    /// its arguments.
    pub fn python(&self, cwd: Option<&Path>, env: &[(&str, String)]) -> Command {
        self.command(&self.python, cwd, env)
    }

    /// `program` (a host path the container sees too: uv in binpack's cache), the same way.
    pub fn command(&self, program: &Path, cwd: Option<&Path>, env: &[(&str, String)]) -> Command {
        let env: Vec<(&str, String)> = (self.env.iter().cloned())
            .chain(env.iter().cloned())
            .collect();
        let env = env.as_slice();
        match &self.place {
            Place::Host => {
                let mut c = Command::new(program);
                if let Some(d) = cwd {
                    c.current_dir(d);
                }
                c.envs(env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
                c
            }
            Place::Container(m) => m.command(OsStr::new(program), &[], cwd, env),
        }
    }

    /// The same interpreter, its container also seeing `dirs` (writable or not).
    pub fn seeing(&self, dirs: &[(&Path, bool)]) -> Py {
        let mut py = self.clone();
        if let Place::Container(m) = &mut py.place {
            for (dir, writable) in dirs {
                let covered = m
                    .mounts
                    .iter()
                    .any(|(d, w)| dir.starts_with(d) && (*w || !writable));
                if !covered {
                    m.mounts.push((dir.to_path_buf(), *writable));
                }
            }
        }
        py
    }

    pub fn in_container(&self) -> bool {
        matches!(self.place, Place::Container(_))
    }

    /// What a message names as the program run: the interpreter, or in a container the
    /// engine running it there.
    pub fn shown(&self) -> PathBuf {
        match &self.place {
            Place::Host => self.python.clone(),
            Place::Container(m) => PathBuf::from(format!(
                "{} run {} {}",
                m.container.engine,
                m.container.image,
                self.python.display()
            )),
        }
    }

    /// The toolchain image it runs in, if any.
    pub fn image(&self) -> Option<String> {
        match &self.place {
            Place::Host => None,
            Place::Container(m) => Some(m.container.image.clone()),
        }
    }

    /// What names where it runs, for cache keys and messages: empty on the host.
    pub fn describe(&self) -> String {
        match &self.place {
            Place::Host => String::new(),
            Place::Container(m) => m.container.describe(),
        }
    }
}

/// The interpreter for `spec` and the root its files come from, as the toolchain says: the
/// host's (`--python`, else the python3 on PATH) with `--root`'s root or `/`; or the toolchain
/// image's python3, whose filesystem, exported
/// once into binpack's cache, is the root: the interpreter, its standard library and the
/// libraries they load are the image's, as a multi-stage Dockerfile's `COPY --from` would take.
pub fn select(
    spec: &PythonBuild,
    platform: &Platform,
    cx: &BuildCx,
) -> Result<(Py, PathBuf), PythonError> {
    let c = match cx.toolchain {
        Toolchain::Host => {
            let root = cx.root_of(platform).unwrap_or(Path::new("/"));
            return Ok((Py::host(super::python(spec)?), root.to_path_buf()));
        }
        Toolchain::Container(c) => c,
    };
    if cx.root_of(platform).is_some() {
        return Err(PythonError::ContainerRoot {
            platform: platform.clone(),
        });
    }
    if platform.arch != Platform::host().arch {
        return Err(PythonError::ContainerPlatform {
            platform: platform.clone(),
        });
    }
    let root = c.filesystem_root(cx.progress)?;
    let python = PathBuf::from("python3");
    let place = Place::Container(Mirrored {
        container: c.clone(),
        mounts: vec![(root.clone(), false)],
    });
    let env = vec![];
    Ok((Py { python, place, env }, root))
}

/// The layout a toolchain image's interpreter reported (its own paths), as paths into `root`,
/// the image's filesystem exported on the host.
pub fn in_root(
    mut interp: Interp,
    root: &Path,
    platform: &Platform,
) -> Result<Interp, PythonError> {
    if interp.machine != super::platform::machine(platform) {
        return Err(PythonError::ContainerPlatform {
            platform: platform.clone(),
        });
    }
    inside(&interp, root)?;
    let join = |p: &str| root.join(p.trim_start_matches('/'));
    let joined = |p: &str| join(p).to_string_lossy().into_owned();
    interp.executable = join(&interp.executable.to_string_lossy());
    interp.stdlib = joined(&interp.stdlib);
    interp.dynload = interp.dynload.iter().map(|d| joined(d)).collect();
    interp.site = interp.site.iter().map(|d| joined(d)).collect();
    if let Place::Container(m) = &interp.runner.place {
        let c = &m.container;
        interp.build = format!("{}, in {} {}", interp.build, c.engine, c.image);
    }
    interp.root = root.to_path_buf();
    Ok(interp)
}

/// Refuses a layout whose paths would leave the image's filesystem: `..` in what the image's
/// python3 printed, or an executable or stdlib that resolves outside the export (an image is
/// trusted as a toolchain, not to read this machine's files into an image).
fn inside(interp: &Interp, root: &Path) -> Result<(), PythonError> {
    let refuse = |what: &str, path: &Path| PythonError::NotPython {
        python: interp.runner.shown(),
        why: format!(
            "its {what} {} lies outside its image's filesystem",
            path.display()
        ),
    };
    let named = [
        ("executable", interp.executable.clone()),
        ("standard library", PathBuf::from(&interp.stdlib)),
    ];
    let others =
        (interp.dynload.iter().chain(&interp.site)).map(|d| ("directory", PathBuf::from(d)));
    for (what, path) in named.into_iter().chain(others) {
        let dotdot = path
            .components()
            .any(|c| c == std::path::Component::ParentDir);
        let joined = root.join(path.strip_prefix("/").unwrap_or(&path));
        // One that is missing is named where the build reads it.
        let escapes = joined.exists() && root_path_of(root, &joined).is_none();
        if dotdot || escapes {
            return Err(refuse(what, &path));
        }
    }
    Ok(())
}

impl Py {
    /// Where this interpreter's builds keep what they remember, in binpack's cache `store`: a
    /// container's has its own part, per image, and sees only that (the sdists it builds run
    /// their own code: they must not reach what the host runs or other images are made of).
    pub fn store_in(&self, store: &Path) -> Result<PathBuf, PythonError> {
        if !self.in_container() {
            return Ok(store.to_path_buf());
        }
        let own = store
            .join("python/containers")
            .join(&super::digest(&self.describe())[..32]);
        std::fs::create_dir_all(&own).map_err(|source| PythonError::Write {
            path: own.clone(),
            source,
        })?;
        Ok(own)
    }

    /// The same, its container seeing what a build of `project` reads and writes: the
    /// project and its requirements (read-only), the build's temporary directory `work` and
    /// the container's own part of binpack's cache `store` (writable; uv's cache is there
    /// too).
    pub fn for_project(&self, project: &Project, work: &Path, store: &Path) -> Py {
        if !self.in_container() {
            return self.clone();
        }
        let requirements = project.requirements.as_deref().and_then(Path::parent);
        let mut dirs = vec![(project.dir.as_path(), false)];
        dirs.extend(requirements.map(|r| (r, false)));
        dirs.extend([(work, true), (store, true)]);
        let passed = passed_env();
        // uv's lists are comma-separated, pip's space-separated.
        let paths = passed.iter().flat_map(|(_, v)| v.split([',', ' ']));
        dirs.extend(
            paths
                .map(Path::new)
                .filter(|p| p.is_absolute() && p.exists())
                .map(|p| (p, false)),
        );
        let mut py = self.seeing(&dirs);
        let uv_cache = store.join("python/uv-cache");
        py.env
            .push(("UV_CACHE_DIR", uv_cache.to_string_lossy().into_owned()));
        py.env.extend(passed);
        py
    }
}

/// What the caller set for the installers that the container needs too: where packages come
/// from (an index or a mirror, a local wheel directory, offline) and the CA bundle that a
/// TLS-inspecting proxy needs; a path among them is mounted too.
const PASS_ENV: &[&str] = &[
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_OFFLINE",
    "UV_NATIVE_TLS",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_CERT",
    "SSL_CERT_FILE",
];

fn passed_env() -> Vec<(&'static str, String)> {
    PASS_ENV
        .iter()
        .filter_map(|k| Some((*k, std::env::var(k).ok().filter(|v| !v.is_empty())?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::toolchain::Container;

    #[test]
    fn an_image_s_layout_that_leaves_its_filesystem_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib/python3.11")).unwrap();
        std::fs::write(root.join("usr/bin/python3.11"), "elf").unwrap();
        let layout = |exe: &str| Interp::example("/usr", exe);
        assert!(inside(&layout("/usr/bin/python3.11"), root).is_ok());
        let err = inside(&layout("/usr/../../../etc/passwd"), root).unwrap_err();
        assert!(
            err.to_string().contains("outside its image's filesystem"),
            "{err}"
        );
        std::os::unix::fs::symlink("/etc/hostname", root.join("usr/bin/python3")).unwrap();
        assert!(inside(&layout("/usr/bin/python3"), root).is_err());
    }

    #[test]
    fn a_container_sees_each_directory_once_and_writes_only_where_asked() {
        let c = Container::for_tests();
        let py = Py {
            python: "python3".into(),
            place: Place::Container(Mirrored {
                container: c,
                mounts: vec![("/cache/roots/x".into(), false)],
            }),
            env: vec![],
        };
        let seen = py.seeing(&[
            (Path::new("/cache/roots/x/usr"), false),
            (Path::new("/cache/roots/x/tmp"), true),
            (Path::new("/home/u/app"), false),
            (Path::new("/home/u/app"), false),
        ]);
        let Place::Container(m) = &seen.place else {
            panic!("a container")
        };
        let want: Vec<(PathBuf, bool)> = vec![
            ("/cache/roots/x".into(), false),
            ("/cache/roots/x/tmp".into(), true),
            ("/home/u/app".into(), false),
        ];
        assert_eq!(m.mounts, want);
        assert!(Py::host("python3".into())
            .seeing(&[(Path::new("/x"), true)])
            .env
            .is_empty());
    }
}
