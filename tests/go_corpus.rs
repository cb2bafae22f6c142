//! The Go corpus: real Go programs nobody on this project wrote, from Debian bookworm's
//! packaged Go sources (`golang-*-dev` packages under /usr/share/gocode/src, at the versions
//! scripts/install-deps.sh pins), built offline the way Debian builds them: GOPATH mode
//! (`GO111MODULE=off GOPATH=/usr/share/gocode`), by import path, with `binpack go` and its
//! default options. Each image is loaded into docker, run, and checked on what it prints or
//! serves; each case is built twice, and the two digests must match. Every case runs; the
//! test prints a table and fails at the end naming each failure.

mod common;

use common::corpus::{self, Row};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's golang-*-dev packages put their sources (a GOPATH).
const GOPATH: &str = "/usr/share/gocode";

/// What a case must do in its container.
enum Check {
    /// Exit 0 with each string in its stdout, run with these `docker run` arguments.
    Prints {
        docker: &'static [&'static str],
        wanted: &'static [&'static str],
    },
    /// Answer `GET path` on `port` (the program's own, fixed) with 200 and the body.
    Serves {
        port: u16,
        path: &'static str,
        body: &'static str,
    },
    /// age encrypts to an SSH ed25519 key made for the test, and decrypts with it again.
    AgeRoundTrip,
}

struct Case {
    name: &'static str,
    covers: &'static str,
    /// The main package's import path (its Debian package, for the install step's pins).
    package: &'static str,
    /// Files of tests/corpus/go/<name>/ shipped into the image with `--add`, at /data/<file>.
    add: &'static [&'static str],
    /// The image's default arguments (after `--`).
    args: &'static [&'static str],
    check: Check,
}

const CASES: &[Case] = &[
    Case {
        // golang-github-pelletier-go-toml.v2-dev 2.0.6-1
        name: "tomljson",
        covers: "CLI reads a TOML file shipped with --add, prints JSON",
        package: "github.com/pelletier/go-toml/v2/cmd/tomljson",
        add: &["server.toml"],
        args: &["/data/server.toml"],
        check: Check::Prints {
            docker: &[],
            wanted: &[
                r#""title": "binpack corpus""#,
                r#""started": "1979-05-27T07:32:00Z""#,
                r#""uid": 65532"#,
            ],
        },
    },
    Case {
        // golang-github-itchyny-gojq-dev 0.12.11-1
        name: "gojq",
        covers: "time zones from TZ (embedded tzdata), jq filters",
        package: "github.com/itchyny/gojq/cmd/gojq",
        add: &[],
        args: &[
            "-n",
            "-r",
            r#"[1700000000, 1690000000] | map(strflocaltime("%Y-%m-%d %H:%M %Z")) | join(", ")"#,
        ],
        check: Check::Prints {
            // Paris in winter and in summer: a scratch image has no zoneinfo, so this is
            // Go's embedded database (without it, Go falls back to UTC silently).
            docker: &["-e", "TZ=Europe/Paris"],
            wanted: &["2023-11-14 23:13 CET, 2023-07-22 06:26 CEST"],
        },
    },
    Case {
        // golang-github-go-chi-chi-dev 5.0.7-1
        name: "chi",
        covers: "HTTP server, /v5 imports resolved in GOPATH mode",
        package: "github.com/go-chi/chi/_examples/hello-world",
        add: &[],
        args: &[],
        check: Check::Serves {
            port: 3333,
            path: "/",
            body: "hello world",
        },
    },
    Case {
        // golang-filippo-age-dev 1.1.1-1 (+ golang-filippo-edwards25519-dev)
        name: "age",
        covers: "crypto CLI on stdin/stdout, SSH ed25519 keys",
        package: "filippo.io/age/cmd/age",
        add: &[],
        args: &[],
        check: Check::AgeRoundTrip,
    },
    Case {
        // golang-github-cpuguy83-go-md2man-v2-dev 2.0.2+ds1-1
        name: "go-md2man",
        covers: "Markdown file to roff (blackfriday), module root main",
        package: "github.com/cpuguy83/go-md2man/v2",
        add: &["corpus.1.md"],
        args: &["-in", "/data/corpus.1.md"],
        check: Check::Prints {
            docker: &[],
            wanted: &[
                ".TH CORPUS(1) binpack | Go corpus",
                ".SH SYNOPSIS",
                r"\fBcorpus\fP [\fIOPTION\fP]... \fIFILE\fP",
            ],
        },
    },
];

fn corpus_dir(case: &str) -> PathBuf {
    repo().join("tests/corpus/go").join(case)
}

