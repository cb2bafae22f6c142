//! Node's decisions with canned tool output: a fake [`Exec`] plays esbuild (its diagnostics
//! and metafile) and the tracer (its file list), so the layout chosen and why, the packages
//! shipped whole, the refusals under `--layout sea` and the trace cache are tested with no
//! node, npm or docker.

use super::checks::Kind;
use super::entry::Entry;
use super::files::with_whole_packages;
use super::layout::{decide, Decision};
use super::runtime::Runtime;
use super::{trace, Ctx, Layout, NodeError, Tools};
use crate::build::toolchain::{Exec, FileError, Runner, Show};
use crate::support::progress::Silent;
use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::sync::Mutex;

/// esbuild and the tracer, answering from their parts; the tools it was asked to run.
#[derive(Default)]
struct Fake {
    /// esbuild's messages.
    esbuild: String,
    /// The sources esbuild's metafile lists.
    inputs: Vec<&'static str>,
    /// The files the tracer finds.
    traced: Vec<&'static str>,
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn new(esbuild: &str, inputs: &[&'static str], traced: &[&'static str]) -> Fake {
        Fake {
            esbuild: esbuild.into(),
            inputs: inputs.to_vec(),
            traced: traced.to_vec(),
            calls: Mutex::default(),
        }
    }

    fn ran(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn esbuild_run(&self, args: &[String]) -> Output {
        for a in args {
            if let Some(f) = a.strip_prefix("--outfile=") {
                std::fs::write(f, "bundle").unwrap();
            }
            if let Some(f) = a.strip_prefix("--metafile=") {
                let inputs: serde_json::Map<String, serde_json::Value> = self
                    .inputs
                    .iter()
                    .map(|i| (i.to_string(), "{}".into()))
                    .collect();
                let meta = serde_json::json!({ "inputs": inputs });
                std::fs::write(f, meta.to_string()).unwrap();
            }
        }
        answer("", &self.esbuild)
    }
}

fn answer(stdout: &str, stderr: &str) -> Output {
    Output {
        status: ExitStatus::from_raw(0),
        stdout: stdout.into(),
        stderr: stderr.into(),
    }
}

impl Exec for Fake {
    fn run(
        &self,
        program: &OsStr,
        args: &[OsString],
        _cwd: &Path,
        _env: &[(&str, String)],
        _show: Show,
    ) -> Result<Output, FileError> {
        let name = Path::new(program).file_name().unwrap().to_string_lossy();
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        self.calls.lock().unwrap().push(name.to_string());
        match name.as_ref() {
            "esbuild" => Ok(self.esbuild_run(&args)),
            "node" if args[0].ends_with("binpack-trace.js") => {
                let traced =
                    serde_json::json!({ "files": self.traced, "probed": [], "analyses": [] });
                Ok(answer(&traced.to_string(), ""))
            }
            other => panic!("ran {other} {args:?}"),
        }
    }
}

/// A project with its own esbuild and the pinned tracer (nothing is installed), and `files`.
fn project(main: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().canonicalize().unwrap();
    let nft = serde_json::json!({ "name": "@vercel/nft", "version": trace::version() });
    let pj = serde_json::json!({ "name": "app", "main": main });
    let fixed = [
        ("package.json", pj.to_string()),
        ("node_modules/.bin/esbuild", String::new()),
        ("node_modules/@vercel/nft/package.json", nft.to_string()),
        ("node", String::new()),
        (main, String::new()),
    ];
    let given = files.iter().map(|(f, t)| (*f, t.to_string()));
    for (f, text) in fixed.into_iter().chain(given) {
        let f = p.join(f);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }
    (d, p)
}

/// How a test builds.
#[derive(Clone, Copy, Default)]
struct Opts<'a> {
    assets: bool,
    cache: Option<&'a Path>,
}

