//! The back half of the pipeline, shared by every command: inspect -> choose -> layer ->
//! image -> emit, from an [`Artifact`] to the requested sinks.

use crate::build::Artifact;
use crate::choose::{self, Base, BaseRequest, Choice, ChooseError};
use crate::closure::{self, ClosureError, Origin, Resolved};
use crate::emit::{self, EmitError, Staging};
use crate::engine::{self, Engine, EngineError};
use crate::image::{self, BaseLayers, ImageError, RunConfig};
use crate::inspect::{self, InspectError, Linkage};
use crate::layer::{self, Content, LayerError, Tree};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::pull::{self, PullError, PulledBase};
use crate::registry::push::{self, PushBlob, PushStats};
use crate::registry::{Client, RegistryError, RegistryOptions};
use crate::rootfs;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

/// Where the executable lives in every image.
pub const APP_DIR: &str = "/app";

/// Everything the user can say about the image (flags of `go`, `bin`, ...).
#[derive(Clone, Debug, Default)]
pub struct PackOptions {
    pub base: BaseRequest,
    /// Defaults to `<name>:latest`.
    pub reference: Option<Reference>,
    /// Defaults to the unprivileged 65532.
    pub user: Option<String>,
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Default arguments (the config's Cmd).
    pub cmd: Vec<String>,
    pub archive: Option<PathBuf>,
    pub oci_layout: Option<PathBuf>,
    /// Timestamps in the tar and the config; None is the Unix epoch.
    pub source_date_epoch: Option<u64>,
    /// A CA bundle to carry instead of the pinned one.
    pub ca_bundle: Option<PathBuf>,
    /// Push the image here.
    pub push: Option<Reference>,
    pub registry: RegistryOptions,
    /// Load into the local engine: Some(None) picks docker, else podman.
    pub load: Option<Option<Engine>>,
    /// The alpine image for musl binaries (default: pinned in runtimes/bases.json).
    pub alpine: Option<Reference>,
}

pub use crate::progress::{Progress, Silent};

#[derive(Clone, Debug, Serialize)]
pub struct Size {
    pub compressed: u64,
    pub uncompressed: u64,
}

/// What was produced, for the summary and `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    pub base: Base,
    pub base_reason: String,
    pub platform: String,
    pub size: Size,
    /// The archive, when one was written.
    pub output: Option<PathBuf>,
    pub oci_layout: Option<PathBuf>,
    pub entrypoint: String,
    pub binary_size: u64,
    /// The shared libraries carried by a closure base.
    pub libraries: Vec<Resolved>,
    /// The language runtime in the executable (node), when there is one.
    pub runtime: Option<String>,
    /// Where binpack built it, when it did.
    pub toolchain: Option<String>,
    /// Things worth knowing that did not stop the build.
    pub notes: Vec<String>,
    /// The digest of the base image's manifest, when the base is an image.
    pub base_manifest: Option<String>,
    /// `registry/repo:tag@digest` when pushed, and what the push did.
    pub pushed: Option<String>,
    pub push: Option<PushStats>,
    /// `engine: name` when loaded into a local engine.
    pub loaded: Option<String>,
    pub linkage: Linkage,
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Inspect(#[from] InspectError),
    #[error(transparent)]
    Choose(#[from] ChooseError),
    #[error(transparent)]
    Closure(#[from] ClosureError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Emit(#[from] EmitError),
    #[error("the CA bundle {}: {source}", path.display())]
    CaBundle {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("nothing to write: give -o FILE, --oci-layout DIR, --push REF or --load")]
    NoSink,
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Pull(#[from] PullError),
}

/// RFC 3339 for a Unix time.
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// Packs `artifact` into an image and writes it to the sinks in `opts`.
pub fn pack(
    artifact: &Artifact,
    opts: &PackOptions,
    progress: &dyn Progress,
) -> Result<Summary, PackError> {
    if opts.archive.is_none()
        && opts.oci_layout.is_none()
        && opts.push.is_none()
        && opts.load.is_none()
    {
        return Err(PackError::NoSink);
    }
    progress.stage(&format!("inspecting {}", artifact.executable.display()));
    let linkage = inspect::inspect_file(&artifact.executable)?;
    let alpine = opts.alpine.clone().unwrap_or_else(choose::default_alpine);
    let mut choice = choose::choose(&linkage, &opts.base, &alpine)?;
    let entrypoint = format!("{APP_DIR}/{}", artifact.name);
    let mut notes = artifact.notes.clone();

    let mut base_image: Option<PulledBase> = None;
    if let Base::Image(r) = &choice.base {
        progress.stage(&format!("pulling the base {r}"));
        match pull::pull(r, &linkage.platform, &opts.registry) {
            Ok(b) => base_image = Some(b),
            Err(e) => match choice.fallback.take() {
                Some(reason) => {
                    notes.push(format!(
                        "the base {r} could not be had ({e}); using the closure instead"
                    ));
                    choice = Choice {
                        base: Base::Closure,
                        reason,
                        fallback: None,
                    };
                }
                None => return Err(e.into()),
            },
        }
    }

    let mut tree = Tree::new();
    let libraries = match choice.base {
        Base::Scratch | Base::Image(_) => vec![],
        Base::Closure => {
            progress.stage(&format!(
                "resolving shared libraries in {}",
                artifact.root.display()
            ));
            let in_root = Origin::root_path_of(&artifact.root, &artifact.executable);
            let origin = Origin {
                image_path: &entrypoint,
                root_path: in_root.as_deref(),
            };
            let libs = closure::resolve(&artifact.root, &linkage, &origin)?;
            closure::add_to_tree(&artifact.root, &libs, &mut tree)?;
            libs
        }
    };
    let ca = match &opts.ca_bundle {
        Some(p) => {
            std::fs::metadata(p).map_err(|source| PackError::CaBundle {
                path: p.clone(),
                source,
            })?;
            Content::Host(p.clone())
        }
        None => Content::Bytes(rootfs::DEFAULT_CA_BUNDLE.to_vec()),
    };
    // An image base brings its own users, certificates and hosts file.
    if base_image.is_none() {
        rootfs::add_essentials(&mut tree, ca)?;
        for (path, bytes) in &artifact.os_files {
            tree.file(path, Content::Bytes(bytes.clone()), 0o644)?;
        }
    }
    for (rel, host) in &artifact.files {
        tree.copy_from_host(&format!("{APP_DIR}/{rel}"), host)?;
    }
    tree.file(
        &entrypoint,
        Content::Host(artifact.executable.clone()),
        0o755,
    )?;

    let mtime = opts.source_date_epoch.unwrap_or(0);
    let staging = Staging::new()?;
    let total = layer::content_size(&tree);
    progress.stage("writing the layer (tar + gzip)");
    let stats = staging.blob_with(
        |w| {
            layer::write_layer(&tree, mtime, w, &mut |done| progress.bytes(done, total))
                .map_err(PackError::from)
        },
        |s| s.digest.as_str(),
    )?;
    progress.finish_stage();

    let created = rfc3339(mtime);
    let mut labels = BTreeMap::from([
        (
            "org.opencontainers.image.title".to_string(),
            artifact.name.clone(),
        ),
        (
            "org.opencontainers.image.created".to_string(),
            created.clone(),
        ),
    ]);
    if let Some(s) = &artifact.provenance.vcs.source {
        labels.insert("org.opencontainers.image.source".into(), s.clone());
    }
    if let Some(r) = &artifact.provenance.vcs.revision {
        labels.insert("org.opencontainers.image.revision".into(), r.clone());
    }
    labels.extend(opts.labels.clone());
    let mut run = RunConfig {
        entrypoint: vec![entrypoint.clone()],
        cmd: opts.cmd.clone(),
        env: image::merge_env(&rootfs::default_env(), &opts.env)?,
        user: opts
            .user
            .clone()
            .unwrap_or_else(|| rootfs::NONROOT.to_string()),
        workdir: "/".into(),
        labels,
        created,
    };
    let mut base_layers = BaseLayers::default();
    if let Some(b) = &base_image {
        // The base's env, user, working directory and labels stay unless overridden.
        let c = &b.config["config"];
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str().map(String::from))
                .collect()
        };
        run.env = image::merge_env(&strings(&c["Env"]), &opts.env)?;
        run.user = opts
            .user
            .clone()
            .unwrap_or_else(|| c["User"].as_str().unwrap_or("").to_string());
        run.workdir = c["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string();
        let mut labels: BTreeMap<String, String> = c["Labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect();
        labels.extend(std::mem::take(&mut run.labels));
        run.labels = labels;
        base_layers = BaseLayers {
            layers: b.layers.clone(),
            diff_ids: strings(&b.config["rootfs"]["diff_ids"]),
            history: b.config["history"].as_array().cloned().unwrap_or_default(),
        };
        for l in &b.layers {
            staging.link_blob(&l.digest, &PulledBase::blob_path(&l.digest))?;
        }
    }
    let platform: &Platform = &linkage.platform;
    let img = image::build(&run, platform, &base_layers, std::slice::from_ref(&stats))?;
    staging.blob_bytes(&img.config)?;
    staging.blob_bytes(&img.manifest)?;

    let reference = opts
        .reference
        .clone()
        .or_else(|| opts.push.clone())
        .unwrap_or_else(|| Reference::for_program(&artifact.name));
    if let Some(dest) = &opts.archive {
        progress.stage(&format!("writing {}", dest.display()));
        emit::write_archive(&staging, &img, &reference, dest, mtime)?;
    }
    if let Some(dest) = &opts.oci_layout {
        progress.stage(&format!("writing the OCI layout {}", dest.display()));
        emit::write_oci_layout(&staging, &img, &reference, dest)?;
    }
    let mut loaded = None;
    if let Some(engine) = opts.load {
        let archive = match &opts.archive {
            Some(a) => a.clone(),
            None => {
                let a = staging.path().join("load.tar");
                emit::write_archive(&staging, &img, &reference, &a, mtime)?;
                a
            }
        };
        progress.stage("loading the image into the local engine");
        let (engine, name) = engine::load(&archive, engine)?;
        loaded = Some(format!("{engine}: {name}"));
    }
    let mut pushed = None;
    let mut push_stats = None;
    if let Some(target) = &opts.push {
        progress.stage(&format!("pushing {target}"));
        let client = Client::new(target, &opts.registry)?;
        let blobs: Vec<PushBlob> = img
            .layers
            .iter()
            .chain(std::iter::once(&img.config_blob))
            .map(|b| PushBlob {
                digest: &b.digest,
                size: b.size,
                path: staging.blob_path(&b.digest),
            })
            .collect();
        let stats = push::push(
            &client,
            &blobs,
            &img.manifest,
            image::MANIFEST_MEDIA_TYPE,
            &target.tag,
        )?;
        pushed = Some(format!("{target}@{}", img.manifest_blob.digest));
        push_stats = Some(stats);
    }
    progress.finish_stage();

    let docs = (img.config.len() + img.manifest.len()) as u64;
    let base_compressed: u64 = base_image
        .as_ref()
        .map(|b| b.layers.iter().map(|l| l.size).sum())
        .unwrap_or(0);
    let base_uncompressed = base_image
        .as_ref()
        .map(|b| b.uncompressed_size)
        .unwrap_or(0);
    Ok(Summary {
        reference: reference.to_string(),
        digest: img.manifest_blob.digest.clone(),
        base: choice.base,
        base_reason: choice.reason,
        platform: platform.to_string(),
        size: Size {
            compressed: base_compressed + stats.size + docs,
            uncompressed: base_uncompressed + stats.uncompressed_size + docs,
        },
        output: opts.archive.clone(),
        oci_layout: opts.oci_layout.clone(),
        entrypoint,
        binary_size: std::fs::metadata(&artifact.executable)
            .map(|m| m.len())
            .unwrap_or(0),
        libraries,
        runtime: artifact.provenance.runtime.clone(),
        toolchain: artifact.provenance.toolchain.clone(),
        notes,
        base_manifest: base_image.map(|b| b.manifest_digest),
        pushed,
        push: push_stats,
        loaded,
        linkage,
    })
}
