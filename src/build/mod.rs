//! The build stage: the only one that runs toolchains. Each language is a [`Builder`] (one
//! folder or file here), registered in the CLI; [`build_all`] runs one for every requested
//! platform and hands the [`Artifact`]s, plain values, to `pack`.
//!
//! A builder may use the toolchain selection (`toolchain`), git, and its own tools; of the
//! back half it may only read: an ELF (`elf`), a root (`base::closure`'s resolution, which
//! python uses to keep only the extension modules that load, `base::zoneinfo`) and the files
//! an image carries (`base::rootfs`). It never writes layers or outputs.

pub mod cargo;
pub mod git;
pub mod go;
pub mod node;
pub mod python;
pub mod toolchain;

use crate::support::cleanup::Tracked;
use crate::support::platform::Platform;
use crate::support::progress::Progress;
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use toolchain::Toolchain;

/// Where the program and its files live in every image.
pub const APP_DIR: &str = "/app";

/// A language: turns a project into one [`Built`] per platform. What ko's `build.Interface`
/// is; a new language is a type implementing this and one line in the CLI.
pub trait Builder {
    /// The subcommand, its config table and its toolchain image's key (`go`, `node`).
    fn name(&self) -> &'static str;
    /// What it builds, for the progress line (`go build ./cmd/app`).
    fn describe(&self) -> String {
        format!("{} build", self.name())
    }
    /// The platforms `--platform all` means.
    fn platforms(&self) -> &'static [&'static str];
    /// The tool it runs, when the build may run in a toolchain container; None: on the host
    /// only.
    fn tool(&self) -> Option<Tool> {
        None
    }
    /// Refuses a request before anything is built (a packer that builds for the host only).
    fn check(&self, _platforms: &[Platform]) -> Result<(), BuildError> {
        Ok(())
    }
    /// One build for `platform`.
    fn build(&self, platform: &Platform, cx: &BuildCx) -> Result<Built, BuildError>;
}

/// The program a builder runs, for choosing where it runs and for the error when it is missing.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// Looked up on PATH (`go`, `node`).
    pub program: &'static str,
    /// How to install it, for the error when neither it nor an engine is there.
    pub install: &'static str,
    /// Where it is often installed off PATH (globs), for that error.
    pub off_path: &'static [&'static str],
}

/// What every build gets besides its own request.
pub struct BuildCx<'a> {
    pub toolchain: &'a Toolchain,
    pub progress: &'a dyn Progress,
    /// binpack's cache directory for what a builder remembers between runs (None with
    /// `--no-layer-cache`: everything is made again).
    pub cache: Option<&'a Path>,
    /// The user named the platform; else it is the host's, and a builder may let its
    /// toolchain's default stand (cargo without `--target`).
    pub explicit_platform: bool,
    /// `--root OS/ARCH=DIR`, for a builder that takes files from the root while it builds.
    pub roots: &'a [(Platform, PathBuf)],
}

impl BuildCx<'_> {
    /// The root `--root` names for `platform`.
    pub fn root_of(&self, platform: &Platform) -> Option<&Path> {
        self.roots
            .iter()
            .find(|(p, _)| p == platform)
            .map(|(_, d)| d.as_path())
    }
}

/// A builder's error: its own error type, kept whole for the message.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BuildError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl BuildError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> BuildError {
        BuildError(Box::new(e))
    }

    /// The builder's own error, for tests and callers that decide on it.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }
}

/// Where the programs come from for every platform of one run.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    pub platforms: Vec<Platform>,
    /// `--root OS/ARCH=DIR`: where another platform's shared libraries come from.
    pub roots: Vec<(Platform, PathBuf)>,
    /// The base takes libraries from a root (auto, closure); an image base brings its own.
    pub base_from_root: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "no {platform} libraries for {name}: {} has no {interp}; give --root {platform}=DIR \
         (a root with that platform's libc and libstdc++, e.g. Debian's libc6:{arch} \
         libstdc++6:{arch} after dpkg --add-architecture {arch}) or a --base image of {platform}",
        root.display()
    )]
    NoRoot {
        name: String,
        platform: Platform,
        arch: String,
        root: PathBuf,
        interp: String,
    },
    #[error(transparent)]
    Inspect(#[from] crate::elf::inspect::InspectError),
}

/// Runs `builder` once per platform of `targets`, in order, and gives each artifact the root
/// its libraries come from.
pub fn build_all(
    builder: &dyn Builder,
    targets: &Targets,
    cx: &BuildCx,
) -> Result<Vec<Built>, BuildError> {
    builder.check(&targets.platforms)?;
    let mut built = Vec::new();
    for platform in &targets.platforms {
        cx.progress.stage(&format!(
            "{} ({platform}, {} toolchain)",
            builder.describe(),
            cx.toolchain.describe()
        ));
        let mut b = builder.build(platform, cx)?;
        cx.progress.finish_stage();
        if let Some((_, dir)) = targets.roots.iter().find(|(p, _)| p == platform) {
            b.artifact.root = dir.clone();
        } else if *platform != Platform::host() && targets.base_from_root {
            check_root(&b.artifact, platform)?;
        }
        built.push(b);
    }
    Ok(built)
}

