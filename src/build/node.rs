//! A Node.js app as one executable: esbuild bundles the entry into one CommonJS script, and
//! the SEA stage injects it into a copy of a node runtime (the host's, or an official one
//! fetched with npm). `--packer pkg` hands the job to pkg instead.

mod builder;
pub use builder::NodeBuilder;

use super::node_checks::{self, Construct, Kind};
use super::toolchain::{
    cache_entry, file_error, pinned, temp_dir, volume, FileError, Runner, Toolchain, ToolchainError,
};
use super::trace_cache::{self, TraceCache};
use super::{git, node_trace, Built, Component, Ecosystem};
use crate::cache;
use crate::cleanup::Tracked;
use crate::progress::Progress;
use crate::sea::{self, blob::Blob, inject::SeaError};
use serde::Deserialize;
use sha2::{Digest, Sha512};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
    pub platform: Option<crate::platform::Platform>,
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
pub(crate) const PASS_ENV: &[&str] = &["NPM_CONFIG_REGISTRY", "npm_config_registry"];

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
    let host = crate::platform::Platform::host();
    let platform = spec.platform.clone().unwrap_or_else(|| host.clone());
    let runtime = runtime_for(spec, &runner, &entry, &platform, out_dir.path(), progress)?;
    let assets = spec
        .assets
        .iter()
        .map(|a| asset_path(&entry.project, a))
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = Ctx {
        runner: &runner,
        entry: &entry,
        mount: &mount,
        runtime: &runtime,
        native: platform == host,
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

/// The node runtime to build from: `--node-version`'s official one, else the toolchain's own
/// node; another platform than the host's always gets the official node (of the same version).
fn runtime_for(
    spec: &NodeBuild,
    runner: &Runner,
    entry: &Entry,
    platform: &crate::platform::Platform,
    out_dir: &Path,
    progress: &dyn Progress,
) -> Result<Runtime, NodeError> {
    let native = *platform == crate::platform::Platform::host();
    let own = || match runner {
        Runner::Host => host_node_in(spec.cache.as_deref()),
        Runner::Container { .. } => image_node(runner, entry, out_dir),
    };
    match &spec.node_version {
        Some(v) => {
            progress.stage(&format!("fetching the official node {v} with npm"));
            official_node(v, platform)
        }
        None if native => own(),
        None => {
            let v = own()?.version;
            progress.stage(&format!(
                "fetching the official node {v} for {platform} with npm"
            ));
            official_node(&v, platform)
        }
    }
}

/// `--packer pkg`: pkg makes the executable from the project and the runtime.
fn with_pkg(ctx: &Ctx) -> Result<Made, NodeError> {
    ctx.progress.stage("packing with pkg");
    let exe = ctx.out_dir.join(&ctx.entry.name);
    super::pkg::pack(&super::pkg::PkgJob {
        project: &ctx.entry.project,
        entry: &ctx.entry.relative,
        node: &ctx.runtime.node,
        version: &ctx.runtime.version,
        out: &exe,
    })?;
    Ok(Made::sea(exe, "packed by pkg (--packer pkg)".into()))
}

/// What the layout made, written into the artifact: its files, env, notes and components.
fn describe(
    artifact: &mut super::Artifact,
    made: Made,
    runtime: &Runtime,
    assets: Vec<(String, PathBuf)>,
    entry: &Entry,
    mount: &Path,
) {
    artifact.os_files.push(crate::rootfs::hosts_file());
    artifact.ca_env = vec!["NODE_EXTRA_CA_CERTS".into()];
    artifact.notes = made.notes;
    artifact.provenance.layout = Some(made.layout.into());
    artifact.provenance.layout_reason = Some(made.reason);
    artifact.provenance.components = with_runtime(made.components, runtime);
    match made.traced {
        None => {
            artifact.files.files = (assets.into_iter())
                .map(|(rel, host)| (format!("{APP}/{rel}"), host))
                .collect()
        }
        Some(traced) => lay_out_files(artifact, traced, assets, entry, mount),
    }
}

const APP: &str = crate::appfiles::APP_DIR;

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

/// The files layout: node at its fixed path running the entry under /app, from the project's
/// directory; the traced files (relative to the mount root) and the assets in the app layer.
fn lay_out_files(
    artifact: &mut super::Artifact,
    traced: Vec<String>,
    assets: Vec<(String, PathBuf)>,
    entry: &Entry,
    mount: &Path,
) {
    let app = |rel: &str| format!("{APP}/{rel}");
    artifact.image_path = Some(NODE_PATH.into());
    artifact.args = vec![app(&path_str(&entry_in_mount(entry, mount)))];
    let project = path_str(entry.project.strip_prefix(mount).unwrap_or(Path::new("")));
    artifact.workdir = Some(app(&project).trim_end_matches('/').to_string());
    let files: Vec<(String, PathBuf)> = (traced.into_iter())
        .map(|rel| (app(&rel), mount.join(&rel)))
        .chain(
            (assets.into_iter())
                .map(|(rel, host)| (app(&path_str(&Path::new(&project).join(rel))), host)),
        )
        .collect();
    // Native addons: the back half resolves their libraries like any ELF's.
    let native = (files.iter())
        .filter(|(dest, _)| dest.ends_with(".node"))
        .map(|(dest, _)| dest.clone())
        .collect();
    artifact.layers = vec![super::FileLayer { files, native }];
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn entry_in_mount(entry: &Entry, mount: &Path) -> PathBuf {
    let abs = entry.project.join(&entry.relative);
    abs.strip_prefix(mount)
        .map(Path::to_path_buf)
        .unwrap_or(abs)
}

/// What one build step shares.
struct Ctx<'a> {
    runner: &'a Runner,
    entry: &'a Entry,
    mount: &'a Path,
    runtime: &'a Runtime,
    /// Whether the runtime runs here: another platform's node cannot run the tracer.
    native: bool,
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
        }
    }
}

