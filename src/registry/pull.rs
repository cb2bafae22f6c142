//! Pulling a base image: manifest or index -> the platform's manifest -> config + layers, each
//! verified against its digest and kept in the content-addressed cache. A base pinned by
//! digest is served from the cache without the network once it has been pulled.

use super::push::records;
use super::{Body, Client, RegistryError, RegistryOptions};
use crate::cache;
use crate::image::{Blob, LAYER_MEDIA_TYPE};
use crate::platform::Platform;
use crate::reference::Reference;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::PathBuf;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A base image, its blobs in the cache.
#[derive(Clone, Debug)]
pub struct PulledBase {
    /// The reference as given, and the digest of the platform's manifest.
    pub reference: String,
    pub manifest_digest: String,
    /// Layers bottom first, with OCI media types.
    pub layers: Vec<Blob>,
    /// The base's config (env, user, working dir, history, rootfs).
    pub config: serde_json::Value,
    /// The layers' size once decompressed (gzip layers; others count as they are).
    pub uncompressed_size: u64,
}

impl PulledBase {
    pub fn blob_path(digest: &str) -> PathBuf {
        blob_path(digest)
    }
}

fn blob_path(digest: &str) -> PathBuf {
    cache::dir()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("base {reference}: {why}")]
    Bad { reference: String, why: String },
    #[error("base {reference} is {base}, but the binary is {binary}")]
    PlatformMismatch {
        reference: String,
        base: String,
        binary: String,
    },
    #[error("base {reference} has no image for {platform} (it has: {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Pulls `reference` for `platform`.
