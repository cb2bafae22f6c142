//! The crates corpus: real binary crates from Rust's package registry at pinned versions, each
//! built from its published source with the Cargo.lock it was published with (`binpack cargo
//! --manifest-dir <unpacked crate> --cargo-flag=--locked`, default options otherwise). The
//! pins live in tests/corpus/cargo/<case>/ (a manifest naming `crate = "=version"` and a
//! Cargo.lock holding its checksum); scripts/install-deps.sh unpacks each crate into
//! target/test-cache/cargo-corpus/. Each image is loaded into docker, run, and checked on what
//! it prints; each case is built twice and the two digests must match. Every case runs; the
//! test prints a table and fails at the end naming each failure.

mod common;

use common::corpus::{self, Row};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One `docker run` of a case's image and what its stdout must hold.
struct Run {
    /// `docker run` arguments before the image.
    docker: &'static [&'static str],
    /// Arguments replacing the image's Cmd (none: the Cmd binpack was given).
    args: &'static [&'static str],
    /// `Ok` strings: exit 0 with each in stdout; `Err`: exit non-zero with it in the output.
    wanted: Result<&'static [&'static str], &'static str>,
}

struct Case {
    /// The crate, as pinned in tests/corpus/cargo/<crate>/Cargo.toml.
    krate: &'static str,
    version: &'static str,
    covers: &'static str,
    /// `--add SRC:DEST` pairs; a relative SRC is in tests/corpus/cargo/<crate>/.
    add: &'static [(&'static str, &'static str)],
    /// The image's default arguments (after `--`).
    args: &'static [&'static str],
    runs: &'static [Run],
}

const CASES: &[Case] = &[
    Case {
        krate: "hexyl",
        version: "0.17.0",
        covers: "CLI reads a file shipped with --add (clap derive)",
        add: &[("sample.txt", "/data/sample.txt")],
        args: &["--color=never", "/data/sample.txt"],
        runs: &[Run {
            docker: &[],
            args: &[],
            wanted: Ok(&[
                "│00000000│ 62 69 6e 70 61 63 6b 20 ┊ 63 6f 72 70 75 73 0a    │binpack ┊corpus_ │",
            ]),
        }],
    },
    Case {
        krate: "uu_whoami",
        version: "0.0.30",
        covers: "glibc getpwuid through the closure, binpack's passwd",
        add: &[],
        args: &[],
        runs: &[
            // The image's user (65532) is named in binpack's /etc/passwd.
            Run {
                docker: &[],
                args: &[],
                wanted: Ok(&["nonroot"]),
            },
            // A user nobody named: the program's own error, not a loader or NSS failure.
            Run {
                docker: &["--user", "4242"],
                args: &[],
                wanted: Err("failed to get username: No such id: 4242"),
            },
        ],
    },
    Case {
        krate: "uu_date",
        version: "0.0.30",
        covers: "TZ through chrono: binpack adds the root's zoneinfo",
        // The binary names /usr/share/zoneinfo, so binpack ships the root's (without it the
        // program prints 00:00 for every TZ, silently).
        add: &[],
        args: &["-d", "@0", "+%F %R"],
        runs: &[
            // India's half-hour offset, no daylight saving time (uu_date 0.0.30 applies the
            // offset of today to any date, so a zone with DST would print the wrong hour).
            Run {
                docker: &["-e", "TZ=Asia/Kolkata"],
                args: &[],
                wanted: Ok(&["1970-01-01 05:30"]),
            },
        ],
    },
];

fn cache() -> PathBuf {
    repo().join("target/test-cache/cargo-corpus")
}

/// `binpack cargo` of the unpacked crate, into a target directory the cases share (their
/// common dependencies build once).
fn binpack_cargo(case: &Case, src: &Path, tag: &str, archive: &Path) -> Command {
    let mut c = binpack();
    c.env("CARGO_TARGET_DIR", cache().join("target"))
        .env("BINPACK_CACHE", repo().join("target/test-cache/binpack"))
        .arg("cargo")
        .arg("--manifest-dir")
        .arg(src)
        .args([
            "--cargo-flag=--locked",
            "--json",
            "--quiet",
            "-t",
            tag,
            "-o",
        ])
        .arg(archive);
    for (from, to) in case.add {
        let path = repo()
            .join("tests/corpus/cargo")
            .join(case.krate)
            .join(from);
        c.arg("--add").arg(format!("{}:{to}", path.display()));
    }
    if !case.args.is_empty() {
        c.arg("--").args(case.args);
    }
    c
}

#[test]
#[ignore = "needs cargo, the crates corpus (scripts/install-deps.sh all) and a Docker engine"]
fn cargo_corpus_runs_in_its_images() {
    need(&["cargo", "timeout"]);
    need_docker();
    let tmp = tempfile::tempdir().unwrap();
    let rows: Vec<Row> = CASES.iter().map(|c| run_case(c, tmp.path())).collect();
    corpus::report(&rows);
}

fn run_case(case: &Case, tmp: &Path) -> Row {
    let mut row = Row::new(case.krate, case.covers);
    row.result = build_and_check(case, tmp, &mut row);
    row
}

fn build_and_check(case: &Case, tmp: &Path, row: &mut Row) -> Result<(), String> {
    let src = cache().join(format!("{}-{}", case.krate, case.version));
    if !src.join("Cargo.lock").is_file() {
        return Err(format!(
            "{} is missing: run scripts/install-deps.sh all",
            src.display()
        ));
    }
    let tag = format!("binpack-cargo-corpus/{}:it", case.krate);
    let name = format!("binpack-cargo-corpus-{}-{}", case.krate, std::process::id());
    let _cleanup = DockerCleanup(vec![name.clone(), tag.clone()]);
    let archive = tmp.join(format!("{}.tar", case.krate));
    let started = std::time::Instant::now();
    let summary = corpus::build(&mut binpack_cargo(case, &src, &tag, &archive))?;
    row.build_secs = Some(started.elapsed().as_secs_f64());
    row.size = summary["size"]["compressed"].as_u64();
    let again = corpus::build(&mut binpack_cargo(case, &src, &tag, &tmp.join("again.tar")))?;
    row.same_digest = Some(summary["digest"] == again["digest"]);
    if summary["digest"] != again["digest"] {
        return Err(format!(
            "two builds gave two digests: {} and {}",
            summary["digest"], again["digest"]
        ));
    }
    corpus::load(&archive, &tag)?;
    for run in case.runs {
        check(run, &tag, &name)?;
    }
    Ok(())
}

fn check(run: &Run, tag: &str, name: &str) -> Result<(), String> {
    let docker: Vec<String> = run.docker.iter().map(|s| s.to_string()).collect();
    let ran = corpus::run(tag, name, &docker, run.args, None);
    match (run.wanted, ran) {
        (Ok(wanted), Ok(text)) => corpus::expect(&text, wanted),
        (Ok(_), Err(e)) => Err(e),
        (Err(wanted), Err(e)) if e.contains(wanted) => Ok(()),
        (Err(wanted), Err(e)) => Err(format!("wanted a failure saying {wanted:?}; {e}")),
        (Err(wanted), Ok(text)) => Err(format!(
            "wanted a failure saying {wanted:?}; it exited 0 printing {text:?}"
        )),
    }
}
