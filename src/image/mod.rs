//! The image: `appfiles` and `addfiles` lay out the files binpack writes as layer trees,
//! `layer` writes a tree as a deterministic tar, `compress` and `layers` compress it (and
//! keep known layers), `runconfig` makes the config, this module the manifest and index.
//! Pure Rust over bytes: no program runs here, nothing is pulled or pushed.
//!
//! The OCI image config, manifest and index, serialized with a stable key order.

pub mod addfiles;
pub mod appfiles;
pub mod compress;
pub mod layer;
pub mod layers;
pub mod runconfig;
pub mod strip;

use crate::image::layer::LayerStats;
use crate::image::runconfig::RunConfig;
use crate::registry::reference::Reference;
use crate::support::digest::Digest;
use crate::support::platform::Platform;
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, History, HistoryBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os,
    PlatformBuilder, RootFsBuilder,
};
use serde::Serialize;
use std::collections::HashMap;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub use layer::LAYER_MEDIA_TYPE;

/// A blob as a manifest or an index points at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blob {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Blob {
    pub fn of(media_type: &str, bytes: &[u8]) -> Blob {
        Blob {
            media_type: media_type.into(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        }
    }

    /// The layer binpack wrote (gzip, or zstd when asked).
    pub fn layer(stats: &LayerStats) -> Blob {
        Blob {
            media_type: stats.media_type.clone(),
            digest: stats.digest.clone(),
            size: stats.size,
        }
    }
}

/// One platform's image: its JSON documents and what they point at.
#[derive(Clone, Debug)]
pub struct Image {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub config_blob: Blob,
    pub manifest_blob: Blob,
    /// Bottom first: the base's, then binpack's.
    pub layers: Vec<Blob>,
    pub platform: Platform,
}

/// Images of several platforms under one index.
#[derive(Clone, Debug)]
pub struct Index {
    pub json: Vec<u8>,
    pub blob: Blob,
    pub images: Vec<Image>,
}

/// What the outputs are given: one image, or an index of images.
#[derive(Clone, Debug)]
pub enum Packed {
    Image(Image),
    Index(Index),
}

impl Packed {
    /// The manifest or index a tag points at.
    pub fn top(&self) -> &Blob {
        match self {
            Packed::Image(i) => &i.manifest_blob,
            Packed::Index(x) => &x.blob,
        }
    }

    pub fn top_bytes(&self) -> &[u8] {
        match self {
            Packed::Image(i) => &i.manifest,
            Packed::Index(x) => &x.json,
        }
    }

    pub fn images(&self) -> &[Image] {
        match self {
            Packed::Image(i) => std::slice::from_ref(i),
            Packed::Index(x) => &x.images,
        }
    }

