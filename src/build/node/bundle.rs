//! esbuild: found (the project's, PATH's, else the pinned one installed once into binpack's
//! cache or a toolchain's cache volume), run over the entry with its hidden diagnostics
//! raised, and its result read: the bundle, the constructs it cannot hold, the sources it read.

use super::checks::{self, Construct};
use super::entry::{own_copy, Entry};
use super::{npm_install_cached, run_script, tool_err, Ctx, NodeError};
use crate::build::toolchain::{pinned, Exec, Runner, Show};
use crate::support::cache;
use crate::support::progress::Progress;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The project's own esbuild (node_modules/.bin of it or an ancestor).
pub(super) fn project_esbuild(project: &Path) -> Option<PathBuf> {
    own_copy(project, "node_modules/.bin/esbuild")
}

fn esbuild_version() -> String {
    pinned()["esbuild"]["version"]
        .as_str()
        .expect("esbuild version pinned")
        .to_string()
}

/// esbuild from the project's node_modules, else PATH, else the pinned version installed into
/// binpack's cache with npm.
pub(super) fn find_esbuild(
    host: &dyn Exec,
    project: &Path,
    progress: &dyn Progress,
) -> Result<PathBuf, NodeError> {
    if let Some(local) = project_esbuild(project) {
        return Ok(local);
    }
    if let Ok(p) = which::which("esbuild") {
        return Ok(p);
    }
    let version = esbuild_version();
    let dir = cache::dir().join("esbuild").join(&version);
    let bin = dir.join("node_modules/.bin/esbuild");
    if bin.is_file() {
        return Ok(bin);
    }
    progress.stage(&format!("installing esbuild {version} with npm (once)"));
    npm_install_cached(host, &dir, &format!("esbuild@{version}"), "install esbuild")?;
    Ok(bin)
}

/// esbuild for a container build: the project's, else the image's, else the pinned version
/// installed with the image's npm into the cache volume (once).
fn container_esbuild(
    exec: &dyn Exec,
    (runner, entry, mount): (&Runner, &Entry, &Path),
    progress: &dyn Progress,
) -> Result<OsString, NodeError> {
    // Only an esbuild inside the mounted tree is visible in the container.
    if let Some(local) = project_esbuild(&entry.project).filter(|p| p.starts_with(mount)) {
        return Ok(runner.path(&local).into_os_string());
    }
    let version = esbuild_version();
    progress.stage(&format!("finding esbuild in the toolchain image (else npm install esbuild@{version} into the cache volume)"));
    // Installed into a fresh temporary directory and renamed, so an interrupted install is
    // never used and a concurrent one keeps the first that finished; run from that directory
    // rather than with --prefix, which would move npm's global config.
    let script = format!(
        r#"set -e
if command -v esbuild >/dev/null; then command -v esbuild; exit 0; fi
d=/cache/esbuild/{version}
if [ ! -x "$d/node_modules/.bin/esbuild" ]; then
  mkdir -p /cache/esbuild; t=$(mktemp -d "$d.tmp.XXXXXX")
  (cd "$t" && npm install --no-save --no-audit --no-fund --cache /cache/npm esbuild@{version} >&2) || {{ rm -rf "$t"; exit 1; }}
  [ -e "$d" ] || mv "$t" "$d"; rm -rf "$t"
fi
echo "$d/node_modules/.bin/esbuild""#
    );
    let what = format!("esbuild in the toolchain image (npm install esbuild@{version})");
    let path = run_script(exec, &script, &entry.project, &what)?;
    Ok(OsString::from(path.lines().last().unwrap_or_default()))
}

/// The bundle's first line. The SEA's own require loads built-in modules only and warns on
/// anything else (an optional dependency probed in a try/catch): node's documentation gives
/// this replacement. And esbuild's CommonJS output leaves `import.meta` empty: defined as
/// `__binpack_import_meta`, it is the executable's own path, so `createRequire(import.meta.url)`
/// and `fileURLToPath` work. (A banner, not an injected file: esbuild would name that file's
/// temporary path in the bundle.)
const PROLOGUE: &str = concat!(
    r#"require = require("module").createRequire(__filename); "#,
    r#"var __binpack_import_meta = { url: require("url").pathToFileURL(process.execPath).href, "#,
    r#"filename: process.execPath, dirname: require("path").dirname(process.execPath) };"#
);

