//! The real-package corpus (issue 10): npm packages and apps nobody on this project wrote, at
//! the versions pinned by their lockfiles in tests/corpus/node/<case>/ (installed by
//! scripts/install-deps.sh), each built with `binpack node` (default layout, `--json`), loaded
//! into docker, run, and checked on what it prints or serves. Every case runs; the test prints
//! a table (case, layout, compressed size, result) and fails at the end naming each failure.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// What a case must do in its container.
#[derive(Clone, Copy)]
enum Check {
    /// Exit 0 with each string in its stdout.
    Prints(&'static [&'static str]),
    /// Answer `GET /` on `$PORT` (host network) with 200 and a body holding the string.
    Serves(&'static str),
}

struct Case {
    /// Its directory under tests/corpus/node.
    dir: &'static str,
    /// What it covers, for the table.
    covers: &'static str,
    /// What `binpack node` is given, relative to the case directory.
    entry: &'static str,
    /// The image's default arguments (after `--`).
    args: &'static [&'static str],
    check: Check,
}

const CASES: &[Case] = &[
    Case {
        dir: "express",
        covers: "HTTP framework (CJS)",
        entry: ".",
        args: &[],
        check: Check::Serves(r#""framework":"express""#),
    },
    Case {
        dir: "fastify",
        covers: "HTTP framework, pino logger",
        entry: ".",
        args: &[],
        check: Check::Serves(r#""framework":"fastify""#),
    },
    Case {
        dir: "koa",
        covers: "HTTP framework + router",
        entry: ".",
        args: &[],
        check: Check::Serves(r#""framework":"koa""#),
    },
    Case {
        dir: "hono",
        covers: "HTTP framework (ESM)",
        entry: ".",
        args: &[],
        check: Check::Serves(r#""framework":"hono""#),
    },
    Case {
        dir: "cowsay",
        covers: "CJS CLI, own data files via __dirname",
        entry: "node_modules/cowsay",
        args: &["-f", "dragon", "binpack corpus"],
        check: Check::Prints(&["< binpack corpus >", "/ \\  //\\"]),
    },
    Case {
        dir: "marked",
        covers: "ESM-only CLI (import.meta)",
        entry: "node_modules/marked",
        args: &["-s", "# Hello *corpus*"],
        check: Check::Prints(&["<h1>Hello <em>corpus</em></h1>"]),
    },
    Case {
        dir: "uuid-cli",
        covers: "package's own CLI, extension-less bin",
        entry: "node_modules/uuid",
        args: &["v5", "hello", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"],
        check: Check::Prints(&["9342d47a-1bab-5709-9869-c840b2eac501"]),
    },
    Case {
        dir: "yargs",
        covers: "yargs 18 ESM CLI (createRequire(import.meta.url))",
        entry: ".",
        args: &["--name", "corpus", "--times", "2"],
        check: Check::Prints(&["hello corpus\nhello corpus"]),
    },
    Case {
        dir: "prettier",
        covers: "import.meta.url, top-level await, plugins by import()",
        entry: ".",
        args: &[],
        check: Check::Prints(&["const answer = { value: 42, list: [1, 2, 3] };"]),
    },
    Case {
        dir: "ts-entry",
        covers: "TypeScript entry file (zod)",
        entry: "app.ts",
        args: &[],
        check: Check::Prints(&["hello typescript x2; rejected 2 issues"]),
    },
    Case {
        dir: "piscina",
        covers: "worker_threads, worker file by path",
        entry: ".",
        args: &[],
        check: Check::Prints(&["squares 1,4,9,16"]),
    },
    Case {
        dir: "pino-pretty",
        covers: "logger worker transport (thread-stream)",
        entry: ".",
        args: &[],
        check: Check::Prints(&["INFO", "hello from pino-pretty", "corpus: true"]),
    },
    Case {
        dir: "fork",
        covers: "child_process.fork of a script",
        entry: ".",
        args: &[],
        check: Check::Prints(&["child says 2 days = 172800000 ms"]),
    },
    Case {
        dir: "typescript-api",
        covers: "typescript reads lib.d.ts via __dirname",
        entry: ".",
        args: &[],
        check: Check::Prints(&[
            "TS2322: Type 'string' is not assignable to type 'number'.",
            "TS2322: Type 'number[]' is not assignable to type 'string[]'.",
        ]),
    },
    Case {
        dir: "bufferutil",
        covers: "prebuilt N-API addon from the tarball",
        entry: ".",
        args: &[],
        check: Check::Prints(&["websocket frame native=true"]),
    },
    Case {
        dir: "better-sqlite3",
        covers: "node-gyp addon through `bindings`",
        entry: ".",
        args: &[],
        check: Check::Prints(&["stored in sqlite (1 row)"]),
    },
    Case {
        dir: "import-literal",
        covers: "import() of a literal (ESM-only chalk from CJS)",
        entry: ".",
        args: &[],
        check: Check::Prints(&["chalk loaded: bold at level 0"]),
    },
    Case {
        dir: "import-computed",
        covers: "import() of a computed specifier",
        entry: ".",
        args: &[],
        check: Check::Prints(&[
            "constant: HELLO_CORPUS_PLUGINS",
            "pascal: HelloCorpusPlugins",
        ]),
    },
    Case {
        dir: "top-level-await",
        covers: "top-level await in an ESM entry",
        entry: ".",
        args: &[],
        check: Check::Prints(&["awaited 2,4,6"]),
    },
    Case {
        dir: "workspace",
        covers: "npm workspace member",
        entry: "packages/app",
        args: &[],
        check: Check::Prints(&["hello workspace, an hour is 3600000 ms"]),
    },
    Case {
        dir: "moment-locale",
        covers: "computed require in node_modules (locales)",
        entry: ".",
        args: &[],
        check: Check::Prints(&["fr: mardi 5 mars 2024"]),
    },
    Case {
        dir: "ws",
        covers: "optional native deps probed in try/catch",
        entry: ".",
        args: &[],
        check: Check::Prints(&["echo: ping over ws"]),
    },
    Case {
        dir: AXIOS_CA,
        covers: "private CA through --ca-certs (axios, fetch)",
        entry: ".",
        args: &[],
        check: Check::Prints(&[
            "axios 200 trusted by the private CA",
            "fetch 200 trusted by the private CA",
        ]),
    },
    Case {
        dir: "http-server",
        covers: "bin by path, no extension; requires absent spdy",
        entry: "node_modules/http-server/bin/http-server",
        args: &[],
        check: Check::Serves("Index of /"),
    },
    Case {
        dir: JSON_SERVER,
        covers: "dependency CLI run in the app, reads its db.json",
        entry: "node_modules/json-server/lib/bin.js",
        args: &["db.json"],
        check: Check::Serves(r#"<a href="posts">/posts</a>"#),
    },
    Case {
        dir: "sharp",
        covers: "prebuilt addon, libvips beside it via $ORIGIN",
        entry: ".",
        args: &[],
        check: Check::Prints(&["sharp made png 4x3 vips 8.17.2"]),
    },
    Case {
        dir: "plugin-argv",
        covers: "plugins named on the command line (import())",
        entry: ".",
        args: &["plugins/constant.js", "plugins/pascal.js"],
        check: Check::Prints(&[
            "plugins/constant.js: HELLO_PLUGIN_ARGV",
            "plugins/pascal.js: HelloPluginArgv",
        ]),
    },
    Case {
        dir: "read-package-up",
        covers: "reads its own package.json (read-package-up)",
        entry: ".",
        args: &[],
        check: Check::Prints(&["corpus-read-package-up 2.3.4: a CLI that reads its own"]),
    },
    Case {
        dir: "prettier-cli",
        covers: "package's bin, import() hidden in new Function",
        entry: "node_modules/prettier",
        args: &["package.json"],
        check: Check::Prints(&[r#""name": "prettier","#, r#""bin": "./bin/prettier.cjs","#]),
    },
    Case {
        dir: "lightningcss",
        covers: "addon in a platform optional dependency",
        entry: ".",
        args: &[],
        check: Check::Prints(&["lightningcss on x64: .a{color:red;margin:0}"]),
    },
    Case {
        dir: "parcel-watcher",
        covers: "addon in a platform optional dependency (@parcel)",
        entry: ".",
        args: &[],
        check: Check::Prints(&["watcher saw the new file: true"]),
    },
    Case {
        dir: "rollup",
        covers: "native parser in a platform optional dependency",
        entry: ".",
        args: &[],
        check: Check::Prints(&["rollup: const answer = 42; console.log(answer);"]),
    },
];

/// The case that fetches from an HTTPS server on the host, whose certificate the test's CA signs.
const AXIOS_CA: &str = "axios-ca";
/// Its db.json goes into the image beside the app, where the image's working directory is.
const JSON_SERVER: &str = "json-server";

/// Bounds on a case's container: a single executable that `fork`s re-runs itself, which
/// forks again, until the machine runs out of processes.
const LIMITS: &[&str] = &["--pids-limit", "200", "--memory", "1g"];

/// What no run may print: SEA's warning when a package probes an optional dependency.
const NOISE: &str = "only supports loading built-in modules";

fn corpus(dir: &str) -> PathBuf {
    repo().join("tests/corpus/node").join(dir)
}

/// Runs binpack with a cache shared by the test runs (esbuild, node runtimes, the tracer).
fn binpack_node() -> Command {
    let mut c = binpack();
    c.env("BINPACK_CACHE", repo().join("target/test-cache/binpack"));
    c.arg("node");
    c
}

/// One line of the table.
struct Row {
    case: &'static str,
    covers: &'static str,
    layout: String,
    size: Option<u64>,
    /// Seconds from `binpack node` to the archive.
    build_secs: Option<f64>,
    result: Result<(), String>,
}

#[test]
#[ignore = "needs node, npm, openssl and a Docker engine"]
fn corpus_runs_in_its_images() {
    need(&["node", "npm", "openssl", "timeout"]);
    need_docker();
    let tmp = tempfile::tempdir().unwrap();
    let tls = HttpsServer::start(tmp.path());
    let rows: Vec<Row> = CASES
        .iter()
        .map(|case| run_case(case, tmp.path(), &tls))
        .collect();
    println!("{}", table(&rows));
    common::corpus::assert_all_passed(rows.iter().map(|r| (r.case, &r.result)));
}

fn run_case(case: &Case, tmp: &Path, tls: &HttpsServer) -> Row {
    let tag = format!("binpack-corpus/{}:it", case.dir);
    let name = format!("binpack-corpus-{}-{}", case.dir, std::process::id());
    let _cleanup = DockerCleanup(vec![name.clone(), tag.clone()]);
    let mut row = Row {
        case: case.dir,
        covers: case.covers,
        layout: "-".into(),
        size: None,
        build_secs: None,
        result: Ok(()),
    };
    let dir = corpus(case.dir);
    if !dir.join("node_modules").is_dir() {
        row.result = Err(format!(
            "{} has no node_modules: run scripts/install-deps.sh all",
            dir.display()
        ));
        return row;
    }
    let archive = tmp.join(format!("{}.tar", case.dir));
    let mut build = binpack_node();
    build
        .arg(dir.join(case.entry))
        .args(["--json", "--quiet", "-t", &tag, "-o"])
        .arg(&archive);
    if case.dir == AXIOS_CA {
        build.arg("--ca-certs").arg(&tls.ca);
    }
    if case.dir == JSON_SERVER {
        let db = dir.join("db.json");
        build
            .arg("--add")
            .arg(format!("{}:/app/db.json", db.display()));
    }
    if !case.args.is_empty() {
        build.arg("--").args(case.args);
    }
    let started = std::time::Instant::now();
    let out = build.output().expect("running binpack");
    row.build_secs = Some(started.elapsed().as_secs_f64());
    if !out.status.success() {
        let err = stderr(&out);
        // esbuild's own error comes before binpack's line that points at it.
        let esbuild = err.lines().find(|l| l.contains("[ERROR]"));
        let why = esbuild
            .map(|l| format!("{} <- ", l.trim()))
            .unwrap_or_default();
        row.result = Err(format!("build: {why}{}", last_line(&err)));
        return row;
    }
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if let Some(layout) = summary["layout"].as_str() {
        row.layout = layout.into();
    }
    row.size = summary["size"]["compressed"].as_u64();
    row.result = load(&archive, &tag).and_then(|()| match case.check {
        Check::Prints(wanted) => check_prints(&tag, &name, tls, case.dir == AXIOS_CA, wanted),
        Check::Serves(body) => check_serves(&tag, &name, body),
    });
    row
}

fn load(archive: &Path, tag: &str) -> Result<(), String> {
    let out = Command::new("docker")
        .args(["load", "-i"])
        .arg(archive)
        .output()
        .expect("docker load");
    if out.status.success() && stdout(&out).contains(tag) {
        Ok(())
    } else {
        Err(format!("docker load: {}", last_line(&stderr(&out))))
    }
}

/// Runs the image to its end and checks what it printed. Bounded: the client is killed after
/// 120 s (a container's PID 1 ignores the SIGTERM docker passes on); the cleanup removes it.
fn check_prints(
    tag: &str,
    name: &str,
    tls: &HttpsServer,
    https: bool,
    wanted: &[&str],
) -> Result<(), String> {
    let mut run = Command::new("timeout");
    run.args([
        "-k",
        "5",
        "120",
        "docker",
        "run",
        "--name",
        name,
        "--network",
        "host",
    ]);
    run.args(LIMITS);
    if https {
        run.args(["-e", &format!("URL=https://localhost:{}/", tls.port)]);
    }
    let started = std::time::Instant::now();
    let out = run.arg(tag).output().expect("docker run");
    let (text, err) = (stdout(&out), stderr(&out));
    if started.elapsed().as_secs() >= 120 {
        return Err(format!(
            "run: no exit within 120 s ({})",
            cause(&format!("{text}\n{err}"))
        ));
    }
    if !out.status.success() {
        return Err(format!(
            "run: {} ({})",
            exit(&out),
            cause(&format!("{text}\n{err}"))
        ));
    }
    if let Some(missing) = wanted.iter().find(|w| !text.contains(*w)) {
        return Err(format!(
            "run: its output lacks {missing:?}; it printed {:?}",
            text.chars().take(160).collect::<String>()
        ));
    }
    if let Some(line) = err.lines().find(|l| l.contains(NOISE)) {
        return Err(format!("run: noise on stderr: {}", line.trim()));
    }
    Ok(())
}

/// Starts the image as a server on a free port of the host network and asks it for `/`.
fn check_serves(tag: &str, name: &str, body: &str) -> Result<(), String> {
    let port = free_port();
    let out = Command::new("docker")
        .args(["run", "-d", "--name", name, "--network", "host"])
        .args(LIMITS)
        .arg("-e")
        .arg(format!("PORT={port}"))
        .arg(tag)
        .output()
        .expect("docker run");
    if !out.status.success() {
        return Err(format!("run: {}", last_line(&stderr(&out))));
    }
    let answer = http_get(port, "/").unwrap_or_default();
    if answer.starts_with("HTTP/1.1 200") && answer.contains(body) {
        return Ok(());
    }
    let logs = Command::new("docker")
        .args(["logs", name])
        .output()
        .expect("docker logs");
    Err(format!(
        "GET / answered {:?}; the container says: {}",
        answer.lines().next().unwrap_or("nothing"),
        cause(&format!("{}\n{}", stdout(&logs), stderr(&logs)))
    ))
}

fn exit(out: &Output) -> String {
    match out.status.code() {
        Some(c) => format!("exit {c}"),
        None => "killed".into(),
    }
}

/// The last non-empty line, where programs and binpack say what went wrong.
fn last_line(text: &str) -> String {
    let line = text.lines().rev().find(|l| !l.trim().is_empty());
    line.unwrap_or("(nothing)")
        .trim()
        .chars()
        .take(220)
        .collect()
}

/// What a crashed program said: node's first `TypeError [CODE]: ...` line, else its last line.
fn cause(text: &str) -> String {
    let error = text.lines().find(|l| {
        let word = l.trim_start().split([' ', ':']).next().unwrap_or("");
        word.ends_with("Error")
    });
    match error {
        Some(line) => line.trim().chars().take(220).collect(),
        None => last_line(text),
    }
}

fn table(rows: &[Row]) -> String {
    let mut t = format!(
        "\n{:<16} {:<50} {:<7} {:>9} {:>6}  result\n",
        "case", "covers", "layout", "size", "build"
    );
    for r in rows {
        let size = r
            .size
            .map(|s| format!("{:.1} MB", s as f64 / 1e6))
            .unwrap_or_else(|| "-".into());
        let secs = r
            .build_secs
            .map(|s| format!("{s:.0} s"))
            .unwrap_or_default();
        let result = match &r.result {
            Ok(()) => "pass".to_string(),
            Err(e) => format!("FAIL {e}"),
        };
        t += &format!(
            "{:<16} {:<50} {:<7} {:>9} {secs:>6}  {result}\n",
            r.case, r.covers, r.layout, size
        );
    }
    let passed = rows.iter().filter(|r| r.result.is_ok()).count();
    t + &format!("{passed} of {} cases pass\n", rows.len())
}

/// An HTTPS server on the host (host node), its certificate signed by a CA made for the test.
struct HttpsServer {
    ca: PathBuf,
    port: u16,
    child: Child,
}

impl HttpsServer {
    fn start(dir: &Path) -> HttpsServer {
        let (ca, cert, key) = tls_certs(dir);
        let port = free_port();
        let script = "const fs = require('fs'); const [cert, key, port] = process.argv.slice(1);\
            require('https').createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) },\
            (q, s) => s.end('trusted by the private CA\\n')).listen(Number(port));";
        let child = Command::new("node")
            .args(["-e", script])
            .arg(&cert)
            .arg(&key)
            .arg(port.to_string())
            .spawn()
            .expect("starting node's HTTPS server");
        // Ready when it accepts a connection (bounded: ~15 s).
        for _ in 0..60 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        HttpsServer { ca, port, child }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--packer pkg` end to end, offline: the real @yao-pkg/pkg (pinned in the case's lockfile)
/// packs express in its SEA mode with the official node 22 binpack fetched, and the image
/// answers HTTP.
#[test]
#[ignore = "needs node, npm and a Docker engine"]
fn express_through_pkg_answers_http() {
    need(&["node", "npm"]);
    need_docker();
    let app = corpus("pkg-express");
    assert!(
        app.join("node_modules/.bin/pkg").is_file(),
        "{} has no pkg: run scripts/install-deps.sh all",
        app.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let tag = "binpack-corpus/pkg-express:it";
    let name = format!("binpack-corpus-pkg-{}", std::process::id());
    let _cleanup = DockerCleanup(vec![name.clone(), tag.into()]);
    let archive = tmp.path().join("pkg.tar");
    let s = json_of(
        binpack_node()
            .arg(&app)
            .args(["--packer", "pkg", "--node-version", "22.23.3"])
            .args(["--json", "--quiet", "-t", tag, "-o"])
            .arg(&archive),
    );
    assert_eq!(s["runtime"], "node v22.23.3 (official, from npm)", "{s}");
    assert_eq!(s["base"], "closure", "{s}");
    let port = docker_serve(&archive, tag, &name);
    let answer = http_get(port, "/").expect("no answer from the pkg-built express");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(r#"{"framework":"express","packer":"pkg","ok":true}"#),
        "{answer}"
    );
    println!(
        "pkg-express: {:.1} MB compressed",
        s["size"]["compressed"].as_u64().unwrap_or(0) as f64 / 1e6
    );
}
