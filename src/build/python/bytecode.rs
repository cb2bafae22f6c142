//! Bytecode compiled at build time, hash-based (PEP 552), so that the same sources give the
//! same `.pyc` bytes and no import recompiles in the container.
//!
//! Why not timestamps: a timestamp `.pyc` records its source's mtime, and every file in the
//! image has the fixed mtime of SOURCE_DATE_EPOCH; Python then finds each one stale, and a
//! process that cannot write `__pycache__` (the image runs as 65532) recompiles every module in
//! memory on every start.
//!
//! Which hash mode: the standard library and the dependencies are `unchecked-hash`: the
//! interpreter loads the `.pyc` without reading the source again (as fast as it gets), and
//! nothing can change those files in a running image but a new layer, which brings its own
//! `.pyc`. The standard library goes further and ships sourceless: each `.pyc` sits where its
//! `.py` was (`os.pyc`, which the import system and getpath's landmark check both accept) and
//! the source stays out. Bytecode compresses worse than source, and both together were a third
//! of a flask image (10 MB of sources beside 11 MB of bytecode); the price is that a traceback
//! through the standard library shows no source line for its frames. The dependencies keep
//! their sources: their lines in a traceback are what a production log needs. The app's own files are `checked-hash`: the interpreter hashes the source on each
//! import (a few microseconds for an app's files), so a developer who mounts the project over
//! /app (`docker run -v $PWD:/app`) runs what they edited instead of stale bytecode.
//!
//! Determinism: one interpreter process compiles a sorted list with `PYTHONHASHSEED=0` (the
//! order of frozenset constants depends on string hashing), and the file names compiled into
//! the code objects are their image paths, not the host's.

use super::run::Py;
use super::PythonError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// PEP 552's invalidation modes that binpack uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Never compares with the source: the standard library and the dependencies.
    Unchecked,
    /// Compares the source's hash on import: the app's own files.
    Checked,
    /// Unchecked, written in place of the source (`os.py` -> `os.pyc`), which is not shipped:
    /// the standard library.
    Sourceless,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Unchecked | Mode::Sourceless => "UNCHECKED_HASH",
            Mode::Checked => "CHECKED_HASH",
        }
    }
}

/// Reads `src<TAB>image path` lines; writes each `.pyc` at `out` + its image path's
/// `__pycache__` name (or, with `beside`, the image path + `c`) and prints that image path. A file that does not compile (a Python 2
/// file some packages carry, a template named `.py`) is skipped, as pip's compileall does.
const SCRIPT: &str = r#"
import importlib.util, py_compile, sys
mode = py_compile.PycInvalidationMode[sys.argv[1]]
out = sys.argv[2]
beside = sys.argv[3] == "beside"
for line in sys.stdin.read().splitlines():
    src, image = line.split("\t")
    pyc = image + "c" if beside else importlib.util.cache_from_source(image)
    try:
        py_compile.compile(src, cfile=out + pyc, dfile=image, doraise=True, invalidation_mode=mode)
    except Exception:
        continue
    print(pyc)
"#;

/// How many interpreter processes compile at once. Fixed, not the machine's core count: which
/// files share a process is then the same everywhere, and so are the bytes (marshal's
/// back-references depend on what the process holds).
const PROCESSES: usize = 4;

/// Compiles `sources` (host path, image path) with `python` into the tree `out` (mirroring the
/// image's paths), and returns the `.pyc` files as (image path, host path).
pub fn compile(
    python: &Py,
    sources: &[(String, PathBuf)],
    out: &Path,
    mode: Mode,
) -> Result<Vec<(String, PathBuf)>, PythonError> {
    let mut sorted: Vec<&(String, PathBuf)> = sources
        .iter()
        .filter(|(image, _)| image.ends_with(".py"))
        .collect();
    sorted.sort();
    let per = sorted.len().div_ceil(PROCESSES).max(1);
    let children = sorted
        .chunks(per)
        .map(|chunk| spawn(python, chunk, out, mode))
        .collect::<Result<Vec<_>, _>>()?;
    let mut compiled = Vec::new();
    for child in children {
        compiled.extend(finish(child, out)?);
    }
    Ok(compiled)
}

/// A compiling process, fed its list on a thread.
struct Child {
    process: std::process::Child,
    feeder: std::thread::JoinHandle<std::io::Result<()>>,
}

fn spawn(
    python: &Py,
    chunk: &[&(String, PathBuf)],
    out: &Path,
    mode: Mode,
) -> Result<Child, PythonError> {
    let input: String = chunk
        .iter()
        .map(|(image, host)| format!("{}\t{image}\n", host.display()))
        .collect();
    let mut process = (python.python(None, &[("PYTHONHASHSEED", "0".into())]))
        .args(["-I", "-c", SCRIPT, mode.name()])
        .arg(out)
        .arg(if mode == Mode::Sourceless {
            "beside"
        } else {
            "cache"
        })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PythonError::Run {
            program: python.shown(),
            source,
        })?;
    let mut stdin = process.stdin.take().expect("piped stdin");
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    Ok(Child { process, feeder })
}

/// The `.pyc` files a process wrote, as (image path, host path).
fn finish(child: Child, out: &Path) -> Result<Vec<(String, PathBuf)>, PythonError> {
    let failed = |why: String| PythonError::Compile {
        dir: out.to_path_buf(),
        why,
    };
    let done = child
        .process
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    let _ = child.feeder.join();
    if !done.status.success() {
        return Err(failed(String::from_utf8_lossy(&done.stderr).trim().into()));
    }
    let listed = String::from_utf8_lossy(&done.stdout);
    Ok(listed
        .lines()
        .map(|pyc| (pyc.to_string(), out.join(pyc.trim_start_matches('/'))))
        .collect())
}
