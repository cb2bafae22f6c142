//! A Node.js app as one executable: esbuild bundles the entry into one CommonJS script, and
//! the SEA stage injects it into a copy of a node runtime (the host's, or an official one
//! fetched with npm). `--packer pkg` hands the job to pkg instead. When the bundle cannot
//! hold the app, the files layout ships a stock node and the files the tracer finds.
//!
//! This module owns the request ([`NodeBuild`]), node's errors, and [`build`], the script
//! over the steps: [`entry`] (what to build), [`runtime`] (which node), [`layout`] (sea or
//! files, and why), [`bundle`] (esbuild), [`files`] (the files layout), [`trace`] and
//! [`trace_cache`] (the tracer and what it keeps), [`checks`] (what a bundle cannot hold),
//! [`pkg`] (`--packer pkg`). Only this folder knows Node.

mod builder;
mod bundle;
pub mod checks;
mod entry;
mod files;
mod layout;
mod optional;
pub mod pkg;
mod reach;
mod runtime;
#[cfg(test)]
mod tests;
pub mod trace;
pub mod trace_cache;

pub use builder::NodeBuilder;

use super::toolchain::{
    cache_entry, temp_dir, volume, Commands, Exec, FileError, Runner, Show, Toolchain,
    ToolchainError,
};
use super::{git, Built, Component, Ecosystem};
use crate::sea::inject::SeaError;
use crate::support::cleanup::Tracked;
use crate::support::progress::Progress;
use entry::{asset_path, mount_root, Entry};
use files::describe;
use layout::make;
use pkg::with_pkg;
use runtime::{runtime_for, Runtime};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// How the executable is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Packer {
    /// Node's single executable applications, written natively by binpack
    #[default]
    Sea,
    /// @yao-pkg/pkg, when the project or PATH has it
    Pkg,
}

/// What to build.
#[derive(Clone, Debug, Default)]
pub struct NodeBuild {
    /// A .js/.cjs/.mjs/.ts/.mts/.cts file, or a directory whose package.json names the entry.
    pub entry: PathBuf,
    /// An official node version (`22`, `22.12.0`); None is the host's node.
    pub node_version: Option<String>,
    pub packer: Packer,
    /// Files or directories shipped beside the executable.
    pub assets: Vec<PathBuf>,
    /// The platform to build for; None is the host's. Another platform's node is the
    /// official one from npm (of `node_version`, else of the host node's version).
    pub platform: Option<crate::support::platform::Platform>,
    /// One executable, or node + the app's traced files, or the first when it can hold all.
    pub layout: Layout,
    /// binpack's cache, where a files layout keeps its trace and stripped node between
    /// builds; None (`--no-layer-cache`) traces and strips every time.
    pub cache: Option<PathBuf>,
}

