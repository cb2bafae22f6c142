//! Pulling a base image: manifest or index -> the platform's manifest -> config + layers, each
//! verified against its digest and kept in the content-addressed cache. A base pinned by
//! digest is served from the cache without the network once it has been pulled.

use super::{records, Body, Client, RegistryError, RegistryOptions};
use crate::image::{BaseLayers, Blob, LAYER_MEDIA_TYPE};
use crate::registry::reference::Reference;
use crate::support::cache;
use crate::support::digest::Digest;
use crate::support::platform::Platform;
use oci_spec::image::{Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, Os};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A base image, its blobs in the cache.
#[derive(Clone, Debug)]
pub struct PulledBase {
    /// The reference as given, and the digest of the platform's manifest.
    pub reference: String,
    pub manifest_digest: Digest,
    /// Layers bottom first, with OCI media types.
    pub layers: Vec<Blob>,
    /// The base's config (env, user, working dir, history, rootfs).
    pub config: ImageConfiguration,
    /// The layers' size once decompressed (gzip layers; others count as they are).
    pub uncompressed_size: u64,
    /// Things worth knowing (a damaged cache entry fetched again).
    pub notes: Vec<String>,
}

impl PulledBase {
    /// Where a blob of the base is cached.
    pub fn blob_path(digest: &Digest) -> PathBuf {
        digest.blob_in(&cache::dir())
    }

    /// The layers it puts under binpack's.
    pub fn base_layers(&self) -> Result<BaseLayers, PullError> {
        let diff_ids = self
            .config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.bad(format!("config: {e}")))?;
        Ok(BaseLayers {
            layers: self.layers.clone(),
            diff_ids,
            history: self.config.history().clone().unwrap_or_default(),
        })
    }

    fn bad(&self, why: String) -> PullError {
        PullError::Bad {
            reference: self.reference.clone(),
            why,
        }
    }
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
    #[error("the cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn cache_err(path: &Path) -> impl FnOnce(std::io::Error) -> PullError + '_ {
    move |source| PullError::Cache {
        path: path.to_path_buf(),
        source,
    }
}

/// One pull: the reference, and the registry connection, made only when something is not in
/// the cache (a pinned, cached base needs no network and runs no credential helper).
struct Puller<'a> {
    reference: &'a Reference,
    name: String,
    opts: &'a RegistryOptions,
    client: Option<Client>,
    notes: Vec<String>,
}

/// The most a manifest or index may be: they are small, and read whole into memory.
const MANIFEST_LIMIT: u64 = 8 << 20;

/// The most an image config may be: read whole into memory and parsed, like a manifest (a
/// real one is a few KiB; 512 MiB took 3 GiB of memory).
const CONFIG_LIMIT: u64 = MANIFEST_LIMIT;

/// The most layers a base may have: docker refuses an image of more than 125 (moby's
/// `maxLayerDepth`, 127 in some storage drivers less the 2 of a container), and binpack adds
/// its own on top.
const MAX_BASE_LAYERS: usize = 120;

/// How much larger than its compressed size a gzip layer may inflate, beyond a first
/// [`INFLATE_FREE`]: real layers inflate 2-5 times; a gzip bomb over 1000.
const MAX_INFLATION: u64 = 100;
const INFLATE_FREE: u64 = 256 << 20;

/// Pulls `reference` for `platform`.
pub fn pull(
    reference: &Reference,
    platform: &Platform,
    opts: &RegistryOptions,
) -> Result<PulledBase, PullError> {
    let mut p = Puller {
        reference,
        name: reference.to_string(),
        opts,
        client: None,
        notes: Vec::new(),
    };
    let (manifest_digest, manifest) = p.platform_manifest(platform)?;
    let config = p.config(&manifest, platform)?;
    if manifest.layers().len() > MAX_BASE_LAYERS {
        return Err(p.bad(format!(
            "it has {} layers; docker refuses images of more than 125 and binpack adds its own \
             (at most {MAX_BASE_LAYERS} in a base)",
            manifest.layers().len()
        )));
    }
    let mut layers = Vec::new();
    let mut uncompressed_size = 0;
    for l in manifest.layers() {
        let (blob, size) = p.layer(l)?;
        uncompressed_size += size;
        layers.push(blob);
    }
    p.record(&layers);
    Ok(PulledBase {
        reference: p.name,
        manifest_digest,
        layers,
        config,
        uncompressed_size,
        notes: p.notes,
    })
}

