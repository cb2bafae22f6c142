//! Go as a [`Builder`]: one cross-compiled `go build` per platform (go never runs the
//! target's code).

use super::{build, GoBuild, INSTALL};
use crate::build::{BuildCx, BuildError, Builder, Built, Tool};
use crate::support::platform::Platform;

/// `binpack go`'s request: everything but the platform.
#[derive(Clone, Debug)]
pub struct GoBuilder {
    pub package: String,
    pub flags: Vec<String>,
    pub ldflags: Option<String>,
    pub tzdata: bool,
    /// CGO_ENABLED=1: a dynamic binary on its library closure.
    pub cgo: bool,
}

impl Builder for GoBuilder {
    fn name(&self) -> &'static str {
        "go"
    }

    fn describe(&self) -> String {
        format!("go build {}", self.package)
    }

    fn platforms(&self) -> &'static [&'static str] {
        &[
            "linux/amd64",
            "linux/arm64",
            "linux/386",
            "linux/arm/v7",
            "linux/riscv64",
            "linux/ppc64le",
            "linux/s390x",
        ]
    }

    fn tool(&self) -> Option<Tool> {
        Some(Tool {
            program: "go",
            install: INSTALL,
            // Debian's versioned packages (golang-1.23-go puts go in /usr/lib/go-1.23/bin),
            // Go's own tarball.
            off_path: &["/usr/lib/go-*/bin/go", "/usr/local/go/bin/go"],
        })
    }

    fn build(&self, platform: &Platform, cx: &BuildCx) -> Result<Built, BuildError> {
        let spec = GoBuild {
            package: self.package.clone(),
            platform: platform.clone(),
            flags: self.flags.clone(),
            ldflags: self.ldflags.clone(),
            tzdata: self.tzdata,
            cgo: self.cgo,
        };
        build(&spec, cx.toolchain, cx.progress).map_err(BuildError::new)
    }
}
