//! A private directory holding the image's blobs until the outputs take them.

use super::fs::write_err;
use super::EmitError;
use crate::image::Packed;
use crate::support::cleanup::Tracked;
use crate::support::digest::Digest;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::{NamedTempFile, TempDir};

/// The blobs of what is being built, in `blobs/sha256/` of a temporary directory.
pub struct Staging {
    dir: Tracked<TempDir>,
}

impl Staging {
    pub fn new() -> Result<Staging, EmitError> {
        let tmp = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            // The pid lets a later run tell a staging directory of a killed run (see leftovers).
            .prefix(&crate::support::cleanup::private_prefix())
            .tempdir()
            .map_err(write_err(&tmp))?;
        fs::create_dir_all(dir.path().join("blobs/sha256")).map_err(write_err(dir.path()))?;
        Ok(Staging {
            dir: Tracked::new(dir),
        })
    }

    /// The private directory (for scratch files that must go when binpack does).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        digest.blob_in(self.dir.path())
    }

    /// Writes a blob whose digest is known only once it is written (a layer): `write` gets a
    /// buffered file and returns its result, whose digest `digest_of` extracts.
    pub fn blob_with<T, E>(
        &self,
        write: impl FnOnce(&mut BufWriter<&File>) -> Result<T, E>,
        digest_of: impl FnOnce(&T) -> &Digest,
    ) -> Result<T, E>
    where
        E: From<EmitError>,
    {
        let tmp = NamedTempFile::new_in(self.dir.path()).map_err(write_err(self.dir.path()))?;
        let mut w = BufWriter::with_capacity(256 * 1024, tmp.as_file());
        let out = write(&mut w)?;
        w.flush().map_err(write_err(tmp.path()))?;
        drop(w);
        let dest = self.blob_path(digest_of(&out));
        // Temporary files are 0600; a blob in a layout is read by whoever reads the layout.
        fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .map_err(write_err(tmp.path()))?;
        tmp.persist(&dest).map_err(|e| EmitError::Write {
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(out)
    }

    /// Adds a blob that exists elsewhere on disk (a cached layer): linked, else copied.
    pub fn link_blob(&self, digest: &Digest, from: &Path) -> Result<(), EmitError> {
        let dest = self.blob_path(digest);
        if dest.exists() || fs::hard_link(from, &dest).is_ok() {
            return Ok(());
        }
        fs::copy(from, &dest).map(|_| ()).map_err(write_err(&dest))
    }

    pub fn blob_bytes(&self, bytes: &[u8]) -> Result<(), EmitError> {
        let dest = self.blob_path(&Digest::of(bytes));
        fs::write(&dest, bytes).map_err(write_err(&dest))
    }

    /// Stages the JSON documents of `packed` (its layers are staged as they are written).
    pub fn documents(&self, packed: &Packed) -> Result<(), EmitError> {
        for img in packed.images() {
            self.blob_bytes(&img.config)?;
            self.blob_bytes(&img.manifest)?;
        }
        if let Packed::Index(x) = packed {
            self.blob_bytes(&x.json)?;
        }
        Ok(())
    }
}

/// Every blob of `packed`, once, in a fixed order: per image its config, layers and manifest;
/// then the index.
pub fn blobs_of(packed: &Packed) -> Vec<Digest> {
    let mut v: Vec<Digest> = Vec::new();
    let mut add = |d: &Digest| {
        if !v.contains(d) {
            v.push(d.clone());
        }
    };
    for img in packed.images() {
        add(&img.config_blob.digest);
        img.layers.iter().for_each(|l| add(&l.digest));
        add(&img.manifest_blob.digest);
    }
    if let Packed::Index(x) = packed {
        add(&x.blob.digest);
    }
    v
}
