//! The Python corpus (issue 21): real PyPI projects nobody on this project wrote, pinned with
//! hashes in tests/corpus/python/<case>/requirements.txt (or a pyproject.toml for the console
//! script), each built with `binpack python` from the `python3` on PATH, loaded into docker,
//! run, and checked on what it prints or serves: the lines of the case's expected.txt, which
//! the same app printed in a fresh `python3 -m venv` + `pip install -r requirements.txt`.
//! Each case is built twice (the digests must match), and the interpreter layer (the first) of
//! every image must be the same blob. Every case runs; the test prints a table (case,
//! compressed and uncompressed size, the seed's multi-stage image where there is one, result)
//! and fails at the end naming each failure. A second test checks each refusal: exit 1, the
//! cause named, no archive and nothing else left behind.

mod common;

use common::corpus::{
    self, binpack_python, python_case as corpus_dir, python_wheels as wheelhouse,
};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a case must do in its container.
enum Check {
    /// Run to its end (these `docker run` arguments after the image) and print every line of
    /// expected.txt.
    Prints(&'static [&'static str]),
    /// Serve on `$PORT` (host network): GET each path answers 200, and the answers hold every
    /// line of expected.txt.
    Serves(&'static [&'static str]),
}

struct Case {
    /// Its directory under tests/corpus/python.
    dir: &'static str,
    covers: &'static str,
    /// What `binpack python` is given, relative to the case directory ("." = the directory).
    entry: &'static str,
    /// The image's default arguments (after `--`).
    args: &'static [&'static str],
    check: Check,
    /// The seed's multi-stage image of the same stack, MB (the write-ups).
    seed_mb: Option<f64>,
}

const CASES: &[Case] = &[
    Case {
        dir: "flask",
        covers: "seed 3: Flask on werkzeug, markupsafe speedups",
        entry: "app.py",
        args: &[],
        check: Check::Serves(&["/"]),
        seed_mb: Some(65.8),
    },
    Case {
        dir: "aiohttp-crypto",
        covers: "seed 2: aiohttp + cryptography (own OpenSSL)",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[]),
        seed_mb: Some(70.5),
    },
    Case {
        dir: "pyodbc",
        covers: "seed 1: pyodbc wheel, system libodbc.so.2",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[]),
        seed_mb: Some(128.0),
    },
    Case {
        dir: "fastapi",
        covers: "FastAPI served by uvicorn",
        entry: "app.py",
        args: &[],
        check: Check::Serves(&["/"]),
        seed_mb: None,
    },
    Case {
        dir: "django",
        covers: "Django runserver: a template and a static file",
        entry: "app.py",
        args: &[],
        check: Check::Serves(&["/", "/static/corpus.css"]),
        seed_mb: None,
    },
    Case {
        dir: "numpy",
        covers: "numpy, OpenBLAS vendored in numpy.libs",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[]),
        seed_mb: None,
    },
    Case {
        dir: "pydantic",
        covers: "pydantic-core, a Rust extension",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[]),
        seed_mb: None,
    },
    Case {
        dir: "lxml",
        covers: "lxml: XPath and XSLT",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[]),
        seed_mb: None,
    },
    Case {
        dir: "pillow",
        covers: "Pillow: PNG, JPEG, WebP codecs in pillow.libs",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[]),
        seed_mb: None,
    },
    Case {
        dir: "sqlalchemy",
        covers: "SQLAlchemy ORM on the stdlib's sqlite3",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[]),
        seed_mb: None,
    },
    Case {
        dir: "psycopg",
        covers: "psycopg[binary], libpq in psycopg_binary.libs",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[]),
        seed_mb: None,
    },
    Case {
        dir: "click-cli",
        covers: "click console script by DIR (pyproject)",
        entry: ".",
        args: &["greet", "--name", "corpus", "--count", "2"],
        check: Check::Prints(&[]),
        seed_mb: None,
    },
    Case {
        dir: "uv-lock",
        covers: "uv.lock's pins, older than pyproject's ranges allow",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[]),
        seed_mb: None,
    },
    Case {
        dir: "stdlib-dynamic",
        covers: "stdlib extensions imported by names from argv",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[
            "sqlite3", "ssl", "lzma", "bz2", "ctypes", "zoneinfo", "decimal", "uuid", "hashlib",
        ]),
        seed_mb: None,
    },
    Case {
        dir: "mmh3-sdist",
        covers: "sdist compiled at build time (mmh3 3.0.0)",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[]),
        seed_mb: None,
    },
    Case {
        dir: RTMIDI,
        covers: "wheel needing the system's libasound.so.2",
        entry: "app.py",
        args: &[],
        check: Check::Prints(&[]),
        seed_mb: None,
    },
];

