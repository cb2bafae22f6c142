//! The default output: one tar that `docker load`, `podman load` and skopeo's `oci-archive:`
//! and `docker-archive:` transports all read: an OCI layout plus Docker's `manifest.json`
//! pointing at the same blobs (for an index, at the host platform's image: docker 20.10
//! loads one platform).

use super::fs::{atomic_file, write_err};
use super::staging::blobs_of;
use super::{Emit, EmitError, Outcome, Output};
use crate::image;
use crate::image::layer::{self, Content, LayerError, Tree};
use crate::registry::reference::Reference;
use crate::support::progress::Progress;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

pub(super) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Whether `head` (a file's first 512 bytes) is a tar header: `ustar` at offset 257.
fn is_tar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar")
}

/// `-o FILE`.
#[derive(Clone, Debug, Default)]
pub struct Archive {
    pub path: PathBuf,
    /// Every name the image gets (`-t a -t b`); empty: the one the image is given.
    pub names: Vec<Reference>,
}

impl Output for Archive {
    fn describe(&self) -> String {
        format!("writing {}", self.path.display())
    }

    fn destination(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn check(&self) -> Result<(), EmitError> {
        super::fs::replaceable(&self.path, "a tar archive", is_tar)
    }

    fn emit(&self, e: &Emit, _: &dyn Progress) -> Result<Outcome, EmitError> {
        let tree = archive_tree(e, &self.names)?;
        let dest = &self.path;
        atomic_file(dest, |f| {
            let out = BufWriter::with_capacity(256 * 1024, f);
            let w = layer::write_tar(&tree, e.mtime, out).map_err(|err| match err {
                // Name the archive, not "the layer".
                LayerError::Write(io) => write_err(dest)(io),
                other => EmitError::Layer(other),
            })?;
            w.into_inner()
                .map_err(|err| write_err(dest)(err.into_error()))?;
            Ok(())
        })?;
        Ok(Outcome::Archive(dest.clone()))
    }
}

/// The archive's entries: the layout files, then the blobs (read from the staging directory
/// as the tar is written).
fn archive_tree(e: &Emit, names: &[Reference]) -> Result<Tree, EmitError> {
    let mut tree = Tree::new();
    let bytes = |b: Vec<u8>| Content::Bytes(b);
    tree.file("oci-layout", bytes(OCI_LAYOUT.to_vec()), 0o644)?;
    let names = super::names_of(e, names);
    tree.file("index.json", bytes(super::index_json(e, &names)?), 0o644)?;
    tree.file("manifest.json", bytes(docker_manifest(e, &names)), 0o644)?;
    for d in blobs_of(e.packed) {
        let from = e.staging.blob_path(&d);
        tree.file(&d.blob_rel(), Content::Host(from), 0o644)?;
    }
    Ok(tree)
}

/// Docker's manifest.json with every name in `RepoTags` (`docker load` tags each).
fn docker_manifest(e: &Emit, names: &[&Reference]) -> Vec<u8> {
    let one = image::docker_manifest_json(e.packed.for_host(), names[0]);
    let mut doc: serde_json::Value = serde_json::from_slice(&one).expect("our manifest is JSON");
    let tags: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    doc[0]["RepoTags"] = serde_json::json!(tags);
    image::canonical_json(&doc)
}