/// The sea executable when `layout` allows and the bundle is complete, else the traced files.
fn make(ctx: &Ctx, layout: Layout) -> Result<Made, NodeError> {
    if layout == Layout::Files {
        refuse_typescript(ctx.entry, "asked for with --layout files")?;
    }
    let cache = if layout == Layout::Sea {
        None
    } else {
        trace_cache_for(ctx)?
    };
    if let Some(made) = cache.as_ref().and_then(|c| from_cache(ctx, layout, c)) {
        return made;
    }
    if layout == Layout::Files {
        // Bundled for its diagnostics only (they name the packages to ship whole): the
        // tracer does not wait for them.
        let bundling = start_bundle(ctx)?;
        let traced = trace_files(ctx, cache.as_ref());
        let bundle = bundling.finish(ctx)?;
        let traced = keep_trace(ctx, cache.as_ref(), traced?, &bundle);
        let reason = "asked for with --layout files".to_string();
        return files(ctx, reason, &bundle.constructs, traced);
    }
    let bundle = bundle(ctx)?;
    let (notes, blockers): (Vec<Construct>, Vec<Construct>) = bundle
        .constructs
        .iter()
        .cloned()
        .partition(|c| noted(ctx, layout, c));
    if let Some(first) = blockers.first() {
        if layout == Layout::Sea {
            return Err(NodeError::CannotBundle {
                construct: first.sentence(),
                more: blockers.len() - 1,
            });
        }
        let reason = format!("the bundle cannot hold {}", first.sentence());
        refuse_typescript(ctx.entry, &reason)?;
        let traced = trace_files(ctx, cache.as_ref())?;
        let traced = keep_trace(ctx, cache.as_ref(), traced, &bundle);
        return files(ctx, reason, &bundle.constructs, traced);
    }
    bundle.check(ctx)?;
    ctx.progress.stage(&format!(
        "injecting the bundle into node {}",
        ctx.runtime.version
    ));
    let blob = Blob {
        main_path: format!("{}.js", ctx.entry.name),
        code: std::fs::read(&bundle.out).map_err(file_error("reading the bundle", &bundle.out))?,
        ..Default::default()
    };
    let exe = ctx.out_dir.join(&ctx.entry.name);
    sea::inject::make_executable(&ctx.runtime.node, &exe, &blob)?;
    sea_made(ctx, layout, exe, &bundle, &notes)
}

/// The files layout from the cache's trace of an unchanged project, when the layout is (or
/// `auto` picks) files: `auto` picks files when a construct the trace found blocks the bundle.
fn from_cache(ctx: &Ctx, layout: Layout, cache: &TraceCache) -> Option<Result<Made, NodeError>> {
    let known = cache.lookup()?;
    let blocker = known.constructs.iter().find(|c| !noted(ctx, layout, c));
    let reason = match (layout, blocker) {
        (Layout::Files, _) => "asked for with --layout files".to_string(),
        (_, Some(first)) => format!("the bundle cannot hold {}", first.sentence()),
        // The sea executable needs the bundle itself.
        (_, None) => return None,
    };
    ctx.progress.stage(&format!(
        "the trace of {} is known (its files and dependencies are unchanged): taken from the cache",
        ctx.entry.relative.display()
    ));
    Some(files(ctx, reason, &known.constructs, known.files))
}

