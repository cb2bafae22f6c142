//! Node as a [`Builder`]: the same bundle or traced files for every platform, on that
//! platform's official node.

use super::{build, Layout, NodeBuild, Packer, INSTALL};
use crate::build::{BuildCx, BuildError, Builder, Built, Tool};
use crate::support::platform::Platform;
use std::path::PathBuf;

/// `binpack node`'s request: everything but the platform.
#[derive(Clone, Debug)]
pub struct NodeBuilder {
    pub entry: PathBuf,
    pub node_version: Option<String>,
    pub packer: Packer,
    pub layout: Layout,
    pub assets: Vec<PathBuf>,
}

/// `--packer pkg` on another platform than the host's.
#[derive(Debug, thiserror::Error)]
#[error("--packer pkg builds for the host's platform only; the default packer (sea) builds for any --platform")]
pub struct PkgHostOnly;

impl Builder for NodeBuilder {
    fn name(&self) -> &'static str {
        "node"
    }

    fn describe(&self) -> String {
        format!("node build {}", self.entry.display())
    }

    fn platforms(&self) -> &'static [&'static str] {
        &["linux/amd64", "linux/arm64"]
    }

    fn tool(&self) -> Option<Tool> {
        Some(Tool {
            program: "node",
            install: INSTALL,
            off_path: &[],
        })
    }

    fn check(&self, platforms: &[Platform]) -> Result<(), BuildError> {
        let foreign = platforms.iter().any(|p| *p != Platform::host());
        match self.packer == Packer::Pkg && foreign {
            true => Err(BuildError::new(PkgHostOnly)),
            false => Ok(()),
        }
    }

    fn build(&self, platform: &Platform, cx: &BuildCx) -> Result<Built, BuildError> {
        let spec = NodeBuild {
            entry: self.entry.clone(),
            node_version: self.node_version.clone(),
            packer: self.packer,
            assets: self.assets.clone(),
            platform: Some(platform.clone()),
            layout: self.layout,
            cache: cx.cache.map(Into::into),
        };
        build(&spec, cx.toolchain, cx.progress).map_err(BuildError::new)
    }
}
