//! The Node.js classes of issue 22 that built with exit 0 and then failed in the container, on
//! their real packages (tests/corpus/node/<case>, pinned by lockfiles; tests/node_corpus.rs
//! runs each in docker on the host's platform): under `--layout sea` each is refused naming
//! the construct, its file and line, and the way out, with exit 1 and nothing written; for
//! another platform the addon's platform package is fetched from npm at its locked version
//! and the image runs there. And (issue 23) a file the app reads outside the project is
//! refused by name, not dropped.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus(dir: &str) -> PathBuf {
    let d = repo().join("tests/corpus/node").join(dir);
    assert!(
        d.join("node_modules").is_dir(),
        "{} has no node_modules: run scripts/install-deps.sh all",
        d.display()
    );
    d
}

/// A copy of the case `dir` in `tmp`, for a test that changes it.
fn copied(tmp: &Path, dir: &str) -> PathBuf {
    let app = tmp.join(dir);
    ok(Command::new("cp").arg("-r").arg(corpus(dir)).arg(&app));
    app
}

/// binpack node with the cache the node tests share (esbuild, runtimes, the tracer).
fn binpack_node() -> Command {
    let mut c = binpack();
    c.env("BINPACK_CACHE", repo().join("target/test-cache/binpack"));
    c.arg("node");
    c
}

/// Runs a build that must be refused: its message, after checking exit 1 and that nothing
/// was written into `out`'s directory.
fn refused(cmd: &mut Command, out: &Path) -> String {
    let run = cmd.arg("-o").arg(out).output().expect("running binpack");
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(!out.exists(), "output left behind: {err}");
    let dir = out.parent().unwrap();
    assert_eq!(leftovers(dir), Vec::<String>::new(), "{err}");
    err
}