/// The sea executable `exe`, described.
fn sea_made(
    ctx: &Ctx,
    layout: Layout,
    exe: PathBuf,
    bundle: &Bundle,
    notes: &[Construct],
) -> Result<Made, NodeError> {
    let reason = match layout {
        Layout::Sea => "asked for with --layout sea".to_string(),
        _ => format!(
            "the bundle holds the whole app ({} source file{})",
            bundle.inputs.len(),
            if bundle.inputs.len() == 1 { "" } else { "s" }
        ),
    };
    let mut made = Made::sea(exe, reason);
    made.notes = notes
        .iter()
        .map(|c| sea_note(c, &ctx.entry.project))
        .collect();
    made.components = node_trace::components(&ctx.entry.project, &bundle.inputs);
    Ok(made)
}

/// Under --layout sea, a note for a dependency's code that may never run (express's view
/// engine loader, pino's transports) and for the app's own paths beside its code when
/// --asset puts files there; the rest is refused.
fn noted(ctx: &Ctx, layout: Layout, c: &Construct) -> bool {
    let dep = c.in_dependency(&ctx.entry.project);
    layout == Layout::Sea
        && match c.kind {
            Kind::ComputedRequire => dep,
            Kind::DirnamePath => dep || ctx.assets,
            _ => false,
        }
}

/// What `--layout sea` says of a construct it lets through. (In the bundle `__dirname` is the
/// executable's directory, where --asset puts the app's files.)
fn sea_note(c: &Construct, project: &Path) -> String {
    let what = match c.kind {
        Kind::DirnamePath if c.in_dependency(project) => {
            "reads a file beside its code, which the executable does not have"
        }
        Kind::DirnamePath => "reads a file beside its code, there only if --asset put it there",
        _ => "is not bundled (computed module name)",
    };
    format!(
        "{}: `{}` {what}; it fails at run time if that code runs",
        c.location, c.code
    )
}

fn refuse_typescript(entry: &Entry, reason: &str) -> Result<(), NodeError> {
    if is_typescript(&entry.relative) {
        return Err(NodeError::TypeScriptFiles {
            entry: entry.relative.clone(),
            why: reason.to_string(),
        });
    }
    Ok(())
}

/// The files layout: the stock node and the `traced` files, with the packages whose code
/// hides files from the tracer (`found` by the bundle, relative to the project, or in the
/// traced files) whole.
fn files(
    ctx: &Ctx,
    reason: String,
    found: &[Construct],
    traced: Vec<String>,
) -> Result<Made, NodeError> {
    refuse_typescript(ctx.entry, &reason)?;
    let (traced, notes) = with_whole_packages(ctx, traced, found)?;
    let components = node_trace::components(ctx.mount, &traced);
    Ok(Made {
        executable: stripped_node(ctx)?,
        layout: "files",
        reason,
        notes,
        components,
        traced: Some(traced),
    })
}

/// Stripped as the sea executable is: ~13 MB less, and the same bytes on every build; kept
/// in the cache for the next build (a toolchain image's node is a new copy every time).
fn stripped_node(ctx: &Ctx) -> Result<PathBuf, NodeError> {
    let node = &ctx.runtime.node;
    let strip = |out: &Path| -> Result<(), NodeError> {
        sea::inject::strip(node, out)?;
        Ok(())
    };
    match (ctx.cache, ctx.runner) {
        (Some(root), Runner::Host) => trace_cache::stripped_node(root, node, strip),
        _ => {
            let exe = ctx.out_dir.join("node-stripped");
            strip(&exe)?;
            Ok(exe)
        }
    }
}

/// The node that runs the tracer: it reads files, it does not care which node runs it, so
/// another platform's runtime is traced for by the node that runs here.
fn tracer_node(ctx: &Ctx) -> Result<OsString, NodeError> {
    Ok(match ctx.runner {
        Runner::Host if ctx.native => ctx.runtime.node.clone().into_os_string(),
        Runner::Host => host_node_in(ctx.cache)?.node.into_os_string(),
        Runner::Container { .. } => OsString::from("node"),
    })
}

/// Runs the tracer over the entry, with the cache's analyses of unchanged files (the
/// seeds, returned with the trace).
fn trace_files(
    ctx: &Ctx,
    cache: Option<&TraceCache>,
) -> Result<(node_trace::Traced, Vec<trace_cache::Analysis>), NodeError> {
    let entry = ctx.entry;
    let nft = node_trace::tracer(ctx.runner, &entry.project, ctx.mount, ctx.progress)?;
    ctx.progress.stage(&format!(
        "tracing the files {} reads",
        entry.relative.display()
    ));
    let node = tracer_node(ctx)?;
    let seeds = cache.map(TraceCache::seeds).unwrap_or_default();
    let abs = entry.project.join(&entry.relative);
    let tools = (node.as_os_str(), nft.as_os_str());
    let traced = node_trace::trace(ctx.runner, tools, ctx.mount, &abs, ctx.out_dir, &seeds)?;
    Ok((traced, seeds))
}

