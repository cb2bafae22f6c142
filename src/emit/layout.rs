//! `--oci-layout DIR`: an OCI image layout directory. A new one is written beside its
//! destination and renamed into place; an existing one gets this image's tag added or
//! replaced and keeps its other images; a directory that is not a layout is never touched.

use super::archive::OCI_LAYOUT;
use super::fs::{atomic_file, is_empty_dir, plain, with_parent, write_err};
use super::staging::blobs_of;
use super::{Emit, EmitError, Outcome, Output};
use crate::image;
use crate::registry::reference::Reference;
use crate::support::cleanup::Tracked;
use crate::support::progress::Progress;
use serde_json::Value;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Clone, Debug, Default)]
pub struct OciLayout {
    pub dir: PathBuf,
    /// Every name (tag) the image gets; empty: the one the image is given.
    pub names: Vec<Reference>,
}

impl Output for OciLayout {
    fn describe(&self) -> String {
        format!("writing the OCI layout {}", self.dir.display())
    }

    fn destination(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn check(&self) -> Result<(), EmitError> {
        let dest = &self.dir;
        if dest.exists() && !dest.join("oci-layout").is_file() && !is_empty_dir(dest) {
            return Err(EmitError::NotALayout { path: dest.clone() });
        }
        Ok(())
    }

    fn emit(&self, e: &Emit, _: &dyn Progress) -> Result<Outcome, EmitError> {
        let dest = &self.dir;
        self.check()?;
        let names = super::names_of(e, &self.names);
        if dest.exists() {
            merge(dest, e, &names)?;
        } else {
            create(dest, e, &names)?;
        }
        Ok(Outcome::Layout(dest.clone()))
    }
}

/// A new layout: filled under a temporary name beside `dest`, then renamed, so a failure
/// leaves nothing at `dest`.
fn create(dest: &Path, e: &Emit, names: &[&Reference]) -> Result<(), EmitError> {
    with_parent(dest, |parent| {
        let tmp = tempfile::Builder::new()
            .prefix(&crate::support::cleanup::beside_prefix())
            .suffix(".tmp")
            .tempdir_in(parent)
            .map_err(|err| write_err(dest)(plain(err)))?;
        let tmp = Tracked::new(tmp);
        fill(tmp.path(), e, names).map_err(write_err(dest))?;
        let new = tmp.into_inner().keep();
        fs::rename(&new, dest).map_err(|err| {
            let _ = fs::remove_dir_all(&new);
            write_err(dest)(err)
        })
    })
}

/// Writes the layout into the empty directory `root`.
fn fill(root: &Path, e: &Emit, names: &[&Reference]) -> std::io::Result<()> {
    fs::create_dir_all(root.join("blobs/sha256"))?;
    fs::write(root.join("oci-layout"), OCI_LAYOUT)?;
    let index = super::index_json(e, names).map_err(std::io::Error::other)?;
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

/// An existing layout (or empty directory): the new blobs added, then index.json replaced in
/// one rename with this tag's entry swapped in and every other entry kept.
fn merge(dest: &Path, e: &Emit, names: &[&Reference]) -> Result<(), EmitError> {
    let index_path = dest.join("index.json");
    // A damaged index is refused before anything is added.
    other_entries(&index_path, read_raw(&index_path)?.as_deref(), &[])?;
    let blobs = dest.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(write_err(&blobs))?;
    let mut added = Vec::new();
    let result = add_blobs(dest, e, &mut added).and_then(|()| {
        let marker = dest.join("oci-layout");
        if !marker.is_file() {
            atomic_file(&marker, |mut f| {
                f.write_all(OCI_LAYOUT).map_err(write_err(&marker))
            })?;
        }
        write_index(&index_path, e, names)
    });
    if result.is_err() {
        // Blobs only this run added are referenced by nothing now.
        added.iter().for_each(|p| drop(fs::remove_file(p)));
    }
    result
}

/// Replaces index.json with this image's entry and every other tag's. Another run may add its
/// tag meanwhile (std's file locks need a newer Rust than ours): the file is read again just
/// before the rename, and the merge redone if it changed.
fn write_index(index_path: &Path, e: &Emit, names: &[&Reference]) -> Result<(), EmitError> {
    for _ in 0..10 {
        let before = read_raw(index_path)?;
        let tags: Vec<&str> = names.iter().map(|n| n.tag.as_str()).collect();
        let others = other_entries(index_path, before.as_deref(), &tags)?;
        let index = merged_index(e, names, others)?;
        let mut changed = false;
        let written = atomic_file(index_path, |mut f| {
            f.write_all(&index).map_err(write_err(index_path))?;
            changed = read_raw(index_path)? != before;
            match changed {
                true => Err(write_err(index_path)(std::io::Error::other(
                    "changed by another run while it was being updated",
                ))),
                false => Ok(()),
            }
        });
        if !changed {
            return written;
        }
    }
    Err(write_err(index_path)(std::io::Error::other(
        "other runs keep changing it; try again",
    )))
}

/// The bytes of `path`, None if it does not exist.
fn read_raw(path: &Path) -> Result<Option<Vec<u8>>, EmitError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(write_err(path)(err)),
    }
}

/// The entries of the index `bytes` (read from `index_path`) whose tag is none of `tags`;
/// none without an index.
fn other_entries(
    index_path: &Path,
    bytes: Option<&[u8]>,
    tags: &[&str],
) -> Result<Vec<Value>, EmitError> {
    let bad = |reason: String| EmitError::BadIndex {
        path: index_path.to_path_buf(),
        reason,
    };
    let Some(bytes) = bytes else {
        return Ok(Vec::new());
    };
    let index: Value = serde_json::from_slice(bytes).map_err(|err| bad(err.to_string()))?;
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no manifests list".into()))?;
    Ok(manifests
        .iter()
        .filter(|m| !(m["annotations"][REF_NAME].as_str()).is_some_and(|t| tags.contains(&t)))
        .cloned()
        .collect())
}

/// This image's index.json with the kept entries before its own.
fn merged_index(e: &Emit, names: &[&Reference], others: Vec<Value>) -> Result<Vec<u8>, EmitError> {
    let ours = super::index_json(e, names)?;
    let mut index: Value = serde_json::from_slice(&ours).expect("our index is JSON");
    let mut manifests = others;
    if let Some(Value::Array(mine)) = index.get_mut("manifests") {
        manifests.append(mine);
    }
    index["manifests"] = Value::Array(manifests);
    Ok(image::canonical_json(&index))
}

/// Puts every blob of the image into the layout; `added` gets the ones that were not there.
fn add_blobs(dest: &Path, e: &Emit, added: &mut Vec<PathBuf>) -> Result<(), EmitError> {
    for d in blobs_of(e.packed) {
        let from = e.staging.blob_path(&d);
        let to = d.blob_in(dest);
        let size = |p: &Path| fs::metadata(p).map(|m| m.len()).ok();
        match size(&to) {
            // Named by its digest: a blob of the right size is this one.
            Some(n) if Some(n) == size(&from) => continue,
            // A truncated one is replaced whole.
            Some(_) => copy_blob(&from, &to)?,
            None => {
                if fs::hard_link(&from, &to).is_err() {
                    copy_blob(&from, &to)?;
                }
                added.push(to);
            }
        }
    }
    Ok(())
}

fn copy_blob(from: &Path, to: &Path) -> Result<(), EmitError> {
    atomic_file(to, |f| {
        let mut src = File::open(from).map_err(write_err(from))?;
        std::io::copy(&mut src, &mut &*f)
            .map(drop)
            .map_err(write_err(to))
    })
}
