//! The layout decision: one sea executable when the layout allows and the bundle holds the
//! whole app, else the files layout, with the reason said; and the trace that decision
//! needs (run, or taken from the trace cache of an unchanged project).

use super::bundle::{bundle, find_esbuild, start_bundle, Bundle};
use super::checks::{Construct, Kind};
use super::entry::Entry;
use super::files::files;
use super::runtime::host_node_in;
use super::trace_cache::{self, TraceCache};
use super::{path_str, trace, Ctx, Layout, Made, NodeError};
use crate::build::toolchain::{file_error, Runner};
use crate::sea::{self, blob::Blob};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The sea executable when `layout` allows and the bundle is complete, else the traced files.
pub(super) fn make(ctx: &Ctx, layout: Layout) -> Result<Made, NodeError> {
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
    made.components = trace::components(&ctx.entry.project, &bundle.inputs);
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

pub(super) fn refuse_typescript(entry: &Entry, reason: &str) -> Result<(), NodeError> {
    if is_typescript(&entry.relative) {
        return Err(NodeError::TypeScriptFiles {
            entry: entry.relative.clone(),
            why: reason.to_string(),
        });
    }
    Ok(())
}

fn is_typescript(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("ts" | "mts" | "cts")
    )
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
) -> Result<(trace::Traced, Vec<trace_cache::Analysis>), NodeError> {
    let entry = ctx.entry;
    let nft = trace::tracer(ctx.runner, &entry.project, ctx.mount, ctx.progress)?;
    ctx.progress.stage(&format!(
        "tracing the files {} reads",
        entry.relative.display()
    ));
    let node = tracer_node(ctx)?;
    let seeds = cache.map(TraceCache::seeds).unwrap_or_default();
    let abs = entry.project.join(&entry.relative);
    let tools = (node.as_os_str(), nft.as_os_str());
    let traced = trace::trace(ctx.runner, tools, ctx.mount, &abs, ctx.out_dir, &seeds)?;
    Ok((traced, seeds))
}

/// Keeps the trace, the bundle's diagnostics and the analyses in the cache (if any);
/// returns the traced files.
fn keep_trace(
    ctx: &Ctx,
    cache: Option<&TraceCache>,
    (traced, seeds): (trace::Traced, Vec<trace_cache::Analysis>),
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
    let nft = trace::host_tracer_path(&ctx.entry.project, ctx.mount);
    let node = tracer_node(ctx)?;
    let esbuild = find_esbuild(&ctx.entry.project, ctx.progress)?;
    let id = trace_cache::identity;
    let common = [
        "binpack-trace/1".to_string(),
        trace_cache::binpack_identity(),
        trace::script_id().to_string(),
        trace::version(),
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
