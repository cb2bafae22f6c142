//! `binpack inspect`: what an ELF needs at run time and which base binpack would pick.

use super::StdoutError;
use binpack::base;
use binpack::base::choose::{Base, Choice};
use binpack::base::closure::Resolved;
use binpack::build::Artifact;
use binpack::elf::goinfo::GoInfo;
use binpack::elf::inspect::Linkage;
use binpack::image::appfiles::entrypoint_of;
use binpack::pack::{self, PackOptions, Plan};
use binpack::support::printable::printable;
use std::path::PathBuf;

/// Show what an ELF needs at run time (platform, interpreter, libraries, Go build info) and
/// which base binpack would pick for it, and why.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ELF file
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Where shared libraries would be taken from
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,

    /// Print one JSON object on stdout
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // The same first stages as packing: inspect, choose, and the closure a pack would copy.
    let artifact = Artifact::prebuilt(&args.file, &args.root);
    let Plan {
        linkage, choice, ..
    } = pack::plan(&artifact, &PackOptions::default())?;
    let entrypoint = entrypoint_of(&artifact.name);
    // A library that cannot be found is reported after what could be read.
    let (libraries, unresolved) = match choice.base {
        Base::Closure => match base::closure_of(&args.root, &linkage, &args.file, &entrypoint) {
            Ok(l) => (l, None),
            Err(e) => (vec![], Some(e)),
        },
        Base::Scratch | Base::Image(_) => (vec![], None),
    };
    if let (true, Some(e)) = (args.json, &unresolved) {
        return Err(anyhow::anyhow!("{e}"));
    }
    if args.json {
        let mut v = serde_json::to_value(&linkage)?;
        v["base"] = serde_json::to_value(choice.base)?;
        v["base_reason"] = choice.reason.clone().into();
        v["libraries"] = serde_json::to_value(&libraries)?;
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print_text(&args, &linkage, &choice, &libraries)?;
    match unresolved {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The human-readable report. Every string read from the ELF (paths, names, Go module info) is
/// escaped: a crafted binary must not reach the terminal with control characters.
fn print_text(
    args: &Args,
    linkage: &Linkage,
    choice: &Choice,
    libraries: &[Resolved],
) -> Result<(), StdoutError> {
    let p = |s: &str| printable(s).into_owned();
    let kind = if linkage.is_static {
        "static".to_string()
    } else {
        format!("dynamic, {}", linkage.libc().unwrap_or("no interpreter"))
    };
    let file = p(&args.file.to_string_lossy());
    outln!("{file}: {} ({kind})", linkage.platform);
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            p(&v.join(", "))
        }
    };
    let interpreter = linkage.interpreter.as_deref().map_or("(none)".into(), p);
    outln!("  interpreter  {interpreter}");
    outln!("  needed       {}", list(&linkage.needed));
    if !linkage.runpath.is_empty() || !linkage.rpath.is_empty() {
        outln!("  runpath      {}", list(&linkage.runpath));
        outln!("  rpath        {}", list(&linkage.rpath));
    }
    match &linkage.go {
        Some(go) => outln!("  go           {}", p(&go_line(go))),
        None => outln!("  go           not a Go binary"),
    }
    outln!("base: {} ({})", choice.base, p(&choice.reason));
    for lib in libraries {
        let (name, path) = (p(&lib.name), p(&lib.path));
        // Which package the library comes from: what scanners will see it as.
        let from = match &lib.package {
            Some(pkg) => format!(" [{} {}]", p(&pkg.name), p(&pkg.version)),
            None => " [no package]".into(),
        };
        match &lib.image_path {
            Some(at) => outln!("  {name} => {path} (at {} in the image){from}", p(at)),
            None => outln!("  {name} => {path}{from}"),
        }
    }
    Ok(())
}

fn go_line(go: &GoInfo) -> String {
    format!(
        "{}{}{}",
        go.version.as_deref().unwrap_or("(version not recorded)"),
        go.path
            .as_deref()
            .map(|p| format!(", {p}"))
            .unwrap_or_default(),
        match (go.settings.get("CGO_ENABLED"), go.deps.len()) {
            (Some(c), n) => format!(", CGO_ENABLED={c}, {n} module dependencies"),
            (None, n) => format!(", {n} module dependencies"),
        }
    )
}
