//! The Go corpus: real Go programs nobody on this project wrote, from Debian bookworm's
//! packaged Go sources (`golang-*-dev` packages under /usr/share/gocode/src, at the versions
//! scripts/install-deps.sh pins), built offline the way Debian builds them: GOPATH mode
//! (`GO111MODULE=off GOPATH=/usr/share/gocode`), by import path, with `binpack go` and its
//! default options (cgo programs with `--cgo`). Each image is loaded into docker, run, and
//! checked on what it prints or serves; the libraries of a cgo image must be seen by syft
//! with their Debian packages; each case is built twice, and the two digests must match.
//! Every case runs; the test prints a table and fails at the end naming each failure.

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
    /// Files of tests/corpus/go/<name>/ shipped into the image with `--add`, at /data/<file>;
    /// or, written `SRC:DEST`, a file of this machine.
    add: &'static [&'static str],
    /// The image's default arguments (after `--`).
    args: &'static [&'static str],
    /// binpack options beyond the defaults (`--cgo`).
    options: &'static [&'static str],
    /// Debian packages (of the libraries the image carries) that syft must see in the
    /// archive, at the versions installed here.
    debs: &'static [&'static str],
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
        options: &[],
        debs: &[],
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
        options: &[],
        debs: &[],
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
        options: &[],
        debs: &[],
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
        options: &[],
        debs: &[],
        check: Check::AgeRoundTrip,
    },
    Case {
        // golang-github-cpuguy83-go-md2man-v2-dev 2.0.2+ds1-1
        name: "go-md2man",
        covers: "Markdown file to roff (blackfriday), module root main",
        package: "github.com/cpuguy83/go-md2man/v2",
        add: &["corpus.1.md"],
        args: &["-in", "/data/corpus.1.md"],
        options: &[],
        debs: &[],
        check: Check::Prints {
            docker: &[],
            wanted: &[
                ".TH CORPUS(1) binpack | Go corpus",
                ".SH SYNOPSIS",
                r"\fBcorpus\fP [\fIOPTION\fP]... \fIFILE\fP",
            ],
        },
    },
    Case {
        // golang-github-alecthomas-chroma-dev 0.10.0-3
        name: "chroma",
        covers: "highlighter: a Go file shipped with --add, to HTML",
        package: "github.com/alecthomas/chroma/cmd/chroma",
        add: &["hello.go"],
        args: &["--html", "/data/hello.go"],
        options: &[],
        debs: &[],
        check: Check::Prints {
            docker: &[],
            wanted: &[
                r#"<span class="kn">package</span> <span class="nx">main</span>"#,
                r#"<span class="nb">println</span>"#,
            ],
        },
    },
    Case {
        // golang-github-alecthomas-chroma-dev 0.10.0-3 (kong, gorilla/mux and csrf)
        name: "chromad",
        covers: "server: go:embed templates and static files",
        package: "github.com/alecthomas/chroma/cmd/chromad",
        add: &[],
        args: &["--bind", "127.0.0.1:39182"],
        options: &[],
        debs: &[],
        check: Check::Serves {
            port: 39182,
            path: "/",
            body: r#"<script src="static/index.js?devel">"#,
        },
    },
    Case {
        // golang-github-valyala-fasthttp-dev 1:1.31.0-4
        name: "fileserver",
        covers: "fasthttp serves a directory shipped with --add",
        package: "github.com/valyala/fasthttp/examples/fileserver",
        add: &["site"],
        args: &["-addr", "127.0.0.1:39181", "-dir", "/data/site"],
        options: &[],
        debs: &[],
        check: Check::Serves {
            port: 39181,
            path: "/index.html",
            body: "served by fasthttp from a directory shipped with --add",
        },
    },
    Case {
        // golang-github-olekukonko-tablewriter-dev 0.0.5-2
        name: "csv2table",
        covers: "CLI reads a CSV file shipped with --add",
        package: "github.com/olekukonko/tablewriter/csv2table",
        add: &["langs.csv"],
        args: &["-f", "/data/langs.csv"],
        options: &[],
        debs: &[],
        check: Check::Prints {
            docker: &[],
            wanted: &["|  NAME   | LANG | STARS |", "| gojq    | Go   |  3000 |"],
        },
    },
    Case {
        // golang-github-yuin-gopher-lua-dev 0.0~git20170915.0.eb1c729-5
        name: "glua",
        covers: "Lua interpreter runs a script shipped with --add",
        package: "github.com/yuin/gopher-lua/cmd/glua",
        add: &["squares.lua"],
        args: &["/data/squares.lua"],
        options: &[],
        debs: &[],
        check: Check::Prints {
            docker: &[],
            wanted: &["squares: 1,4,9,16,25\n"],
        },
    },
    Case {
        // golang-github-robertkrimen-otto-dev 0.0~git20200922.ef014fd-2
        name: "otto",
        covers: "JavaScript interpreter runs a script file",
        package: "github.com/robertkrimen/otto/otto",
        add: &["map.js"],
        args: &["/data/map.js"],
        options: &[],
        debs: &[],
        check: Check::Prints {
            docker: &[],
            wanted: &["otto says {\"xs\":[10,20,30]}\n"],
        },
    },
    Case {
        // golang-github-hashicorp-hcl-v2-dev 2.14.1-2
        name: "hclfmt",
        covers: "HCL formatter (go-cty, levenshtein) on a file",
        package: "github.com/hashicorp/hcl/v2/cmd/hclfmt",
        add: &["service.hcl"],
        args: &["/data/service.hcl"],
        options: &[],
        debs: &[],
        check: Check::Prints {
            docker: &[],
            wanted: &["service \"web\" {\n  port = 8080\n  tags = [\"a\", \"b\"]\n}\n"],
        },
    },
    Case {
        // golang-github-gomarkdown-markdown-dev 0.0~git20220731.dcdaee8-2
        name: "printast",
        covers: "Markdown parser prints a file's syntax tree",
        package: "github.com/gomarkdown/markdown/cmd/printast",
        add: &["doc.md"],
        args: &["/data/doc.md"],
        options: &[],
        debs: &[],
        check: Check::Prints {
            docker: &[],
            wanted: &[
                "Heading\n Text 'Title'\n",
                "  Text 'emphasis'\n",
                " Link 'url=https://example.org'\n",
            ],
        },
    },
    Case {
        // golang-github-skip2-go-qrcode-dev 0.0~git20200617.da1b656-4
        name: "qrcode",
        covers: "QR code of its argument as text art",
        package: "github.com/skip2/go-qrcode/qrcode",
        add: &[],
        args: &["-t", "binpack"],
        options: &[],
        debs: &[],
        check: Check::Prints {
            docker: &[],
            // The first row of modules: the finder patterns, and the data of "binpack".
            wanted: &["████████              ████████    ██              ████████\n"],
        },
    },
    Case {
        // The same program writing its PNG beside itself (`./code.png`): the image's working
        // directory must be writable by the user it runs as (in `/` it was "permission denied").
        name: "qrcode-png",
        covers: "a program writing a file in its working directory",
        package: "github.com/skip2/go-qrcode/qrcode",
        add: &[],
        args: &["-o", "code", "binpack"],
        options: &[],
        debs: &[],
        check: Check::Prints {
            docker: &[],
            wanted: &[],
        },
    },
    Case {
        // golang-github-xo-terminfo-dev 0.0~git20210125.ca9a967-2; the xterm entry is
        // ncurses-base's. Without it: "database directory not found", exit 1.
        name: "infocmp",
        covers: "reads terminfo: the host's entry shipped with --add",
        package: "github.com/xo/terminfo/cmd/infocmp",
        add: &["/lib/terminfo/x/xterm:/lib/terminfo/x/xterm"],
        args: &[],
        options: &[],
        debs: &[],
        check: Check::Prints {
            docker: &["-e", "TERM=xterm"],
            wanted: &[
                "from file: /lib/terminfo/x/xterm\n",
                "xterm|xterm-debian|xterm terminal emulator (X Window System),\n",
                "\tauto_right_margin,\n",
            ],
        },
    },
    Case {
        // golang-github-mattn-go-sqlite3-dev 1.14.16~ds1-1 (Debian links it to libsqlite3).
        // Without --cgo binpack refuses it (tests/cli_go.rs): its !cgo stub fails at run time.
        name: "sqlite-cgo",
        covers: "--cgo: go-sqlite3 on libsqlite3, closure + dpkg",
        package: "github.com/mattn/go-sqlite3/_example/simple",
        add: &[],
        args: &[],
        options: &["--cgo"],
        debs: &["libsqlite3-0", "libc6"],
        check: Check::Prints {
            // It makes ./foo.db: run it where the nonroot user can write.
            docker: &["-w", "/tmp"],
            wanted: &[
                "99 こんにちは世界099\n",
                "こんにちは世界003\n1 foo\n2 bar\n3 baz\n",
            ],
        },
    },
    Case {
        // The same, cross-compiled with Debian's aarch64-linux-gnu-gcc against
        // libsqlite3-dev:arm64, packed on the arm64 closure and run under qemu.
        name: "sqlite-arm64",
        covers: "--cgo --platform linux/arm64: cross cgo, on qemu",
        package: "github.com/mattn/go-sqlite3/_example/simple",
        add: &[],
        args: &[],
        options: &["--cgo", "--platform", "linux/arm64"],
        debs: &["libsqlite3-0", "libc6"],
        check: Check::Prints {
            docker: &["--platform", "linux/arm64", "-w", "/tmp"],
            wanted: &[
                "99 こんにちは世界099\n",
                "こんにちは世界003\n1 foo\n2 bar\n3 baz\n",
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
        .arg(archive)
        .args(case.options);
    for file in case.add {
        if file.contains(':') {
            c.args(["--add", file]);
            continue;
        }
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
    need(&["go", "ssh-keygen", "timeout", "syft", "dpkg-query"]);
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
    seen_by_syft(case, &archive)?;
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

/// Each of the case's Debian packages is seen by syft in the archive, at the version dpkg
/// has installed here (the closure's libraries came from this root).
fn seen_by_syft(case: &Case, archive: &Path) -> Result<(), String> {
    if case.debs.is_empty() {
        return Ok(());
    }
    let out = Command::new("syft")
        .arg("scan")
        .arg(format!("oci-archive:{}", archive.display()))
        .args(["-o", "json", "-q"])
        .output()
        .map_err(|e| format!("syft: {e}"))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("syft: {e}"))?;
    let found = doc["artifacts"].as_array().cloned().unwrap_or_default();
    for deb in case.debs {
        // One line per installed architecture (libc6 and libc6:arm64 here), same version.
        let versions = stdout(&ok(Command::new("dpkg-query").args([
            "-W",
            "-f",
            "${Version}\n",
            deb,
        ])));
        let version = versions.lines().next().unwrap_or_default();
        let seen = found
            .iter()
            .any(|a| a["type"] == "deb" && a["name"] == *deb && a["version"] == version);
        if !seen {
            return Err(format!("syft does not see {deb} {version} in the image"));
        }
    }
    Ok(())
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
