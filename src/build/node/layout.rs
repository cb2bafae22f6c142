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
use std::path::Path;

/// What the layout decision chose, before anything is made of it.
#[derive(Debug)]
pub(super) enum Decision {
    /// One executable from the bundle, with notes on what `--layout sea` let through.
    Sea {
        bundle: Bundle,
        reason: String,
        notes: Vec<String>,
    },
    /// node and the traced files (relative to the mount root); `found`, the bundle's
    /// diagnostics, pick the packages shipped whole.
    Files {
        reason: String,
        found: Vec<Construct>,
        traced: Vec<String>,
    },
}

/// The sea executable when `layout` allows and the bundle is complete, else the traced files.
pub(super) fn make(ctx: &Ctx, layout: Layout) -> Result<Made, NodeError> {
    match decide(ctx, layout)? {
        Decision::Files {
            reason,
            found,
            traced,
        } => files(ctx, reason, &found, traced),
        Decision::Sea {
            bundle,
            reason,
            notes,
        } => sea(ctx, &bundle, reason, notes),
    }
}

/// The layout for `layout`, and why: from the trace cache when it knows, else from esbuild's
/// diagnostics (and the trace, for files).
pub(super) fn decide(ctx: &Ctx, layout: Layout) -> Result<Decision, NodeError> {
    if layout == Layout::Files {
        refuse_typescript(ctx.entry, "asked for with --layout files")?;
    }
    let cache = if layout == Layout::Sea {
        None
    } else {
        trace_cache_for(ctx)?
    };
    if let Some(known) = cache.as_ref().and_then(|c| from_cache(ctx, layout, c)) {
        return Ok(known);
    }
    if layout == Layout::Files {
        return files_asked(ctx, cache.as_ref());
    }
    let bundle = bundle(ctx)?;
    let (notes, mut blockers): (Vec<Construct>, Vec<Construct>) = bundle
        .constructs
        .iter()
        .cloned()
        .partition(|c| noted(ctx, layout, c));
    // The app's own code first: the line its author can change.
    blockers.sort_by_key(|c| c.in_dependency(&ctx.entry.project));
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
        let found = bundle.constructs;
        return Ok(Decision::Files {
            reason,
            found,
            traced,
        });
    }
    bundle.check(ctx)?;
    let reason = sea_reason(layout, &bundle);
    let project = &ctx.entry.project;
    let notes = notes.iter().map(|c| sea_note(c, project)).collect();
    Ok(Decision::Sea {
        bundle,
        reason,
        notes,
    })
}

/// `--layout files`: esbuild runs for its diagnostics only (they name the packages to ship
/// whole), on a thread of its own: the tracer does not wait for it.
fn files_asked(ctx: &Ctx, cache: Option<&TraceCache>) -> Result<Decision, NodeError> {
    let bundling = start_bundle(ctx)?;
    let exec = ctx.tools.run;
    let (ran, traced) = std::thread::scope(|s| {
        let esbuild = s.spawn(|| bundling.run(exec));
        let traced = trace_files(ctx, cache);
        (
            esbuild.join().expect("esbuild's thread does not panic"),
            traced,
        )
    });
    let bundle = bundling.finish(ctx, ran?)?;
    let traced = keep_trace(ctx, cache, traced?, &bundle);
    Ok(Decision::Files {
        reason: "asked for with --layout files".into(),
        found: bundle.constructs,
        traced,
    })
}

/// The files layout from the cache's trace of an unchanged project, when the layout is (or
/// `auto` picks) files: `auto` picks files when a construct the trace found blocks the bundle.
fn from_cache(ctx: &Ctx, layout: Layout, cache: &TraceCache) -> Option<Decision> {
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
    Some(Decision::Files {
        reason,
        found: known.constructs,
        traced: known.files,
    })
}

/// Why the sea layout: asked for, or the bundle holds everything.
fn sea_reason(layout: Layout, bundle: &Bundle) -> String {
    match layout {
        Layout::Sea => "asked for with --layout sea".to_string(),
        _ => format!(
            "the bundle holds the whole app ({} source file{})",
            bundle.inputs.len(),
            if bundle.inputs.len() == 1 { "" } else { "s" }
        ),
    }
}

/// The bundle injected into a copy of node: the sea executable, described.
fn sea(ctx: &Ctx, bundle: &Bundle, reason: String, notes: Vec<String>) -> Result<Made, NodeError> {
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
    let mut made = Made::sea(exe, reason);
    made.notes = notes;
    made.components = trace::components(&ctx.entry.project, &bundle.inputs);
    Ok(made)
}

/// Under --layout sea, a note for a dependency's code that may never run (express's view
/// engine loader, pino's transports) and for the app's own paths beside its code when
/// --asset puts files there; the rest is refused.
fn noted(ctx: &Ctx, layout: Layout, c: &Construct) -> bool {
    if c.kind == Kind::ShellCommand {
        return true; // No layout has a shell: said, never a reason for files.
    }
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
        Kind::ShellCommand => return shell_note(c),
        _ => "is not bundled (computed module name)",
    };
    format!(
        "{}: `{}` {what}; it fails at run time if that code runs",
        c.location, c.code
    )
}

/// What any layout says of a command run through a shell: the image has none.
pub(super) fn shell_note(c: &Construct) -> String {
    format!(
        "{}: `{}` runs a command through /bin/sh, which the image does not have; it fails at run time if that code runs (give --base with a shell, e.g. a Debian image, if it must)",
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
        Runner::Host => host_node_in(ctx.tools.host, ctx.cache)?
            .node
            .into_os_string(),
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
    let nft = trace::tracer(ctx.tools, ctx.runner, &entry.project, ctx.progress)?;
    ctx.progress.stage(&format!(
        "tracing the files {} reads",
        entry.relative.display()
    ));
    let node = tracer_node(ctx)?;
    let seeds = cache.map(TraceCache::seeds).unwrap_or_default();
    let abs = entry.project.join(&entry.relative);
    let tools = (node.as_os_str(), nft.as_os_str());
    let at = (ctx.runner, ctx.mount, ctx.out_dir);
    let traced = trace::trace(ctx.tools.run, at, tools, &[abs.as_path()], &seeds)?;
    Ok((traced, seeds))
}

/// The files `entries` (the app's own modules a computed import can reach) read at run time,
/// relative to the mount root: a trace of its own, never cached (the cache keeps the entry's).
pub(super) fn trace_more(ctx: &Ctx, entries: &[&Path]) -> Result<Vec<String>, NodeError> {
    let nft = trace::tracer(ctx.tools, ctx.runner, &ctx.entry.project, ctx.progress)?;
    ctx.progress.stage(&format!(
        "tracing the {} module files a computed import can reach",
        entries.len()
    ));
    let node = tracer_node(ctx)?;
    let tools = (node.as_os_str(), nft.as_os_str());
    let at = (ctx.runner, ctx.mount, ctx.out_dir);
    Ok(trace::trace(ctx.tools.run, at, tools, entries, &[])?.files)
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
    let nft = trace::host_tracer_path(&ctx.entry.project);
    let node = tracer_node(ctx)?;
    let esbuild = find_esbuild(ctx.tools.host, &ctx.entry.project, ctx.progress)?;
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