    /// The image an engine that loads one platform gets: the host's, else the first.
    pub fn for_host(&self) -> &Image {
        let images = self.images();
        let host = Platform::host();
        images
            .iter()
            .find(|i| i.platform.os == host.os && i.platform.arch == host.arch)
            .unwrap_or(&images[0])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("building the image JSON: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("an index needs at least one image")]
    EmptyIndex,
    #[error("two images for {0} in one index")]
    DuplicatePlatform(String),
}

/// JSON with object keys sorted at every level: oci-spec keeps labels and annotations in
/// HashMaps, whose iteration order changes from run to run. serde_json's Value map is ordered.
pub fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    let v = serde_json::to_value(value).expect("image documents serialize");
    serde_json::to_vec(&v).expect("a Value serializes")
}

/// The layers an image base contributes, below binpack's own.
#[derive(Clone, Debug, Default)]
pub struct BaseLayers {
    pub layers: Vec<Blob>,
    pub diff_ids: Vec<Digest>,
    /// The base config's history entries, kept as they are.
    pub history: Vec<History>,
}

/// Builds config and manifest for `base` and then `layers` (bottom first) on `platform`.
pub fn build(
    run: &RunConfig,
    platform: &Platform,
    base: &BaseLayers,
    layers: &[LayerStats],
) -> Result<Image, ImageError> {
    let config = canonical_json(&config(run, platform, base, layers)?);
    let config_blob = Blob::of(CONFIG_MEDIA_TYPE, &config);
    let layer_blobs: Vec<Blob> = base
        .layers
        .iter()
        .cloned()
        .chain(layers.iter().map(Blob::layer))
        .collect();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(&config_blob, None, None)?)
        .layers(
            layer_blobs
                .iter()
                .map(|b| descriptor(b, None, None))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .build()?;
    let manifest = canonical_json(&manifest);
    Ok(Image {
        manifest_blob: Blob::of(MANIFEST_MEDIA_TYPE, &manifest),
        config,
        manifest,
        config_blob,
        layers: layer_blobs,
        platform: platform.clone(),
    })
}

fn config(
    run: &RunConfig,
    platform: &Platform,
    base: &BaseLayers,
    layers: &[LayerStats],
) -> Result<oci_spec::image::ImageConfiguration, ImageError> {
    let mut cfg = ConfigBuilder::default()
        .env(run.env.clone())
        .entrypoint(run.entrypoint.clone())
        .user(run.user.clone())
        .working_dir(run.workdir.clone())
        .labels(
            run.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        );
    if !run.cmd.is_empty() {
        cfg = cfg.cmd(run.cmd.clone());
    }
    let mut history = base.history.clone();
    for _ in layers {
        history.push(
            HistoryBuilder::default()
                .created(run.created.clone())
                .created_by("binpack")
                .build()?,
        );
    }
    let diff_ids: Vec<String> = base
        .diff_ids
        .iter()
        .chain(layers.iter().map(|l| &l.diff_id))
        .map(Digest::to_string)
        .collect();
    let mut config = ImageConfigurationBuilder::default()
        .created(run.created.clone())
        .architecture(Arch::from(platform.arch.as_str()))
        .os(Os::from(platform.os.as_str()))
        .config(cfg.build()?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()?,
        )
        .history(history);
    if let Some(v) = &platform.variant {
        config = config.variant(v.clone());
    }
    Ok(config.build()?)
}

/// An index of `images`, one per platform, in the order given.
pub fn index(images: Vec<Image>) -> Result<Index, ImageError> {
    if images.is_empty() {
        return Err(ImageError::EmptyIndex);
    }
    for (i, img) in images.iter().enumerate() {
        if images[..i].iter().any(|o| o.platform == img.platform) {
            return Err(ImageError::DuplicatePlatform(img.platform.to_string()));
        }
    }
    let manifests = images
        .iter()
        .map(|i| descriptor(&i.manifest_blob, Some(&i.platform), None))
        .collect::<Result<Vec<_>, _>>()?;
    let json = canonical_json(
        &ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()?,
    );
    Ok(Index {
        blob: Blob::of(INDEX_MEDIA_TYPE, &json),
        json,
        images,
    })
}

fn descriptor(
    blob: &Blob,
    platform: Option<&Platform>,
    annotations: Option<HashMap<String, String>>,
) -> Result<Descriptor, ImageError> {
    let mut d = DescriptorBuilder::default()
        .media_type(MediaType::from(blob.media_type.as_str()))
        .digest(blob.digest.to_oci())
        .size(blob.size);
    if let Some(p) = platform {
        let mut pb = PlatformBuilder::default()
            .architecture(Arch::from(p.arch.as_str()))
            .os(Os::from(p.os.as_str()));
        if let Some(v) = &p.variant {
            pb = pb.variant(v.clone());
        }
        d = d.platform(pb.build()?);
    }
    if let Some(a) = annotations {
        d = d.annotations(a);
    }
    Ok(d.build()?)
}

/// The OCI layout `index.json`: the image (or the index of images), named both ways engines
/// look for a name (containerd and podman read the qualified name; umoci and skopeo the tag).
pub fn layout_index_json(packed: &Packed, reference: &Reference) -> Result<Vec<u8>, ImageError> {
    let annotations = HashMap::from([
        (
            "io.containerd.image.name".to_string(),
            reference.qualified(),
        ),
        (
            "org.opencontainers.image.ref.name".to_string(),
            reference.tag.clone(),
        ),
    ]);
    let entry = match packed {
        Packed::Image(i) => descriptor(&i.manifest_blob, Some(&i.platform), Some(annotations))?,
        Packed::Index(x) => descriptor(&x.blob, None, Some(annotations))?,
    };
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![entry])
        .build()?;
    Ok(canonical_json(&index))
}