/// Keeps the trace, the bundle's diagnostics and the analyses in the cache (if any);
/// returns the traced files.
fn keep_trace(
    ctx: &Ctx,
    cache: Option<&TraceCache>,
    (traced, seeds): (node_trace::Traced, Vec<trace_cache::Analysis>),
    bundle: &Bundle,
) -> Vec<String> {
    if let Some(cache) = cache {
        let made = trace_cache::Trace {
            files: &traced.files,
            constructs: &bundle.constructs,
            probed: &traced.probed,
            also: read_besides(ctx, &bundle.inputs),
        };
        cache.store(&made, &traced.analyses, &seeds);
    }
    traced.files
}

/// What the diagnostics and the trace depend on besides the paths the tracer looked at: the
/// sources esbuild read, and the package.json and lockfile of the project and the mount root.
fn read_besides(ctx: &Ctx, inputs: &[String]) -> Vec<String> {
    const BESIDE: [&str; 5] = [
        "package.json",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
    ];
    let project = &ctx.entry.project;
    let dirs = [project.as_path(), ctx.mount];
    let beside = dirs.into_iter().flat_map(|d| BESIDE.map(|f| d.join(f)));
    inputs
        .iter()
        .map(|i| project.join(i))
        .chain(beside)
        .map(|p| path_str(&p))
        .collect()
}

/// The trace cache of this build (host builds only: a container's paths are not the
/// host's), keyed by everything the trace and the esbuild diagnostics depend on.
fn trace_cache_for(ctx: &Ctx) -> Result<Option<TraceCache>, NodeError> {
    let (Some(root), Runner::Host) = (ctx.cache, ctx.runner) else {
        return Ok(None);
    };
    let nft = node_trace::host_tracer_path(&ctx.entry.project, ctx.mount);
    let node = tracer_node(ctx)?;
    let esbuild = find_esbuild(&ctx.entry.project, ctx.progress)?;
    let id = trace_cache::identity;
    let common = [
        "binpack-trace/1".to_string(),
        trace_cache::binpack_identity(),
        node_trace::script_id().to_string(),
        node_trace::version(),
        path_str(&nft),
        id(Path::new(&node)),
        path_str(ctx.mount),
    ];
    let entry = ctx.entry.project.join(&ctx.entry.relative);
    let more = [path_str(&entry), id(&esbuild), ctx.runtime.version.clone()];
    let analysis_key = trace_cache::key(&common);
    let all: Vec<&String> = common.iter().chain(&more).collect();
    let trace_key = trace_cache::key(&all);
    let at = (ctx.mount, entry.as_path());
    let cache = TraceCache::new(root, at, &trace_key, &analysis_key);
    Ok(Some(cache))
}

/// The traced files and every file of each package under node_modules in which the bundle's
/// diagnostics or a scan of the traced code find a construct that reaches files the tracer
/// cannot follow (moment's locales by an aliased require, typescript's lib.*.d.ts beside its
/// code); a note for each such package.
fn with_whole_packages(
    ctx: &Ctx,
    traced: Vec<String>,
    found: &[Construct],
) -> Result<(Vec<String>, Vec<String>), NodeError> {
    let code: Vec<String> = traced
        .iter()
        .filter(|f| f.contains("node_modules/") && is_script(f))
        .cloned()
        .collect();
    let mut all: Vec<Construct> = found
        .iter()
        .map(|c| c.rebased(&ctx.entry.project, ctx.mount))
        .collect();
    all.extend(node_checks::scan_sources(ctx.mount, &code));
    let mut files: BTreeSet<String> = traced.into_iter().collect();
    let mut notes = vec![];
    for (dir, why) in node_trace::hiding_packages(&all) {
        let before = files.len();
        files.extend(node_trace::package_files(ctx.mount, &dir)?);
        notes.push(format!(
            "{dir} is shipped whole ({} more files): the tracer cannot follow {}",
            files.len() - before,
            why.sentence()
        ));
    }
    Ok((files.into_iter().collect(), notes))
}

fn is_script(file: &str) -> bool {
    [".js", ".cjs", ".mjs"].iter().any(|e| file.ends_with(e))
}

fn is_typescript(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("ts" | "mts" | "cts")
    )
}

/// What a toolchain container mounts: the outermost directory from the project up that has
/// both package.json and node_modules (a workspace root, where dependencies are hoisted), else
/// the project.
fn mount_root(project: &Path) -> PathBuf {
    project
        .ancestors()
        .filter(|d| d.join("package.json").is_file() && d.join("node_modules").is_dir())
        .last()
        .unwrap_or(project)
        .to_path_buf()
}

