//! `binpack cargo`: a Rust binary target of a Cargo workspace, built and packed.

use super::pack_args::PackArgs;
use super::report::{self, Reporter};
use binpack::build::cargo::{self, CargoBuild};
use binpack::pack;
use binpack::progress::Progress;
use std::path::PathBuf;

/// Build a binary target of a Cargo workspace (release, stripped) and pack it; the base is chosen
/// from what the binary needs, as for any ELF (glibc -> its library closure, musl -> alpine,
/// static -> scratch).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The binary target [default: the only one in the workspace]
    #[arg(long, value_name = "NAME")]
    bin: Option<String>,

    /// The package holding it
    #[arg(short, long, value_name = "P")]
    package: Option<String>,

    /// The workspace directory
    #[arg(long, value_name = "DIR", default_value = ".")]
    manifest_dir: PathBuf,

    /// Extra cargo build flag, e.g. --cargo-flag=--features=x, --cargo-flag=--target=T,
    /// --cargo-flag=--profile=P (repeatable)
    #[arg(long = "cargo-flag", value_name = "FLAG", allow_hyphen_values = true)]
    cargo_flags: Vec<String>,

    #[command(flatten)]
    pack: PackArgs,
}

pub fn run(args: Args, reporter: &Reporter) -> anyhow::Result<()> {
    let spec = CargoBuild {
        dir: args.manifest_dir.clone(),
        bin: args.bin.clone(),
        package: args.package.clone(),
        flags: args.cargo_flags.clone(),
    };
    reporter.stage(&format!(
        "cargo build{}{} (stripped)",
        spec.bin
            .as_ref()
            .map(|b| format!(" --bin {b}"))
            .unwrap_or_default(),
        spec.flags
            .iter()
            .map(|f| format!(" {f}"))
            .collect::<String>()
    ));
    reporter.finish_stage();
    let built = cargo::build(&spec)?;
    let artifact = &built.artifact;
    let outputs = args.pack.outputs(&artifact.name)?;
    let summary = pack::pack(artifact, &args.pack.options()?, &outputs, reporter)?;
    report::print_summary(&summary, args.pack.json)
}
