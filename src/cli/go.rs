//! `binpack go`: build a Go command with CGO_ENABLED=0 and pack it.

use super::pack_args::PackArgs;
use super::report::{self, Reporter};
use super::toolchain_args::ToolchainArgs;
use binpack::build::go::{self, GoBuild};
use binpack::build::toolchain::Toolchain;
use binpack::pack;
use binpack::platform::Platform;
use binpack::progress::Progress;

/// Build a Go main package (CGO_ENABLED=0, -trimpath, stripped) and pack it into an image.
///
/// Uses the `go` on PATH, else a golang toolchain container (--toolchain); the rest of your Go
/// environment (GOFLAGS, GOPATH, GO111MODULE, GOPROXY, GOCACHE, ...) is passed through
/// untouched (into a container: GOFLAGS, GOPROXY, GOPRIVATE, GONOSUMDB and the like). The
/// result is a static binary in a FROM-scratch image: the binary, CA certificates, /etc/passwd
/// with a nonroot user, /tmp.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory (built from inside it) or a package path
    #[arg(default_value = ".", value_name = "PKG")]
    package: String,

    /// Target platform [default: linux/<host arch>]
    #[arg(long, value_name = "OS/ARCH", value_parser = Platform::parse)]
    platform: Option<Platform>,

    /// Extra -ldflags, appended to binpack's "-s -w -buildid="
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    ldflags: Option<String>,

    /// Extra flag for go build, e.g. --build-flag=-tags=netgo (repeatable)
    #[arg(long = "build-flag", value_name = "FLAG", allow_hyphen_values = true)]
    build_flags: Vec<String>,

    /// Leave Go's embedded time zone database out (~400 KB; time.LoadLocation then needs
    /// zoneinfo in the image, e.g. --add /usr/share/zoneinfo:/usr/share/zoneinfo)
    #[arg(long)]
    no_tzdata: bool,

    #[command(flatten)]
    toolchain: ToolchainArgs,

    #[command(flatten)]
    pack: PackArgs,
}

pub fn run(args: Args, reporter: &Reporter) -> anyhow::Result<()> {
    let spec = GoBuild {
        package: args.package.clone(),
        platform: args.platform.clone().unwrap_or_else(Platform::host),
        flags: args.build_flags.clone(),
        ldflags: args.ldflags.clone(),
        tzdata: !args.no_tzdata,
    };
    let toolchain = Toolchain::select(&args.toolchain.request(), "go", go::INSTALL, reporter)?;
    reporter.stage(&format!(
        "go build {} ({}, {} toolchain)",
        spec.package,
        spec.platform,
        toolchain.describe()
    ));
    reporter.finish_stage();
    let built = go::build(&spec, &toolchain, reporter)?;
    let artifact = &built.artifact;
    let outputs = args.pack.outputs(&artifact.name)?;
    let summary = pack::pack(artifact, &args.pack.options()?, &outputs, reporter)?;
    report::print_summary(&summary, args.pack.json)
}