/// The toolchain image's node, copied out beside the build.
fn image_node(runner: &Runner, entry: &Entry, out_dir: &Path) -> Result<Runtime, NodeError> {
    let node = out_dir.join(".node");
    let script = format!(
        "set -e; cp \"$(command -v node)\" {}; node --version",
        runner.path(&node).display()
    );
    let version = output_of(
        &mut runner.script(&script, &entry.project, PASS_ENV),
        "node in the toolchain image",
    )?;
    Ok(Runtime {
        node,
        version,
        origin: "toolchain image".into(),
    })
}

/// esbuild for a container build: the project's, else the image's, else the pinned version
/// installed with the image's npm into the cache volume (once).
fn container_esbuild(
    runner: &Runner,
    entry: &Entry,
    mount: &Path,
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
    let path = output_of(
        &mut runner.script(&script, &entry.project, PASS_ENV),
        &format!("esbuild in the toolchain image (npm install esbuild@{version})"),
    )?;
    Ok(OsString::from(path.lines().last().unwrap_or_default()))
}

/// The app's entry script and the project around it.
#[derive(Debug)]
struct Entry {
    /// The directory holding package.json (or the entry's directory): esbuild runs here, so
    /// the bundle holds no path of this machine.
    project: PathBuf,
    /// The entry, relative to `project`.
    relative: PathBuf,
    /// The program's name.
    name: String,
}

#[derive(Deserialize)]
struct PackageJson {
    name: Option<String>,
    main: Option<String>,
    bin: Option<serde_json::Value>,
}

impl Entry {
    fn resolve(entry: &Path) -> Result<Entry, NodeError> {
        if !entry.exists() {
            return Err(NodeError::NoSuchEntry(entry.to_path_buf()));
        }
        let entry = entry
            .canonicalize()
            .map_err(file_error("resolving the entry", entry))?;
        if entry.is_dir() {
            let pj = entry.join("package.json");
            // No package.json: not an app directory. Another failure is that file's.
            let text = std::fs::read_to_string(&pj).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => NodeError::BadEntry(entry.clone()),
                _ => file_error("reading", &pj)(e).into(),
            })?;
            let pkg: PackageJson =
                serde_json::from_str(&text).map_err(|e| NodeError::PackageJson {
                    path: pj.clone(),
                    why: e.to_string(),
                })?;
            let pkg_name = pkg.name.as_deref().map(unscoped);
            // `bin` (a path, or a map of command -> path), else `main`, else index.js as npm does.
            let (name, script) = match &pkg.bin {
                Some(serde_json::Value::String(s)) => (pkg_name.clone(), s.clone()),
                Some(serde_json::Value::Object(m)) if !m.is_empty() => {
                    let (cmd, path) = pkg_name
                        .as_ref()
                        .and_then(|n| m.get_key_value(n))
                        .unwrap_or_else(|| m.iter().next().expect("non-empty"));
                    let path = path.as_str().ok_or_else(|| NodeError::PackageJson {
                        path: pj.clone(),
                        why: format!("bin.{cmd} is not a path"),
                    })?;
                    (Some(cmd.clone()), path.to_string())
                }
                _ => (
                    pkg_name.clone(),
                    pkg.main.clone().unwrap_or_else(|| "index.js".into()),
                ),
            };
            let file = entry.join(&script);
            if !file.is_file() {
                return Err(NodeError::PackageJson {
                    path: pj,
                    why: format!("it names the entry {script}, which does not exist"),
                });
            }
            let name = name.unwrap_or_else(|| file_stem(&file));
            return Ok(Entry {
                relative: PathBuf::from(script.trim_start_matches("./")),
                project: entry,
                name,
            });
        }
        let ext = entry.extension().and_then(|e| e.to_str()).unwrap_or("");
        let script = matches!(ext, "js" | "cjs" | "mjs" | "ts" | "mts" | "cts");
        if !script && !has_node_shebang(&entry) {
            return Err(NodeError::BadEntry(entry));
        }
        let dir = entry.parent().unwrap_or(Path::new("/"));
        let package = dir.ancestors().find(|d| d.join("package.json").is_file());
        // A dependency's own CLI (node_modules/json-server/lib/bin.js) runs in the app that
        // installed it: that app is the project, and the package names the image.
        let (project, name) = match installed_in(&entry) {
            Some(app) => (app, package.and_then(package_name)),
            None => (package.unwrap_or(dir).to_path_buf(), None),
        };
        Ok(Entry {
            relative: entry.strip_prefix(&project).unwrap_or(&entry).to_path_buf(),
            name: name.unwrap_or_else(|| file_stem(&entry)),
            project,
        })
    }
}

