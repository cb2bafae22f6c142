//! What the corpora (tests/go_corpus.rs, tests/cargo_corpus.rs, the python ones) share: a row
//! per case, the table they print, the python cases and how binpack builds them, and the
//! docker steps that check an image on what a user sees. Every step returns `Err(why)` instead of panicking, so every case runs and the test
//! fails at the end naming each failure.

use super::{binpack, free_port, http_get, repo, stderr, stdout};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The python corpus's case `case` (tests/corpus/python).
pub fn python_case(case: &str) -> PathBuf {
    repo().join("tests/corpus/python").join(case)
}

/// The python cases' pinned files, downloaded by scripts/install-deps.sh.
pub fn python_wheels() -> PathBuf {
    repo().join("target/test-cache/python-wheels")
}

/// `binpack python` with binpack's cache shared by the test runs, and the installers pointed
/// at the prefetched wheels (pip and uv still check every hash in the requirements; what is
/// not there, another platform's wheels, comes from the index).
pub fn binpack_python() -> Command {
    let mut c = binpack();
    c.env("BINPACK_CACHE", repo().join("target/test-cache/binpack"))
        .env("PIP_FIND_LINKS", python_wheels())
        .env("UV_FIND_LINKS", python_wheels())
        .arg("python");
    c
}

/// Bounds on a case's container.
pub const LIMITS: &[&str] = &["--pids-limit", "200", "--memory", "1g"];

/// One line of the table.
pub struct Row {
    pub case: &'static str,
    pub covers: &'static str,
    /// Compressed image size, from the `--json` summary.
    pub size: Option<u64>,
    /// Seconds from binpack's start to the archive (the first, cold build).
    pub build_secs: Option<f64>,
    /// Whether a second build gave the same image digest.
    pub same_digest: Option<bool>,
    pub result: Result<(), String>,
}

impl Row {
    pub fn new(case: &'static str, covers: &'static str) -> Row {
        Row {
            case,
            covers,
            size: None,
            build_secs: None,
            same_digest: None,
            result: Ok(()),
        }
    }
}

pub fn table(rows: &[Row]) -> String {
    let mut t = format!(
        "\n{:<12} {:<52} {:>8} {:>6} {:>6}  result\n",
        "case", "covers", "size", "build", "digest"
    );
    for r in rows {
        let size = r.size.map(|s| format!("{:.1} MB", s as f64 / 1e6));
        let secs = r.build_secs.map(|s| format!("{s:.1} s"));
        let digest = r.same_digest.map(|s| if s { "same" } else { "DIFF" });
        let result = match &r.result {
            Ok(()) => "pass".to_string(),
            Err(e) => format!("FAIL {e}"),
        };
        t += &format!(
            "{:<12} {:<52} {:>8} {:>6} {:>6}  {result}\n",
            r.case,
            r.covers,
            size.as_deref().unwrap_or("-"),
            secs.as_deref().unwrap_or("-"),
            digest.unwrap_or("-"),
        );
    }
    let passed = rows.iter().filter(|r| r.result.is_ok()).count();
    t + &format!("{passed} of {} cases pass\n", rows.len())
}

/// Prints the table and fails naming every failed case.
pub fn report(rows: &[Row]) {
    println!("{}", table(rows));
    assert_all_passed(rows.iter().map(|r| (r.case, &r.result)));
}

/// The stderr of a refusal: exit 1, or an error naming the exit and binpack's last line.
pub fn refusal_stderr(out: &std::process::Output) -> Result<String, String> {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(1) => Ok(err),
        code => Err(format!("exit {code:?}, not 1: {}", last_line(&err))),
    }
}

/// Nothing in `dir` (a refused build's output directory), or an error naming what is.
pub fn nothing_in(dir: &Path) -> Result<(), String> {
    let left: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    match left.is_empty() {
        true => Ok(()),
        false => Err(format!("left in the output directory: {left:?}")),
    }
}

/// Prints each refusal case with `ok` or its failure, then fails naming the failed ones.
pub fn report_refusals(results: &[(&str, Result<(), String>)], ok: &str) {
    let width = results.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, r) in results {
        let shown = r
            .as_ref()
            .map_or_else(|e| format!("FAIL {e}"), |()| ok.into());
        println!("{name:<width$} {shown}");
    }
    assert_all_passed(results.iter().map(|(n, r)| (*n, r)));
}

