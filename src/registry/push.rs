//! Pushing an image: every blob the registry lacks is mounted from another repository of the
//! same registry when binpack knows one, else uploaded streaming from disk; the manifest goes
//! last, so a tag never points at missing blobs.

use super::{Body, Client, RegistryError};
use crate::cache;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One blob to push.
pub struct PushBlob<'a> {
    pub digest: &'a str,
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

/// Pushes `blobs`, then the manifest under `tag`.
pub fn push(
    client: &Client,
    blobs: &[PushBlob],
    manifest: &[u8],
    media_type: &str,
    tag: &str,
) -> Result<PushStats, RegistryError> {
    let mut stats = PushStats::default();
    for blob in blobs {
        let what = format!("pushing {}", short(blob.digest));
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
    let what = format!("pushing the manifest as {tag}");
    let resp = client.send(
        "PUT",
        &client.url(&format!("manifests/{tag}")),
        &[("Content-Type", media_type)],
        &Body::Bytes(manifest),
        &what,
    )?;
    if !matches!(resp.status().as_u16(), 200 | 201) {
        return Err(client.unexpected(&what, resp));
    }
    Ok(stats)
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

fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

/// Which repositories of a registry hold a blob, as far as binpack has seen (pushed there, or
/// pulled a base from there): one append-only file per registry, lines `digest repository`.
/// Appends of one short line are atomic, so concurrent binpack processes do not tear it.
pub mod records {
    use super::*;

    fn file(registry: &str) -> PathBuf {
        let safe: String = registry
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        cache::dir().join("pushed").join(format!("{safe}.log"))
    }

    pub fn add(registry: &str, digest: &str, repository: &str) {
        if repos_with(registry, digest).iter().any(|r| r == repository) {
            return;
        }
        let path = file(registry);
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")));
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            let _ = f.write_all(format!("{digest} {repository}\n").as_bytes());
        }
    }

    pub fn repos_with(registry: &str, digest: &str) -> Vec<String> {
        std::fs::read_to_string(file(registry))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(d, _)| *d == digest)
            .map(|(_, r)| r.to_string())
            .collect()
    }
}
