//! End to end: `binpack python` packs a flask app that docker runs and that answers; the
//! refusals name the problem, exit 1 and write nothing.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// A flask app (flask pinned) whose `--check` prints one page through flask's test client,
/// and which otherwise serves on 8080.
const FLASK_APP: &str = r#"import ssl, sqlite3, sys, zoneinfo
from flask import Flask
from markupsafe import _speedups  # the C speedups: they need libpthread.so.0

app = Flask(__name__)

@app.route("/")
def hello():
    tz = zoneinfo.ZoneInfo("Asia/Kolkata")
    return f"hello from flask; ssl {ssl.OPENSSL_VERSION.split()[0]}; sqlite {sqlite3.sqlite_version}; {tz}\n"

if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        print(app.test_client().get("/").data.decode(), end="")
    else:
        app.run(host="0.0.0.0", port=8080)
"#;

fn flask_project(dir: &Path) {
    std::fs::write(dir.join("requirements.txt"), "flask==3.1.0\n").unwrap();
    std::fs::write(dir.join("app.py"), FLASK_APP).unwrap();
}

/// Runs `binpack python ARGS` expecting a refusal: exit 1, a message with each of `wanted`,
/// and nothing written in `dir`.
fn refused(dir: &Path, args: &[&str], wanted: &[&str]) {
    let out = binpack()
        .current_dir(dir)
        .arg("python")
        .args(args)
        .args(["-o", "out.tar", "--quiet"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in wanted {
        assert!(err.contains(w), "wanted {w:?} in: {err}");
    }
    assert!(!dir.join("out.tar").exists(), "an archive was written");
    assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));
}

#[test]
fn a_missing_script_is_named() {
    let dir = tempfile::tempdir().unwrap();
    refused(dir.path(), &["nope.py"], &["nope.py", "main script"]);
}

#[test]
fn a_missing_requirements_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    flask_project(dir.path());
    refused(
        dir.path(),
        &["app.py", "--requirements", "reqs/prod.txt"],
        &["no such requirements file: reqs/prod.txt"],
    );
}

#[test]
fn a_directory_without_pyproject_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    flask_project(dir.path());
    refused(
        dir.path(),
        &["."],
        &["has no pyproject.toml", "[project.scripts]"],
    );
}

#[test]
#[ignore = "needs python3 with pip and the package index"]
fn an_extension_without_its_system_library_is_refused() {
    need(&["python3"]);
    // pyodbc's wheel links libodbc.so.2 (Debian's libodbc2, from unixodbc); an empty root
    // has none.
    if Path::new("/usr/lib/x86_64-linux-gnu/libodbc.so.2").exists() {
        eprintln!("libodbc.so.2 is installed here: checked with the corpus's root instead");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.txt"), "pyodbc==5.2.0\n").unwrap();
    std::fs::write(dir.path().join("app.py"), "import pyodbc\n").unwrap();
    refused(
        dir.path(),
        &["app.py"],
        &[
            "pyodbc",
            "libodbc.so.2",
            "apt-get install libodbc2 (unixodbc)",
        ],
    );
}

#[test]
#[ignore = "needs python3 with pip, the package index and a Docker engine"]
fn a_flask_app_answers_from_docker() {
    need(&["python3"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    flask_project(dir.path());
    let tag = "binpack-test/py-flask:it";
    let _cleanup = DockerCleanup(vec![tag.into()]);
    let archive = dir.path().join("flask.tar");
    let s = pack_json(
        binpack()
            .args(["python"])
            .arg(dir.path().join("app.py"))
            .arg("-o")
            .arg(&archive)
            .args(["-t", tag]),
    );
    assert_eq!(s["reference"], tag);
    ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let out = ok(Command::new("docker").args(["run", "--rm", "--network", "none", tag, "--check"]));
    let page = stdout(&out);
    assert!(page.starts_with("hello from flask; ssl OpenSSL"), "{page}");
    assert!(
        page.contains("sqlite 3.") && page.contains("Asia/Kolkata"),
        "{page}"
    );
    // The same project again gives the same image.
    let again = pack_json(
        binpack()
            .args(["python"])
            .arg(dir.path().join("app.py"))
            .arg("-o")
            .arg(dir.path().join("again.tar"))
            .args(["-t", tag]),
    );
    assert_eq!(s["digest"], again["digest"]);
}

/// `readline` (one of the five modules shipped only when named) goes in the image of an app
/// that imports it, not in that of an app that imports a module by a name from argv, which
/// binpack says it left out; both images share the interpreter's layer.
#[test]
#[ignore = "needs python3 and a Docker engine"]
fn a_module_shipped_only_when_named_follows_the_app_that_names_it() {
    need(&["python3"]);
    need_docker();
    let host_has = Command::new("python3")
        .args(["-c", "import readline"])
        .status();
    if !host_has.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: the python3 on PATH has no readline module");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let named = dir.path().join("named");
    let argv = dir.path().join("argv");
    for d in [&named, &argv] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("requirements.txt"), "").unwrap();
    }
    std::fs::write(
        named.join("app.py"),
        "import readline\nprint('readline', readline.__name__)\n",
    )
    .unwrap();
    std::fs::write(
        argv.join("app.py"),
        "import importlib, sys\ntry:\n    importlib.import_module(sys.argv[1])\n    print('loaded')\nexcept ImportError as e:\n    print('missing', e.name)\n",
    )
    .unwrap();
    let tags = ["binpack-test/py-named:it", "binpack-test/py-argv:it"];
    let _cleanup = DockerCleanup(tags.iter().map(|t| t.to_string()).collect());
    let mut layers = Vec::new();
    for (d, tag) in [(&named, tags[0]), (&argv, tags[1])] {
        let archive = d.join("image.tar");
        let out = ok(binpack()
            .arg("python")
            .arg(d.join("app.py"))
            .arg("-o")
            .arg(&archive)
            .args(["-t", tag, "--quiet"]));
        let err = stderr(&out);
        let listed = err
            .split("left out the standard library's ")
            .nth(1)
            .and_then(|rest| rest.split(" (").next())
            .unwrap_or_default();
        assert_eq!(listed.contains("readline"), d == &argv, "{err}");
        layers.push(ArchiveFiles::open(&archive).manifest()["layers"][0]["digest"].clone());
        ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    }
    assert_eq!(layers[0], layers[1], "the interpreter's layer differs");
    let run = |tag: &str, args: &[&str]| {
        stdout(&ok(Command::new("docker")
            .args(["run", "--rm", "--network", "none", tag])
            .args(args)))
    };
    assert_eq!(run(tags[0], &[]).trim(), "readline readline");
    assert_eq!(run(tags[1], &["readline"]).trim(), "missing readline");
    assert_eq!(run(tags[1], &["sqlite3"]).trim(), "loaded");
}