/// `f` run with the build context of `project`, its tools `fake`.
fn with_ctx<T>(project: &Path, fake: &Fake, opts: Opts, f: impl FnOnce(&Ctx) -> T) -> T {
    let entry = Entry::resolve(project).unwrap();
    let runtime = Runtime {
        node: project.join("node"),
        version: "v22.12.0".into(),
        origin: "host".into(),
    };
    let out = tempfile::tempdir().unwrap();
    let host = Runner::Host;
    let platform = crate::support::platform::Platform::host();
    let ctx = Ctx {
        tools: Tools {
            run: fake,
            host: fake,
        },
        runner: &host,
        entry: &entry,
        mount: project,
        runtime: &runtime,
        native: true,
        platform: &platform,
        assets: opts.assets,
        out_dir: out.path(),
        progress: &Silent,
        cache: opts.cache,
    };
    f(&ctx)
}

fn decided(project: &Path, fake: &Fake, layout: Layout) -> Result<Decision, NodeError> {
    with_ctx(project, fake, Opts::default(), |ctx| decide(ctx, layout))
}

/// An esbuild warning as esbuild prints it.
fn warning(id: &str, location: &str, code: &str) -> String {
    format!("▲ [WARNING] This is not bundled [{id}]\n\n    {location}:\n      3 │ {code}\n        ╵ ~~~\n\n")
}

fn computed(location: &str) -> String {
    warning("unsupported-require-call", location, "require(name)")
}

fn files_reason(d: Decision) -> (String, Vec<String>) {
    match d {
        Decision::Files { reason, traced, .. } => (reason, traced),
        Decision::Sea { reason, .. } => panic!("sea ({reason})"),
    }
}

fn sea_notes(d: Decision) -> (String, Vec<String>) {
    match d {
        Decision::Sea { reason, notes, .. } => (reason, notes),
        Decision::Files { reason, .. } => panic!("files ({reason})"),
    }
}

#[test]
fn auto_is_sea_when_the_bundle_holds_everything() {
    let (_d, p) = project("index.js", &[("lib.js", "module.exports = 1;\n")]);
    let fake = Fake::new("", &["index.js", "lib.js"], &["index.js"]);
    let (reason, notes) = sea_notes(decided(&p, &fake, Layout::Auto).unwrap());
    assert_eq!(reason, "the bundle holds the whole app (2 source files)");
    assert!(notes.is_empty());
    // The tracer is not run for a sea executable.
    assert_eq!(fake.ran(), ["esbuild"]);
}

#[test]
fn auto_is_files_on_each_construct_kind_and_says_which() {
    let app = "index.js";
    let esbuild = [
        (Kind::ComputedRequire, computed("index.js:3:1")),
        (
            Kind::ComputedImport,
            warning("unsupported-dynamic-import", "index.js:3:1", "import(x)"),
        ),
        (
            Kind::IndirectRequire,
            warning("indirect-require", "index.js:3:1", "const r = require"),
        ),
        (
            Kind::RequireResolve,
            warning("require-resolve-not-external", "index.js:3:1", "require.resolve(x)"),
        ),
        (
            Kind::NativeAddon,
            "✘ [ERROR] No loader is configured for \".node\" files: build/a.node\n\n    index.js:1:1:\n".into(),
        ),
        (
            Kind::TopLevelAwait,
            "✘ [ERROR] Top-level await is currently not supported with the \"cjs\" output format\n\n    index.js:1:1:\n".into(),
        ),
    ];
    let sources = [
        (Kind::Worker, "new Worker(\"./w.js\");"),
        (Kind::Fork, "fork(\"./child.js\");"),
        (
            Kind::DirnamePath,
            "const v = path.join(__dirname, \"views\");",
        ),
    ];
    let cases = esbuild
        .into_iter()
        .map(|(k, e)| (k, e, String::new()))
        .chain(sources.map(|(k, s)| (k, String::new(), format!("{s}\n"))));
    for (kind, stderr, source) in cases {
        let (_d, p) = project(app, &[(app, &source)]);
        let fake = Fake::new(&stderr, &[app], &["index.js", "package.json"]);
        let (reason, traced) = files_reason(decided(&p, &fake, Layout::Auto).unwrap());
        let said = format!("the bundle cannot hold {} at index.js:", kind.describe());
        assert!(reason.starts_with(&said), "{kind:?}: {reason}");
        assert_eq!(traced, ["index.js", "package.json"], "{kind:?}");
        assert_eq!(fake.ran(), ["esbuild", "node"], "{kind:?}");
    }
}

