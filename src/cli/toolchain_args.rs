//! The toolchain flags shared by the commands that build (`go`, `node`, `python`).

use binpack::build::toolchain::{Kind, Request};

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Toolchain")]
pub struct ToolchainArgs {
    /// Where the build runs: auto (the tool on PATH, else docker, else podman), host, or a
    /// toolchain container run by docker or podman (project mounted read-only, caches in
    /// named volumes, output owned by you)
    #[arg(long, value_enum, value_name = "WHERE", default_value_t = Kind::Auto)]
    toolchain: Kind,

    /// The toolchain container's image [default: pinned by digest in binpack's runtimes]
    #[arg(long, value_name = "REF")]
    toolchain_image: Option<String>,

    /// The toolchain container's network, e.g. none for a hermetic build [default: the
    /// engine's]
    #[arg(long, value_name = "MODE")]
    network: Option<String>,
}

impl ToolchainArgs {
    pub fn request(&self) -> Request {
        Request {
            kind: self.toolchain,
            image: self.toolchain_image.clone(),
            network: self.network.clone(),
        }
    }
}