/// Refuses a bundled source (`inputs`, relative to `project`) whose real path lies outside
/// `root`, the mount root: a package.json or an import reaching a host file.
fn inside(project: &Path, root: &Path, inputs: &[String]) -> Result<(), NodeError> {
    for input in inputs {
        let Ok(real) = project.join(input).canonicalize() else {
            continue; // Not a file: esbuild's own namespaces (`(disabled):fs`).
        };
        if !real.starts_with(root) {
            return Err(NodeError::OutsideProject {
                path: real,
                root: root.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// esbuild's result: the bundle, what it could not hold, the sources it read.
#[derive(Debug)]
pub(super) struct Bundle {
    pub(super) out: PathBuf,
    pub(super) constructs: Vec<Construct>,
    /// The bundled source files, relative to the project.
    pub(super) inputs: Vec<String>,
    pub(super) ok: bool,
    pub(super) stderr: String,
}

impl Bundle {
    /// A failed bundle's error: a missing node_modules said plainly, else esbuild's messages.
    pub(super) fn check(&self, ctx: &Ctx) -> Result<(), NodeError> {
        if self.ok {
            return Ok(());
        }
        let project = &ctx.entry.project;
        let has_modules = project.ancestors().any(|d| d.join("node_modules").is_dir());
        if !has_modules {
            if let Some(name) = unresolved_package(&self.stderr) {
                return Err(NodeError::NoNodeModules {
                    package: name,
                    dir: project.clone(),
                });
            }
        }
        eprint!("{}", self.stderr);
        Err(NodeError::Bundle(ctx.entry.relative.clone()))
    }
}

/// The first bare package esbuild could not resolve (`Could not resolve "express"`).
fn unresolved_package(stderr: &str) -> Option<String> {
    stderr.lines().find_map(super::checks::missing_package)
}

/// Bundles the entry with esbuild, its hidden diagnostics raised, the prologue added; scans
/// the sources it read for what it does not report.
pub(super) fn bundle(ctx: &Ctx) -> Result<Bundle, NodeError> {
    let bundling = start_bundle(ctx)?;
    let ran = bundling.run(ctx.tools.run);
    bundling.finish(ctx, ran?)
}

/// esbuild's command, ready to run (on a thread of its own beside the tracer: [`Bundling::run`]
/// needs nothing but the [`Exec`]).
pub(super) struct Bundling {
    program: OsString,
    args: Vec<OsString>,
    cwd: PathBuf,
    out: PathBuf,
    meta: PathBuf,
}

/// Finds esbuild and says so: [`bundle`]'s first step.
pub(super) fn start_bundle(ctx: &Ctx) -> Result<Bundling, NodeError> {
    let entry = ctx.entry;
    let esbuild = match ctx.runner {
        Runner::Host => find_esbuild(ctx.tools.host, &entry.project, ctx.progress)?.into(),
        Runner::Container { .. } => {
            let at = (ctx.runner, entry, ctx.mount);
            container_esbuild(ctx.tools.run, at, ctx.progress)?
        }
    };
    ctx.progress.stage(&format!(
        "bundling {} with esbuild",
        entry.relative.display()
    ));
    let out = ctx.out_dir.join(format!("{}.js", entry.name));
    let meta = ctx.out_dir.join("binpack-meta.json");
    let mut args: Vec<OsString> = vec![entry.relative.clone().into_os_string()];
    args.extend(
        [
            "--bundle",
            "--platform=node",
            "--format=cjs",
            "--log-level=warning",
            "--color=false",
            "--define:import.meta=__binpack_import_meta",
            // The bundle runs what node runs: a package's "sideEffects": false or a
            // /* @__PURE__ */ must not drop code (uuid's bin is one side-effect import).
            "--ignore-annotations",
        ]
        .map(OsString::from),
    );
    args.extend(checks::RAISE.iter().map(OsString::from));
    args.push(format!("--banner:js={PROLOGUE}").into());
    args.push(format!("--target=node{}", ctx.runtime.major().max(12)).into());
    for (flag, path) in [("--metafile=", &meta), ("--outfile=", &out)] {
        let mut a = OsString::from(flag);
        a.push(ctx.runner.path(path));
        args.push(a);
    }
    Ok(Bundling {
        program: esbuild,
        args,
        cwd: entry.project.clone(),
        out,
        meta,
    })
}

impl Bundling {
    /// Runs esbuild, its messages kept.
    pub(super) fn run(&self, exec: &(dyn Exec + Sync)) -> Result<Output, NodeError> {
        exec.run(&self.program, &self.args, &self.cwd, &[], Show::Captured)
            .map_err(|e| tool_err("esbuild", e.to_string()))
    }

    /// Reads what esbuild said, and scans the sources it read.
    pub(super) fn finish(self, ctx: &Ctx, ran: Output) -> Result<Bundle, NodeError> {
        let stderr = String::from_utf8_lossy(&ran.stderr).into_owned();
        let mut constructs = checks::parse_esbuild(&stderr);
        let inputs = std::fs::read_to_string(&self.meta)
            .map(|m| checks::metafile_inputs(&m))
            .unwrap_or_default();
        inside(&ctx.entry.project, ctx.mount, &inputs)?;
        constructs.extend(checks::scan_sources(&ctx.entry.project, &inputs));
        // The files esbuild's messages name too: a failed bundle writes no metafile
        // (lightningcss's `require(`../pkg`)` cannot resolve).
        let named = constructs.iter().map(|c| c.file().to_string());
        let seen: Vec<String> = inputs.iter().cloned().chain(named).collect();
        let project = &ctx.entry.project;
        constructs.extend(super::optional::addon_constructs(project, &seen));
        Ok(Bundle {
            out: self.out,
            constructs,
            inputs,
            ok: ran.status.success(),
            stderr,
        })
    }
}
