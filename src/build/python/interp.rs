//! The interpreter's layout, read from the interpreter itself (one run of a small script over
//! `sys`, `sysconfig` and `site`), never guessed from paths: Debian's `/usr/bin/python3.11`
//! (libpython linked in, stdlib in /usr/lib/python3.11, site packages in
//! /usr/local/lib/python3.11/dist-packages) and a prefix install (pyenv, python-build-standalone:
//! `libpython3.X.so` beside it) differ in every path.

use super::run::Py;
use super::PythonError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What binpack reads of the interpreter. A virtual environment's `python` reports its base
/// interpreter: the venv itself (pip, setuptools, another interpreter's packages) never ships.
const SCRIPT: &str = r#"
import json, os, platform, site, sys, sysconfig
base = sys.base_prefix
exe = getattr(sys, "_base_executable", None) or sys.executable
print(json.dumps({
    "version": "%d.%d.%d" % sys.version_info[:3],
    "build": sys.version.replace("\n", " "),
    "implementation": sys.implementation.name,
    "cache_tag": sys.implementation.cache_tag,
    "executable": os.path.realpath(exe),
    "prefix": base,
    "stdlib": sysconfig.get_path("stdlib", vars={"installed_base": base, "base": base}),
    "dynload": [p for p in sys.path if os.path.basename(p) == "lib-dynload"],
    "site": site.getsitepackages([base]),
    "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX") or "",
    "machine": platform.machine(),
}))
"#;

/// The interpreter's layout on the host.
#[derive(Clone, Debug, Deserialize)]
pub struct Interp {
    /// `3.11.2`.
    pub version: String,
    /// `sys.version`: the build line, for the provenance.
    pub build: String,
    pub implementation: String,
    /// `cpython-311`: the name part of `__pycache__/*.pyc`.
    pub cache_tag: String,
    /// The real ELF (links resolved; a venv's base interpreter, not a pyenv shim).
    pub executable: PathBuf,
    /// `sys.base_prefix`.
    pub prefix: String,
    /// The pure standard library (`/usr/lib/python3.11`).
    pub stdlib: String,
    /// The extension modules' directory (`.../lib-dynload`).
    pub dynload: Vec<String>,
    /// Where `site` looks for installed packages, first the one pip installs into.
    pub site: Vec<String>,
    /// `.cpython-311-x86_64-linux-gnu.so`.
    pub ext_suffix: String,
    /// `x86_64`, `aarch64`.
    pub machine: String,
    /// The interpreter binpack runs for this one (it drives uv and compiles the bytecode):
    /// itself, on the host or in the toolchain container; or for another platform's in a root
    /// (platform.rs), the host's of the same version.
    #[serde(skip)]
    pub runner: Py,
    /// The root the paths above are in: `/` for the host's; the image has the root's layout.
    #[serde(skip)]
    pub root: PathBuf,
}

/// Where a prefix install's tree goes in the image (its build-time prefix, e.g. under
/// /root/.pyenv, would mean nothing there). Debian's /usr stays /usr.
pub const IMAGE_PREFIX: &str = "/opt/python";