/// An executable script without an extension that starts `#!/usr/bin/env node` (a package's
/// `bin`).
fn has_node_shebang(file: &Path) -> bool {
    let mut head = [0u8; 128];
    let n = std::fs::File::open(file)
        .and_then(|mut f| io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    let line = head[..n].split(|b| *b == b'\n').next().unwrap_or(&[]);
    let Some(line) = line.strip_prefix(b"#!") else {
        return false;
    };
    // `#!/usr/bin/node` or `#!/usr/bin/env node` (not nodemon).
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let program = words.next().unwrap_or("").rsplit('/').next().unwrap_or("");
    match program {
        "env" => words.find(|w| !w.starts_with('-')) == Some("node"),
        p => p == "node",
    }
}

/// The app that installed `file`: the directory holding the outermost `node_modules` of its
/// path, when it has a package.json (a global install's prefix is no app).
fn installed_in(file: &Path) -> Option<PathBuf> {
    file.ancestors()
        .filter(|d| d.file_name().is_some_and(|n| n == "node_modules"))
        .last()
        .and_then(Path::parent)
        .filter(|app| app.join("package.json").is_file())
        .map(Path::to_path_buf)
}

/// The unscoped name in `dir`'s package.json (`@scope/x` is `x`).
fn package_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    let name = serde_json::from_str::<PackageJson>(&text).ok()?.name?;
    Some(unscoped(&name))
}

/// A package's name without its scope (`@scope/x` is `x`): the image's name.
fn unscoped(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_string()
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into())
}

/// A node runtime to build the executable from.
#[derive(Debug)]
struct Runtime {
    node: PathBuf,
    /// `v20.20.2`
    version: String,
    /// `host`, `official, from npm` or `toolchain image`.
    origin: String,
}

impl Runtime {
    fn major(&self) -> u32 {
        self.version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    }
}

fn output_of(cmd: &mut Command, what: &str) -> Result<String, NodeError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| tool_err(what, e.to_string()))?;
    if !out.status.success() {
        return Err(tool_err(
            what,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The host's node, its version kept in the cache `root` (when given) while the binary is
/// the same file.
fn host_node_in(root: Option<&Path>) -> Result<Runtime, NodeError> {
    let node = which::which("node").map_err(|_| NodeError::NodeNotFound)?;
    let ask = || output_of(Command::new(&node).arg("--version"), "node --version");
    let version = match root {
        Some(root) => trace_cache::remembered(root, "node --version", &node, ask)?,
        None => ask()?,
    };
    Ok(Runtime {
        node,
        version,
        origin: "host".into(),
    })
}

fn npm() -> Result<PathBuf, NodeError> {
    which::which("npm").map_err(|_| NodeError::NpmNotFound("fetch node runtimes and esbuild"))
}

/// The official node `version` for `platform`, from the npm package
/// `node-linux-<arch>`: resolved to an exact version, verified against the registry's sha512
/// integrity, extracted, and cached by version.
fn official_node(
    version: &str,
    platform: &crate::platform::Platform,
) -> Result<Runtime, NodeError> {
    let arch = platform.arch.clone();
    let package = pinned()["node"]["packages"][arch.as_str()]
        .as_str()
        .map(String::from)
        .ok_or_else(|| {
            tool_err(
                "--node-version",
                format!("no official node package for {arch}"),
            )
        })?;
    let npm = npm()?;
    let spec = format!("{package}@{}", version.trim_start_matches('v'));
    let view = output_of(
        Command::new(&npm).args(["view", "--json", &spec, "version"]),
        &format!("npm view {spec}"),
    )?;
    // One version is a JSON string; a range matching several is an array, newest last.
    let exact = match serde_json::from_str::<serde_json::Value>(&view) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Array(a)) => a
            .last()
            .and_then(|v| v.as_str())
            .map(String::from)
            .unwrap_or_default(),
        _ => String::new(),
    };
    if exact.is_empty() {
        return Err(tool_err(
            "--node-version",
            format!("the npm registry has no {spec}"),
        ));
    }
    let dir = cache::dir()
        .join("node")
        .join(format!("{exact}-linux-{arch}"));
    let dir = cache_entry(&dir, |tmp| -> Result<(), NodeError> {
        let pinned = format!("{package}@{exact}");
        let integrity = output_of(
            Command::new(&npm).args(["view", &pinned, "dist.integrity"]),
            &format!("npm view {pinned}"),
        )?;
        let file = output_of(
            Command::new(&npm)
                .args(["pack", "--silent", &pinned, "--pack-destination"])
                .arg(tmp),
            &format!("npm pack {pinned}"),
        )?;
        let tgz = tmp.join(file.lines().last().unwrap_or_default());
        let mut hasher = Sha512::new();
        std::fs::File::open(&tgz)
            .and_then(|mut f| io::copy(&mut f, &mut hasher))
            .map_err(file_error("reading", &tgz))?;
        use base64::Engine;
        let ours = format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
        );
        if ours != integrity {
            return Err(NodeError::Integrity {
                version: exact.clone(),
                expected: integrity,
            });
        }
        extract_node(&tgz, &tmp.join("node"))?;
        std::fs::remove_file(&tgz).map_err(file_error("removing", &tgz))?;
        Ok(())
    })?;
    Ok(Runtime {
        node: dir.join("node"),
        version: format!("v{exact}"),
        origin: "official, from npm".into(),
    })
}