/// The case whose wheel needs a system library (ALSA) that a fresh Debian does not have: where
/// the root has it, the image must run; where it does not, the build must refuse naming it.
const RTMIDI: &str = "rtmidi-alsa";
const ALSA: &str = "libasound.so.2";

/// `binpack python` of a case into `archive`, tagged `tag`.
fn build_cmd(case: &Case, tag: &str, archive: &Path) -> Command {
    let mut c = binpack_python();
    c.arg(corpus_dir(case.dir).join(case.entry))
        .args(["--json", "--quiet", "-t", tag, "-o"])
        .arg(archive);
    if !case.args.is_empty() {
        c.arg("--").args(case.args);
    }
    c
}

/// The root's directory of shared libraries for this machine's architecture.
fn root_has(lib: &str) -> bool {
    let triple = format!("{}-linux-gnu", std::env::consts::ARCH);
    ["/usr/lib", "/lib"]
        .iter()
        .any(|d| Path::new(d).join(&triple).join(lib).exists())
}

/// One line of the table.
struct Row {
    case: &'static str,
    covers: &'static str,
    compressed: Option<u64>,
    uncompressed: Option<u64>,
    seed_mb: Option<f64>,
    build_secs: Option<f64>,
    rebuild_secs: Option<f64>,
    /// The first layer's digest (the interpreter's), and how many layers the image has.
    runtime_layer: Option<(String, usize)>,
    result: Result<(), String>,
}

#[test]
#[ignore = "needs docker and python"]
fn python_corpus_runs_in_its_images() {
    need(&["python3", "timeout"]);
    need_docker();
    let tmp = tempfile::tempdir().unwrap();
    let rows: Vec<Row> = CASES.iter().map(|c| run_case(c, tmp.path())).collect();
    println!("{}", table(&rows));
    let runtime = shared_runtime(&rows);
    corpus::assert_all_passed(rows.iter().map(|r| (r.case, &r.result)));
    runtime.unwrap();
}

/// The interpreter layer is the same blob for every app on the same Python and platform.
fn shared_runtime(rows: &[Row]) -> Result<(), String> {
    let layers: Vec<(&str, &String)> = rows
        .iter()
        .filter_map(|r| r.runtime_layer.as_ref().map(|(d, _)| (r.case, d)))
        .collect();
    let Some((first, digest)) = layers.first() else {
        return Err("no image was built, so no runtime layer to compare".into());
    };
    let other: Vec<String> = layers
        .iter()
        .filter(|(_, d)| d != digest)
        .map(|(c, d)| format!("{c} {}", short(d)))
        .collect();
    println!(
        "runtime layer: {} in {} of {} images",
        short(digest),
        layers.len() - other.len(),
        layers.len()
    );
    if other.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the first (interpreter) layer differs from {first}'s {}: {}",
        short(digest),
        other.join(", ")
    ))
}

fn run_case(case: &'static Case, tmp: &Path) -> Row {
    let mut row = Row {
        case: case.dir,
        covers: case.covers,
        compressed: None,
        uncompressed: None,
        seed_mb: case.seed_mb,
        build_secs: None,
        rebuild_secs: None,
        runtime_layer: None,
        result: Ok(()),
    };
    row.result = build_and_check(case, tmp, &mut row);
    row
}

fn build_and_check(case: &Case, tmp: &Path, row: &mut Row) -> Result<(), String> {
    let stamp = wheelhouse().join(format!(".{}.stamp", case.dir));
    if !stamp.is_file() {
        return Err(format!(
            "{} is missing: run scripts/install-deps.sh all",
            stamp.display()
        ));
    }
    let expected = std::fs::read_to_string(corpus_dir(case.dir).join("expected.txt"))
        .map_err(|e| format!("expected.txt: {e}"))?;
    let wanted: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
    let tag = format!("binpack-py-corpus/{}:it", case.dir);
    let name = format!("binpack-py-corpus-{}-{}", case.dir, std::process::id());
    let _cleanup = DockerCleanup(vec![name.clone(), tag.clone()]);
    let archive = tmp.join(format!("{}.tar", case.dir));
    if case.dir == RTMIDI && !root_has(ALSA) {
        return refuses_missing_alsa(case, &tag, &archive);
    }
    let started = std::time::Instant::now();
    let summary = corpus::build(&mut build_cmd(case, &tag, &archive))?;
    row.build_secs = Some(started.elapsed().as_secs_f64());
    row.compressed = summary["size"]["compressed"].as_u64();
    row.uncompressed = summary["size"]["uncompressed"].as_u64();
    row.runtime_layer = Some(runtime_layer(&archive));
    let started = std::time::Instant::now();
    let again = corpus::build(&mut build_cmd(case, &tag, &tmp.join("again.tar")))?;
    row.rebuild_secs = Some(started.elapsed().as_secs_f64());
    if summary["digest"] != again["digest"] {
        return Err(format!(
            "two builds gave two digests: {} and {}",
            summary["digest"], again["digest"]
        ));
    }
    corpus::load(&archive, &tag)?;
    let text = match case.check {
        Check::Prints(args) => corpus::run(&tag, &name, &[], args, None)?,
        Check::Serves(paths) => corpus::serves_on_free_port(&tag, &name, &[], paths)?,
    };
    corpus::expect(&text, &wanted)
}

