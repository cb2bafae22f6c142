//! `binpack bin`: pack an ELF that was built elsewhere.

use super::pack_args::PackArgs;
use super::report::{self, Reporter};
use binpack::build::Artifact;
use binpack::pack;
use std::path::PathBuf;

/// Pack a Linux executable built elsewhere: a static one goes on scratch, a dynamic one gets
/// exactly the interpreter and shared libraries it needs, copied from --root. A program that
/// reads the system's time zone files (localtime, chrono) gets --root's /usr/share/zoneinfo,
/// unless --add puts it there or it is Go built with the timetzdata tag.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ELF executable
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Where the binary's shared libraries are taken from
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,

    /// Pack an interpreter or runtime (python, perl, ruby, java, a plain node) anyway: binpack
    /// refuses them because the image would lack the files they read at run time (add those
    /// with --add, or pick a --base that has them)
    #[arg(long)]
    not_self_contained: bool,

    #[command(flatten)]
    pack: PackArgs,
}

pub fn run(args: Args, reporter: &Reporter) -> anyhow::Result<()> {
    // A FIFO or a device is refused here, before any output is prepared.
    binpack::elf::inspect::check_regular(&args.file)?;
    if !args.root.is_dir() {
        anyhow::bail!("--root {}: no such directory", args.root.display());
    }
    // An image base or --add may bring what the runtime reads: then the user has decided.
    if !args.not_self_contained && !args.pack.base_is_image() && !args.pack.adds_files() {
        let linkage = binpack::elf::inspect::inspect_file(&args.file)?;
        if let Some(runtime) = binpack::elf::interpreters::runtime_of(&args.file, &linkage) {
            anyhow::bail!(runtime.refusal(&args.file));
        }
    }
    let artifact = Artifact::prebuilt(&args.file, &args.root);
    let outputs = args.pack.outputs(&artifact.name)?;
    let summary = pack::pack(&artifact, &args.pack.options()?, &outputs, reporter)?;
    report::print_summary(&summary, args.pack.json)
}
