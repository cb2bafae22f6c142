//! The files layout's trace cache: an unchanged project is packed without esbuild or the
//! tracer, byte for byte as before; a changed dependency file, a file added in a traced
//! directory and a changed app file each give a new trace (the same image as a build with the
//! cache off); a damaged entry is traced again and rewritten; `--no-layer-cache` bypasses it.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// binpack's stage lines and the image's app layer digest.
struct Build {
    stages: Vec<String>,
    app_layer: String,
    entries: Vec<String>,
}

impl Build {
    fn traced(&self) -> bool {
        self.stages.iter().any(|s| s.contains("tracing the files"))
    }
    fn known(&self) -> bool {
        self.stages.iter().any(|s| {
            s.contains("the trace of echo.js is known") && s.contains("taken from the cache")
        })
    }
    fn has(&self, path: &str) -> bool {
        self.entries.iter().any(|e| e == path)
    }
}

fn build(app: &Path, out: &Path, extra: &[&str]) -> Build {
    let run = ok(binpack()
        .env("BINPACK_CACHE", cache())
        .arg("node")
        .arg(app)
        .args(["--layout", "files", "-o"])
        .arg(out)
        .args(extra));
    let stages = stderr(&run)
        .lines()
        // Progress lines are stamped (`[   0.4s] binpack: ...`) when stderr is no terminal.
        .filter_map(|l| l.split_once("binpack: ").map(|(_, stage)| stage))
        .map(String::from)
        .collect();
    let m = ArchiveFiles::open(out).manifest();
    let last = m["layers"].as_array().unwrap().last().unwrap();
    let entries = app_layer_entries(out).into_iter().map(|(p, _)| p).collect();
    Build {
        stages,
        app_layer: last["digest"].as_str().unwrap().to_string(),
        entries,
    }
}

fn cache() -> PathBuf {
    repo().join("target/test-cache/binpack")
}

fn copy_dir(from: &Path, to: &Path) {
    ok(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// The cache's trace entries (not the analyses): their paths.
fn trace_entries() -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(cache().join("trace")) else {
        return vec![];
    };
    dir.map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".json") && !name.starts_with("analyses-")
        })
        .collect()
}

#[test]
#[ignore = "needs node and npm"]
fn an_unchanged_project_traces_nothing_and_each_change_traces_again() {
    need(&["node", "npm"]);
    let corpus = repo().join("tests/corpus/node/ws");
    if !corpus.join("node_modules").is_dir() {
        ok(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&corpus));
    }
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    copy_dir(&corpus, &app);
    // echo.js reads ./conf, which is conf.json until a conf.js appears beside it.
    let echo = app.join("echo.js");
    let text = std::fs::read_to_string(&echo).unwrap();
    std::fs::write(&echo, format!("require('./conf');\n{text}")).unwrap();
    std::fs::write(app.join("conf.json"), "{}").unwrap();
    std::fs::write(app.join("more.js"), "module.exports = 1;\n").unwrap();
    let out = |n: &str| dir.path().join(format!("{n}.tar"));
    let before = trace_entries();
    // A file changed in the moments before a build is not trusted to its stat (its next
    // change could leave the same stamp): the trace is kept only once things have settled.
    std::thread::sleep(std::time::Duration::from_millis(100));

    let first = build(&app, &out("1"), &[]);
    assert!(first.traced() && !first.known(), "{:?}", first.stages);
    assert!(first.has("app/conf.json") && !first.has("app/more.js"));
    let ours: Vec<PathBuf> = trace_entries()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert!(!ours.is_empty(), "the trace was kept");

    // Unchanged: neither esbuild nor the tracer runs; the same archive, byte for byte.
    let again = build(&app, &out("2"), &[]);
    assert!(again.known(), "{:?}", again.stages);
    assert!(
        !again.traced() && !again.stages.iter().any(|s| s.contains("esbuild")),
        "{:?}",
        again.stages
    );
    assert_eq!(
        std::fs::read(out("1")).unwrap(),
        std::fs::read(out("2")).unwrap()
    );

    // Each change traces again, and the image is the one the cache-less build makes.
    let same_as_cold = |b: &Build, name: &str| {
        assert!(b.traced() && !b.known(), "{name}: {:?}", b.stages);
        let cold = build(&app, &out(&format!("{name}-cold")), &["--no-layer-cache"]);
        assert!(
            cold.traced() && !cold.known(),
            "--no-layer-cache bypasses the cache"
        );
        assert_eq!(b.app_layer, cold.app_layer, "{name}");
    };
    let constants = app.join("node_modules/ws/lib/constants.js");
    let text = std::fs::read_to_string(&constants).unwrap();
    std::fs::write(&constants, format!("{text}\nrequire('./extra-dep.js');\n")).unwrap();
    std::fs::write(app.join("node_modules/ws/lib/extra-dep.js"), "").unwrap();
    // Each change is older than the cache's racy margin when its build starts, so that
    // build stores its trace: the next change is then caught against it, not against an
    // entry an earlier change already made stale.
    let settle = || std::thread::sleep(std::time::Duration::from_millis(100));
    settle();
    let dep = build(&app, &out("dep"), &[]);
    same_as_cold(&dep, "a changed dependency file");
    assert!(dep.has("app/node_modules/ws/lib/extra-dep.js"));

    std::fs::write(app.join("conf.js"), "module.exports = {};\n").unwrap();
    settle();
    let added = build(&app, &out("added"), &[]);
    same_as_cold(&added, "a file added beside a traced one");
    assert!(added.has("app/conf.js"));

    let text = std::fs::read_to_string(&echo).unwrap();
    std::fs::write(&echo, format!("require('./more');\n{text}")).unwrap();
    settle();
    let changed = build(&app, &out("app"), &[]);
    same_as_cold(&changed, "a changed app file");
    assert!(changed.has("app/more.js"));
    let kept = build(&app, &out("app-again"), &[]);
    assert!(kept.known(), "the last trace was kept: {:?}", kept.stages);

    // Damaged entries: traced again and rewritten whole.
    let ours: Vec<PathBuf> = trace_entries()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    for p in &ours {
        std::fs::write(p, b"{\"files\": [\"not json").unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let healed = build(&app, &out("healed"), &[]);
    assert!(healed.traced(), "{:?}", healed.stages);
    assert_eq!(healed.app_layer, changed.app_layer);
    let known = build(&app, &out("known"), &[]);
    assert!(known.known(), "{:?}", known.stages);
    assert_eq!(known.app_layer, changed.app_layer);
}