/// `binpack go` of a package in Debian's GOPATH, as a user builds it offline.
fn binpack_go(case: &Case, tag: &str, archive: &Path) -> Command {
    let mut c = binpack();
    c.env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        // A module-mode GOFLAGS (-mod=...) means nothing in GOPATH mode and go refuses it.
        .env_remove("GOFLAGS")
        .env("BINPACK_CACHE", repo().join("target/test-cache/binpack"))
        .args(["go", case.package, "--json", "--quiet", "-t", tag, "-o"])
        .arg(archive);
    for file in case.add {
        let src = corpus_dir(case.name).join(file);
        c.arg("--add")
            .arg(format!("{}:/data/{file}", src.display()));
    }
    if !case.args.is_empty() {
        c.arg("--").args(case.args);
    }
    c
}

#[test]
#[ignore = "needs go, Debian's golang-*-dev corpus packages, ssh-keygen and a Docker engine"]
fn go_corpus_runs_in_its_images() {
    need(&["go", "ssh-keygen", "timeout"]);
    need_docker();
    let tmp = tempfile::tempdir().unwrap();
    let rows: Vec<Row> = CASES.iter().map(|c| run_case(c, tmp.path())).collect();
    corpus::report(&rows);
}

fn run_case(case: &Case, tmp: &Path) -> Row {
    let mut row = Row::new(case.name, case.covers);
    row.result = build_and_check(case, tmp, &mut row);
    row
}

fn build_and_check(case: &Case, tmp: &Path, row: &mut Row) -> Result<(), String> {
    let src = Path::new(GOPATH).join("src").join(case.package);
    if !src.is_dir() {
        return Err(format!(
            "{} is missing: run scripts/install-deps.sh all",
            src.display()
        ));
    }
    let tag = format!("binpack-go-corpus/{}:it", case.name);
    let name = format!("binpack-go-corpus-{}-{}", case.name, std::process::id());
    let _cleanup = DockerCleanup(vec![name.clone(), tag.clone()]);
    let archive = tmp.join(format!("{}.tar", case.name));
    let started = std::time::Instant::now();
    let summary = corpus::build(&mut binpack_go(case, &tag, &archive))?;
    row.build_secs = Some(started.elapsed().as_secs_f64());
    row.size = summary["size"]["compressed"].as_u64();
    // Go's cache is warm now: the second build checks reproducibility for the price of a link.
    let again = corpus::build(&mut binpack_go(case, &tag, &tmp.join("again.tar")))?;
    row.same_digest = Some(summary["digest"] == again["digest"]);
    if summary["digest"] != again["digest"] {
        return Err(format!(
            "two builds gave two digests: {} and {}",
            summary["digest"], again["digest"]
        ));
    }
    corpus::load(&archive, &tag)?;
    match &case.check {
        Check::Prints { docker, wanted } => {
            let docker: Vec<String> = docker.iter().map(|s| s.to_string()).collect();
            let text = corpus::run(&tag, &name, &docker, &[], None)?;
            corpus::expect(&text, wanted)
        }
        Check::Serves { port, path, body } => {
            corpus::port_free(*port)?;
            corpus::serves(&tag, &name, &[], *port, path, body)
        }
        Check::AgeRoundTrip => age_round_trip(&tag, &name, tmp),
    }
}

/// `age -R key.pub -a` encrypts stdin in one container, `age -d -i key` decrypts it in
/// another: the key pair is made here, so nothing secret lives in the repository.
fn age_round_trip(tag: &str, name: &str, tmp: &Path) -> Result<(), String> {
    let keys = tmp.join("age-keys");
    std::fs::create_dir_all(&keys).map_err(|e| e.to_string())?;
    let key = keys.join("id_ed25519");
    ok(Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "binpack-corpus",
            "-f",
        ])
        .arg(&key));
    // The image runs as nonroot (65532): it must be able to read the mounted keys.
    for (path, mode) in [(&keys, 0o755), (&key, 0o644)] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| e.to_string())?;
    }
    let mount = vec!["-v".to_string(), format!("{}:/keys:ro", keys.display())];
    let plain = "attack at dawn, from a FROM-scratch image\n";
    let sealed = corpus::run(
        tag,
        name,
        &mount,
        &["-R", "/keys/id_ed25519.pub", "-a"],
        Some(plain.as_bytes()),
    )?;
    corpus::expect(&sealed, &["-----BEGIN AGE ENCRYPTED FILE-----"])?;
    if sealed.contains("attack at dawn") {
        return Err("run: the plaintext shows in age's output".into());
    }
    let opened = corpus::run(
        tag,
        name,
        &mount,
        &["-d", "-i", "/keys/id_ed25519"],
        Some(sealed.as_bytes()),
    )?;
    if opened != plain {
        return Err(format!("run: age -d gave {opened:?}, not {plain:?}"));
    }
    Ok(())
}