#[test]
fn auto_is_files_for_a_dependency_s_computed_require_too() {
    let (_d, p) = project("index.js", &[]);
    let fake = Fake::new(
        &computed("node_modules/express/lib/view.js:3:1"),
        &[],
        &["index.js"],
    );
    let (reason, _) = files_reason(decided(&p, &fake, Layout::Auto).unwrap());
    assert!(
        reason.contains("at node_modules/express/lib/view.js:3:1"),
        "{reason}"
    );
}

#[test]
fn sea_refuses_the_first_blocker_by_name_and_counts_the_rest() {
    let (_d, p) = project("index.js", &[]);
    let stderr = computed("index.js:3:1") + &warning("indirect-require", "lib.js:3:1", "r");
    let fake = Fake::new(&stderr, &["index.js"], &[]);
    let err = decided(&p, &fake, Layout::Sea).unwrap_err().to_string();
    assert_eq!(
        err,
        "--layout sea: a single executable cannot hold a require() whose module name is computed at run time at index.js:3:1 (`require(name)`) (and 1 more); use --layout files (node and the app's files) or --layout auto"
    );
    assert_eq!(fake.ran(), ["esbuild"], "refused before any trace");
}

#[test]
fn sea_notes_a_dependency_s_code_that_may_never_run() {
    let (_d, p) = project("index.js", &[]);
    let fake = Fake::new(&computed("node_modules/express/lib/view.js:3:1"), &[], &[]);
    let (reason, notes) = sea_notes(decided(&p, &fake, Layout::Sea).unwrap());
    assert_eq!(reason, "asked for with --layout sea");
    assert_eq!(
        notes,
        ["node_modules/express/lib/view.js:3:1: `require(name)` is not bundled (computed module name); it fails at run time if that code runs"]
    );
}

#[test]
fn sea_takes_the_app_s_own_dirname_paths_only_with_assets() {
    let src = "const v = path.join(__dirname, \"views\");\n";
    let (_d, p) = project("index.js", &[("index.js", src)]);
    let fake = Fake::new("", &["index.js"], &[]);
    let err = decided(&p, &fake, Layout::Sea).unwrap_err();
    assert!(
        matches!(err, NodeError::CannotBundle { more: 0, .. }),
        "{err}"
    );
    let assets = Opts {
        assets: true,
        ..Opts::default()
    };
    let d = with_ctx(&p, &fake, assets, |ctx| decide(ctx, Layout::Sea)).unwrap();
    let (_, notes) = sea_notes(d);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].ends_with("reads a file beside its code, there only if --asset put it there; it fails at run time if that code runs"),
        "{notes:?}"
    );
}

#[test]
fn files_traces_and_keeps_the_bundle_s_diagnostics() {
    let (_d, p) = project("index.js", &[]);
    let fake = Fake::new(
        &computed("index.js:3:1"),
        &["index.js"],
        &["index.js", "package.json"],
    );
    match decided(&p, &fake, Layout::Files).unwrap() {
        Decision::Files {
            reason,
            found,
            traced,
        } => {
            assert_eq!(reason, "asked for with --layout files");
            assert_eq!(traced, ["index.js", "package.json"]);
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].kind, Kind::ComputedRequire);
        }
        d => panic!("{d:?}"),
    }
    let mut ran = fake.ran();
    ran.sort();
    assert_eq!(ran, ["esbuild", "node"]);
}

