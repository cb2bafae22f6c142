//! The dependencies, installed by binpack itself into a private directory (never the user's
//! virtual environment, which holds pip and setuptools and may belong to another
//! interpreter), with uv: pinned in runtimes/toolchains.json and installed into binpack's cache
//! with the interpreter's pip, as node's esbuild is with npm. uv installs flask's seven
//! packages in ~0.5 s where `python -m venv` + `pip install -r` takes ~11 s here.
//!
//! The installed tree is a cache entry known by what decides it: the requirements (and
//! lockfile) bytes, the interpreter and the platform. A rebuild of an unchanged project
//! installs nothing.

use super::interp::Interp;
use super::run::Py;
use super::PythonError;
use crate::build::toolchain::{cache_entry, pinned};
use crate::support::platform::Platform;
use crate::support::progress::Progress;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The pinned uv version.
pub fn uv_version() -> String {
    pinned()["uv"]["version"]
        .as_str()
        .expect("uv version pinned")
        .to_string()
}

/// The pinned uv, installed once into `cache` with `python -m pip`; else a `uv` on PATH (on
/// the host: a toolchain container has only what binpack installs).
pub fn uv(python: &Py, cache: &Path, progress: &dyn Progress) -> Result<PathBuf, PythonError> {
    let version = uv_version();
    let dir = cache.join("python/uv").join(&version);
    let bin = dir.join("bin/uv");
    if bin.is_file() {
        return Ok(bin);
    }
    progress.stage(&format!("installing uv {version} with pip (once)"));
    let installed = cache_entry(&dir, |tmp| -> Result<(), PythonError> {
        let spec = format!("uv=={version}");
        let args = ["-m", "pip", "install", "--quiet", "--no-deps", "--target"];
        let mut cmd = python.python(None, &[]);
        cmd.args(args).arg(tmp).arg(&spec);
        run(cmd, &format!("python -m pip install {spec}")).map(|_| ())
    });
    let no_uv = |e: PythonError| PythonError::NoUv {
        python: python.python.clone(),
        why: e.to_string(),
    };
    match installed {
        Ok(_) => Ok(bin),
        Err(e) if python.in_container() => Err(no_uv(e)),
        Err(e) => which::which("uv").map_err(|_| no_uv(e)),
    }
}

/// uv never downloads an interpreter: it installs for the one binpack packs.
fn uv_env() -> [(&'static str, String); 1] {
    [("UV_PYTHON_DOWNLOADS", "never".into())]
}

/// Runs `cmd`, its stdout onto binpack's stderr (so `--json` keeps stdout clean), and its
/// stderr shown and kept for the error.
pub fn run(mut cmd: Command, what: &str) -> Result<String, PythonError> {
    cmd.stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::piped());
    let program = PathBuf::from(cmd.get_program());
    let out = cmd
        .output()
        .map_err(|source| PythonError::Run { program, source })?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(PythonError::Install {
            what: what.to_string(),
            output: stderr.trim().to_string(),
            hint: build_hint(&stderr),
        });
    }
    Ok(stderr)
}

/// The compiler a failed build could not run (`error: command 'g++' failed: No such file or
/// directory`, as setuptools words it), if that is why it failed.
fn missing_compiler(output: &str) -> Option<String> {
    let compilers = ["gcc", "g++", "cc", "c++", "clang", "clang++"];
    for line in output
        .lines()
        .filter(|l| l.contains("No such file or directory") || l.contains("not found"))
    {
        let named = line
            .split('\'')
            .nth(1)
            .or_else(|| line.split(':').next().map(str::trim));
        // `g++`, `/usr/bin/gcc`, or Debian's `x86_64-linux-gnu-g++` that sysconfig names.
        let is_compiler = |n: &str| {
            let base = n.rsplit('/').next().unwrap_or(n);
            (compilers.iter()).any(|c| base == *c || base.ends_with(&format!("-linux-gnu-{c}")))
        };
        if let Some(cc) = named.filter(|n| is_compiler(n)) {
            return Some(cc.to_string());
        }
    }
    None
}