#[test]
#[ignore = "needs node and npm"]
fn sea_refuses_each_class_naming_the_construct_and_line() {
    need(&["node", "npm"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.tar");
    let cases = [
        (
            "plugin-argv",
            ".",
            "an import() whose specifier is computed at run time at main.js:8:",
        ),
        (
            "read-package-up",
            ".",
            "a package.json read at run time at src/cli.js:8 (`const { packageJson } = readPackageUpSync({ cwd: here });`)",
        ),
        (
            "prettier-cli",
            "node_modules/prettier",
            "an import() inside code made at run time (new Function or eval) at bin/prettier.cjs:37 (`var dynamicImport = new Function(\"module\", \"return import(module)\");`)",
        ),
        (
            "lightningcss",
            ".",
            "a native addon (.node) at node_modules/lightningcss/package.json (`optionalDependencies: lightningcss-linux-",
        ),
        (
            "rollup",
            ".",
            "a native addon (.node) at node_modules/rollup/package.json (`optionalDependencies: @rollup/rollup-linux-",
        ),
    ];
    for (dir, entry, construct) in cases {
        let err = refused(
            binpack_node()
                .arg(corpus(dir).join(entry))
                .args(["--layout", "sea", "--quiet"]),
            &out,
        );
        let head = "--layout sea: a single executable cannot hold ";
        assert!(err.contains(&format!("{head}{construct}")), "{dir}: {err}");
        assert!(err.contains("use --layout files"), "{dir}: {err}");
    }
}

/// The plugin host's image under the default layout: files, with a note naming the line
/// whose import() cannot be followed and what was shipped for it.
#[test]
#[ignore = "needs node and npm"]
fn a_computed_import_of_the_app_s_own_files_is_noted_by_line() {
    need(&["node", "npm"]);
    let tmp = tempfile::tempdir().unwrap();
    let s = json_of(
        binpack_node()
            .arg(corpus("plugin-argv"))
            .args(["--json", "--quiet", "-o"])
            .arg(tmp.path().join("out.tar")),
    );
    assert_eq!(s["layout"], "files", "{s}");
    let notes = s["notes"].to_string();
    assert!(
        notes.contains("main.js:8:") && notes.contains("names its module at run time"),
        "{notes}"
    );
    assert!(notes.contains("own module files"), "{notes}");
}

/// Addons for linux/arm64 from an amd64 host, where npm installed only the x64 packages: the
/// arm64 ones are fetched at the lockfile's version (sharp's two, laid out beside each other
/// so the addon finds libvips through its `$ORIGIN` run path), the x64 ones left out (the
/// back half refuses an x64 addon in an arm64 image), and the images run under qemu.
#[test]
#[ignore = "needs node, npm, qemu-user-static (binfmt_misc), the npm registry and a Docker engine"]
fn another_platform_s_addon_packages_are_fetched_at_their_locked_versions() {
    need(&["node", "npm"]);
    need_docker();
    let cases = [
        (
            "lightningcss",
            &["node_modules/lightningcss-linux-arm64-gnu"][..],
            "lightningcss on arm64: .a{color:red;margin:0}",
        ),
        (
            "sharp",
            &[
                "node_modules/@img/sharp-libvips-linux-arm64",
                "node_modules/@img/sharp-linux-arm64",
            ][..],
            "sharp made png 4x3 vips 8.17.2",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (dir, fetched, prints) in cases {
        let archive = tmp.path().join(format!("{dir}.tar"));
        let tag = format!("binpack-classes/{dir}-arm64:it");
        let name = format!("binpack-classes-{dir}-{}", std::process::id());
        let _cleanup = DockerCleanup(vec![name.clone(), tag.clone()]);
        let s = json_of(
            binpack_node()
                .arg(corpus(dir))
                .args(["--platform", "linux/arm64", "--json", "--quiet", "-t", &tag])
                .arg("-o")
                .arg(&archive),
        );
        let notes = s["notes"].to_string();
        for package in fetched {
            let note = format!("{package} is fetched from npm for linux/arm64");
            assert!(notes.contains(&note), "{dir}: {notes}");
        }
        ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
        let out = ok(Command::new("docker").args([
            "run",
            "--name",
            &name,
            "--platform",
            "linux/arm64",
            &tag,
        ]));
        assert_eq!(stdout(&out).trim(), prints, "{dir}");
    }
}

/// A file the app reads beside the project (found by the tracer, never bundled) was left out
/// and the image failed at run time; now the build is refused naming it.
#[test]
#[ignore = "needs node and npm"]
fn a_traced_file_outside_the_project_is_refused_by_name() {
    need(&["node", "npm"]);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let app = root.join("app");
    std::fs::create_dir_all(app.join("node_modules")).unwrap();
    std::fs::write(root.join("shared.json"), r#"{"greeting":"hi"}"#).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{"name":"app","main":"index.js"}"#,
    )
    .unwrap();
    std::fs::write(
        app.join("index.js"),
        "const fs = require('fs'), path = require('path');\n\
         console.log(fs.readFileSync(path.join(__dirname, '../shared.json'), 'utf8'));\n",
    )
    .unwrap();
    let err = refused(
        binpack_node()
            .arg(&app)
            .args(["--layout", "files", "--quiet"]),
        &app.join("out.tar"),
    );
    let want = format!(
        "{}: the app reads this file at run time (found by the tracer), which lies outside the project",
        root.join("shared.json").display()
    );
    assert!(err.contains(&want), "{err}");
}

/// The same lightningcss project for linux/arm64 when its lockfile does not hold the arm64
/// package (installed with an older npm, or edited): binpack cannot know which version to
/// fetch and refuses naming the package, with exit 1 and nothing written; and when it locks
/// other bytes than the registry serves.
#[test]
#[ignore = "needs node, npm and the npm registry"]
fn an_addon_package_binpack_cannot_fetch_is_refused_by_name() {
    need(&["node", "npm"]);
    let tmp = tempfile::tempdir().unwrap();
    let app = copied(tmp.path(), "lightningcss");
    let lock = app.join("package-lock.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock).unwrap()).unwrap();
    let key = "node_modules/lightningcss-linux-arm64-gnu";
    v["packages"].as_object_mut().unwrap().remove(key);
    std::fs::write(&lock, v.to_string()).unwrap();
    let err = refused(
        binpack_node()
            .arg(&app)
            .args(["--platform", "linux/arm64", "--quiet"]),
        &tmp.path().join("out.tar"),
    );
    let want = "node_modules/lightningcss loads its native code from its optional dependency lightningcss-linux-arm64-gnu, the build for linux/arm64/v8, which npm did not install";
    assert!(err.contains(want), "{err}");
    assert!(err.contains("does not lock its version"), "{err}");
    // Locked with other bytes than the registry serves: fetched, checked, refused, not cached.
    let other = "sha512-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
    v["packages"][key] = serde_json::json!({"version": "1.30.1", "integrity": other});
    std::fs::write(&lock, v.to_string()).unwrap();
    let err = refused(
        binpack_node()
            .arg(&app)
            .args(["--platform", "linux/arm64", "--quiet"]),
        &tmp.path().join("out.tar"),
    );
    assert!(err.contains(want), "{err}");
    let mismatch = format!("does not match the lockfile's integrity ({other}); not caching it");
    assert!(err.contains(&mismatch), "{err}");
}

/// lightningcss installed with `--omit=optional` (no platform package at all): the host's is
/// fetched at its locked version, and the image runs.
#[test]
#[ignore = "needs node, npm, the npm registry and a Docker engine"]
fn an_omitted_platform_package_is_fetched_for_the_host_too() {
    need(&["node", "npm"]);
    need_docker();
    let tmp = tempfile::tempdir().unwrap();
    let app = copied(tmp.path(), "lightningcss");
    let host = format!("lightningcss-linux-{}-gnu", npm_cpu());
    std::fs::remove_dir_all(app.join("node_modules").join(&host)).unwrap();
    let archive = tmp.path().join("omit.tar");
    let tag = "binpack-classes/lightningcss-omit:it";
    let name = format!("binpack-classes-omit-{}", std::process::id());
    let _cleanup = DockerCleanup(vec![name.clone(), tag.into()]);
    let s = json_of(
        binpack_node()
            .arg(&app)
            .args(["--json", "--quiet", "-t", tag, "-o"])
            .arg(&archive),
    );
    let note = format!("node_modules/{host} is fetched from npm");
    assert!(s["notes"].to_string().contains(&note), "{s}");
    ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let out = ok(Command::new("docker").args(["run", "--name", &name, tag]));
    let want = format!("lightningcss on {}: .a{{color:red;margin:0}}", npm_cpu());
    assert_eq!(stdout(&out).trim(), want);
}

/// npm's name for this machine's CPU.
fn npm_cpu() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => panic!("no npm CPU name for {other}"),
    }
}
