//! `binpack go`: build a Go command with CGO_ENABLED=0 and pack it.

use super::pack_args::PackArgs;
use super::report::{self, Reporter};
use super::toolchain_args::ToolchainArgs;
use binpack::build::go::{self, GoBuild};
use binpack::build::toolchain::Toolchain;
use binpack::pack;
use binpack::platform::{Platform, Platforms};
use binpack::progress::Progress;

/// Build a Go main package (CGO_ENABLED=0 unless --cgo, -trimpath, stripped) and pack it into
/// an image.
///
/// Uses the `go` on PATH, else a golang toolchain container (--toolchain); the rest of your Go
/// environment (GOFLAGS, GOPATH, GO111MODULE, GOPROXY, GOCACHE, ...) is passed through
/// untouched (into a container: GOFLAGS, GOPROXY, GOPRIVATE, GONOSUMDB and the like). The
/// result is a static binary in a FROM-scratch image: the binary, CA certificates, /etc/passwd
/// with a nonroot user, /tmp (with --cgo, a dynamic binary on its library closure).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory (built from inside it) or a package path
    #[arg(default_value = ".", value_name = "PKG")]
    package: String,

    /// Target platforms, comma-separated (linux/amd64,linux/arm64,linux/arm/v7,linux/amd64/v3),
    /// or `all`: linux/amd64, arm64, 386, arm/v7, riscv64, ppc64le, s390x. Several make an
    /// image index, one image per platform [default: linux/<host arch>]
    #[arg(long, value_name = "OS/ARCH,...", value_parser = Platforms::parse)]
    platform: Option<Platforms>,

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

    /// Build with cgo (CGO_ENABLED=1, a C compiler from the host or the toolchain container):
    /// a dynamic binary, packed on its library closure with the packages that own the
    /// libraries. For packages that need cgo or have a cgo-less stub (sqlite drivers, pcap)
    #[arg(long)]
    cgo: bool,

    #[command(flatten)]
    toolchain: ToolchainArgs,

    #[command(flatten)]
    pack: PackArgs,
}

pub fn run(args: Args, reporter: &Reporter) -> anyhow::Result<()> {
    let platforms = match &args.platform {
        Some(p) => p.resolve(&Platform::every()),
        None => vec![Platform::host()],
    };
    let toolchain = Toolchain::select(&args.toolchain.request(), "go", go::INSTALL, reporter)?;
    // One cross-compiled build per platform: go never runs the target's code.
    let mut built = Vec::new();
    for platform in platforms {
        let spec = GoBuild {
            package: args.package.clone(),
            platform,
            flags: args.build_flags.clone(),
            ldflags: args.ldflags.clone(),
            tzdata: !args.no_tzdata,
            cgo: args.cgo,
        };
        reporter.stage(&format!(
            "go build {} ({}, {} toolchain)",
            spec.package,
            spec.platform,
            toolchain.describe()
        ));
        reporter.finish_stage();
        built.push(go::build(&spec, &toolchain, reporter)?);
    }
    let artifacts: Vec<_> = built.iter().map(|b| &b.artifact).collect();
    let outputs = args.pack.outputs(&artifacts[0].name)?;
    let summary = pack::pack_all(&artifacts, &args.pack.options()?, &outputs, reporter)?;
    report::print_summary(&summary, args.pack.json)
}
