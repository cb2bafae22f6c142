//! The build stage: the only one that runs toolchains. It turns a project into an
//! [`Artifact`]: one ELF on the host and what is known of how it was made.

pub mod cargo;
pub mod git;
pub mod go;
pub mod node;
pub mod toolchain;

use crate::cleanup::Tracked;
use crate::platform::Platform;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// One executable ready to be packed: a plain value, with no flags for one language.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The ELF on the host.
    pub executable: PathBuf,
    /// The program's name: the image's default name and the executable's name in the image.
    pub name: String,
    /// Files shipped beside the executable: (path relative to the app directory, host path).
    pub files: Vec<(String, PathBuf)>,
    /// Files the runtime needs from the operating system (Node resolves `localhost` through
    /// /etc/hosts): (absolute image path, bytes). An image base brings its own.
    pub os_files: Vec<(String, Vec<u8>)>,
    /// Environment the program needs (`K=V`), under the user's `--env`.
    pub env: Vec<String>,
    /// The filesystem its shared libraries come from, for the closure base.
    pub root: PathBuf,
    /// What is known of how it was built.
    pub provenance: Provenance,
    /// Things the user should know that did not stop the build.
    pub notes: Vec<String>,
    /// Where the executable goes in the image; None is `/app/<name>`. A runtime shared by
    /// many apps (node for a files layout) sits at a fixed path so its layer is the same.
    pub image_path: Option<String>,
    /// Entrypoint arguments after the executable (`/app/server.js` for `node`).
    pub args: Vec<String>,
    /// The working directory the program expects; None keeps the base's, else `/`.
    pub workdir: Option<String>,
    /// The app's own files, in a layer above the runtime's: (path relative to the app
    /// directory, host path). Empty: everything goes in one layer.
    pub app_layer: Vec<(String, PathBuf)>,
    /// Variables that must name the CA bundle as well as SSL_CERT_FILE (Node ignores it and
    /// reads NODE_EXTRA_CA_CERTS).
    pub ca_env: Vec<String>,
    /// It carries its own time zone database (Go's embedded one, node's ICU) or wants none
    /// (`--no-tzdata`): the root's /usr/share/zoneinfo is not added for it.
    pub own_tzdata: bool,
}

/// How an artifact was made, for labels and the summary.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// Where the source came from, for the image labels.
    pub vcs: git::Vcs,
    /// The language runtime inside the executable (e.g. `node v20.20.2 (host)`).
    pub runtime: Option<String>,
    /// Where it was built (`host`, `docker golang:1.23-bookworm@sha256:...`).
    pub toolchain: Option<String>,
    /// The platform the build targeted, when it said (it carries what the ELF header cannot,
    /// such as arm's variant).
    pub platform: Option<Platform>,
    /// The packages that went into the executable or its files (npm packages bundled or
    /// shipped, the node runtime, Go modules, crates), for the SBOM. Sorted, no duplicates.
    pub components: Vec<Component>,
    /// How the program is laid out in the image (`sea`, `files`), when the builder chose.
    pub layout: Option<String>,
    /// Why that layout, in one sentence.
    pub layout_reason: Option<String>,
}

/// A software package inside the artifact, as an SBOM names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Component {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    /// The license as the package declares it (an SPDX expression when it is one).
    pub license: Option<String>,
}

/// Where a component comes from: decides its package URL (`pkg:npm/...`, `pkg:golang/...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    Npm,
    Golang,
    Cargo,
    /// A language runtime shipped in the image (the node binary): `pkg:generic/node@v20.20.2`.
    Runtime,
}

/// A builder's result: the artifact, and the temporary directory it lives in, which must
/// outlive the packing.
pub struct Built {
    pub artifact: Artifact,
    _workdir: Option<Tracked<TempDir>>,
}

impl Artifact {
    /// An ELF someone else built (`binpack bin`), resolved against `root`.
    pub fn prebuilt(path: &Path, root: &Path) -> Artifact {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app".into());
        Artifact {
            executable: path.to_path_buf(),
            name,
            files: vec![],
            os_files: vec![],
            env: vec![],
            root: root.to_path_buf(),
            provenance: Provenance::default(),
            notes: vec![],
            image_path: None,
            args: vec![],
            workdir: None,
            app_layer: vec![],
            ca_env: vec![],
            own_tzdata: false,
        }
    }
}

impl Built {
    /// An artifact built into `workdir`, which lives as long as the result.
    pub fn new(executable: PathBuf, name: String, workdir: Tracked<TempDir>) -> Built {
        let mut artifact = Artifact::prebuilt(&executable, Path::new("/"));
        artifact.name = name;
        Built {
            artifact,
            _workdir: Some(workdir),
        }
    }

    /// An artifact that needs no temporary directory.
    pub fn prebuilt(artifact: Artifact) -> Built {
        Built {
            artifact,
            _workdir: None,
        }
    }
}
