//! Pushing an image: blobs go several at a time; every blob the registry lacks is mounted from another repository of the
//! same registry when binpack knows one, else uploaded streaming from disk; the manifest goes
//! last, so a tag never points at missing blobs.

use super::{records, Body, Client, RegistryError};
use crate::support::digest::Digest;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

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

/// Blobs pushed at once: enough to overlap round trips and fill a link, few enough not to
/// look like an attack to a registry.
pub const PARALLEL: usize = 4;

/// What was done for one blob.
enum Pushed {
    Skipped,
    Mounted,
    Uploaded,
}

/// Pushes the `blobs` the registry lacks, [`PARALLEL`] at a time, counting what it did in
/// `stats`. A blob is read from disk only to upload it. The first error stops the rest.
pub fn push_blobs(
    client: &Client,
    blobs: &[PushBlob],
    stats: &mut PushStats,
) -> Result<(), RegistryError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let done: Mutex<Vec<(usize, Result<Pushed, RegistryError>)>> = Mutex::default();
    std::thread::scope(|s| {
        for _ in 0..PARALLEL.min(blobs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= blobs.len() || failed.load(Ordering::Relaxed) {
                    return;
                }
                let result = push_one(client, &blobs[i]);
                failed.fetch_or(result.is_err(), Ordering::Relaxed);
                done.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, result));
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    for (i, result) in done {
        let blob = &blobs[i];
        match result? {
            Pushed::Skipped => stats.skipped += 1,
            Pushed::Mounted => stats.mounted += 1,
            Pushed::Uploaded => {
                stats.uploaded += 1;
                stats.uploaded_bytes += blob.size;
            }
        }
        records::add(&client.registry, blob.digest, &client.repository);
    }
    Ok(())
}

/// HEAD, else mount, else upload one blob.
fn push_one(client: &Client, blob: &PushBlob) -> Result<Pushed, RegistryError> {
    let what = format!("pushing {}", blob.digest.short());
    let url = client.url(&format!("blobs/{}", blob.digest));
    let head = client.send("HEAD", &url, &[], &Body::Empty, &what)?;
    if head.status().as_u16() == 200 {
        return Ok(Pushed::Skipped);
    }
    match mount(client, blob, &what)? {
        Mount::Mounted => Ok(Pushed::Mounted),
        Mount::Upload(location) => {
            let location = match location {
                Some(l) => l,
                None => start_upload(client, &what)?,
            };
            upload(client, blob, &location, &what)?;
            Ok(Pushed::Uploaded)
        }
    }
}

/// What a cross-repository mount attempt gave.
enum Mount {
    Mounted,
    /// Upload instead, to this location when the registry opened one.
    Upload(Option<String>),
}

/// Mounts the blob from a repository of the registry that binpack has seen holding it.
fn mount(client: &Client, blob: &PushBlob, what: &str) -> Result<Mount, RegistryError> {
    for from in records::repos_with(&client.registry, blob.digest) {
        if from == client.repository {
            continue;
        }
        let url = client.url(&format!("blobs/uploads/?mount={}&from={from}", blob.digest));
        let resp = match client.send("POST", &url, &[], &Body::Empty, what) {
            Ok(r) => r,
            // No pull right on the other repository: upload the blob instead.
            Err(RegistryError::Auth { .. }) => continue,
            Err(e) => return Err(e),
        };
        match resp.status().as_u16() {
            201 => return Ok(Mount::Mounted),
            // Not mountable (the source is gone): the registry opened an upload instead.
            202 => {
                let location = resp.headers().get("Location").and_then(|l| l.to_str().ok());
                return Ok(Mount::Upload(location.map(String::from)));
            }
            _ => continue,
        }
    }
    Ok(Mount::Upload(None))
}

/// Streams the blob from disk to an open upload.
fn upload(
    client: &Client,
    blob: &PushBlob,
    location: &str,
    what: &str,
) -> Result<(), RegistryError> {
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}digest={}", client.absolute(location), blob.digest);
    let len = blob.size.to_string();
    let headers = [
        ("Content-Type", "application/octet-stream"),
        ("Content-Length", len.as_str()),
    ];
    let resp = client.send("PUT", &url, &headers, &Body::File(&blob.path), what)?;
    if resp.status().as_u16() != 201 {
        return Err(client.unexpected(what, resp));
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