impl Interp {
    /// Runs `py` once and reads its layout: in a container, the paths are the image's.
    pub fn read(py: &Py) -> Result<Interp, PythonError> {
        let python = &py.shown();
        let out = py
            .python(None, &[])
            .args(["-I", "-c", SCRIPT])
            .output()
            .map_err(|source| PythonError::Run {
                program: python.to_path_buf(),
                source,
            })?;
        if !out.status.success() {
            return Err(PythonError::NotPython {
                python: python.to_path_buf(),
                why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let interp: Interp =
            serde_json::from_slice(&out.stdout).map_err(|e| PythonError::NotPython {
                python: python.to_path_buf(),
                why: format!("unreadable answer to binpack's layout script: {e}"),
            })?;
        let mut interp = interp;
        interp.runner = Py {
            python: interp.executable.clone(),
            ..py.clone()
        };
        interp.root = PathBuf::from("/");
        if interp.implementation != "cpython" {
            return Err(PythonError::NotCPython {
                python: python.to_path_buf(),
                implementation: interp.implementation,
            });
        }
        Ok(interp)
    }

    /// `3.11` of `3.11.2`.
    pub fn minor(&self) -> &str {
        let mut dots = self.version.match_indices('.');
        match dots.nth(1) {
            Some((i, _)) => &self.version[..i],
            None => &self.version,
        }
    }

    /// The image's path for a host path under the interpreter's prefix.
    pub fn image_path(&self, host: &str) -> String {
        if self.root != Path::new("/") && !self.root.as_os_str().is_empty() {
            let rel = Path::new(host).strip_prefix(&self.root);
            return rel.map_or(host.to_string(), |r| format!("/{}", r.display()));
        }
        if self.prefix == "/usr" {
            return host.to_string();
        }
        match Path::new(host).strip_prefix(&self.prefix) {
            Ok(rel) if rel.as_os_str().is_empty() => IMAGE_PREFIX.to_string(),
            Ok(rel) => format!("{IMAGE_PREFIX}/{}", rel.display()),
            Err(_) => host.to_string(),
        }
    }

    /// Where the executable goes: its own path under the prefix (`/usr/bin/python3.11`,
    /// `/opt/python/bin/python3.11`): the interpreter finds its stdlib relative to itself.
    pub fn image_executable(&self) -> String {
        let host = self.executable.to_string_lossy();
        let mapped = self.image_path(&host);
        if mapped == host && self.prefix != "/usr" {
            return format!("{IMAGE_PREFIX}/bin/python{}", self.minor());
        }
        mapped
    }

    /// The site-packages directory the dependencies go to, as the image's interpreter sees
    /// it (`site` adds it to `sys.path` and reads its `.pth` files).
    pub fn image_site(&self) -> Result<String, PythonError> {
        let first = self
            .site
            .first()
            .ok_or_else(|| PythonError::NoSitePackages {
                python: self.executable.clone(),
            })?;
        Ok(self.image_path(first))
    }

    /// A file's size and modification time (a reinstall or an upgrade changes them).
    fn stamp(file: &Path) -> String {
        std::fs::metadata(file)
            .map(|m| {
                use std::os::unix::fs::MetadataExt;
                format!("{}:{}.{}", m.size(), m.mtime(), m.mtime_nsec())
            })
            .unwrap_or_default()
    }

    /// What the image's provenance says of it.
    pub fn describe(&self) -> String {
        format!("python {} ({})", self.version, self.build)
    }

    /// The bytes that name this interpreter in cache keys: its layout, and its executable's
    /// size and modification time (a reinstall or an upgrade changes them).
    pub fn identity(&self) -> String {
        let stamp = Interp::stamp(&self.executable);
        // Another platform's is packed with the host's runner, which compiles its bytecode;
        // a toolchain container's is known by its image.
        let runner = match (
            self.runner.in_container(),
            self.runner.python == self.executable,
        ) {
            (true, _) => format!("\n{}", self.runner.describe()),
            (false, true) => String::new(),
            (false, false) => format!(
                "\n{}\n{}",
                self.runner.python.display(),
                Interp::stamp(&self.runner.python)
            ),
        };
        format!(
            "{}\n{}\n{}\n{}\n{}{runner}",
            self.executable.display(),
            self.build,
            self.prefix,
            self.ext_suffix,
            stamp
        )
    }
}

#[cfg(test)]
impl Interp {
    /// A CPython 3.11 installed under `prefix`, on the host, for the python modules' tests.
    pub fn example(prefix: &str, exe: &str) -> Interp {
        Interp {
            version: "3.11.7".into(),
            build: "3.11.7".into(),
            implementation: "cpython".into(),
            cache_tag: "cpython-311".into(),
            executable: exe.into(),
            prefix: prefix.into(),
            stdlib: format!("{prefix}/lib/python3.11"),
            dynload: vec![],
            site: vec![format!("{prefix}/lib/python3.11/site-packages")],
            ext_suffix: ".cpython-311-x86_64-linux-gnu.so".into(),
            machine: "x86_64".into(),
            runner: Py::host(exe.into()),
            root: "/".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_install_moves_to_opt_python() {
        let p = Interp::example(
            "/root/.pyenv/versions/3.11.7",
            "/root/.pyenv/versions/3.11.7/bin/python3.11",
        );
        assert_eq!(p.image_executable(), "/opt/python/bin/python3.11");
        assert_eq!(
            p.image_site().unwrap(),
            "/opt/python/lib/python3.11/site-packages"
        );
        assert_eq!(p.minor(), "3.11");
    }

    #[test]
    fn debian_stays_in_usr() {
        let p = Interp::example("/usr", "/usr/bin/python3.11");
        assert_eq!(p.image_executable(), "/usr/bin/python3.11");
        assert_eq!(
            p.image_path("/usr/lib/python3.11/os.py"),
            "/usr/lib/python3.11/os.py"
        );
    }

    #[test]
    fn a_roots_paths_lose_the_root() {
        let mut p = Interp::example("/usr", "/srv/arm64/usr/bin/python3.11");
        p.root = "/srv/arm64".into();
        p.site = vec!["/srv/arm64/usr/local/lib/python3.11/dist-packages".into()];
        assert_eq!(p.image_executable(), "/usr/bin/python3.11");
        assert_eq!(
            p.image_site().unwrap(),
            "/usr/local/lib/python3.11/dist-packages"
        );
    }
}