/// How to get node, for the errors that say it is missing.
pub const INSTALL: &str = "Node.js 20 or later (on Debian: apt-get install nodejs)";

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("no such file or directory: {}", .0.display())]
    NoSuchEntry(PathBuf),
    #[error("{}: the entry must be a .js, .cjs, .mjs, .ts, .mts or .cts file, a script starting `#!/usr/bin/env node`, or a directory with a package.json", .0.display())]
    BadEntry(PathBuf),
    #[error("{}: {why}", path.display())]
    PackageJson { path: PathBuf, why: String },
    #[error("node not found on PATH: install {INSTALL}, give --node-version X to use an official runtime fetched with npm, or build in a container with --toolchain docker")]
    NodeNotFound,
    #[error(
        "npm not found on PATH: it is needed to {0}; install it (on Debian: apt-get install npm)"
    )]
    NpmNotFound(&'static str),
    #[error("{what} failed: {detail}")]
    Tool { what: String, detail: String },
    #[error("--layout sea: a single executable cannot hold {construct}{}; use --layout files (node and the app's files) or --layout auto", if *.more > 0 { format!(" (and {more} more)") } else { String::new() })]
    CannotBundle { construct: String, more: usize },
    #[error("{}: --layout files runs the entry with node, which does not run TypeScript ({why}); compile it to JavaScript first", .entry.display())]
    TypeScriptFiles { entry: PathBuf, why: String },
    #[error("cannot resolve the package \"{package}\": {} has no node_modules; run npm ci (or npm install) in {}", .dir.display(), .dir.display())]
    NoNodeModules { package: String, dir: PathBuf },
    #[error("{}: the bundle would hold this file, which lies outside the project and its workspace root {}; binpack packs only what lies inside (a dependency linked from elsewhere: install it into node_modules)", .path.display(), .root.display())]
    OutsideProject { path: PathBuf, root: PathBuf },
    #[error("{}: the app reads this file at run time (found by the tracer), which lies outside the project and its workspace root {}; binpack packs only what lies inside: move it into the project, or install it into node_modules", .path.display(), .root.display())]
    TracedOutside { path: PathBuf, root: PathBuf },
    #[error("{parent} loads its native code from its optional dependency {name}, the build for {platform}, which npm did not install (it installs the host's) and binpack cannot fetch: {why}; install it (npm install --os=linux --cpu=<cpu> {name}) or build for the host's platform")]
    PlatformPackage {
        parent: String,
        name: String,
        platform: String,
        why: String,
    },
    #[error("esbuild could not bundle {} (its messages are above)", .0.display())]
    Bundle(PathBuf),
    #[error("node {version}: the downloaded package does not match the registry's integrity ({expected}); not caching it")]
    Integrity { version: String, expected: String },
    #[error("{0}")]
    Pkg(String),
    #[error(transparent)]
    Sea(#[from] SeaError),
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    #[error(transparent)]
    File(#[from] FileError),
}

fn tool_err(what: &str, detail: impl Into<String>) -> NodeError {
    NodeError::Tool {
        what: what.to_string(),
        detail: detail.into(),
    }
}

/// The caller's npm settings passed into a toolchain container.
const PASS_ENV: &[&str] = &["NPM_CONFIG_REGISTRY", "npm_config_registry"];

/// How the app is laid out in the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// sea when the bundle holds the whole app, else files
    #[default]
    Auto,
    /// One executable: node with the esbuild bundle injected
    Sea,
    /// A stock node and the app's traced files at their project paths under /app
    Files,
}

/// Where node sits in a files-layout image: the same path for every app, so the runtime
/// layer is the same.
pub const NODE_PATH: &str = "/usr/local/bin/node";

/// Builds the image's program, running esbuild or the tracer (and taking node) from
/// `toolchain`.
pub fn build(
    spec: &NodeBuild,
    toolchain: &Toolchain,
    progress: &dyn Progress,
) -> Result<Built, NodeError> {
    let entry = Entry::resolve(&spec.entry)?;
    if spec.packer == Packer::Pkg && !matches!(toolchain, Toolchain::Host) {
        return Err(NodeError::Pkg(
            "--packer pkg runs on the host toolchain only (--toolchain host); the default packer (sea) works in a toolchain container".into(),
        ));
    }
    let out_dir = Tracked::new(temp_dir()?);
    let mount = mount_root(&entry.project);
    let runner = toolchain.runner(&mount, out_dir.path(), &volume("npm-cache"));
    let (run, on_host) = (
        Commands {
            runner: &runner,
            pass_env: PASS_ENV,
        },
        Commands {
            runner: &Runner::Host,
            pass_env: &[],
        },
    );
    let tools = Tools {
        run: &run,
        host: &on_host,
    };
    let host = crate::support::platform::Platform::host();
    let platform = spec.platform.clone().unwrap_or_else(|| host.clone());
    let at = (&runner, &entry, out_dir.path());
    let runtime = runtime_for(spec, tools, at, &platform, progress)?;
    let assets = spec
        .assets
        .iter()
        .map(|a| asset_path(&entry.project, a))
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = Ctx {
        tools,
        runner: &runner,
        entry: &entry,
        mount: &mount,
        runtime: &runtime,
        native: platform == host,
        platform: &platform,
        assets: !assets.is_empty(),
        out_dir: out_dir.path(),
        progress,
        cache: spec.cache.as_deref(),
    };
    let made = match spec.packer {
        Packer::Sea => make(&ctx, spec.layout)?,
        Packer::Pkg => with_pkg(&ctx)?,
    };
    let root = toolchain.library_root(progress)?;
    let mut built = Built::new(made.executable.clone(), entry.name.clone(), out_dir);
    let artifact = &mut built.artifact;
    artifact.provenance.vcs = git::describe(&entry.project);
    artifact.provenance.runtime = Some(format!("node {} ({})", runtime.version, runtime.origin));
    artifact.provenance.built_on = Some(toolchain.built_on());
    artifact.provenance.platform = Some(platform);
    artifact.root = root;
    // ICU inside node has its own time zone data.
    artifact.own_tzdata = true;
    describe(artifact, made, &runtime, assets, &entry, &mount);
    Ok(built)
}

/// The npm components and the node runtime, sorted, without duplicates.
fn with_runtime(mut components: Vec<Component>, runtime: &Runtime) -> Vec<Component> {
    components.push(Component {
        ecosystem: Ecosystem::Runtime,
        name: "node".into(),
        version: runtime.version.clone(),
        license: Some("MIT".into()),
    });
    components.sort();
    components.dedup();
    components
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Where node's tools run, through the [`Exec`] seam (a fake one in the tests): `run` is the
/// toolchain's (the host or a container: esbuild, the tracer, the image's node), `host` is
/// the host's (npm fetching runtimes and tools, the host node's version, pkg). Sync: esbuild
/// runs beside the tracer.
#[derive(Clone, Copy)]
struct Tools<'a> {
    run: &'a (dyn Exec + Sync),
    host: &'a (dyn Exec + Sync),
}

/// What one build step shares.
struct Ctx<'a> {
    tools: Tools<'a>,
    /// Maps host paths to what the toolchain's commands see.
    runner: &'a Runner,
    entry: &'a Entry,
    mount: &'a Path,
    runtime: &'a Runtime,
    /// Whether the runtime runs here: another platform's node cannot run the tracer.
    native: bool,
    /// The platform built for.
    platform: &'a crate::support::platform::Platform,
    /// Whether `--asset` ships files beside the executable.
    assets: bool,
    out_dir: &'a Path,
    progress: &'a dyn Progress,
    /// binpack's cache, for the trace and the stripped node; None: nothing is kept.
    cache: Option<&'a Path>,
}