/// What a pull makes of one document a registry sends (index, manifest or config), without
/// a registry: for the fuzz target. An error is a refusal, never a panic.
pub fn read_document(bytes: &[u8], platform: &Platform) -> Result<(), PullError> {
    let reference = Reference::parse("fuzz").expect("a valid name");
    let opts = RegistryOptions::default();
    let p = Puller {
        reference: &reference,
        name: reference.to_string(),
        opts: &opts,
        client: None,
        notes: Vec::new(),
    };
    let probe = p.probe(bytes)?;
    if probe.get("manifests").is_some() {
        let index: ImageIndex = p.parse(bytes, "index")?;
        p.pick(&index, platform)?;
    } else if probe.get("layers").is_some() {
        let manifest: ImageManifest = p.parse(bytes, "manifest")?;
        p.digest(manifest.config().digest())?;
        for l in manifest.layers() {
            p.digest(l.digest())?;
        }
    } else {
        let _: ImageConfiguration = p.parse(bytes, "config")?;
    }
    Ok(())
}

impl Puller<'_> {
    fn client(&mut self) -> Result<&Client, PullError> {
        if self.client.is_none() {
            self.client = Some(Client::new(self.reference, self.opts)?);
        }
        Ok(self.client.as_ref().expect("just set"))
    }

    fn bad(&self, why: impl Into<String>) -> PullError {
        PullError::Bad {
            reference: self.name.clone(),
            why: why.into(),
        }
    }

    fn digest(&self, d: &oci_spec::image::Digest) -> Result<Digest, PullError> {
        Digest::try_from(d).map_err(|e| self.bad(e.to_string()))
    }

    /// The manifest for `platform`, through the index when the reference names one.
    fn platform_manifest(
        &mut self,
        platform: &Platform,
    ) -> Result<(Digest, ImageManifest), PullError> {
        let r = self.reference;
        let top_ref = r.digest.clone().unwrap_or_else(|| r.tag.clone());
        let expected = r.digest.as_deref().map(Digest::parse).transpose();
        let expected = expected.map_err(|e| self.bad(e.to_string()))?;
        let (digest, bytes) = self.manifest(&top_ref, expected.as_ref())?;
        let probe = self.probe(&bytes)?;
        if probe.get("manifests").is_none() {
            return Ok((digest, self.parse(&bytes, "manifest")?));
        }
        let index: ImageIndex = self.parse(&bytes, "index")?;
        let pick = self.pick(&index, platform)?;
        let (digest, bytes) = self.manifest(pick.as_str(), Some(&pick))?;
        self.probe(&bytes)?;
        Ok((digest, self.parse(&bytes, "manifest")?))
    }

    /// A manifest or index as JSON, each digest it names checked first: a digest becomes a
    /// path in the cache, and a bad one should be named whole, not as a parse error.
    fn probe(&self, bytes: &[u8]) -> Result<serde_json::Value, PullError> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| self.bad(format!("manifest: {e}")))?;
        let config = v.pointer("/config/digest").into_iter();
        let list = |key: &str| v.get(key).and_then(|l| l.as_array()).into_iter().flatten();
        let listed = list("layers")
            .chain(list("manifests"))
            .filter_map(|d| d.get("digest"));
        for d in config.chain(listed) {
            let d = d.as_str().unwrap_or_default();
            Digest::parse(d).map_err(|e| self.bad(format!("manifest: {e}")))?;
        }
        Ok(v)
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        bytes: &[u8],
        what: &str,
    ) -> Result<T, PullError> {
        serde_json::from_slice(bytes).map_err(|e| self.bad(format!("{what}: {e}")))
    }

    /// The index entry for `platform` (a variant is matched only when both name one).
    fn pick(&self, index: &ImageIndex, platform: &Platform) -> Result<Digest, PullError> {
        let matches = |m: &&Descriptor| {
            m.platform().as_ref().is_some_and(|p| {
                *p.os() == Os::from(platform.os.as_str())
                    && *p.architecture() == Arch::from(platform.arch.as_str())
                    && platform
                        .variant
                        .as_ref()
                        .is_none_or(|v| p.variant().as_ref().is_none_or(|pv| pv == v))
            })
        };
        match index.manifests().iter().find(matches) {
            Some(m) => self.digest(m.digest()),
            None => Err(PullError::NoPlatform {
                reference: self.name.clone(),
                platform: platform.to_string(),
                available: index
                    .manifests()
                    .iter()
                    // docker's attestation entries (unknown/unknown) are no platform.
                    .filter(|m| {
                        m.platform()
                            .as_ref()
                            .is_none_or(|p| p.os().to_string() != "unknown")
                    })
                    .map(|m| match m.platform() {
                        Some(p) => format!("{}/{}", p.os(), p.architecture()),
                        None => "?/?".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The config, checked to be of the binary's os and architecture.
    fn config(
        &mut self,
        manifest: &ImageManifest,
        platform: &Platform,
    ) -> Result<ImageConfiguration, PullError> {
        let digest = self.digest(manifest.config().digest())?;
        if manifest.config().size() > CONFIG_LIMIT {
            return Err(self.bad(format!(
                "its config {digest} is declared at {} bytes, more than the {} MiB binpack reads",
                manifest.config().size(),
                CONFIG_LIMIT >> 20
            )));
        }
        let path = self.blob(&digest, manifest.config().size())?;
        let bytes = std::fs::read(&path).map_err(cache_err(&path))?;
        let config: ImageConfiguration = self.parse(&bytes, "config")?;
        let base = format!("{}/{}", config.os(), config.architecture());
        if base != format!("{}/{}", platform.os, platform.arch) {
            return Err(PullError::PlatformMismatch {
                reference: self.name.clone(),
                base,
                // Compared as os/arch: a single-platform config often names no variant.
                binary: format!("{}/{}", platform.os, platform.arch),
            });
        }
        Ok(config)
    }

    /// A layer in the cache, as a blob with an OCI media type, and its uncompressed size.
    fn layer(&mut self, l: &Descriptor) -> Result<(Blob, u64), PullError> {
        let digest = self.digest(l.digest())?;
        // Docker's gzip layer type names the same bytes as OCI's.
        let media_type = match l.media_type().to_string().as_str() {
            "application/vnd.docker.image.rootfs.diff.tar.gzip" => LAYER_MEDIA_TYPE.to_string(),
            m if m.ends_with("tar+gzip") || m.ends_with("tar") || m.ends_with("tar+zstd") => {
                m.to_string()
            }
            other => return Err(self.bad(format!("unsupported layer type {other}"))),
        };
        let size = l.size();
        let path = self.blob(&digest, size)?;
        let uncompressed = if media_type.ends_with("+gzip") {
            let f = std::fs::File::open(&path).map_err(cache_err(&path))?;
            let limit = INFLATE_FREE.saturating_add(size.saturating_mul(MAX_INFLATION));
            let mut gz = flate2::read::GzDecoder::new(f).take(limit.saturating_add(1));
            let n = std::io::copy(&mut gz, &mut std::io::sink()).map_err(cache_err(&path))?;
            if n > limit {
                return Err(self.bad(format!(
                    "layer {digest} inflates past {limit} bytes from {size}: more than \
                     {MAX_INFLATION} times its size (a gzip bomb?)"
                )));
            }
            n
        } else {
            size
        };
        let blob = Blob {
            media_type,
            digest,
            size,
        };
        Ok((blob, uncompressed))
    }

    /// The base's blobs are in its repository: a push to the same registry can mount them.
    fn record(&self, layers: &[Blob]) {
        let registry = self
            .reference
            .registry
            .clone()
            .unwrap_or_else(|| "docker.io".into());
        let repo = match &self.client {
            Some(c) => c.repository.clone(),
            None => self.reference.repository_path(),
        };
        for l in layers {
            records::add(&registry, &l.digest, &repo);
        }
    }

    /// A manifest by tag or digest: (its digest, its bytes). By digest it comes from the cache
    /// when there, and is verified either way.
    fn manifest(
        &mut self,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<(Digest, Vec<u8>), PullError> {
        if let Some(d) = expected {
            let path = PulledBase::blob_path(d);
            if let Ok(bytes) = std::fs::read(&path) {
                if Digest::of(&bytes) == *d {
                    return Ok((d.clone(), bytes));
                }
                // Replaced below by the registry's copy, once that is verified.
                self.damaged(&path, "its bytes do not match its digest");
            }
        }
        let bytes = self.fetch_manifest(reference)?;
        let digest = Digest::of(&bytes);
        if let Some(d) = expected.filter(|d| **d != digest) {
            return Err(PullError::Bad {
                reference: format!("{}@{d}", self.name),
                why: format!("the registry sent a manifest whose digest is {digest}"),
            });
        }
        let path = PulledBase::blob_path(&digest);
        store(&digest, |w| w.write_all(&bytes).map_err(cache_err(&path)))?;
        Ok((digest, bytes))
    }

    fn fetch_manifest(&mut self, reference: &str) -> Result<Vec<u8>, PullError> {
        let client = self.client()?;
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
            .take(MANIFEST_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| client.protocol(&what, e))?;
        if bytes.len() as u64 > MANIFEST_LIMIT {
            let why = format!("the manifest {reference} is larger than 8 MiB; refused");
            return Err(client.protocol(&what, why).into());
        }
        Ok(bytes)
    }

    /// A blob in the cache, checked against its digest and declared size; fetched (streamed
    /// to disk, hashed on the way) when missing or damaged.
    fn blob(&mut self, digest: &Digest, size: u64) -> Result<PathBuf, PullError> {
        let path = PulledBase::blob_path(digest);
        match check_cached(&path, digest, size)? {
            Cached::Good => return Ok(path),
            Cached::Missing => {}
            Cached::Damaged(why) => {
                std::fs::remove_file(&path).map_err(cache_err(&path))?;
                self.damaged(&path, &why);
            }
        }
        self.fetch_blob(digest, size)?;
        Ok(path)
    }

    fn damaged(&mut self, path: &Path, why: &str) {
        self.notes.push(format!(
            "the cache {}: {why}; removed, and fetched again from the registry",
            path.display()
        ));
    }

    fn fetch_blob(&mut self, digest: &Digest, size: u64) -> Result<(), PullError> {
        let name = self.name.clone();
        let client = self.client()?;
        let what = format!("fetching {digest}");
        // The size the manifest declares buys no time: the body is judged by its progress.
        let url = client.url(&format!("blobs/{digest}"));
        let mut resp = client.send("GET", &url, &[], &Body::Empty, &what)?;
        if resp.status().as_u16() != 200 {
            return Err(client.unexpected(&what, resp).into());
        }
        // One byte past the declared size is enough to know the registry lies.
        let mut body = resp.body_mut().as_reader().take(size.saturating_add(1));
        let dest = PulledBase::blob_path(digest);
        store(digest, |w| {
            let got = copy(&mut body, w).map_err(|e| match e {
                Copy::Read(e) => PullError::from(client.protocol(&what, e)),
                Copy::Write(e) => cache_err(&dest)(e),
            })?;
            if got == size {
                return Ok(());
            }
            let sent = if got > size {
                "more than".to_string()
            } else {
                format!("only {got} of")
            };
            let why = format!(
                "the registry sent {sent} the {size} bytes the manifest declares for {digest}; not cached"
            );
            Err(PullError::Bad {
                reference: name,
                why,
            })
        })
    }
}

/// What the cache holds for a blob.
enum Cached {
    Good,
    Missing,
    /// Not the blob its name says (why).
    Damaged(String),
}

/// Checks the cached `path` is `size` bytes that hash to `digest`: a blob trusted because
/// it exists would pass on whatever a disk error or a stray write left there.
fn check_cached(path: &Path, digest: &Digest, size: u64) -> Result<Cached, PullError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Cached::Missing),
        Err(e) => return Err(cache_err(path)(e)),
    };
    let len = f.metadata().map_err(cache_err(path))?.len();
    if len != size {
        let why = format!("it is {len} bytes, where {digest} is {size}");
        return Ok(Cached::Damaged(why));
    }
    let (got, _) = Digest::of_reader(&mut f).map_err(cache_err(path))?;
    if got != *digest {
        return Ok(Cached::Damaged("its bytes do not match its digest".into()));
    }
    Ok(Cached::Good)
}

/// Which side of a copy failed.
enum Copy {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies `from` to `to`, returning the bytes copied; says which side failed.
fn copy(from: &mut dyn Read, to: &mut dyn Write) -> Result<u64, Copy> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(Copy::Write)?;
        total += n as u64;
    }
}

/// Writes a blob into the cache: to a temporary file first, renamed into place only when its
/// sha256 is `digest`, so an interrupted or corrupt download never becomes an entry.
fn store(
    digest: &Digest,
    write: impl FnOnce(&mut dyn Write) -> Result<(), PullError>,
) -> Result<(), PullError> {
    let dest = PulledBase::blob_path(digest);
    let dir = dest.parent().expect("blob paths have a parent");
    std::fs::create_dir_all(dir).map_err(cache_err(dir))?;
    // Base blobs are linked into layouts: 0644, as the layout's other blobs.
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(cache_err(dir))?;
    let tmp = crate::support::cleanup::Tracked::new(tmp);
    let mut hashing =
        crate::image::layer::HashWriter::new(std::io::BufWriter::new(tmp.get().as_file()));
    write(&mut hashing)?;
    let (mut inner, got, _) = hashing.finish();
    inner.flush().map_err(cache_err(&dest))?;
    drop(inner);
    if got != *digest {
        return Err(PullError::Bad {
            reference: digest.to_string(),
            why: format!("downloaded bytes hash to {got}; not cached"),
        });
    }
    tmp.into_inner()
        .persist(&dest)
        .map_err(|e| cache_err(&dest)(e.error))?;
    Ok(())
}