/// Refuses another platform's dynamic program when its root has no loader of that platform:
/// the closure could not be made, and the user has to say where it comes from.
fn check_root(artifact: &Artifact, platform: &Platform) -> Result<(), BuildError> {
    let linkage = crate::elf::inspect::inspect_file(&artifact.executable)
        .map_err(|e| BuildError::new(TargetError::from(e)))?;
    let Some(interp) = linkage.interpreter else {
        return Ok(());
    };
    let root = &artifact.root;
    if root.join(interp.trim_start_matches('/')).exists() {
        return Ok(());
    }
    Err(BuildError::new(TargetError::NoRoot {
        name: artifact.name.clone(),
        platform: platform.clone(),
        arch: platform.arch.clone(),
        root: root.clone(),
        interp,
    }))
}

/// Files that go into one layer: (absolute image path, host path; a directory is copied
/// whole), and the shared objects among them whose libraries the closure must resolve too.
#[derive(Clone, Debug, Default)]
pub struct FileLayer {
    pub files: Vec<(String, PathBuf)>,
    /// Image paths of native modules (node's `.node` addons, CPython's extension modules).
    pub native: Vec<String>,
}

/// Where an artifact was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuiltOn {
    Host,
    /// In a toolchain container: the engine and the image.
    Container {
        engine: String,
        image: String,
    },
}

impl std::fmt::Display for BuiltOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuiltOn::Host => f.write_str("host"),
            BuiltOn::Container { engine, image } => write!(f, "{engine} {image}"),
        }
    }
}

/// One executable ready to be packed: a plain value, with no flags for one language.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The ELF on the host.
    pub executable: PathBuf,
    /// The program's name: the image's default name and the executable's name in the image.
    pub name: String,
    /// Files in the executable's layer (the runtime layer: the same for every app on that
    /// runtime), and the native modules among them.
    pub files: FileLayer,
    /// Layers above it, bottom first (dependencies, then the app's own files).
    pub layers: Vec<FileLayer>,
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
    /// Where it was built.
    pub built_on: Option<BuiltOn>,
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
    Pypi,
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
            files: FileLayer::default(),
            layers: vec![],
            os_files: vec![],
            env: vec![],
            root: root.to_path_buf(),
            provenance: Provenance::default(),
            notes: vec![],
            image_path: None,
            args: vec![],
            workdir: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A builder that builds nothing: it records the platforms it was asked for and answers
    /// with a prebuilt "executable" (as ko's tests inject a fake builder).
    struct Fake {
        asked: RefCell<Vec<String>>,
        host_only: bool,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the fake builds for the host only")]
    struct HostOnly;

    impl Builder for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn platforms(&self) -> &'static [&'static str] {
            &["linux/amd64", "linux/arm64"]
        }
        fn check(&self, platforms: &[Platform]) -> Result<(), BuildError> {
            let foreign = platforms.iter().any(|p| *p != Platform::host());
            match self.host_only && foreign {
                true => Err(BuildError::new(HostOnly)),
                false => Ok(()),
            }
        }
        fn build(&self, platform: &Platform, _: &BuildCx) -> Result<Built, BuildError> {
            self.asked.borrow_mut().push(platform.to_string());
            let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
            Ok(Built::prebuilt(Artifact::prebuilt(&exe, Path::new("/"))))
        }
    }

    fn cx<'a>(toolchain: &'a Toolchain) -> BuildCx<'a> {
        BuildCx {
            toolchain,
            progress: &crate::progress::Silent,
            cache: None,
            explicit_platform: true,
            roots: &[],
        }
    }

    #[test]
    fn each_platform_is_built_once_in_order_with_its_root() {
        let fake = Fake {
            asked: RefCell::new(vec![]),
            host_only: false,
        };
        let arm = Platform::parse("linux/arm64").unwrap();
        let targets = Targets {
            platforms: vec![Platform::parse("linux/amd64").unwrap(), arm.clone()],
            roots: vec![(arm, PathBuf::from("/srv/arm64-root"))],
            base_from_root: true,
        };
        let built = build_all(&fake, &targets, &cx(&Toolchain::Host)).unwrap();
        assert_eq!(*fake.asked.borrow(), ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(built[0].artifact.root, Path::new("/"));
        assert_eq!(built[1].artifact.root, Path::new("/srv/arm64-root"));
    }

    #[test]
    fn a_refused_request_builds_nothing() {
        let fake = Fake {
            asked: RefCell::new(vec![]),
            host_only: true,
        };
        let foreign = match Platform::host().arch.as_str() {
            "arm64" => "linux/amd64",
            _ => "linux/arm64",
        };
        let targets = Targets {
            platforms: vec![Platform::host(), Platform::parse(foreign).unwrap()],
            ..Targets::default()
        };
        let Err(e) = build_all(&fake, &targets, &cx(&Toolchain::Host)) else {
            panic!("a refused request was built");
        };
        assert_eq!(e.to_string(), "the fake builds for the host only");
        assert!(e.downcast_ref::<HostOnly>().is_some());
        assert!(fake.asked.borrow().is_empty());
    }
}
