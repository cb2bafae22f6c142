//! End to end for `binpack node`: the examples become images that docker runs, the digest is
//! stable, and what a bundle cannot hold is refused by name.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

/// Installs an example's npm dependencies from its lockfile (once per test process).
fn npm_ci(dir: &Path) {
    static EXPRESS: Once = Once::new();
    static ESM: Once = Once::new();
    let once = if dir.ends_with("node-express") {
        &EXPRESS
    } else {
        &ESM
    };
    once.call_once(|| {
        if !dir.join("node_modules").is_dir() {
            ok(Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(dir));
        }
    });
}

/// Runs binpack with a cache shared by the test runs (esbuild, official node runtimes).
fn binpack_node() -> Command {
    let mut c = binpack();
    c.env("BINPACK_CACHE", repo().join("target/test-cache/binpack"));
    c.arg("node");
    c
}

#[test]
#[ignore = "needs node, npm and a Docker engine"]
fn express_server_answers_from_docker() {
    need(&["node", "npm"]);
    need_docker();
    let app = example("node-express");
    npm_ci(&app);
    let dir = tempfile::tempdir().unwrap();
    let tag = "binpack-test/node-express:it";
    let name = format!("binpack-test-express-{}", std::process::id());
    let _cleanup = DockerCleanup(vec![name.clone(), tag.into()]);
    let archive = dir.path().join("express.tar");
    // Under auto express goes to the files layout (its view engine loader, below): the
    // single executable is asked for.
    let out = ok(binpack_node()
        .arg(&app)
        .args(["--layout", "sea", "--json", "-t", tag, "-o"])
        .arg(&archive));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["base"], "closure");
    assert_eq!(s["layout"], "sea");
    assert!(s["runtime"].as_str().unwrap().starts_with("node v"), "{s}");
    // express's view engine loader is a computed require inside node_modules: a note, not an error.
    assert!(
        stderr(&out).contains("note: node_modules/express/lib/view.js"),
        "{}",
        stderr(&out)
    );
    let compressed = s["size"]["compressed"].as_u64().unwrap();
    // The 36 MB target: binpack-layer/3 (zlib level 5) gives 35.5 MB; binpack-layer/2
    // (zlib-rs level 6) gave 36.3 MB.
    assert!(
        compressed <= 36_000_000,
        "express image is {compressed} bytes compressed"
    );

    let port = docker_serve(&archive, tag, &name);
    let resp = http_get(port, "/").unwrap_or_else(|| {
        let logs = Command::new("docker")
            .args(["logs", &name])
            .output()
            .unwrap();
        panic!("no answer on {port}: {}{}", stdout(&logs), stderr(&logs))
    });
    assert!(
        resp.contains("hello from binpack node (uid 65532, node v"),
        "{resp}"
    );
    // localhost resolves through the image's /etc/hosts and glibc's resolver from the closure.
    let resp = http_get(port, "/resolve").unwrap();
    assert!(resp.contains("localhost -> 127.0.0.1"), "{resp}");
}

#[test]
#[ignore = "needs node, npm and a Docker engine"]
fn esm_entry_runs_and_the_digest_is_reproducible() {
    need(&["node", "npm"]);
    need_docker();
    let app = example("node-esm");
    npm_ci(&app);
    let dir = tempfile::tempdir().unwrap();
    let tag = "binpack-test/node-esm:it";
    let build = |out: &str| -> serde_json::Value {
        let o = ok(binpack_node()
            .arg(app.join("index.mjs"))
            .args(["--json", "-q", "-t", tag, "-o"])
            .arg(dir.path().join(out)));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let a = build("a.tar");
    let b = build("b.tar");
    assert_eq!(a["digest"], b["digest"]);
    assert_eq!(
        std::fs::read(dir.path().join("a.tar")).unwrap(),
        std::fs::read(dir.path().join("b.tar")).unwrap()
    );
    let _cleanup = DockerCleanup(vec![tag.into()]);
    ok(Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(dir.path().join("a.tar")));
    let out = ok(Command::new("docker").args(["run", "--rm", "--network", "none", tag]));
    assert_eq!(stdout(&out).trim(), "esm ok: 2 days = 172800000 ms");
}

#[test]
#[ignore = "needs node, npm and a Docker engine"]
fn official_runtime_and_assets() {
    need(&["node", "npm"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("data")).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{"name":"asset-app","main":"main.js"}"#,
    )
    .unwrap();
    std::fs::write(
        app.join("main.js"),
        "const fs = require('fs'), path = require('path');\n\
         const msg = fs.readFileSync(path.join(__dirname, 'data', 'msg.txt'), 'utf8').trim();\n\
         console.log(msg, process.version);\n",
    )
    .unwrap();
    std::fs::write(app.join("data/msg.txt"), "read beside the executable\n").unwrap();
    let tag = "binpack-test/asset-app:it";
    let _cleanup = DockerCleanup(vec![tag.into()]);
    let archive = dir.path().join("a.tar");
    let out = ok(binpack_node()
        .arg(&app)
        .args(["--node-version", "22.23.3", "--asset"])
        .arg(app.join("data"))
        .args(["--json", "-q", "-t", tag, "-o"])
        .arg(&archive));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["runtime"], "node v22.23.3 (official, from npm)");
    // A path built from __dirname: the app reads files beside its code, node and its files.
    assert_eq!(s["layout"], "files", "{s}");
    ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let out = ok(Command::new("docker").args(["run", "--rm", "--network", "none", tag]));
    assert_eq!(stdout(&out).trim(), "read beside the executable v22.23.3");

    // One executable asked for: the asset is beside it, the path a note.
    let out = ok(binpack_node()
        .arg(&app)
        .args(["--node-version", "22.23.3", "--layout", "sea", "--asset"])
        .arg(app.join("data"))
        .args(["--json", "-q", "-t", tag, "-o"])
        .arg(&archive));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["layout"], "sea", "{s}");
    assert!(
        s["notes"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("main.js:2: `const msg = fs.readFileSync(path.join(__dirname, 'data', 'msg.txt'), 'utf8').trim();` reads a file beside its code, there only if --asset put it there"),
        "{s}"
    );
    ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let out = ok(Command::new("docker").args(["run", "--rm", "--network", "none", tag]));
    assert_eq!(stdout(&out).trim(), "read beside the executable v22.23.3");
}