/// Where the root lacks ALSA, `binpack python` refuses the rtmidi app: exit 1, naming the
/// library and the extension that needs it, and no archive.
fn refuses_missing_alsa(case: &Case, tag: &str, archive: &Path) -> Result<(), String> {
    let out = build_cmd(case, tag, archive)
        .output()
        .map_err(|e| format!("running binpack: {e}"))?;
    let err = stderr(&out);
    if out.status.code() != Some(1) || !err.contains(ALSA) || !err.contains("rtmidi") {
        return Err(format!(
            "the root has no {ALSA}: wanted exit 1 naming it and rtmidi, got {:?}: {}",
            out.status.code(),
            corpus::last_line(&err)
        ));
    }
    if archive.exists() {
        return Err(format!("refused, yet {} was written", archive.display()));
    }
    Ok(())
}

/// The first layer of the image in a binpack archive, and the number of layers.
fn runtime_layer(archive: &Path) -> (String, usize) {
    let manifest = ArchiveFiles::open(archive).manifest();
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    let first = layers
        .first()
        .and_then(|l| l["digest"].as_str())
        .unwrap_or("-")
        .to_string();
    (first, layers.len())
}

fn short(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

fn table(rows: &[Row]) -> String {
    let mut t = format!(
        "\n{:<15} {:<48} {:>9} {:>9} {:>9} {:>7} {:>7} {:>15}  result\n",
        "case", "covers", "compr.", "uncompr.", "seed", "build", "again", "runtime layer"
    );
    for r in rows {
        let seed = r.seed_mb.map_or("-".into(), |s| format!("{s:.1} MB"));
        let secs = |s: Option<f64>| s.map_or("-".into(), |s| format!("{s:.1} s"));
        let layer = r
            .runtime_layer
            .as_ref()
            .map_or("-".into(), |(d, n)| format!("{} /{n}", short(d)));
        let result = match &r.result {
            Ok(()) => "pass".to_string(),
            Err(e) => format!("FAIL {e}"),
        };
        t += &format!(
            "{:<15} {:<48} {:>9} {:>9} {seed:>9} {:>7} {:>7} {layer:>15}  {result}\n",
            r.case,
            r.covers,
            mb(r.compressed),
            mb(r.uncompressed),
            secs(r.build_secs),
            secs(r.rebuild_secs),
        );
    }
    let passed = rows.iter().filter(|r| r.result.is_ok()).count();
    t + &format!("{passed} of {} cases pass\n", rows.len())
}

/// What a refusal must say: each entry is a set of alternatives, one of which must be in
/// binpack's stderr (an installer's wording differs between pip and uv).
type Wanted = &'static [&'static [&'static str]];

/// Each way `binpack python` must refuse: exit 1, the cause named, no archive, nothing new in
/// the output directory or the project. Every refusal runs; the test fails naming each one
/// that did not hold.
#[test]
#[ignore = "needs docker and python"]
fn python_refusals_are_named() {
    need(&["python3"]);
    let tmp = tempfile::tempdir().unwrap();
    let real = real_python();
    let results: Vec<(&str, Result<(), String>)> = vec![
        ("no python3 on PATH", no_python(tmp.path())),
        ("--python that does not exist", missing_python(tmp.path())),
        ("a pin that is not on the index", missing_pin(tmp.path())),
        (
            "an sdist without a compiler",
            no_compiler(tmp.path(), &real),
        ),
    ];
    corpus::report_refusals(&results, "refused as it should");
}

/// The interpreter `python3` on PATH runs (through a pyenv shim, its real path).
fn real_python() -> PathBuf {
    let out = ok(Command::new("python3").args(["-c", "import sys; print(sys.executable)"]));
    PathBuf::from(stdout(&out).trim())
}

fn no_python(tmp: &Path) -> Result<(), String> {
    let empty = tmp.join("empty-path");
    std::fs::create_dir_all(&empty).map_err(|e| e.to_string())?;
    let mut cmd = binpack_python();
    cmd.env("PATH", &empty)
        .arg(corpus_dir("flask").join("app.py"));
    refused(cmd, &corpus_dir("flask"), tmp, "no-python", &[&["python3"]])
}

fn missing_python(tmp: &Path) -> Result<(), String> {
    let mut cmd = binpack_python();
    cmd.args(["--python", "/nonexistent/bin/python3.11"])
        .arg(corpus_dir("flask").join("app.py"));
    refused(
        cmd,
        &corpus_dir("flask"),
        tmp,
        "missing-python",
        &[&["/nonexistent/bin/python3.11"]],
    )
}

fn missing_pin(tmp: &Path) -> Result<(), String> {
    let project = tmp.join("missing-pin-project");
    std::fs::create_dir_all(&project).map_err(|e| e.to_string())?;
    std::fs::write(project.join("app.py"), "import flask\n").map_err(|e| e.to_string())?;
    std::fs::write(project.join("requirements.txt"), "flask==0.0.999\n")
        .map_err(|e| e.to_string())?;
    let mut cmd = binpack_python();
    cmd.arg(project.join("app.py"));
    refused(cmd, &project, tmp, "missing-pin", &[&["flask==0.0.999"]])
}

/// mmh3 3.0.0 has no cp311 wheel (its extension is C++): with no compiler on PATH (only the interpreter) and every
/// cache empty, it cannot be built, and binpack says which package and what is missing.
fn no_compiler(tmp: &Path, python: &Path) -> Result<(), String> {
    let bin = tmp.join("python-only-path");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    let _ = std::os::unix::fs::symlink(python, bin.join("python3"));
    let mut cmd = binpack_python();
    cmd.env("PATH", &bin)
        .env("BINPACK_CACHE", tmp.join("empty-cache"))
        .env("PIP_NO_CACHE_DIR", "1")
        .env("UV_NO_CACHE", "1")
        .arg(corpus_dir("mmh3-sdist").join("app.py"));
    let wanted: Wanted = &[&["mmh3"], &["g++", "gcc", "compiler"]];
    refused(cmd, &corpus_dir("mmh3-sdist"), tmp, "no-compiler", wanted)
}

/// Runs a build that must fail into a fresh output directory and checks what it left.
fn refused(
    mut cmd: Command,
    project: &Path,
    tmp: &Path,
    name: &str,
    wanted: Wanted,
) -> Result<(), String> {
    let out_dir = tmp.join(format!("out-{name}"));
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let archive = out_dir.join("image.tar");
    let before = listing(project);
    let out = cmd
        .args(["-t", &format!("binpack-py-refusal/{name}:it"), "-o"])
        .arg(&archive)
        .output()
        .map_err(|e| format!("running binpack: {e}"))?;
    let err = corpus::refusal_stderr(&out)?;
    if let Some(missing) = wanted
        .iter()
        .find(|any| !any.iter().any(|w| err.contains(w)))
    {
        return Err(format!(
            "its message lacks {}: {}",
            missing.join(" or "),
            corpus::last_line(&err)
        ));
    }
    corpus::nothing_in(&out_dir)?;
    let after = listing(project);
    let new: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
    if !new.is_empty() {
        return Err(format!("left in the project: {new:?}"));
    }
    Ok(())
}

/// Every path under `dir`, relative to it.
fn listing(dir: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
        {
            let p = e.path();
            paths.push(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
            if p.is_dir() {
                todo.push(p);
            }
        }
    }
    paths
}

/// A console script's image does not depend on where its project is checked out, nor on its
/// files' times: the install's records of the source directory (direct_url.json,
/// uv_cache.json) stay out of the app layer.
#[test]
#[ignore = "needs python"]
fn a_console_script_s_app_layer_does_not_depend_on_the_checkout() {
    need(&["python3"]);
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("checkout/click-cli");
    std::fs::create_dir_all(&elsewhere).unwrap();
    for f in ["pyproject.toml", "corpus_cli.py"] {
        std::fs::copy(corpus_dir("click-cli").join(f), elsewhere.join(f)).unwrap();
    }
    let app_layer = |dir: &Path, out: &str| {
        let archive = tmp.path().join(out);
        ok(binpack_python()
            .arg(dir)
            .arg("-o")
            .arg(&archive)
            .arg("--quiet"));
        let manifest = ArchiveFiles::open(&archive).manifest();
        manifest["layers"].as_array().unwrap().last().unwrap()["digest"].clone()
    };
    let here = app_layer(&corpus_dir("click-cli"), "here.tar");
    assert_eq!(here, app_layer(&elsewhere, "elsewhere.tar"));
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    let f = std::fs::File::options()
        .append(true)
        .open(elsewhere.join("corpus_cli.py"))
        .unwrap();
    f.set_modified(later).unwrap();
    assert_eq!(here, app_layer(&elsewhere, "touched.tar"));
}
