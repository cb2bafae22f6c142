//! `binpack node`'s two layouts: what `--layout auto` picks and why, the `files` layout's two
//! layers (a runtime layer the same for every app, the app's traced files above it), the
//! single executable's fixes (import.meta, TypeScript, optional requires), certificates, and
//! each construct `--layout sea` refuses by name.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn binpack_node() -> Command {
    let mut c = binpack();
    c.env("BINPACK_CACHE", repo().join("target/test-cache/binpack"));
    c.arg("node");
    c
}

/// A project in `dir` from (relative path, contents).
fn project(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir.to_path_buf()
}

/// Builds `args` into `archive` tagged `tag`; the `--json` summary.
fn build(args: &[&str], archive: &Path, tag: &str) -> serde_json::Value {
    let out = ok(binpack_node()
        .args(args)
        .args(["--json", "-q", "-t", tag, "-o"])
        .arg(archive));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `docker load`s `archive` and runs `tag` to completion on the host network: its output.
fn run(archive: &Path, tag: &str, extra: &[&str]) -> String {
    ok(Command::new("docker").arg("load").arg("-i").arg(archive));
    let out = ok(Command::new("docker")
        .args(["run", "--rm", "--network", "host"])
        .args(extra)
        .arg(tag));
    format!("{}{}", stdout(&out), stderr(&out))
}

/// The layer digests of the image in `archive`, bottom first.
fn layers(archive: &Path) -> Vec<(String, u64)> {
    let m = ArchiveFiles::open(archive).manifest();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn npm_ci(dir: &Path) {
    if !dir.join("node_modules").is_dir() {
        ok(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir));
    }
}

const WORKER_APP: &[(&str, &str)] = &[
    (
        "package.json",
        r#"{"name":"worker-app","version":"1.0.0","main":"main.js"}"#,
    ),
    (
        "main.js",
        "const { Worker } = require('worker_threads');\n\
         const path = require('path');\n\
         const w = new Worker(path.join(__dirname, 'lib', 'worker.js'), { workerData: 21 });\n\
         w.on('message', (m) => console.log('worker answered', m, 'cwd', process.cwd()));\n",
    ),
    (
        "lib/worker.js",
        "const { parentPort, workerData } = require('worker_threads');\n\
         parentPort.postMessage(workerData * 2);\n",
    ),
];

/// The files layout: the same digest twice; the runtime layer of two different apps is the
/// same blob and the app layer is small; auto picks files for a worker by path and says so;
/// both run.
#[test]
#[ignore = "needs node, npm and a Docker engine"]
fn files_layout_shares_the_runtime_layer() {
    need(&["node", "npm"]);
    need_docker();
    let express = repo().join("examples/node-express");
    npm_ci(&express);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    let tag = "binpack-test/layout-express:it";
    let wtag = "binpack-test/layout-worker:it";
    let _cleanup = DockerCleanup(vec![tag.into(), wtag.into()]);
    let express_arg = express.to_str().unwrap();
    let s = build(&[express_arg, "--layout", "files"], &a, tag);
    let again = build(&[express_arg, "--layout", "files"], &b, tag);
    assert_eq!(s["digest"], again["digest"]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(
        (&s["layout"], &s["layout_reason"]),
        (
            &serde_json::json!("files"),
            &serde_json::json!("asked for with --layout files")
        )
    );
    assert_eq!(s["entrypoint"], "/usr/local/bin/node");
    let cfg = ArchiveFiles::open(&a).config();
    assert_eq!(
        cfg["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/node", "/app/server.js"])
    );
    let express_layers = layers(&a);
    assert_eq!(express_layers.len(), 2, "{express_layers:?}");
    // What a release after a change to the app pushes: the app layer only.
    assert!(express_layers[1].1 < 1_000_000, "{express_layers:?}");
    let entries: Vec<String> = app_layer_entries(&a).into_iter().map(|e| e.0).collect();
    assert!(entries.contains(&"app/node_modules/express/package.json".to_string()));
    assert!(
        !entries.iter().any(|e| e.contains("esbuild")),
        "{entries:?}"
    );

    let app = project(&dir.path().join("worker"), WORKER_APP);
    let w = dir.path().join("w.tar");
    let ws = build(&[app.to_str().unwrap()], &w, wtag);
    assert_eq!(ws["layout"], "files");
    let why = ws["layout_reason"].as_str().unwrap();
    assert!(
        why.contains("a worker started from a file path at main.js:3"),
        "{why}"
    );
    assert_eq!(layers(&w)[0], express_layers[0], "runtime layers differ");
    assert_eq!(run(&w, wtag, &[]).trim(), "worker answered 42 cwd /app");

    let name = format!("binpack-test-layout-{}", std::process::id());
    let _c = DockerCleanup(vec![name.clone()]);
    let port = docker_serve(&a, tag, &name);
    let resp = http_get(port, "/").unwrap_or_else(|| panic!("no answer on {port}"));
    assert!(
        resp.contains("hello from binpack node (uid 65532"),
        "{resp}"
    );
}

/// The single executable's fixes on small cases: import.meta (url, filename, dirname,
/// createRequire), a TypeScript entry, an optional dependency probed in try/catch (quiet);
/// top-level await goes to the files layout under auto and runs.
#[test]
#[ignore = "needs node, npm and a Docker engine"]
fn sea_fixes_and_top_level_await() {
    need(&["node", "npm"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let app = project(
        &dir.path().join("app"),
        &[
            (
                "package.json",
                r#"{"name":"meta","version":"1.0.0","type":"module"}"#,
            ),
            (
                "main.mjs",
                "import { createRequire } from 'module';\n\
                 import { fileURLToPath } from 'url';\n\
                 import { greet } from './greet.ts';\n\
                 const require = createRequire(import.meta.url);\n\
                 let optional = 'absent';\n\
                 try { require('not-installed-optional'); optional = 'present'; } catch {}\n\
                 const here = fileURLToPath(import.meta.url);\n\
                 console.log(greet('meta'), typeof require('os').cpus, optional, here === import.meta.filename, import.meta.dirname);\n",
            ),
            (
                "greet.ts",
                "export function greet(name: string): string { return `hello ${name}`; }\n",
            ),
            (
                "tla.mjs",
                "const v = await Promise.resolve(7);\nconsole.log('awaited', v);\n",
            ),
            (
                "probe.cjs",
                "let ws = 'absent';\n\
                 try { require('bufferutil'); ws = 'present'; } catch (e) { ws = e.code; }\n\
                 console.log('optional:', ws);\n",
            ),
            (
                "cli.ts",
                "const n: number = 6 * 7;\nconsole.log(`typescript ${n}`);\n",
            ),
        ],
    );
    let tag = "binpack-test/layout-meta:it";
    let _cleanup = DockerCleanup(vec![tag.into()]);
    let archive = dir.path().join("m.tar");
    let s = build(&[app.join("main.mjs").to_str().unwrap()], &archive, tag);
    assert_eq!(s["layout"], "sea", "{s}");
    assert_eq!(
        run(&archive, tag, &[]).trim(),
        "hello meta function absent true /app"
    );

    // An optional dependency probed in try/catch: node's own error, and no SEA warning (run
    // returns stderr too).
    build(&[app.join("probe.cjs").to_str().unwrap()], &archive, tag);
    assert_eq!(run(&archive, tag, &[]).trim(), "optional: MODULE_NOT_FOUND");

    let s = build(&[app.join("cli.ts").to_str().unwrap()], &archive, tag);
    assert_eq!(s["layout"], "sea");
    assert_eq!(run(&archive, tag, &[]).trim(), "typescript 42");

    let s = build(&[app.join("tla.mjs").to_str().unwrap()], &archive, tag);
    assert_eq!(s["layout"], "files");
    assert!(
        s["layout_reason"]
            .as_str()
            .unwrap()
            .contains("top-level await at tla.mjs:1"),
        "{s}"
    );
    assert_eq!(run(&archive, tag, &[]).trim(), "awaited 7");
}

/// Each construct a bundle cannot hold, under `--layout sea`: exit 1, the construct and its
/// file named, nothing left behind. And a project without node_modules is told to run npm ci.
#[test]
#[ignore = "needs node and npm"]
fn sea_refuses_what_a_bundle_cannot_hold() {
    need(&["node", "npm"]);
    let dir = tempfile::tempdir().unwrap();
    let app = project(
        &dir.path().join("app"),
        &[
            ("package.json", r#"{"name":"r","version":"1.0.0"}"#),
            ("child.js", "process.send && process.send('hi');\n"),
            (
                "fork.js",
                "const cp = require('child_process');\ncp.fork(require('path').join(__dirname, 'child.js'));\n",
            ),
            (
                "import.js",
                "const name = process.argv[2] || 'os';\nimport(name).then(console.log);\n",
            ),
            (
                "resolve.js",
                "console.log(require.resolve('./child.js'));\n",
            ),
            (
                "tla.mjs",
                "await new Promise((r) => setTimeout(r, 1));\n",
            ),
            ("worker.js", WORKER_APP[1].1),
            (
                "path.js",
                "const path = require('path');\nconst pool = { filename: path.resolve(__dirname, 'child.js') };\n",
            ),
        ],
    );
    let out_file = dir.path().join("out.tar");
    let cases = [
        (
            "fork.js",
            "a child process forked from a script path at fork.js:2",
        ),
        (
            "import.js",
            "an import() whose specifier is computed at run time at import.js:2:0",
        ),
        (
            "resolve.js",
            "require.resolve() of a module at resolve.js:1",
        ),
        ("tla.mjs", "top-level await at tla.mjs:1"),
        (
            "worker.js",
            "a worker started from a file path at worker.js:3",
        ),
        (
            "path.js",
            "a file path built from the code's own location (__dirname, __filename or import.meta) at path.js:2 (`const pool = { filename: path.resolve(__dirname, 'child.js') };`)",
        ),
        (
            "../../../examples/node-addon/index.js",
            "a native addon (.node) at index.js:2",
        ),
    ];
    for (entry, message) in cases {
        let entry = if entry.starts_with("..") {
            repo().join("examples/node-addon")
        } else {
            app.join(entry)
        };
        let out = binpack_node()
            .arg(&entry)
            .args(["--layout", "sea", "-o"])
            .arg(&out_file)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{entry:?}: {err}");
        assert!(
            err.contains(&format!(
                "binpack: error: --layout sea: a single executable cannot hold {message}"
            )),
            "{entry:?}: {err}"
        );
        assert!(err.contains("use --layout files"), "{err}");
        assert!(!out_file.exists(), "{entry:?}: output left behind");
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }

    // A dependency that is not installed: the fix, not esbuild's resolution error.
    let bare = project(
        &dir.path().join("bare"),
        &[
            (
                "package.json",
                r#"{"name":"bare","dependencies":{"ms":"2.1.3"}}"#,
            ),
            ("index.js", "console.log(require('ms')('1s'));\n"),
        ],
    );
    let out = binpack_node()
        .arg(&bare)
        .arg("-o")
        .arg(&out_file)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let canon = bare.canonicalize().unwrap();
    assert!(
        err.contains(&format!(
            "cannot resolve the package \"ms\": {} has no node_modules; run npm ci (or npm install) in {}",
            canon.display(),
            canon.display()
        )),
        "{err}"
    );
    assert!(!out_file.exists());
}

/// A private CA given with --ca-certs is trusted by node's https.get and fetch, in both
/// layouts: the server runs on the host with a certificate that CA signed.
#[test]
#[ignore = "needs node, npm, openssl and a Docker engine"]
fn private_ca_reaches_node() {
    need(&["node", "npm", "openssl"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tls_certs(d);
    let port = free_port();
    std::fs::write(
        d.join("server.js"),
        format!(
            "require('https').createServer({{key: require('fs').readFileSync('server.key'), cert: require('fs').readFileSync('server.pem')}}, (q, r) => r.end('private hello')).listen({port}, '127.0.0.1');\n"
        ),
    )
    .unwrap();
    let mut server = Command::new("node")
        .arg("server.js")
        .current_dir(d)
        .spawn()
        .unwrap();
    let app = project(
        &d.join("app"),
        &[
            ("package.json", r#"{"name":"ca-app","version":"1.0.0"}"#),
            (
                "index.js",
                "const url = process.env.URL;\n\
                 require('https').get(url, (res) => { let b = ''; res.on('data', (c) => b += c); res.on('end', () => {\n\
                   console.log('https.get:', b);\n\
                   fetch(url).then((r) => r.text()).then((t) => console.log('fetch:', t), (e) => console.log('fetch failed:', e.cause ? e.cause.code : e.message));\n\
                 }); }).on('error', (e) => console.log('https.get failed:', e.code));\n",
            ),
        ],
    );
    let tag = "binpack-test/layout-ca:it";
    let _cleanup = DockerCleanup(vec![tag.into()]);
    let archive = d.join("ca.tar");
    let url = format!("URL=https://localhost:{port}/");
    let ca = d.join("ca.pem");
    for layout in ["sea", "files"] {
        build(
            &[
                app.to_str().unwrap(),
                "--layout",
                layout,
                "--ca-certs",
                ca.to_str().unwrap(),
            ],
            &archive,
            tag,
        );
        let got = run(&archive, tag, &["-e", &url]);
        assert_eq!(
            got.trim(),
            "https.get: private hello\nfetch: private hello",
            "{layout}"
        );
    }
    // Without it, the pinned bundle does not know the CA: the check above can fail.
    build(&[app.to_str().unwrap()], &archive, tag);
    let got = run(&archive, tag, &["-e", &url]);
    assert!(got.contains("https.get failed:"), "{got}");
    let _ = server.kill();
    let _ = server.wait();
}

/// The files layout ships whole a package whose code reaches files the tracer cannot follow
/// (moment's locales by an aliased require): every file of it, not its nested node_modules,
/// with a note naming it and why; the same under auto and --layout files. A package without
/// such code keeps its traced files only.
#[test]
#[ignore = "needs node and npm"]
fn files_layout_ships_whole_what_the_tracer_cannot_follow() {
    need(&["node", "npm"]);
    let dir = tempfile::tempdir().unwrap();
    let app = project(
        &dir.path().join("app"),
        &[
            (
                "package.json",
                r#"{"name":"locales","version":"1.0.0","main":"main.js"}"#,
            ),
            (
                "main.js",
                "const say = require('sayer');\nconsole.log(say('fr'), require('plain'));\n",
            ),
            (
                "node_modules/sayer/package.json",
                r#"{"name":"sayer","version":"1.0.0"}"#,
            ),
            (
                "node_modules/sayer/index.js",
                "const load = require;\n\
                 module.exports = (l) => { try { return load('./locale/' + l); } catch { return 'en'; } };\n",
            ),
            ("node_modules/sayer/locale/fr.js", "module.exports = 'bonjour';\n"),
            ("node_modules/sayer/locale/de.js", "module.exports = 'hallo';\n"),
            ("node_modules/sayer/node_modules/extra/index.js", "\n"),
            (
                "node_modules/plain/package.json",
                r#"{"name":"plain","version":"1.0.0"}"#,
            ),
            ("node_modules/plain/index.js", "module.exports = 'plain';\n"),
            ("node_modules/plain/unused.js", "\n"),
        ],
    );
    let archive = dir.path().join("l.tar");
    for layout in ["auto", "files"] {
        let s = build(
            &[app.to_str().unwrap(), "--layout", layout],
            &archive,
            "binpack-test/locales:it",
        );
        assert_eq!(s["layout"], "files", "{s}");
        let note = "node_modules/sayer is shipped whole (2 more files): the tracer cannot follow an indirect call to require at node_modules/sayer/index.js:1:13 (`const load = require;`)";
        assert_eq!(s["notes"], serde_json::json!([note]), "{layout}: {s}");
        let entries: Vec<String> = app_layer_entries(&archive)
            .into_iter()
            .map(|e| e.0)
            .collect();
        for f in ["locale/fr.js", "locale/de.js"] {
            let f = format!("app/node_modules/sayer/{f}");
            assert!(entries.contains(&f), "{layout}: {f} missing: {entries:?}");
        }
        assert!(
            !entries
                .iter()
                .any(|e| e.contains("extra") || e.ends_with("unused.js")),
            "{layout}: {entries:?}"
        );
    }
}

/// A native addon that links a system library beyond node's own gets that library, and what
/// it needs, in the app layer. Debian's libcurl stands in for an addon (a `.node` is a shared
/// object; node would refuse this one when loading it, binpack only reads what it links).
#[test]
#[ignore = "needs node and npm"]
fn an_addons_system_libraries_come_with_it() {
    need(&["node", "npm"]);
    let libcurl = Path::new("/usr/lib/x86_64-linux-gnu/libcurl.so.4");
    assert!(libcurl.exists(), "this test reads {}", libcurl.display());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(libcurl, d.join("curl.node")).unwrap();
    std::fs::create_dir(d.join("node_modules")).unwrap();
    std::fs::write(
        d.join("package.json"),
        r#"{"name":"addon","version":"1.0.0","main":"index.js"}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("index.js"),
        "try { require('./curl.node') } catch (e) {}\n",
    )
    .unwrap();
    let layout = d.join("layout");
    ok(binpack()
        .args(["node", "--layout", "files", "--oci-layout"])
        .arg(&layout)
        .arg(d));
    let index = fixture::json(&layout.join("index.json"));
    let manifest = fixture::json(&fixture::blob(&layout, &index["manifests"][0]["digest"]));
    let app = manifest["layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let names: Vec<String> = fixture::layer_entries(&fixture::blob(&layout, &app["digest"]))
        .into_iter()
        .map(|e| e.0)
        .collect();
    for lib in ["libnghttp2.so", "libssl.so", "libssh2.so"] {
        assert!(
            names
                .iter()
                .any(|n| n.contains(lib) && !n.ends_with("curl.node")),
            "the app layer has no {lib}: {names:?}"
        );
    }
    // Scanners see the packages they come from: dpkg's entries beside them, and the SBOM.
    let entry = |p: &str| {
        names
            .iter()
            .any(|n| n.contains("var/lib/dpkg/status.d/") && n.contains(p))
    };
    assert!(entry("libssh2") && entry("libnghttp2"), "{names:?}");
    let unpacked = d.join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    ok(Command::new("tar")
        .arg("-xzf")
        .arg(fixture::blob(&layout, &app["digest"]))
        .arg("-C")
        .arg(&unpacked));
    let sbom = std::fs::read_to_string(unpacked.join("var/lib/db/sbom/addon.spdx.json")).unwrap();
    assert!(sbom.contains("pkg:deb/debian/libssh2-1"), "{sbom}");
}