#[test]
#[ignore = "needs node and npm"]
fn what_a_bundle_cannot_hold_is_refused_by_name() {
    need(&["node", "npm"]);
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.tar");
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "computed require",
            vec![
                example("node-computed-require").to_string_lossy().into(),
                "--layout".into(),
                "sea".into(),
            ],
            "--layout sea: a single executable cannot hold a require() whose module name is computed at run time at index.js:3:15 (`const plugin = require(name);`); use --layout files",
        ),
        (
            "native addon",
            vec![
                example("node-addon").to_string_lossy().into(),
                "--layout".into(),
                "sea".into(),
            ],
            "cannot hold a native addon (.node) at index.js:2:22 (`build/Release/addon.node`)",
        ),
        (
            "not a script",
            vec![repo().join("README.md").to_string_lossy().into()],
            "the entry must be a .js, .cjs, .mjs, .ts, .mts or .cts file",
        ),
        (
            "missing entry",
            vec![dir.path().join("nope.js").to_string_lossy().into()],
            "no such file or directory",
        ),
        (
            "pkg not installed",
            vec![
                example("node-computed-require").to_string_lossy().into(),
                "--packer".into(),
                "pkg".into(),
            ],
            "--packer pkg: pkg is not installed",
        ),
    ];
    for (what, args, message) in cases {
        let out = binpack_node()
            .args(&args)
            .arg("-o")
            .arg(&out_file)
            .env("PATH", std::env::var("PATH").unwrap())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(message), "{what}: {err}");
        assert!(!out_file.exists(), "{what}: output left behind");
        assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "{what}");
    }
}

/// Writes stand-in executables into `dir`, each a shell script given as (name, body).
fn stand_ins(dir: &Path, scripts: &[(&str, &str)]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    for (name, script) in scripts {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir.to_path_buf()
}

/// `--packer pkg` with the node on PATH: pkg (a stand-in in the project that records its
/// arguments and fails) runs in its classic mode with node 20 (it needs pkg-fetch's patched
/// binaries, which it may have in its cache), and its failure is explained; with node 22
/// binpack runs `pkg --sea` for that exact node. The node is a stand-in too.
/// tests/node_corpus.rs packs a real express app with the real pkg.
#[test]
fn pkg_is_refused_where_it_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{"name":"p","main":"index.js"}"#,
    )
    .unwrap();
    std::fs::write(app.join("index.js"), "console.log(1)\n").unwrap();
    stand_ins(
        &app.join("node_modules/.bin"),
        &[(
            "pkg",
            "echo \"$@\" > \"$0.ran\"\necho 'pkg: cannot fetch a node binary' >&2\nexit 1",
        )],
    );
    let ran = app.join("node_modules/.bin/pkg.ran");
    let out_file = app.join("out.tar");
    let pack_with_node = |version: &str| {
        let bin = stand_ins(
            &dir.path().join(format!("node-{version}")),
            &[("node", &format!("echo v{version}"))],
        );
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let out = binpack_node()
            .env("PATH", path)
            .arg(&app)
            .args(["--packer", "pkg", "-o"])
            .arg(&out_file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(!out_file.exists(), "output left behind");
        assert_eq!(leftovers(&app), Vec::<String>::new());
        stderr(&out)
    };

    let err = pack_with_node("20.20.2");
    let args = std::fs::read_to_string(&ran).unwrap_or_else(|_| panic!("pkg was not run: {err}"));
    assert!(
        args.starts_with("index.js --config package.json --targets node20-linux-"),
        "{args}"
    );
    assert!(err.contains("pkg: cannot fetch a node binary"), "{err}");
    assert!(
        err.contains("binpack: error: pkg failed (its output is above): with node v20.20.2 pkg runs in its classic mode, which needs pkg-fetch's patched node 20 binary"),
        "{err}"
    );
    assert!(
        err.contains("give --node-version 22 or later for pkg's SEA mode"),
        "{err}"
    );

    // Node 22: pkg --sea for that exact node; its failure is its own output, then binpack's line.
    let err = pack_with_node("22.23.3");
    let args = std::fs::read_to_string(&ran).unwrap_or_else(|_| panic!("pkg was not run: {err}"));
    assert!(
        args.starts_with("index.js --config package.json --sea --targets node22.23.3-linux-"),
        "{args}"
    );
    assert!(err.contains("pkg: cannot fetch a node binary"), "{err}");
    assert!(
        err.contains("binpack: error: pkg --sea failed with node v22.23.3 (its output is above)"),
        "{err}"
    );
}
