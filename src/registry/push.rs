//! Pushing an image: every blob the registry lacks is mounted from another repository of the
//! same registry when binpack knows one, else uploaded streaming from disk; the manifest goes
//! last, so a tag never points at missing blobs.

use super::{records, Body, Client, RegistryError};
use crate::digest::Digest;
use std::path::PathBuf;

/// One blob to push.
pub struct PushBlob<'a> {
    pub digest: &'a Digest,
    pub size: u64,
    pub path: PathBuf,
}

/// What a push did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PushStats {
    /// Blobs the registry already had.
    pub skipped: usize,
    /// Blobs mounted from another repository of the registry.
    pub mounted: usize,
    pub uploaded: usize,
    pub uploaded_bytes: u64,
}

/// Pushes the `blobs` the registry lacks, counting what it did in `stats`.
pub fn push_blobs(
    client: &Client,
    blobs: &[PushBlob],
    stats: &mut PushStats,
) -> Result<(), RegistryError> {
    for blob in blobs {
        let what = format!("pushing {}", blob.digest.short());
        let head = client.send(
            "HEAD",
            &client.url(&format!("blobs/{}", blob.digest)),
            &[],
            &Body::Empty,
            &what,
        )?;
        if head.status().as_u16() == 200 {
            stats.skipped += 1;
            records::add(&client.registry, blob.digest, &client.repository);
            continue;
        }
        let mut location = None;
        for from in records::repos_with(&client.registry, blob.digest) {
            if from == client.repository {
                continue;
            }
            let mount = client.send(
                "POST",
                &client.url(&format!("blobs/uploads/?mount={}&from={from}", blob.digest)),
                &[],
                &Body::Empty,
                &what,
            );
            let resp = match mount {
                Ok(r) => r,
                // No pull right on the other repository: upload the blob instead.
                Err(RegistryError::Auth { .. }) => continue,
                Err(e) => return Err(e),
            };
            match resp.status().as_u16() {
                201 => {
                    stats.mounted += 1;
                    location = Some(None);
                    break;
                }
                // Not mountable (the source is gone): the registry opened an upload instead.
                202 => {
                    location = Some(
                        resp.headers()
                            .get("Location")
                            .and_then(|l| l.to_str().ok())
                            .map(String::from),
                    );
                    break;
                }
                _ => continue,
            }
        }
        let upload = match location {
            Some(None) => {
                records::add(&client.registry, blob.digest, &client.repository);
                continue;
            }
            Some(Some(l)) => l,
            None => start_upload(client, &what)?,
        };
        let sep = if upload.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}digest={}", client.absolute(&upload), blob.digest);
        let len = blob.size.to_string();
        let resp = client.send(
            "PUT",
            &url,
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", &len),
            ],
            &Body::File(&blob.path),
            &what,
        )?;
        if resp.status().as_u16() != 201 {
            return Err(client.unexpected(&what, resp));
        }
        stats.uploaded += 1;
        stats.uploaded_bytes += blob.size;
        records::add(&client.registry, blob.digest, &client.repository);
    }
    Ok(())
}

/// Puts a manifest (or an index) under `reference`, a tag or its digest. Its blobs must be
/// there already, so a tag never points at missing blobs.
pub fn put_manifest(
    client: &Client,
    manifest: &[u8],
    media_type: &str,
    reference: &str,
) -> Result<(), RegistryError> {
    let what = format!("pushing the manifest as {reference}");
    let resp = client.send(
        "PUT",
        &client.url(&format!("manifests/{reference}")),
        &[("Content-Type", media_type)],
        &Body::Bytes(manifest),
        &what,
    )?;
    if !matches!(resp.status().as_u16(), 200 | 201) {
        return Err(client.unexpected(&what, resp));
    }
    Ok(())
}

fn start_upload(client: &Client, what: &str) -> Result<String, RegistryError> {
    let resp = client.send(
        "POST",
        &client.url("blobs/uploads/"),
        &[],
        &Body::Empty,
        what,
    )?;
    if resp.status().as_u16() != 202 {
        return Err(client.unexpected(what, resp));
    }
    resp.headers()
        .get("Location")
        .and_then(|l| l.to_str().ok())
        .map(String::from)
        .ok_or_else(|| client.protocol(what, "upload started without a Location"))
}