/// Fails naming every case whose result is an error.
pub fn assert_all_passed<'a>(
    results: impl ExactSizeIterator<Item = (&'a str, &'a Result<(), String>)>,
) {
    let rows = results.len();
    let failed: Vec<String> = results
        .filter_map(|(case, r)| r.as_ref().err().map(|e| format!("{case}: {e}")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failed.len(),
        rows,
        failed.join("\n")
    );
}

/// Runs a binpack build with `--json`; its summary, or binpack's last line on failure.
pub fn build(cmd: &mut Command) -> Result<serde_json::Value, String> {
    let out = cmd.output().map_err(|e| format!("running binpack: {e}"))?;
    if !out.status.success() {
        return Err(format!("build: {}", last_line(&stderr(&out))));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("build: bad --json output: {e}"))
}

pub fn load(archive: &Path, tag: &str) -> Result<(), String> {
    let out = Command::new("docker")
        .args(["load", "-i"])
        .arg(archive)
        .output()
        .map_err(|e| format!("docker load: {e}"))?;
    if out.status.success() && stdout(&out).contains(tag) {
        Ok(())
    } else {
        Err(format!("docker load: {}", last_line(&stderr(&out))))
    }
}

/// Runs `tag` to its end as `name` (removed after), with `docker_args` before the image and
/// `stdin` fed to it; its stdout when it exits 0. Bounded: the client is killed after 120 s.
pub fn run(
    tag: &str,
    name: &str,
    docker_args: &[String],
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<String, String> {
    let mut cmd = Command::new("timeout");
    cmd.args([
        "-k", "5", "120", "docker", "run", "--rm", "-i", "--name", name,
    ])
    .args(["--network", "none"])
    .args(LIMITS)
    .args(docker_args)
    .arg(tag)
    .args(args)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("docker run: {e}"))?;
    let mut input = child.stdin.take().expect("piped stdin");
    // Written while the output is read, so a large input cannot deadlock on a full pipe.
    let data = stdin.unwrap_or_default().to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("docker run: {e}"))?;
    let _ = writer.join();
    let (text, err) = (stdout(&out), stderr(&out));
    match out.status.code() {
        Some(0) => Ok(text),
        Some(124) | None => Err(format!("run: no exit within 120 s ({})", last_line(&err))),
        Some(c) => Err(format!(
            "run: exit {c} ({})",
            last_line(&format!("{text}\n{err}"))
        )),
    }
}

/// Fails naming the first of `wanted` that `text` lacks.
pub fn expect(text: &str, wanted: &[&str]) -> Result<(), String> {
    match wanted.iter().find(|w| !text.contains(*w)) {
        None => Ok(()),
        Some(missing) => Err(format!(
            "run: its output lacks {missing:?}; it printed {:?}",
            text.chars().take(200).collect::<String>()
        )),
    }
}

/// Starts `tag` detached as `name` on the host network with `docker_args`, asks it for
/// `path` on `port` and checks the answer is 200 with `body` in it.
pub fn serves(
    tag: &str,
    name: &str,
    docker_args: &[String],
    port: u16,
    path: &str,
    body: &str,
) -> Result<(), String> {
    let out = Command::new("docker")
        .args(["run", "-d", "--name", name, "--network", "host"])
        .args(LIMITS)
        .args(docker_args)
        .arg(tag)
        .output()
        .map_err(|e| format!("docker run: {e}"))?;
    if !out.status.success() {
        return Err(format!("run: {}", last_line(&stderr(&out))));
    }
    let answer = http_get(port, path).unwrap_or_default();
    // The status line's version follows the request's (HTTP/1.0 from http_get).
    let status = answer.split_whitespace().nth(1);
    if status == Some("200") && answer.contains(body) {
        return Ok(());
    }
    Err(not_served(name, path, &answer))
}

/// Starts `tag` detached as `name` on the host network with `docker_args` and `PORT` set to a
/// free port, GETs each of `paths` (each must answer 200) and returns the answers.
pub fn serves_on_free_port(
    tag: &str,
    name: &str,
    docker_args: &[&str],
    paths: &[&str],
) -> Result<String, String> {
    let port = free_port();
    let out = Command::new("docker")
        .args(["run", "-d", "--name", name, "--network", "host"])
        .args(LIMITS)
        .args(docker_args)
        .args(["-e", &format!("PORT={port}"), tag])
        .output()
        .map_err(|e| format!("docker run: {e}"))?;
    if !out.status.success() {
        return Err(format!("run: {}", last_line(&stderr(&out))));
    }
    let mut answers = String::new();
    for path in paths {
        let answer = http_get(port, path).unwrap_or_default();
        if answer.split_whitespace().nth(1) != Some("200") {
            return Err(not_served(name, path, &answer));
        }
        answers += &answer;
    }
    Ok(answers)
}

/// What a GET that did not answer 200 got, with the last line the container `name` logged.
fn not_served(name: &str, path: &str, answer: &str) -> String {
    let logs = Command::new("docker").args(["logs", name]).output();
    let logs = logs.map_or_else(
        |e| e.to_string(),
        |l| format!("{}\n{}", stdout(&l), stderr(&l)),
    );
    format!(
        "GET {path} answered {:?}; the container says: {}",
        answer.lines().next().unwrap_or("nothing"),
        last_line(&logs)
    )
}

/// A port nothing on the host listens on, for a program whose port is fixed: `Err` names
/// the port when something does (the case cannot be checked, and says why).
pub fn port_free(port: u16) -> Result<(), String> {
    match std::net::TcpListener::bind(("0.0.0.0", port)) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "port {port}, where the program listens, is taken on this host: {e}"
        )),
    }
}

/// The last non-empty line, where programs and binpack say what went wrong.
pub fn last_line(text: &str) -> String {
    let line = text.lines().rev().find(|l| !l.trim().is_empty());
    line.unwrap_or("(nothing)")
        .trim()
        .chars()
        .take(220)
        .collect()
}
