//! `--push REF`: every platform's blobs (each blob once), then each manifest, then what the
//! tag names (the image's manifest, or the index) last, so a tag never points at missing
//! blobs.

use super::{Emit, EmitError, Outcome, Output};
use crate::image::{Image, Packed, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::reference::Reference;
use crate::registry::push::{push_blobs, put_manifest, PushBlob, PushStats};
use crate::registry::{Client, RegistryOptions};

pub struct Push {
    pub target: Reference,
    pub registry: RegistryOptions,
}

impl Output for Push {
    fn describe(&self) -> String {
        format!("pushing {}", self.target)
    }

    fn emit(&self, e: &Emit) -> Result<Outcome, EmitError> {
        let client = Client::new(&self.target, &self.registry)?;
        let mut stats = PushStats::default();
        let mut pushed = Vec::new();
        for img in e.packed.images() {
            let blobs: Vec<PushBlob> = blobs(img, e)
                .into_iter()
                .filter(|b| !pushed.contains(b.digest))
                .collect();
            push_blobs(&client, &blobs, &mut stats)?;
            pushed.extend(blobs.iter().map(|b| b.digest.clone()));
            if let Packed::Index(_) = e.packed {
                let digest = img.manifest_blob.digest.as_str();
                put_manifest(&client, &img.manifest, MANIFEST_MEDIA_TYPE, digest)?;
            }
        }
        let media_type = match e.packed {
            Packed::Image(_) => MANIFEST_MEDIA_TYPE,
            Packed::Index(_) => INDEX_MEDIA_TYPE,
        };
        put_manifest(&client, e.packed.top_bytes(), media_type, &self.target.tag)?;
        super::referrer::attach_sboms(&client, e, &mut stats)?;
        Ok(Outcome::Pushed {
            reference: format!("{}@{}", self.target, e.packed.top().digest),
            stats,
        })
    }
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
