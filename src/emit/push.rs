//! `--push REF` (repeatable): every platform's blobs (each blob once per repository), then each
//! manifest, then what each tag names (the image's manifest, or the index) last, so a tag never
//! points at missing blobs.

use super::{Emit, EmitError, Outcome, Output};
use crate::image::{Image, Packed, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::registry::push::{push_blobs, put_manifest, PushBlob, PushStats, PARALLEL};
use crate::registry::reference::Reference;
use crate::registry::{Client, RegistryOptions};
use crate::support::progress::Progress;

pub struct Push {
    /// Every reference the image is pushed as; several of one repository share its blobs.
    pub targets: Vec<Reference>,
    pub registry: RegistryOptions,
}

impl Output for Push {
    fn describe(&self) -> String {
        let names: Vec<String> = self.targets.iter().map(|t| t.to_string()).collect();
        format!("pushing {}", names.join(", "))
    }

    fn emit(&self, e: &Emit, progress: &dyn Progress) -> Result<Outcome, EmitError> {
        let mut stats = PushStats::default();
        let mut references = Vec::new();
        for (first, tags) in by_repository(&self.targets) {
            let client = Client::new(first, &self.registry)?;
            push_images(&client, e, progress, &mut stats)?;
            let media_type = match e.packed {
                Packed::Image(_) => MANIFEST_MEDIA_TYPE,
                Packed::Index(_) => INDEX_MEDIA_TYPE,
            };
            for t in tags {
                progress.stage(&format!("pushing the manifest of {t}"));
                put_manifest(&client, e.packed.top_bytes(), media_type, &t.tag)?;
                references.push(format!("{t}@{}", e.packed.top().digest));
            }
            super::referrer::attach_sboms(&client, e, &mut stats)?;
        }
        Ok(Outcome::Pushed { references, stats })
    }
}

/// The targets grouped by repository (registry and path), in the order given.
fn by_repository(targets: &[Reference]) -> Vec<(&Reference, Vec<&Reference>)> {
    let mut groups: Vec<(&Reference, Vec<&Reference>)> = Vec::new();
    for t in targets {
        let same = |g: &&mut (&Reference, Vec<&Reference>)| {
            g.0.registry == t.registry && g.0.repository_path() == t.repository_path()
        };
        match groups.iter_mut().find(same) {
            Some(g) => g.1.push(t),
            None => groups.push((t, vec![t])),
        }
    }
    groups
}

/// Every image's blobs (each once, [`PARALLEL`] at a time, each named on the progress
/// line) and, for an index, each image's manifest by digest.
fn push_images(
    client: &Client,
    e: &Emit,
    progress: &dyn Progress,
    stats: &mut PushStats,
) -> Result<(), EmitError> {
    let mut pushed = Vec::new();
    for img in e.packed.images() {
        let blobs: Vec<PushBlob> = blobs(img, e)
            .into_iter()
            .filter(|b| !pushed.contains(b.digest))
            .collect();
        for chunk in blobs.chunks(PARALLEL) {
            for b in chunk {
                let hex = b.digest.as_str().trim_start_matches("sha256:");
                progress.stage(&format!(
                    "pushing blob sha256:{} ({}) to {}",
                    &hex[..hex.len().min(12)],
                    crate::support::progress::human_bytes(b.size),
                    client.repository
                ));
            }
            push_blobs(client, chunk, stats)?;
        }
        pushed.extend(blobs.iter().map(|b| b.digest.clone()));
        if let Packed::Index(_) = e.packed {
            let digest = img.manifest_blob.digest.as_str();
            put_manifest(client, &img.manifest, MANIFEST_MEDIA_TYPE, digest)?;
        }
    }
    Ok(())
}

/// An image's layers and config, from the staging directory.
fn blobs<'a>(img: &'a Image, e: &Emit) -> Vec<PushBlob<'a>> {
    img.layers
        .iter()
        .chain(std::iter::once(&img.config_blob))
        .map(|b| PushBlob {
            digest: &b.digest,
            size: b.size,
            path: e.staging.blob_path(&b.digest),
        })
        .collect()
}