/// What to do when an sdist did not build, from what its build printed.
fn build_hint(output: &str) -> String {
    if let Some(cc) = missing_compiler(output) {
        // Debian's package of each compiler name setuptools runs.
        let package = if cc.contains("++") { "g++" } else { "gcc" };
        return format!("a source distribution needs the compiler {cc}, which is not installed: apt-get install {package}, or pin a version with a wheel for this platform");
    }
    if let Some(h) = output
        .split_whitespace()
        .find(|w| w.ends_with(".h:") || w.ends_with(".h'"))
    {
        return format!("a source distribution needs the headers {}: install the -dev package that has them (apt-file search), or pin a version with a wheel", h.trim_end_matches([':', '\'']));
    }
    "its output is above".into()
}

/// What decides the installed tree: the bytes of the requirements (and the lockfile beside
/// them), the interpreter, the platform and the installer.
pub fn key(
    requirements: &Path,
    interp: &Interp,
    platform: &Platform,
) -> Result<String, PythonError> {
    let mut h = Sha256::new();
    h.update(b"binpack-python-deps/1\n");
    h.update(uv_version().as_bytes());
    h.update(interp.identity().as_bytes());
    h.update(platform.to_string().as_bytes());
    let dir = requirements.parent().unwrap_or(Path::new("."));
    for file in [requirements.to_path_buf(), dir.join("uv.lock")] {
        if let Ok(bytes) = std::fs::read(&file) {
            h.update(file.to_string_lossy().as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
    }
    Ok(format!("{:x}", h.finalize()))
}

/// uv's flags for `platform` when it is not the host's (the interpreter is then another
/// platform's, taken from its root): wheels only, tagged for it, since nothing can be compiled
/// for it here.
fn platform_args(interp: &Interp, platform: &Platform) -> Vec<String> {
    if super::platform::machine(platform) == std::env::consts::ARCH {
        return vec![];
    }
    vec![
        "--python-platform".into(),
        super::platform::python_platform(platform, &interp.root),
        "--python-version".into(),
        interp.version.clone(),
        "--only-binary".into(),
        ":all:".into(),
    ]
}

/// Runs an install for `platform`; a failure for another platform's says that only wheels
/// can be installed for it.
fn run_for(
    cmd: Command,
    what: &str,
    interp: &Interp,
    platform: &Platform,
) -> Result<(), PythonError> {
    let (what, output, hint) = match run(cmd, what) {
        Ok(_) => return Ok(()),
        Err(PythonError::Install { what, output, hint }) => (what, output, hint),
        Err(e) => return Err(e),
    };
    let args = platform_args(interp, platform);
    let compiler = || Some((interp.runner.image()?, missing_compiler(&output)?));
    let hint = if !args.is_empty() {
        format!("binpack installs only wheels for {platform} (it builds nothing for another platform): a package above has no wheel tagged {} for Python {}; pin a version that has one, or build this platform's image on a {platform} machine", args[1], interp.minor())
    } else if let Some((image, cc)) = compiler() {
        format!("a source distribution needs the compiler {cc}, which the toolchain image {image} does not have: name an image that has it (--toolchain-image python:3.11-bookworm, the full one), or pin a version with a wheel for this platform")
    } else {
        hint
    };
    Err(PythonError::Install { what, output, hint })
}

/// Installs what `requirements` lists (a requirements file, or pyproject.toml's
/// `[project] dependencies`, at the versions its uv.lock pins when it has one) for `python`
/// into `target`.
pub fn install(
    uv: &Path,
    python: &Py,
    interp: &Interp,
    platform: &Platform,
    requirements: &Path,
    target: &Path,
) -> Result<(), PythonError> {
    let dir = requirements.parent().unwrap_or(Path::new("."));
    let out = target.with_file_name("uv-lock.txt");
    let locked = locked(uv, python, requirements, &out)?;
    let requirements = locked.as_deref().unwrap_or(requirements);
    let mut cmd = python.command(uv, Some(dir), &uv_env());
    cmd.args(["pip", "install", "--no-progress", "--python"])
        .arg(&python.python)
        .arg("--target")
        .arg(target)
        .args(platform_args(interp, platform))
        .arg("-r")
        .arg(requirements);
    let name = requirements
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    run_for(cmd, &format!("uv pip install -r {name}"), interp, platform)
}

/// The requirements `uv.lock` pins, written to `out`, when `requirements` is a pyproject.toml
/// with a uv.lock beside it: `uv export --frozen` reads the lockfile as it is (no resolution,
/// no index), so the image gets exactly the locked versions, as `uv sync --frozen` would.
fn locked(
    uv: &Path,
    python: &Py,
    requirements: &Path,
    out: &Path,
) -> Result<Option<PathBuf>, PythonError> {
    let dir = requirements.parent().unwrap_or(Path::new("."));
    let is_pyproject = requirements.file_name() == Some("pyproject.toml".as_ref());
    if !is_pyproject || !dir.join("uv.lock").is_file() {
        return Ok(None);
    }
    let mut cmd = python.command(uv, Some(dir), &uv_env());
    cmd.args(["export", "--frozen", "--format", "requirements-txt"])
        .args([
            "--no-emit-project",
            "--no-dev",
            "--no-header",
            "--no-annotate",
            "-o",
        ])
        .arg(out);
    run(cmd, "uv export --frozen (uv.lock's pins)")?;
    Ok(Some(out.to_path_buf()))
}

/// Installs the project in `dir` itself (built by its build backend), without its
/// dependencies, into `target`.
pub fn install_project(
    uv: &Path,
    python: &Py,
    interp: &Interp,
    platform: &Platform,
    dir: &Path,
    target: &Path,
) -> Result<(), PythonError> {
    let mut cmd = python.command(uv, Some(dir), &uv_env());
    cmd.args(["pip", "install", "--no-progress", "--no-deps", "--python"])
        .arg(&python.python)
        .arg("--target")
        .arg(target)
        .args(platform_args(interp, platform))
        .arg(dir);
    run_for(cmd, "uv pip install (the project itself)", interp, platform)?;
    forget_source_path(target)
}

/// What an install from a local directory records about that directory: PEP 610's
/// `direct_url.json` (`file:///home/me/src/app`) and uv's `uv_cache.json` (the sources'
/// modification time).
const SOURCE_RECORDS: [&str; 2] = ["direct_url.json", "uv_cache.json"];

/// Removes [`SOURCE_RECORDS`] and their lines in RECORD: the build machine's path would reach
/// the image, and the same project checked out elsewhere, or touched, would give another
/// digest.
fn forget_source_path(target: &Path) -> Result<(), PythonError> {
    for file in SOURCE_RECORDS {
        forget_record(target, file)?;
    }
    Ok(())
}

/// Removes `file` from each `*.dist-info` of `target`, and its line from that RECORD.
fn forget_record(target: &Path, file: &str) -> Result<(), PythonError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PythonError::Read { path, source }
    };
    for e in std::fs::read_dir(target)
        .map_err(read_err(target))?
        .flatten()
    {
        let dist_info = e.path();
        let url = dist_info.join(file);
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".dist-info") || !url.is_file() {
            continue;
        }
        let write_err = |source| PythonError::Write {
            path: url.clone(),
            source,
        };
        std::fs::remove_file(&url).map_err(write_err)?;
        let record = dist_info.join("RECORD");
        if let Ok(text) = std::fs::read_to_string(&record) {
            let gone = format!("{name}/{file},");
            let kept: String = text
                .lines()
                .filter(|l| !l.starts_with(&gone))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(&record, kept).map_err(|source| PythonError::Write {
                path: record.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_compiler_is_named() {
        let gpp = "  error: command 'g++' failed: No such file or directory\n";
        assert!(
            build_hint(gpp).contains("the compiler g++"),
            "{}",
            build_hint(gpp)
        );
        assert!(build_hint(gpp).contains("apt-get install g++"));
        let triplet = "error: [Errno 2] No such file or directory: 'x86_64-linux-gnu-g++'\n";
        assert!(
            build_hint(triplet).contains("the compiler x86_64-linux-gnu-g++"),
            "{}",
            build_hint(triplet)
        );
        let gcc = "gcc: not found";
        assert!(
            build_hint(gcc).contains("apt-get install gcc"),
            "{}",
            build_hint(gcc)
        );
        assert!(
            !build_hint("fatal error: Python.h: No such file or directory").contains("compiler")
        );
    }
}
