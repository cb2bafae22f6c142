//! The summary stage: what was built and where it went, for the CLI's lines and `--json`.

use crate::base::choose::Base;
use crate::base::closure::Resolved;
use crate::build::Artifact;
use crate::elf::inspect::Linkage;
use crate::emit::Outcome;
use crate::image::Packed;
use crate::pack::PlatformImage;
use crate::registry::push::PushStats;
use crate::registry::reference::Reference;
use crate::support::digest::Digest;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize)]
pub struct Size {
    pub compressed: u64,
    pub uncompressed: u64,
}

/// What was produced.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub reference: String,
    /// What the name points at: the manifest, or the index.
    pub digest: Digest,
    /// The platform of the image described below (the host's, in an index).
    pub platform: String,
    /// Every platform the reference holds (one, unless it is an index).
    pub platforms: Vec<String>,
    pub size: Size,
    /// The image of the host's platform (the only one, unless this is an index).
    #[serde(flatten)]
    pub image: ImageSummary,
    /// Things worth knowing that did not stop the build.
    pub notes: Vec<String>,
    #[serde(flatten)]
    pub outputs: OutputsSummary,
    /// Each platform's manifest, when the result is an index.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<PlatformManifest>,
}

/// One image: its base, its program, and how it was built.
#[derive(Clone, Debug, Serialize)]
pub struct ImageSummary {
    pub base: Base,
    pub base_reason: String,
    /// The digest of the base image's manifest, when the base is an image.
    pub base_manifest: Option<Digest>,
    /// The shared libraries carried by a closure base.
    pub libraries: Vec<Resolved>,
    pub entrypoint: String,
    pub binary_size: u64,
    /// The language runtime in the executable (node), when there is one.
    pub runtime: Option<String>,
    /// Where binpack built it, when it did.
    pub toolchain: Option<String>,
    pub linkage: Linkage,
    /// How a node app is laid out (`sea`, `files`), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout_reason: Option<String>,
    /// Where the image's SBOM is in it (none with `--no-sbom`).
    pub sbom: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlatformManifest {
    pub platform: String,
    pub digest: Digest,
    /// This platform's image alone (blobs shared with another platform counted in both).
    pub size: Size,
}

/// Where the image went.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OutputsSummary {
    /// The archive, when one was written.
    pub output: Option<PathBuf>,
    pub oci_layout: Option<PathBuf>,
    /// `registry/repo:tag@digest` of every reference pushed, and what the push did.
    pub pushed: Vec<String>,
    pub push: Option<PushStats>,
    /// The engine and the name it gave the image, when loaded into a local engine.
    pub loaded: Option<Loaded>,
}

/// An image loaded into a local engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Loaded {
    /// `docker` or `podman`.
    pub engine: String,
    /// What the engine said it loaded.
    pub image: String,
}

impl OutputsSummary {
    pub fn of(outcomes: &[Outcome]) -> OutputsSummary {
        let mut s = OutputsSummary::default();
        for o in outcomes {
            match o {
                Outcome::Archive(p) => s.output = Some(p.clone()),
                Outcome::Layout(p) => s.oci_layout = Some(p.clone()),
                Outcome::Loaded { engine, image } => {
                    s.loaded = Some(Loaded {
                        engine: engine.clone(),
                        image: image.clone(),
                    })
                }
                Outcome::Pushed { references, stats } => {
                    s.pushed = references.clone();
                    s.push = Some(stats.clone());
                }
                Outcome::Sbom(_) => {}
            }
        }
        s
    }
}

impl ImageSummary {
    fn of(artifact: &Artifact, built: &PlatformImage) -> ImageSummary {
        let choice = &built.base.choice;
        ImageSummary {
            base: choice.base.clone(),
            base_reason: choice.reason.clone(),
            base_manifest: built.base.image().map(|b| b.manifest_digest.clone()),
            libraries: built.base.libraries().to_vec(),
            entrypoint: built.entrypoint.clone(),
            binary_size: std::fs::metadata(&artifact.executable)
                .map(|m| m.len())
                .unwrap_or(0),
            runtime: artifact.provenance.runtime.clone(),
            toolchain: (artifact.provenance.built_on.as_ref()).map(ToString::to_string),
            linkage: built.plan.linkage.clone(),
            layout: artifact.provenance.layout.clone(),
            layout_reason: artifact.provenance.layout_reason.clone(),
            sbom: built
                .sbom
                .as_ref()
                .map(|_| crate::sbom::path_in_image(&artifact.name)),
        }
    }
}

/// Compressed: every blob as stored (base layers, binpack's, the JSON documents);
/// uncompressed: the layers' tars and the documents.
fn size_of(built: &PlatformImage) -> Size {
    let img = &built.image;
    let docs = (img.config.len() + img.manifest.len()) as u64;
    let (base_c, base_u) = built
        .base
        .image()
        .map(|b| (b.layers.iter().map(|l| l.size).sum(), b.uncompressed_size))
        .unwrap_or((0, 0));
    Size {
        compressed: base_c + built.layers.iter().map(|l| l.size).sum::<u64>() + docs,
        uncompressed: base_u
            + built
                .layers
                .iter()
                .map(|l| l.uncompressed_size)
                .sum::<u64>()
            + docs,
    }
}

impl Summary {
    /// `artifacts[i]` was built into `built[i]`; `packed` holds their images.
    pub fn new(
        reference: &Reference,
        packed: &Packed,
        artifacts: &[&Artifact],
        built: &[PlatformImage],
        outcomes: &[Outcome],
    ) -> Summary {
        let host = packed.for_host();
        let at = built
            .iter()
            .position(|b| b.image.manifest_blob == host.manifest_blob)
            .unwrap_or(0);
        let mut size = Size {
            compressed: 0,
            uncompressed: 0,
        };
        for b in built {
            let s = size_of(b);
            size.compressed += s.compressed;
            size.uncompressed += s.uncompressed;
        }
        let mut notes: Vec<String> = Vec::new();
        for (a, b) in artifacts.iter().zip(built) {
            let dirty = a.provenance.vcs.dirty_warning();
            for n in dirty.iter().chain(&a.notes).chain(&b.base.notes) {
                if !notes.contains(n) {
                    notes.push(n.clone());
                }
            }
        }
        let manifests = match packed {
            Packed::Image(_) => vec![],
            Packed::Index(x) => {
                size.compressed += x.blob.size;
                size.uncompressed += x.blob.size;
                x.images
                    .iter()
                    .map(|i| PlatformManifest {
                        platform: i.platform.to_string(),
                        digest: i.manifest_blob.digest.clone(),
                        size: built
                            .iter()
                            .find(|b| b.image.manifest_blob == i.manifest_blob)
                            .map(size_of)
                            .unwrap_or(Size {
                                compressed: 0,
                                uncompressed: 0,
                            }),
                    })
                    .collect()
            }
        };
        let platforms: Vec<String> = packed
            .images()
            .iter()
            .map(|i| i.platform.to_string())
            .collect();
        Summary {
            reference: reference.to_string(),
            digest: packed.top().digest.clone(),
            platform: built[at].plan.platform.to_string(),
            platforms,
            size,
            image: ImageSummary::of(artifacts[at], &built[at]),
            notes,
            outputs: OutputsSummary::of(outcomes),
            manifests,
        }
    }
}
