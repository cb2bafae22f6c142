//! `binpack go`: build a Go command with CGO_ENABLED=0 and pack it.

use super::report::Reporter;
use super::runner::{self, BuildArgs};
use binpack::build::go::GoBuilder;

/// Build a Go main package (CGO_ENABLED=0 unless --cgo, -trimpath, stripped) and pack it into
/// an image.
///
/// Uses the `go` on PATH, else a golang toolchain container (--toolchain); the rest of your Go
/// environment (GOFLAGS, GOPATH, GO111MODULE, GOPROXY, GOCACHE, ...) is passed through
/// untouched (into a container: GOFLAGS, GOPROXY, GOPRIVATE, GONOSUMDB and the like). The
/// result is a static binary in a FROM-scratch image: the binary, CA certificates, /etc/passwd
/// with a nonroot user, /tmp (with --cgo, a dynamic binary on its library closure).
/// `--platform all`: linux/amd64, arm64, 386, arm/v7, riscv64, ppc64le, s390x, each
/// cross-compiled.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory (built from inside it) or a package path
    #[arg(default_value = ".", value_name = "PKG")]
    package: String,

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
    common: BuildArgs,
}

pub fn run(args: Args, reporter: &Reporter) -> anyhow::Result<()> {
    let builder = GoBuilder {
        package: args.package,
        flags: args.build_flags,
        ldflags: args.ldflags,
        tzdata: !args.no_tzdata,
        cgo: args.cgo,
    };
    runner::run(&builder, &args.common, reporter)
}