/// Extracts `package/bin/node` from the npm tarball.
fn extract_node(tgz: &Path, dest: &Path) -> Result<(), NodeError> {
    let reading = || file_error("reading", tgz);
    let file = std::fs::File::open(tgz).map_err(reading())?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().map_err(reading())? {
        let mut entry = entry.map_err(reading())?;
        if entry.path().map_err(reading())?.as_ref() == Path::new("package/bin/node") {
            let writing = || file_error("writing", dest);
            let mut out = std::fs::File::create(dest).map_err(writing())?;
            // A failed copy may be the archive's fault or the disk's: io::copy cannot say.
            io::copy(&mut entry, &mut out)
                .map_err(file_error("extracting package/bin/node to", dest))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))
                .map_err(writing())?;
            return Ok(());
        }
    }
    Err(tool_err(
        "unpacking the node package",
        "it has no package/bin/node",
    ))
}

/// The project's own esbuild (node_modules/.bin of it or an ancestor).
fn project_esbuild(project: &Path) -> Option<PathBuf> {
    project
        .ancestors()
        .map(|d| d.join("node_modules/.bin/esbuild"))
        .find(|p| p.is_file())
}

fn esbuild_version() -> String {
    pinned()["esbuild"]["version"]
        .as_str()
        .expect("esbuild version pinned")
        .to_string()
}

/// esbuild from the project's node_modules, else PATH, else the pinned version installed into
/// binpack's cache with npm.
fn find_esbuild(project: &Path, progress: &dyn Progress) -> Result<PathBuf, NodeError> {
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
    npm_install_cached(&dir, &format!("esbuild@{version}"), "install esbuild")?;
    Ok(bin)
}