/// The Docker `manifest.json` that `docker load` needs, pointing at the same blobs. Docker
/// 20.10 loads one platform: `image`.
pub fn docker_manifest_json(image: &Image, reference: &Reference) -> Vec<u8> {
    canonical_json(&serde_json::json!([{
        "Config": image.config_blob.digest.blob_rel(),
        "RepoTags": [reference.to_string()],
        "Layers": image.layers.iter().map(|l| l.digest.blob_rel()).collect::<Vec<_>>(),
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunConfig {
        RunConfig {
            entrypoint: vec!["/app/hello".into()],
            cmd: vec!["--port".into(), "80".into()],
            env: vec!["PATH=/bin".into()],
            user: "65532".into(),
            workdir: "/".into(),
            labels: (0..20)
                .map(|i| (format!("label.{i}"), format!("v{i}")))
                .collect(),
            created: "1970-01-01T00:00:00Z".into(),
        }
    }

    fn layer() -> LayerStats {
        LayerStats {
            digest: Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            diff_id: Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap(),
            size: 10,
            uncompressed_size: 20,
            media_type: LAYER_MEDIA_TYPE.into(),
        }
    }

    #[test]
    fn config_and_manifest_are_stable_and_complete() {
        let p = Platform::linux("amd64");
        let a = build(&run(), &p, &BaseLayers::default(), &[layer()]).unwrap();
        // Many labels: a HashMap's order would differ between builds.
        for _ in 0..5 {
            let b = build(&run(), &p, &BaseLayers::default(), &[layer()]).unwrap();
            assert_eq!(a.config, b.config);
            assert_eq!(a.manifest_blob, b.manifest_blob);
        }
        let cfg: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(cfg["architecture"], "amd64");
        assert_eq!(cfg["os"], "linux");
        assert_eq!(cfg["created"], "1970-01-01T00:00:00Z");
        assert_eq!(cfg["config"]["User"], "65532");
        assert_eq!(cfg["config"]["Entrypoint"][0], "/app/hello");
        assert_eq!(cfg["config"]["Cmd"][1], "80");
        assert_eq!(cfg["config"]["Labels"]["label.7"], "v7");
        assert_eq!(cfg["rootfs"]["diff_ids"][0], layer().diff_id.as_str());
        let m: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(m["config"]["digest"], a.config_blob.digest.as_str());
        assert_eq!(m["config"]["size"], a.config.len());
        assert_eq!(m["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["digest"], layer().digest.as_str());
        assert_eq!(a.manifest_blob.digest, Digest::of(&a.manifest));
    }

    #[test]
    fn layout_index_and_docker_manifest_name_the_image() {
        let img = build(
            &run(),
            &Platform::linux("arm64"),
            &BaseLayers::default(),
            &[layer()],
        )
        .unwrap();
        let r = Reference::parse("hello:v1").unwrap();
        let packed = Packed::Image(img.clone());
        let idx: serde_json::Value =
            serde_json::from_slice(&layout_index_json(&packed, &r).unwrap()).unwrap();
        let m = &idx["manifests"][0];
        assert_eq!(m["digest"], img.manifest_blob.digest.as_str());
        assert_eq!(m["platform"]["architecture"], "arm64");
        assert_eq!(
            m["annotations"]["io.containerd.image.name"],
            "docker.io/library/hello:v1"
        );
        assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "v1");
        let dm: serde_json::Value =
            serde_json::from_slice(&docker_manifest_json(&img, &r)).unwrap();
        assert_eq!(dm[0]["RepoTags"][0], "hello:v1");
        assert_eq!(
            dm[0]["Layers"][0],
            format!("blobs/sha256/{}", "a".repeat(64))
        );
    }

    #[test]
    fn an_index_lists_each_platform_once() {
        let mut arm = Platform::linux("arm64");
        arm.variant = Some("v8".into());
        let images: Vec<Image> = [Platform::linux("amd64"), arm]
            .iter()
            .map(|p| build(&run(), p, &BaseLayers::default(), &[layer()]).unwrap())
            .collect();
        let x = index(images.clone()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&x.json).unwrap();
        assert_eq!(v["mediaType"], INDEX_MEDIA_TYPE);
        assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(v["manifests"][1]["platform"]["variant"], "v8");
        assert_eq!(
            v["manifests"][0]["digest"],
            images[0].manifest_blob.digest.as_str()
        );
        assert!(matches!(
            index(vec![images[0].clone(), images[0].clone()]),
            Err(ImageError::DuplicatePlatform(_))
        ));
        assert!(matches!(index(vec![]), Err(ImageError::EmptyIndex)));
    }

    #[test]
    fn an_index_in_the_layout_and_for_docker() {
        let images: Vec<Image> = ["linux/arm64", "linux/amd64", "linux/arm/v6"]
            .iter()
            .map(|p| {
                let p = Platform::parse(p).unwrap();
                build(&run(), &p, &BaseLayers::default(), &[layer()]).unwrap()
            })
            .collect();
        let x = index(images.clone()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&x.json).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        let platforms: Vec<&serde_json::Value> = v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &m["platform"])
            .collect();
        assert_eq!(platforms[0]["architecture"], "arm64");
        assert_eq!(platforms[0]["variant"], "v8");
        assert_eq!(platforms[1]["os"], "linux");
        assert!(platforms[1].get("variant").is_none(), "{}", platforms[1]);
        assert_eq!(platforms[2]["variant"], "v6");
        for m in v["manifests"].as_array().unwrap() {
            assert_eq!(m["mediaType"], MANIFEST_MEDIA_TYPE);
            assert!(m.get("annotations").is_none(), "{m}");
        }
        // Each image's config says its own platform.
        let cfg: serde_json::Value = serde_json::from_slice(&images[0].config).unwrap();
        assert_eq!(
            (&cfg["architecture"], &cfg["variant"]),
            (&"arm64".into(), &"v8".into())
        );
        assert_eq!(x.blob.digest, Digest::of(&x.json));
        assert_eq!(index(images.clone()).unwrap().json, x.json, "stable");

        let r = Reference::parse("multi:1").unwrap();
        let packed = Packed::Index(x.clone());
        let lay: serde_json::Value =
            serde_json::from_slice(&layout_index_json(&packed, &r).unwrap()).unwrap();
        let entry = &lay["manifests"][0];
        assert_eq!(lay["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(entry["mediaType"], INDEX_MEDIA_TYPE);
        assert_eq!(entry["digest"], x.blob.digest.as_str());
        assert!(entry.get("platform").is_none());
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.ref.name"],
            "1"
        );
        // docker load reads one image: the host's.
        let host = packed.for_host();
        assert_eq!(host.platform.arch, Platform::host().arch);
        let dm: serde_json::Value =
            serde_json::from_slice(&docker_manifest_json(host, &r)).unwrap();
        assert_eq!(dm[0]["Config"], host.config_blob.digest.blob_rel());
    }
}