#[test]
fn typescript_is_refused_where_node_would_run_it() {
    let (_d, p) = project("index.ts", &[]);
    let fake = Fake::new(&computed("index.ts:3:1"), &["index.ts"], &[]);
    let err = decided(&p, &fake, Layout::Files).unwrap_err().to_string();
    assert!(err.starts_with("index.ts: --layout files runs the entry with node, which does not run TypeScript (asked for with --layout files)"), "{err}");
    assert!(fake.ran().is_empty(), "refused before any tool ran");
    let err = decided(&p, &fake, Layout::Auto).unwrap_err().to_string();
    assert!(err.contains("(the bundle cannot hold a require()"), "{err}");
    assert_eq!(fake.ran(), ["esbuild"], "refused before the trace");
}

#[test]
fn packages_that_hide_files_from_the_tracer_are_shipped_whole() {
    let m = "const l = require(path.join(__dirname, \"locale\", name));\n";
    let (_d, p) = project(
        "index.js",
        &[
            ("node_modules/m/index.js", m),
            ("node_modules/m/locale/fr.js", ""),
            ("node_modules/n/n.js", ""),
            ("node_modules/n/extra.js", ""),
            ("node_modules/w/w.js", "new Worker(\"./x.js\");\n"),
            ("node_modules/w/x.js", ""),
        ],
    );
    let fake = Fake::default();
    let traced = ["index.js", "node_modules/m/index.js", "node_modules/w/w.js"];
    let traced: Vec<String> = traced.map(String::from).to_vec();
    // The bundle found an indirect require in n (relative to the project).
    let found = [super::checks::Construct {
        kind: Kind::IndirectRequire,
        location: "node_modules/n/n.js:1:1".into(),
        code: "r".into(),
    }];
    let (files, notes) = with_ctx(&p, &fake, Opts::default(), |ctx| {
        with_whole_packages(ctx, traced, &found)
    })
    .unwrap();
    for f in ["node_modules/m/locale/fr.js", "node_modules/n/extra.js"] {
        assert!(files.contains(&f.to_string()), "{f}: {files:?}");
    }
    // A worker is not a reason to ship its package whole: the tracer follows it.
    assert!(!files.contains(&"node_modules/w/x.js".to_string()));
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with("node_modules/m is shipped whole (1 more files): the tracer cannot follow a file path built from the code's own location"), "{notes:?}");
    assert!(notes[1].starts_with("node_modules/n is shipped whole (2 more files): the tracer cannot follow an indirect call to require"), "{notes:?}");
}

#[test]
fn an_unchanged_project_takes_its_layout_from_the_cache() {
    let (_d, p) = project("index.js", &[]);
    let root = tempfile::tempdir().unwrap();
    let cached = Opts {
        cache: Some(root.path()),
        ..Opts::default()
    };
    // The project's files must be older than the build for their stamps to be trusted.
    std::thread::sleep(crate::support::cache::RACY * 2);
    let first = Fake::new(&computed("index.js:3:1"), &["index.js"], &["index.js"]);
    let d = with_ctx(&p, &first, cached, |ctx| decide(ctx, Layout::Auto)).unwrap();
    files_reason(d);
    assert_eq!(first.ran(), ["esbuild", "node"]);
    // Unchanged: files, for the same reason, with no tool run.
    let idle = Fake::default();
    let d = with_ctx(&p, &idle, cached, |ctx| decide(ctx, Layout::Auto)).unwrap();
    let (reason, traced) = files_reason(d);
    assert!(
        reason.starts_with("the bundle cannot hold a require()"),
        "{reason}"
    );
    assert_eq!(traced, ["index.js"]);
    assert!(idle.ran().is_empty());
    // --layout sea never takes a trace: it needs the bundle.
    let sea = Fake::new(&computed("index.js:3:1"), &["index.js"], &[]);
    let err = with_ctx(&p, &sea, cached, |ctx| decide(ctx, Layout::Sea));
    assert!(matches!(err, Err(NodeError::CannotBundle { .. })));
    assert_eq!(sea.ran(), ["esbuild"]);
    // A changed source: traced again.
    std::fs::write(p.join("index.js"), "changed").unwrap();
    let again = Fake::new("", &["index.js"], &["index.js"]);
    let d = with_ctx(&p, &again, cached, |ctx| decide(ctx, Layout::Files)).unwrap();
    files_reason(d);
    assert!(again.ran().contains(&"node".to_string()));
}

