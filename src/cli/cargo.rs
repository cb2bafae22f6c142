//! `binpack cargo`: a Rust binary target of a Cargo workspace, built and packed.

use super::pack_args::PackArgs;
use super::report::{self, Reporter};
use binpack::build::cargo::{self, CargoBuild};
use binpack::pack;
use binpack::platform::{Platform, Platforms};
use binpack::progress::Progress;
use std::path::PathBuf;

/// Build a binary target of a Cargo workspace (release, stripped) and pack it; the base is chosen
/// from what the binary needs, as for any ELF (glibc -> its library closure, musl -> alpine,
/// static -> scratch). A binary that reads the system's time zone files (chrono, jiff,
/// localtime) gets the host's /usr/share/zoneinfo, unless --add puts it there.
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

    /// Target platforms, comma-separated (linux/amd64,linux/arm64), or `all` (linux/amd64,
    /// linux/arm64); each needs its Rust target installed (rustup target add) and, for another
    /// architecture, its linker (gcc-aarch64-linux-gnu). Several make an image index
    /// [default: linux/<host arch>, cargo's default target]
    #[arg(long, value_name = "OS/ARCH,...", value_parser = Platforms::parse)]
    platform: Option<Platforms>,

    #[command(flatten)]
    pack: PackArgs,
}

pub fn run(args: Args, reporter: &Reporter) -> anyhow::Result<()> {
    args.pack.preflight()?; // outputs' preconditions (--load's engine) before the build
    let platforms: Vec<Option<Platform>> = match &args.platform {
        Some(p) => p
            .resolve(&Platform::known(&["linux/amd64", "linux/arm64"]))
            .into_iter()
            .map(Some)
            .collect(),
        None => vec![None],
    };
    let mut built = Vec::new();
    for platform in platforms {
        let spec = CargoBuild {
            dir: args.manifest_dir.clone(),
            bin: args.bin.clone(),
            package: args.package.clone(),
            flags: args.cargo_flags.clone(),
            platform,
        };
        reporter.stage(&describe(&spec));
        reporter.finish_stage();
        built.push(cargo::build(&spec)?);
    }
    let artifacts: Vec<_> = built.iter().map(|b| &b.artifact).collect();
    let outputs = args.pack.outputs(&artifacts[0].name)?;
    let summary = pack::pack_all(&artifacts, &args.pack.options()?, &outputs, reporter)?;
    report::print_summary(&summary, args.pack.json)
}

/// The progress line of one build.
fn describe(spec: &CargoBuild) -> String {
    format!(
        "cargo build{}{}{} (stripped)",
        spec.bin
            .as_ref()
            .map(|b| format!(" --bin {b}"))
            .unwrap_or_default(),
        spec.platform
            .as_ref()
            .map(|p| format!(" for {p}"))
            .unwrap_or_default(),
        spec.flags
            .iter()
            .map(|f| format!(" {f}"))
            .collect::<String>()
    )
}