/// `npm install SPEC` into the cache entry `dir`, which appears whole or not at all.
pub(super) fn npm_install_cached(
    dir: &Path,
    spec: &str,
    needed_for: &'static str,
) -> Result<(), NodeError> {
    let npm = which::which("npm").map_err(|_| NodeError::NpmNotFound(needed_for))?;
    cache_entry(dir, |tmp| -> Result<(), NodeError> {
        output_of(
            Command::new(&npm)
                .args([
                    "install",
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                ])
                .arg(tmp)
                .arg(spec),
            &format!("npm install {spec}"),
        )?;
        Ok(())
    })?;
    Ok(())
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

/// esbuild's result: the bundle, what it could not hold, the sources it read.
struct Bundle {
    out: PathBuf,
    constructs: Vec<Construct>,
    /// The bundled source files, relative to the project.
    inputs: Vec<String>,
    ok: bool,
    stderr: String,
}

impl Bundle {
    /// A failed bundle's error: a missing node_modules said plainly, else esbuild's messages.
    fn check(&self, ctx: &Ctx) -> Result<(), NodeError> {
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
    stderr
        .lines()
        .filter_map(|l| l.split("Could not resolve \"").nth(1))
        .filter_map(|r| r.split('"').next())
        .find(|n| !n.starts_with('.') && !n.starts_with('/') && !n.ends_with(".node"))
        .map(String::from)
}

/// Bundles the entry with esbuild, its hidden diagnostics raised, the prologue added; scans the sources it read for what it does not report.
fn bundle(ctx: &Ctx) -> Result<Bundle, NodeError> {
    start_bundle(ctx)?.finish(ctx)
}

/// esbuild, running (its messages go to a file: nobody reads a pipe while it runs).
struct Bundling {
    child: std::process::Child,
    out: PathBuf,
    meta: PathBuf,
    messages: PathBuf,
}

/// Starts [`bundle`]'s esbuild.
fn start_bundle(ctx: &Ctx) -> Result<Bundling, NodeError> {
    let entry = ctx.entry;
    let esbuild = match ctx.runner {
        Runner::Host => find_esbuild(&entry.project, ctx.progress)?.into_os_string(),
        Runner::Container { .. } => container_esbuild(ctx.runner, entry, ctx.mount, ctx.progress)?,
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
    args.extend(node_checks::RAISE.iter().map(OsString::from));
    args.push(format!("--banner:js={PROLOGUE}").into());
    args.push(format!("--target=node{}", ctx.runtime.major().max(12)).into());
    for (flag, path) in [("--metafile=", &meta), ("--outfile=", &out)] {
        let mut a = OsString::from(flag);
        a.push(ctx.runner.path(path));
        args.push(a);
    }
    let messages = ctx.out_dir.join("binpack-esbuild.txt");
    let file = std::fs::File::create(&messages).map_err(file_error("writing", &messages))?;
    let child = ctx
        .runner
        .command(&esbuild, &args, &entry.project, &[], PASS_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .map_err(|e| tool_err("esbuild", e.to_string()))?;
    Ok(Bundling {
        child,
        out,
        meta,
        messages,
    })
}

impl Bundling {
    /// Waits for esbuild, then reads what it said and scans the sources it read.
    fn finish(mut self, ctx: &Ctx) -> Result<Bundle, NodeError> {
        let status = self.child.wait();
        let status = status.map_err(|e| tool_err("esbuild", e.to_string()))?;
        let stderr =
            std::fs::read(&self.messages).map_err(file_error("reading", &self.messages))?;
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        let mut constructs = node_checks::parse_esbuild(&stderr);
        let inputs = std::fs::read_to_string(&self.meta)
            .map(|m| node_checks::metafile_inputs(&m))
            .unwrap_or_default();
        constructs.extend(node_checks::scan_sources(&ctx.entry.project, &inputs));
        Ok(Bundle {
            out: self.out,
            constructs,
            inputs,
            ok: status.success(),
            stderr,
        })
    }
}

/// Where an asset goes, relative to the app directory: its path inside the project, else its
/// file name.
fn asset_path(project: &Path, asset: &Path) -> Result<(String, PathBuf), NodeError> {
    let host = asset.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => NodeError::NoSuchEntry(asset.to_path_buf()),
        _ => file_error("resolving the asset", asset)(e).into(),
    })?;
    let rel = host
        .strip_prefix(project)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| PathBuf::from(host.file_name().unwrap_or_default()));
    Ok((rel.to_string_lossy().into_owned(), host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_failures_name_their_path() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let gone = p.join("node-v1.tgz");
        let err = extract_node(&gone, &p.join("node"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "reading {}: No such file or directory (os error 2)",
                gone.display()
            )
        );
        // A package.json that cannot be read is that file's error, not a bad entry.
        std::fs::create_dir(p.join("package.json")).unwrap();
        let err = Entry::resolve(p).unwrap_err().to_string();
        let pj = p.canonicalize().unwrap().join("package.json");
        assert!(
            err.starts_with(&format!("reading {}: ", pj.display())),
            "{err}"
        );
        // An asset below a file.
        std::fs::write(p.join("file"), "").unwrap();
        let below = p.join("file/asset");
        let err = asset_path(p, &below).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "resolving the asset {}: Not a directory (os error 20)",
                below.display()
            )
        );
    }

    #[test]
    fn entries_from_files_and_package_json() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().canonicalize().unwrap();
        std::fs::create_dir_all(p.join("src")).unwrap();
        std::fs::write(p.join("src/cli.js"), "").unwrap();
        std::fs::write(p.join("server.mjs"), "").unwrap();
        std::fs::write(p.join("notes.txt"), "").unwrap();
        let table = [
            (
                r#"{"name":"@acme/tool","bin":{"tool":"./src/cli.js"}}"#,
                "tool",
                "src/cli.js",
            ),
            (
                r#"{"name":"@acme/tool","bin":"src/cli.js"}"#,
                "tool",
                "src/cli.js",
            ),
            (r#"{"name":"web","main":"server.mjs"}"#, "web", "server.mjs"),
        ];
        for (pj, name, rel) in table {
            std::fs::write(p.join("package.json"), pj).unwrap();
            let e = Entry::resolve(&p).unwrap();
            assert_eq!(
                (e.name.as_str(), e.relative.to_str().unwrap()),
                (name, rel),
                "{pj}"
            );
            assert_eq!(e.project, p);
        }
        std::fs::write(p.join("package.json"), r#"{"main":"gone.js"}"#).unwrap();
        assert!(Entry::resolve(&p)
            .unwrap_err()
            .to_string()
            .contains("gone.js, which does not exist"));
        let e = Entry::resolve(&p.join("src/cli.js")).unwrap();
        assert_eq!(
            (e.name.as_str(), e.relative.to_str().unwrap()),
            ("cli", "src/cli.js")
        );
        assert!(matches!(
            Entry::resolve(&p.join("notes.txt")),
            Err(NodeError::BadEntry(_))
        ));
        assert!(matches!(
            Entry::resolve(&p.join("nope.js")),
            Err(NodeError::NoSuchEntry(_))
        ));
    }
}
