//! `binpack cargo`: a Rust binary target of a Cargo workspace, built and packed.

use super::report::Reporter;
use super::runner::{self, BuildArgs};
use binpack::build::cargo::CargoBuilder;
use std::path::PathBuf;

/// Build a binary target of a Cargo workspace (release, stripped) and pack it; the base is chosen
/// from what the binary needs, as for any ELF (glibc -> its library closure, musl -> alpine,
/// static -> scratch). A binary that reads the system's time zone files (chrono, jiff,
/// localtime) gets the host's /usr/share/zoneinfo, unless --add puts it there.
///
/// `--platform all`: linux/amd64 and linux/arm64; each needs its Rust target installed (rustup
/// target add) and, for another architecture, its linker (gcc-aarch64-linux-gnu). Without
/// --platform, cargo's default target. Builds on the host only.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package or workspace directory, or any directory inside it
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,

    /// The binary target [default: the only one in the workspace]
    #[arg(long, value_name = "NAME")]
    bin: Option<String>,

    /// The package holding it
    #[arg(short, long, value_name = "P")]
    package: Option<String>,

    /// The workspace directory (the same as DIR)
    #[arg(long, value_name = "DIR", hide = true)]
    manifest_dir: Option<PathBuf>,

    /// Extra cargo build flag, e.g. --cargo-flag=--features=x, --cargo-flag=--target=T,
    /// --cargo-flag=--profile=P (repeatable)
    #[arg(long = "cargo-flag", value_name = "FLAG", allow_hyphen_values = true)]
    cargo_flags: Vec<String>,

    #[command(flatten)]
    common: BuildArgs,
}

pub fn run(args: Args, reporter: &Reporter) -> anyhow::Result<()> {
    let builder = CargoBuilder {
        dir: args.manifest_dir.unwrap_or(args.dir),
        bin: args.bin,
        package: args.package,
        flags: args.cargo_flags,
    };
    runner::run(&builder, &args.common, reporter)
}
