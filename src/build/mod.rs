//! The build stage: the only one that runs foreign programs. It turns a project into an
//! [`Artifact`]: one ELF on the host and what is known of how it was made.

pub mod cargo;
pub mod git;
pub mod go;
pub mod node;
pub mod toolchain;

use crate::cleanup::Tracked;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// One executable ready to be packed.
pub struct Artifact {
    /// The ELF on the host.
    pub path: PathBuf,
    /// The program's name: the image's default name and the executable's name in the image.
    pub name: String,
    /// The filesystem its shared libraries come from, for the closure base.
    pub root: PathBuf,
    /// Where the source came from, for the image labels.
    pub vcs: git::Vcs,
    /// The language runtime inside the executable, for the summary (e.g. `node v20.20.2`).
    pub runtime: Option<String>,
    /// Where it was built (`host`, `docker golang:1.23-bookworm@sha256:...`), for the summary.
    pub toolchain: Option<String>,
    /// The runtime resolves names through /etc/hosts (Node does, for `localhost`).
    pub needs_hosts: bool,
    /// Files shipped beside the executable: (path relative to the app directory, host path).
    pub assets: Vec<(String, PathBuf)>,
    /// Things the user should know that did not stop the build.
    pub notes: Vec<String>,
    /// Keeps a build's output directory alive as long as the artifact.
    _workdir: Option<Tracked<TempDir>>,
}

impl Artifact {
    /// An ELF someone else built (`binpack bin`), resolved against the host's root.
    pub fn prebuilt(path: &Path) -> Artifact {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app".into());
        Artifact {
            path: path.to_path_buf(),
            name,
            root: PathBuf::from("/"),
            vcs: git::Vcs::default(),
            runtime: None,
            toolchain: None,
            needs_hosts: false,
            assets: vec![],
            notes: vec![],
            _workdir: None,
        }
    }

    /// An artifact built into `workdir`, which lives as long as the artifact.
    pub fn built(path: PathBuf, name: String, workdir: Tracked<TempDir>) -> Artifact {
        Artifact {
            path,
            name,
            _workdir: Some(workdir),
            ..Artifact::prebuilt(Path::new(""))
        }
    }
}
