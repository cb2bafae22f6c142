//! Attaching an SBOM to a pushed manifest: an OCI artifact manifest whose `subject` is the
//! image, found through the registry's referrers API, or, where the registry has none, through
//! the tag-schema fallback: an index tagged `sha256-<hex>` listing the referrers. The artifact's
//! bytes depend only on the SBOM and the image, so pushing again adds nothing.

use super::push::{push_blobs, put_manifest, PushBlob, PushStats};
use super::{Body, Client, RegistryError};
use crate::image::{Blob, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::support::digest::Digest;
use serde_json::{json, Value};
use std::io::Read;

/// The OCI empty descriptor's content: the artifact has no config.
const EMPTY: &[u8] = b"{}";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Larger referrer lists are refused, as manifests are.
const INDEX_LIMIT: u64 = 4 << 20;

/// What one attachment did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attached {
    /// The registry's referrers API lists it.
    Referrers(Digest),
    /// Listed in the fallback index under this tag.
    Tag(Digest, String),
}

/// Attaches `sbom` (of media type `media_type`) to the manifest `subject`; `stage` writes a
/// blob to disk and says where, for the upload.
pub fn attach(
    client: &Client,
    subject: &Blob,
    sbom: &[u8],
    media_type: &str,
    stage: &dyn Fn(&[u8]) -> Result<std::path::PathBuf, std::io::Error>,
    stats: &mut PushStats,
) -> Result<Attached, RegistryError> {
    let what = format!("attaching the SBOM to {}", subject.digest);
    let io = |e: std::io::Error| client.protocol(&what, e);
    let (sbom_digest, empty_digest) = (Digest::of(sbom), Digest::of(EMPTY));
    let blobs = [
        (&empty_digest, EMPTY.len() as u64, stage(EMPTY).map_err(io)?),
        (&sbom_digest, sbom.len() as u64, stage(sbom).map_err(io)?),
    ];
    let blobs: Vec<PushBlob> = blobs
        .into_iter()
        .map(|(digest, size, path)| PushBlob { digest, size, path })
        .collect();
    push_blobs(client, &blobs, stats)?;
    let manifest = artifact_manifest(subject, media_type, &sbom_digest, sbom.len());
    let digest = Digest::of(&manifest);
    put_manifest(client, &manifest, MANIFEST_MEDIA_TYPE, digest.as_str())?;
    if has_referrers_api(client, &subject.digest, &what)? {
        return Ok(Attached::Referrers(digest));
    }
    let tag = subject.digest.as_str().replace(':', "-");
    let descriptor = json!({
        "mediaType": MANIFEST_MEDIA_TYPE,
        "digest": digest.as_str(),
        "size": manifest.len(),
        "artifactType": media_type,
    });
    let mut index = fetch_index(client, &tag, &what)?.unwrap_or_else(
        || json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": []}),
    );
    let listed = index["manifests"]
        .as_array()
        .is_some_and(|m| m.iter().any(|d| d["digest"] == digest.as_str()));
    if !listed {
        match index["manifests"].as_array_mut() {
            Some(m) => m.push(descriptor),
            None => index["manifests"] = json!([descriptor]),
        }
        let bytes = serde_json::to_vec(&index).map_err(|e| client.protocol(&what, e))?;
        put_manifest(client, &bytes, INDEX_MEDIA_TYPE, &tag)?;
    }
    Ok(Attached::Tag(digest, tag))
}

/// The artifact manifest: no config (the empty descriptor), one layer (the SBOM), the image as
/// its subject. Keys sorted (serde_json's map), so the same inputs give the same bytes.
fn artifact_manifest(subject: &Blob, media_type: &str, sbom: &Digest, size: usize) -> Vec<u8> {
    let m = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": media_type,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": Digest::of(EMPTY).as_str(), "size": EMPTY.len()},
        "layers": [{"mediaType": media_type, "digest": sbom.as_str(), "size": size}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest.as_str(), "size": subject.size},
    });
    serde_json::to_vec(&m).expect("serializable")
}

/// Whether `GET /v2/<name>/referrers/<digest>` answers with an index (OCI distribution 1.1).
fn has_referrers_api(client: &Client, subject: &Digest, what: &str) -> Result<bool, RegistryError> {
    let url = client.url(&format!("referrers/{subject}"));
    let resp = client.send(
        "GET",
        &url,
        &[("Accept", INDEX_MEDIA_TYPE)],
        &Body::Empty,
        what,
    )?;
    let is_index = resp
        .headers()
        .get("Content-Type")
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with(INDEX_MEDIA_TYPE));
    Ok(resp.status().as_u16() == 200 && is_index)
}

/// The fallback index under `tag`, if there is one.
fn fetch_index(client: &Client, tag: &str, what: &str) -> Result<Option<Value>, RegistryError> {
    let url = client.url(&format!("manifests/{tag}"));
    let mut resp = client.send(
        "GET",
        &url,
        &[("Accept", INDEX_MEDIA_TYPE)],
        &Body::Empty,
        what,
    )?;
    match resp.status().as_u16() {
        200 => {}
        404 => return Ok(None),
        _ => return Err(client.unexpected(what, resp)),
    }
    let mut bytes = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(INDEX_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(|e| client.protocol(what, e))?;
    let index: Value = serde_json::from_slice(&bytes).map_err(|e| client.protocol(what, e))?;
    Ok(Some(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_artifact_refers_to_its_subject_and_holds_the_sbom() {
        let subject = Blob::of(MANIFEST_MEDIA_TYPE, b"{\"m\":1}");
        let sbom = Digest::of(b"sbom");
        let bytes = artifact_manifest(&subject, "application/spdx+json", &sbom, 4);
        assert_eq!(
            bytes,
            artifact_manifest(&subject, "application/spdx+json", &sbom, 4)
        );
        let m: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(m["subject"]["digest"], subject.digest.as_str());
        assert_eq!(m["artifactType"], "application/spdx+json");
        assert_eq!(m["config"]["digest"], Digest::of(b"{}").as_str());
        assert_eq!(m["layers"][0]["digest"], sbom.as_str());
    }
}
