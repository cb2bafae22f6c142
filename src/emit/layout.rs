//! `--oci-layout DIR`: an OCI image layout directory, written beside its destination and
//! swapped into place; an existing directory that is not a layout is never replaced.

use super::archive::OCI_LAYOUT;
use super::fs::{is_empty_dir, plain, with_parent, write_err};
use super::staging::blobs_of;
use super::{Emit, EmitError, Outcome, Output};
use crate::cleanup::Tracked;
use crate::image;
use std::fs;
use std::path::{Path, PathBuf};

pub struct OciLayout {
    pub dir: PathBuf,
}

impl Output for OciLayout {
    fn describe(&self) -> String {
        format!("writing the OCI layout {}", self.dir.display())
    }

    fn emit(&self, e: &Emit) -> Result<Outcome, EmitError> {
        let dest = &self.dir;
        let exists = dest.exists();
        if exists && !dest.join("oci-layout").is_file() && !is_empty_dir(dest) {
            return Err(EmitError::NotALayout { path: dest.clone() });
        }
        with_parent(dest, |parent| {
            let tmp = tempfile::Builder::new()
                .prefix(".binpack-")
                .tempdir_in(parent)
                .map_err(|err| write_err(dest)(plain(err)))?;
            let tmp = Tracked::new(tmp);
            fill(tmp.path(), e).map_err(write_err(dest))?;
            replace(dest, &tmp.into_inner().keep(), parent, exists)
        })?;
        Ok(Outcome::Layout(dest.clone()))
    }
}

/// Writes the layout into the empty directory `root`.
fn fill(root: &Path, e: &Emit) -> std::io::Result<()> {
    fs::create_dir_all(root.join("blobs/sha256"))?;
    fs::write(root.join("oci-layout"), OCI_LAYOUT)?;
    let index = image::layout_index_json(e.packed, e.reference).map_err(std::io::Error::other)?;
    fs::write(root.join("index.json"), index)?;
    for d in blobs_of(e.packed) {
        let from = e.staging.blob_path(&d);
        let to = d.blob_in(root);
        // Blobs are immutable: a hard link is as good as a copy, and free.
        if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

/// Puts the finished layout `new` at `dest`, moving an old one aside until the new one is in.
fn replace(dest: &Path, new: &Path, parent: &Path, exists: bool) -> Result<(), EmitError> {
    if !exists {
        return fs::rename(new, dest).map_err(|err| {
            let _ = fs::remove_dir_all(new);
            write_err(dest)(err)
        });
    }
    let old = parent.join(format!(".binpack-old-{}", std::process::id()));
    fs::rename(dest, &old).map_err(write_err(dest))?;
    if let Err(err) = fs::rename(new, dest) {
        let _ = fs::rename(&old, dest);
        let _ = fs::remove_dir_all(new);
        return Err(write_err(dest)(err));
    }
    let _ = fs::remove_dir_all(&old);
    Ok(())
}