#[test]
fn tools_planted_above_the_project_are_never_run() {
    let d = tempfile::tempdir().unwrap();
    let shared = d.path().canonicalize().unwrap();
    let nft = serde_json::json!({ "name": "@vercel/nft", "version": trace::version() });
    for (f, text) in [
        ("package.json", "{}".to_string()),
        ("node_modules/.bin/esbuild", String::new()),
        ("node_modules/.bin/pkg", String::new()),
        ("node_modules/@vercel/nft/package.json", nft.to_string()),
        ("app/package.json", "{}".into()),
        ("app/index.js", String::new()),
    ] {
        let f = shared.join(f);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }
    let app = shared.join("app");
    assert_eq!(super::bundle::project_esbuild(&app), None);
    let planted = |p: &Path| p.starts_with(shared.join("node_modules"));
    assert!(!planted(&trace::host_tracer_path(&app)));
    assert!(super::pkg::find_pkg(&app).map_or(true, |p| !planted(&p)));
    // The project's own copy, owned by this user, is taken; another user's is not.
    let own = app.join("node_modules/.bin/esbuild");
    std::fs::create_dir_all(own.parent().unwrap()).unwrap();
    std::fs::write(&own, "").unwrap();
    assert_eq!(super::bundle::project_esbuild(&app), Some(own.clone()));
    if std::os::unix::fs::chown(&own, Some(4242), None).is_ok() {
        assert_eq!(super::bundle::project_esbuild(&app), None);
    }
}

#[test]
fn an_entry_or_a_bundled_file_outside_the_project_is_refused_by_name() {
    let d = tempfile::tempdir().unwrap();
    let top = d.path().canonicalize().unwrap();
    std::fs::create_dir(top.join("app")).unwrap();
    std::fs::write(top.join("secret.js"), "").unwrap();
    std::fs::write(top.join("app/package.json"), r#"{"main":"../secret.js"}"#).unwrap();
    let err = Entry::resolve(&top.join("app")).unwrap_err().to_string();
    let said = format!(
        "{}: it names the entry ../secret.js, which is {}, outside the project",
        top.join("app/package.json").display(),
        top.join("secret.js").display()
    );
    assert!(err.starts_with(&said), "{err}");
    // A source esbuild read from outside (an import of ../../secret.js).
    let (_d, p) = project("index.js", &[]);
    let outside: &'static str = format!(
        "../{}/secret.js",
        top.file_name().unwrap().to_string_lossy()
    )
    .leak();
    let fake = Fake::new("", &["index.js", outside], &[]);
    let err = decided(&p, &fake, Layout::Auto).unwrap_err().to_string();
    let said = format!(
        "{}: the bundle would hold this file, which lies outside the project",
        top.join("secret.js").display()
    );
    assert!(err.starts_with(&said), "{err}");
}

#[test]
fn dotenv_is_named_with_the_ways_to_give_it_its_variables() {
    use super::files::dotenv_note;
    use crate::build::{Component, Ecosystem};
    let npm = |name: &str| Component {
        ecosystem: Ecosystem::Npm,
        name: name.into(),
        version: "16.4.5".into(),
        license: None,
    };
    let env = vec![(".env".to_string(), PathBuf::from("/p/.env"))];
    assert_eq!(dotenv_note("files", &[npm("express")], &[]), None);
    let files = dotenv_note("files", &[npm("dotenv")], &[]).unwrap();
    assert!(
        files.contains("--asset .env") && files.contains("docker run --env-file"),
        "{files}"
    );
    assert_eq!(dotenv_note("files", &[npm("dotenv")], &env), None);
    let sea = dotenv_note("sea", &[npm("dotenv")], &env).unwrap();
    assert!(
        sea.contains("in a sea image that is /, not the app's directory"),
        "{sea}"
    );
    assert!(sea.contains("docker run --env-file"), "{sea}");
}
