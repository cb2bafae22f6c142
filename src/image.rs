//! The OCI image config, manifest and index, serialized with a stable key order.

use crate::layer::LayerStats;
use crate::platform::Platform;
use crate::reference::Reference;
use oci_spec::image::{
    Arch, ConfigBuilder, DescriptorBuilder, HistoryBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// How the container runs: everything the config says besides its layers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `K=V`, in order; later entries with the same key replace earlier ones.
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, from SOURCE_DATE_EPOCH or the epoch.
    pub created: String,
}

/// A blob as the manifest and index point at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Blob {
    pub fn of(media_type: &str, bytes: &[u8]) -> Blob {
        Blob {
            media_type: media_type.into(),
            digest: sha256(bytes),
            size: bytes.len() as u64,
        }
    }
}

/// The image's JSON documents and what they point at.
#[derive(Clone, Debug)]
pub struct Image {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub config_blob: Blob,
    pub manifest_blob: Blob,
    pub layers: Vec<Blob>,
    pub platform: Platform,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("building the image JSON: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("invalid --env {0:?}: expected KEY=VALUE")]
    BadEnv(String),
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// JSON with object keys sorted at every level: oci-spec keeps labels and annotations in
/// HashMaps, whose iteration order changes from run to run. serde_json's Value map is ordered.
pub fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    let v = serde_json::to_value(value).expect("image documents serialize");
    serde_json::to_vec(&v).expect("a Value serializes")
}

/// Merges `K=V` lists: a later key replaces an earlier one in place.
pub fn merge_env(base: &[String], extra: &[String]) -> Result<Vec<String>, ImageError> {
    let mut out: Vec<String> = base.to_vec();
    for kv in extra {
        let Some((k, _)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(ImageError::BadEnv(kv.clone()));
        };
        match out
            .iter_mut()
            .find(|e| e.split_once('=').map(|x| x.0) == Some(k))
        {
            Some(slot) => *slot = kv.clone(),
            None => out.push(kv.clone()),
        }
    }
    Ok(out)
}

/// The layers an image base contributes, below binpack's own.
#[derive(Clone, Debug, Default)]
pub struct BaseLayers {
    pub layers: Vec<Blob>,
    pub diff_ids: Vec<String>,
    /// The base config's history entries, kept as they are.
    pub history: Vec<serde_json::Value>,
}

/// Builds config and manifest for `base` and then `layers` (bottom first) on `platform`.
pub fn build(
    run: &RunConfig,
    platform: &Platform,
    base: &BaseLayers,
    layers: &[LayerStats],
) -> Result<Image, ImageError> {
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
    let mut history: Vec<oci_spec::image::History> = base
        .history
        .iter()
        .filter_map(|h| serde_json::from_value(h.clone()).ok())
        .collect();
    for _ in layers {
        history.push(
            HistoryBuilder::default()
                .created(run.created.clone())
                .created_by("binpack")
                .build()?,
        );
    }
    let mut config = ImageConfigurationBuilder::default()
        .created(run.created.clone())
        .architecture(Arch::from(platform.arch.as_str()))
        .os(Os::from(platform.os.as_str()))
        .config(cfg.build()?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(
                    base.diff_ids
                        .iter()
                        .cloned()
                        .chain(layers.iter().map(|l| l.diff_id.clone()))
                        .collect::<Vec<_>>(),
                )
                .build()?,
        )
        .history(history);
    if let Some(v) = &platform.variant {
        config = config.variant(v.clone());
    }
    let config = canonical_json(&config.build()?);
    let config_blob = Blob::of(CONFIG_MEDIA_TYPE, &config);
    let layer_blobs: Vec<Blob> = base
        .layers
        .iter()
        .cloned()
        .chain(layers.iter().map(|l| Blob {
            media_type: LAYER_MEDIA_TYPE.into(),
            digest: l.digest.clone(),
            size: l.size,
        }))
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

fn descriptor(
    blob: &Blob,
    platform: Option<&Platform>,
    annotations: Option<HashMap<String, String>>,
) -> Result<oci_spec::image::Descriptor, ImageError> {
    let mut d = DescriptorBuilder::default()
        .media_type(MediaType::from(blob.media_type.as_str()))
        .digest(
            blob.digest
                .parse::<oci_spec::image::Digest>()
                .expect("digests we computed parse"),
        )
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

/// The OCI layout `index.json`: the manifest, named both ways engines look for a name
/// (containerd and podman read the qualified name; umoci and skopeo the tag).
pub fn index_json(image: &Image, reference: &Reference) -> Result<Vec<u8>, ImageError> {
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
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![descriptor(
            &image.manifest_blob,
            Some(&image.platform),
            Some(annotations),
        )?])
        .build()?;
    Ok(canonical_json(&index))
}

/// The Docker `manifest.json` that `docker load` needs, pointing at the same blobs.
pub fn docker_manifest_json(image: &Image, reference: &Reference) -> Vec<u8> {
    let path = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    canonical_json(&serde_json::json!([{
        "Config": path(&image.config_blob.digest),
        "RepoTags": [reference.to_string()],
        "Layers": image.layers.iter().map(|l| path(&l.digest)).collect::<Vec<_>>(),
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
            digest: format!("sha256:{}", "a".repeat(64)),
            diff_id: format!("sha256:{}", "b".repeat(64)),
            size: 10,
            uncompressed_size: 20,
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
        assert_eq!(cfg["rootfs"]["diff_ids"][0], layer().diff_id);
        let m: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(m["config"]["digest"], a.config_blob.digest);
        assert_eq!(m["config"]["size"], a.config.len());
        assert_eq!(m["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["digest"], layer().digest);
        assert_eq!(a.manifest_blob.digest, sha256(&a.manifest));
    }

    #[test]
    fn index_and_docker_manifest_name_the_image() {
        let img = build(
            &run(),
            &Platform::linux("arm64"),
            &BaseLayers::default(),
            &[layer()],
        )
        .unwrap();
        let r = Reference::parse("hello:v1").unwrap();
        let idx: serde_json::Value =
            serde_json::from_slice(&index_json(&img, &r).unwrap()).unwrap();
        let m = &idx["manifests"][0];
        assert_eq!(m["digest"], img.manifest_blob.digest);
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
    fn env_merge() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let got = merge_env(&base, &["A=2".into(), "B=x=y".into()]).unwrap();
        assert_eq!(got, ["PATH=/bin", "A=2", "B=x=y"]);
        assert!(merge_env(&base, &["novalue".into()]).is_err());
        assert!(merge_env(&base, &["=v".into()]).is_err());
    }
}