pub fn pull(
    reference: &Reference,
    platform: &Platform,
    opts: &RegistryOptions,
) -> Result<PulledBase, PullError> {
    let name = reference.to_string();
    let bad = |why: String| PullError::Bad {
        reference: name.clone(),
        why,
    };
    let mut connect = Lazy {
        reference,
        opts,
        client: None,
    };

    let top_ref = reference
        .digest
        .clone()
        .unwrap_or_else(|| reference.tag.clone());
    let top = manifest(&mut connect, &top_ref, reference.digest.as_deref())?;
    let top_json: serde_json::Value =
        serde_json::from_slice(&top.1).map_err(|e| bad(format!("manifest: {e}")))?;
    let (manifest_digest, manifest_json) = if top_json["manifests"].is_array() {
        let entries = top_json["manifests"].as_array().expect("checked");
        let pick = entries.iter().find(|m| {
            let p = &m["platform"];
            p["os"] == platform.os.as_str()
                && p["architecture"] == platform.arch.as_str()
                && platform
                    .variant
                    .as_ref()
                    .is_none_or(|v| p["variant"].as_str().is_none_or(|pv| pv == v))
        });
        let Some(pick) = pick else {
            let available: Vec<String> = entries
                .iter()
                .map(|m| {
                    format!(
                        "{}/{}",
                        m["platform"]["os"].as_str().unwrap_or("?"),
                        m["platform"]["architecture"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            return Err(PullError::NoPlatform {
                reference: name,
                platform: platform.to_string(),
                available: available.join(", "),
            });
        };
        let digest = pick["digest"]
            .as_str()
            .ok_or_else(|| bad("index entry without a digest".into()))?
            .to_string();
        let (d, bytes) = manifest(&mut connect, &digest, Some(&digest))?;
        let json = serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest: {e}")))?;
        (d, json)
    } else {
        (top.0, top_json)
    };

    let config_digest = manifest_json["config"]["digest"]
        .as_str()
        .ok_or_else(|| bad("manifest without a config".into()))?
        .to_string();
    let config_path = blob(&mut connect, &config_digest)?;
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(&config_path)?)
        .map_err(|e| bad(format!("config: {e}")))?;
    let base_platform = format!(
        "{}/{}",
        config["os"].as_str().unwrap_or("?"),
        config["architecture"].as_str().unwrap_or("?")
    );
    if base_platform != format!("{}/{}", platform.os, platform.arch) {
        return Err(PullError::PlatformMismatch {
            reference: name,
            base: base_platform,
            binary: platform.to_string(),
        });
    }
    let mut layers = Vec::new();
    let mut uncompressed_size = 0;
    for l in manifest_json["layers"].as_array().into_iter().flatten() {
        let digest = l["digest"]
            .as_str()
            .ok_or_else(|| bad("layer without a digest".into()))?
            .to_string();
        let media = l["mediaType"].as_str().unwrap_or(LAYER_MEDIA_TYPE);
        // Docker's gzip layer type names the same bytes as OCI's.
        let media_type = match media {
            "application/vnd.docker.image.rootfs.diff.tar.gzip" => LAYER_MEDIA_TYPE,
            m if m.ends_with("tar+gzip") || m.ends_with("tar") || m.ends_with("tar+zstd") => m,
            other => return Err(bad(format!("unsupported layer type {other}"))),
        };
        let path = blob(&mut connect, &digest)?;
        uncompressed_size += if media_type.ends_with("+gzip") {
            let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(&path)?);
            std::io::copy(&mut gz, &mut std::io::sink())?
        } else {
            std::fs::metadata(&path)?.len()
        };
        layers.push(Blob {
            media_type: media_type.to_string(),
            size: std::fs::metadata(&path)?.len(),
            digest,
        });
    }
    // The base's blobs are in its repository: a push to the same registry can mount them.
    let registry = reference
        .registry
        .clone()
        .unwrap_or_else(|| "docker.io".into());
    let repo = connect
        .get()
        .map(|c| c.repository.clone())
        .unwrap_or_default();
    for l in &layers {
        records::add(&registry, &l.digest, &repo);
    }
    Ok(PulledBase {
        reference: name,
        manifest_digest,
        layers,
        config,
        uncompressed_size,
    })
}

/// The registry connection, made only when something is not in the cache: a pinned, cached
/// base needs no network at all.
struct Lazy<'a> {
    reference: &'a Reference,
    opts: &'a RegistryOptions,
    client: Option<Client>,
}

impl Lazy<'_> {
    fn get(&mut self) -> Result<&Client, PullError> {
        if self.client.is_none() {
            self.client = Some(Client::new(self.reference, self.opts)?);
        }
        Ok(self.client.as_ref().expect("just set"))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A manifest by tag or digest: (its digest, its bytes). By digest it comes from the cache
/// when there, and is verified either way.
fn manifest(
    connect: &mut Lazy,
    reference: &str,
    expected: Option<&str>,
) -> Result<(String, Vec<u8>), PullError> {
    if let Some(d) = expected {
        if let Ok(bytes) = std::fs::read(blob_path(d)) {
            if sha256_hex(&bytes) == d {
                return Ok((d.to_string(), bytes));
            }
        }
    }
    let client = connect.get()?;
    let what = format!("fetching the manifest {reference}");
    let mut resp = client.send(
        "GET",
        &client.url(&format!("manifests/{reference}")),
        &[("Accept", ACCEPT)],
        &Body::Empty,
        &what,
    )?;
    match resp.status().as_u16() {
        200 => {}
        404 => {
            return Err(RegistryError::NotFound(
                client.registry.clone(),
                format!("{}:{reference}", client.repository),
            )
            .into())
        }
        _ => return Err(client.unexpected(&what, resp).into()),
    }
    let mut bytes = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(8 << 20)
        .read_to_end(&mut bytes)?;
    let digest = sha256_hex(&bytes);
    if let Some(d) = expected {
        if d != digest {
            return Err(PullError::Bad {
                reference: reference.to_string(),
                why: format!("the registry sent a manifest whose digest is {digest}"),
            });
        }
    }
    store(&digest, |w| w.write_all(&bytes))?;
    Ok((digest, bytes))
}

/// A blob in the cache, fetched (streamed to disk, hashed on the way) when missing.
fn blob(connect: &mut Lazy, digest: &str) -> Result<PathBuf, PullError> {
    let path = blob_path(digest);
    if path.is_file() {
        return Ok(path);
    }
    let client = connect.get()?;
    let what = format!("fetching {digest}");
    let mut resp = client.send(
        "GET",
        &client.url(&format!("blobs/{digest}")),
        &[],
        &Body::Empty,
        &what,
    )?;
    if resp.status().as_u16() != 200 {
        return Err(client.unexpected(&what, resp).into());
    }
    let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
    store(digest, |w| std::io::copy(&mut reader, w).map(|_| ()))?;
    Ok(path)
}

/// Writes a blob into the cache: to a temporary file first, renamed into place only when its
/// sha256 is `digest`, so an interrupted or corrupt download never becomes an entry.
fn store(
    digest: &str,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), PullError> {
    let dest = blob_path(digest);
    let dir = dest.parent().expect("blob paths have a parent");
    std::fs::create_dir_all(dir)?;
    let tmp =
        crate::cleanup::Tracked::new(tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?);
    let mut hashing = crate::layer::HashWriter::new(std::io::BufWriter::new(tmp.get().as_file()));
    write(&mut hashing)?;
    let (mut inner, got, _) = hashing.finish();
    inner.flush()?;
    drop(inner);
    if got != digest {
        return Err(PullError::Bad {
            reference: digest.to_string(),
            why: format!("downloaded bytes hash to {got}; not cached"),
        });
    }
    tmp.into_inner()
        .persist(&dest)
        .map_err(|e| PullError::Io(e.error))?;
    Ok(())
}