/// The program made for one layout.
struct Made {
    executable: PathBuf,
    layout: &'static str,
    reason: String,
    notes: Vec<String>,
    components: Vec<Component>,
    /// The files layout's traced files, relative to the mount root.
    traced: Option<Vec<String>>,
    /// Files from elsewhere (another platform's package fetched from npm): (path relative to
    /// the mount root, path on the host).
    fetched: Vec<(String, PathBuf)>,
}

impl Made {
    fn sea(executable: PathBuf, reason: String) -> Made {
        Made {
            executable,
            layout: "sea",
            reason,
            notes: vec![],
            components: vec![],
            traced: None,
            fetched: vec![],
        }
    }
}

/// `program args`, run from `cwd` through `exec`: its stdout, trimmed; a failure is `what`'s
/// error with its stderr.
fn run_tool(
    exec: &dyn Exec,
    program: &OsStr,
    args: &[OsString],
    cwd: &Path,
    what: &str,
) -> Result<String, NodeError> {
    let out = exec
        .run(program, args, cwd, &[], Show::Captured)
        .map_err(|e| tool_err(what, e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(tool_err(what, stderr.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A shell script (the toolchain's `sh`) through `exec`, as [`run_tool`].
fn run_script(exec: &dyn Exec, script: &str, cwd: &Path, what: &str) -> Result<String, NodeError> {
    let args = ["-c", script].map(OsString::from);
    run_tool(exec, OsStr::new("sh"), &args, cwd, what)
}

/// Where a host command runs: binpack's own directory, as npm always did (its .npmrc).
const HERE: &str = ".";

/// `npm install SPEC` into the cache entry `dir`, which appears whole or not at all.
fn npm_install_cached(
    host: &dyn Exec,
    dir: &Path,
    spec: &str,
    needed_for: &'static str,
) -> Result<(), NodeError> {
    let npm = which::which("npm").map_err(|_| NodeError::NpmNotFound(needed_for))?;
    cache_entry(dir, |tmp| -> Result<(), NodeError> {
        let mut args = [
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
        ]
        .map(OsString::from)
        .to_vec();
        args.extend([tmp.as_os_str().to_owned(), spec.into()]);
        let what = format!("npm install {spec}");
        run_tool(host, npm.as_os_str(), &args, Path::new(HERE), &what)?;
        Ok(())
    })?;
    Ok(())
}
