//! With `--push`: each image's SBOM attached to its pushed manifest as an OCI artifact (the
//! referrers API, or the `sha256-<hex>` tag where the registry has none).

use super::{Emit, EmitError};
use crate::registry::push::PushStats;
use crate::registry::referrers;
use crate::registry::Client;
use crate::sbom::MEDIA_TYPE;
use crate::support::digest::Digest;

/// Attaches every image's SBOM (none with `--no-sbom`), after the images are pushed.
pub fn attach_sboms(client: &Client, e: &Emit, stats: &mut PushStats) -> Result<(), EmitError> {
    for img in e.packed.images() {
        let subject = &img.manifest_blob;
        let Some((_, sbom)) = e.sboms.iter().find(|(d, _)| *d == subject.digest) else {
            continue;
        };
        let stage = |bytes: &[u8]| {
            let path = e.staging.blob_path(&Digest::of(bytes));
            std::fs::write(&path, bytes).map(|_| path)
        };
        referrers::attach(client, subject, sbom, MEDIA_TYPE, &stage, stats)?;
    }
    Ok(())
}
