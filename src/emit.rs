//! Sinks: the archive every engine loads (OCI layout + Docker manifest.json in one tar) and
//! the OCI layout directory. Blobs are staged once; every output is written under a temporary
//! name beside its destination and renamed into place, so a failure leaves nothing half-written.

use crate::cleanup::Tracked;
use crate::image::{self, Image};
use crate::layer::{self, Content, LayerError, Tree};
use crate::reference::Reference;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::{NamedTempFile, TempDir};

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("{} exists and is not an OCI image layout; not replacing it", path.display())]
    NotALayout { path: PathBuf },
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Image(#[from] image::ImageError),
}

/// tempfile's errors name the temporary path; the user only knows the destination.
/// (tempfile wraps the OS error in a private type whose text ends with ` at path "..."`.)
fn plain(e: io::Error) -> io::Error {
    if e.raw_os_error().is_some() {
        return e;
    }
    let text = e.to_string();
    match text.split_once(" at path \"") {
        Some((cause, _)) => io::Error::new(e.kind(), cause.to_string()),
        None => e,
    }
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> EmitError + '_ {
    move |source| EmitError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// A private directory holding the image's blobs until they are written to the sinks.
pub struct Staging {
    dir: Tracked<TempDir>,
}

impl Staging {
    pub fn new() -> Result<Staging, EmitError> {
        let tmp = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("binpack-")
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

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .path()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// Writes a blob whose digest is known only once it is written (a layer): `write` gets a
    /// buffered file and returns its result, whose digest `digest_of` extracts.
    pub fn blob_with<T, E>(
        &self,
        write: impl FnOnce(&mut BufWriter<&File>) -> Result<T, E>,
        digest_of: impl FnOnce(&T) -> &str,
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
        std::fs::set_permissions(
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

    /// Adds a blob that exists elsewhere on disk (a cached base layer): linked, else copied.
    pub fn link_blob(&self, digest: &str, from: &Path) -> Result<(), EmitError> {
        let dest = self.blob_path(digest);
        if dest.exists() || fs::hard_link(from, &dest).is_ok() {
            return Ok(());
        }
        fs::copy(from, &dest).map(|_| ()).map_err(write_err(&dest))
    }

    pub fn blob_bytes(&self, bytes: &[u8]) -> Result<(), EmitError> {
        let dest = self.blob_path(&image::sha256(bytes));
        fs::write(&dest, bytes).map_err(write_err(&dest))
    }

    /// The image's blobs, in a fixed order: config, layers, manifest.
    fn blobs(&self, img: &Image) -> Vec<String> {
        let mut v = vec![img.config_blob.digest.clone()];
        v.extend(img.layers.iter().map(|l| l.digest.clone()));
        v.push(img.manifest_blob.digest.clone());
        v
    }
}

/// Writes the image as one tar that `docker load`, `podman load` and skopeo's `oci-archive:`
/// and `docker-archive:` transports all read. Returns the archive's size.
pub fn write_archive(
    staging: &Staging,
    img: &Image,
    reference: &Reference,
    dest: &Path,
    mtime: u64,
) -> Result<u64, EmitError> {
    let mut tree = Tree::new();
    tree.file("oci-layout", Content::Bytes(OCI_LAYOUT.to_vec()), 0o644)?;
    tree.file(
        "index.json",
        Content::Bytes(image::index_json(img, reference)?),
        0o644,
    )?;
    tree.file(
        "manifest.json",
        Content::Bytes(image::docker_manifest_json(img, reference)),
        0o644,
    )?;
    for d in staging.blobs(img) {
        let rel = format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
        tree.file(&rel, Content::Host(staging.blob_path(&d)), 0o644)?;
    }
    atomic_file(dest, |f| {
        let w = layer::write_tar(&tree, mtime, BufWriter::with_capacity(256 * 1024, f))?;
        w.into_inner()
            .map_err(|e| write_err(dest)(e.into_error()))?;
        Ok(())
    })?;
    Ok(fs::metadata(dest).map(|m| m.len()).unwrap_or(0))
}

/// Writes (or replaces) an OCI image layout directory at `dest`.
pub fn write_oci_layout(
    staging: &Staging,
    img: &Image,
    reference: &Reference,
    dest: &Path,
) -> Result<(), EmitError> {
    let exists = dest.exists();
    if exists && !dest.join("oci-layout").is_file() && !is_empty_dir(dest) {
        return Err(EmitError::NotALayout {
            path: dest.to_path_buf(),
        });
    }
    with_parent(dest, |parent| {
        let tmp = Tracked::new(
            tempfile::Builder::new()
                .prefix(".binpack-")
                .tempdir_in(parent)
                .map_err(|e| write_err(dest)(plain(e)))?,
        );
        let root = tmp.path();
        let blobs = root.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(write_err(dest))?;
        fs::write(root.join("oci-layout"), OCI_LAYOUT).map_err(write_err(dest))?;
        fs::write(root.join("index.json"), image::index_json(img, reference)?)
            .map_err(write_err(dest))?;
        for d in staging.blobs(img) {
            let from = staging.blob_path(&d);
            let to = blobs.join(d.trim_start_matches("sha256:"));
            // Blobs are immutable: a hard link is as good as a copy, and free.
            if fs::hard_link(&from, &to).is_err() {
                fs::copy(&from, &to).map_err(write_err(dest))?;
            }
        }
        let new = tmp.into_inner().keep();
        if exists {
            let old = parent.join(format!(".binpack-old-{}", std::process::id()));
            fs::rename(dest, &old).map_err(write_err(dest))?;
            if let Err(e) = fs::rename(&new, dest) {
                let _ = fs::rename(&old, dest);
                let _ = fs::remove_dir_all(&new);
                return Err(write_err(dest)(e));
            }
            let _ = fs::remove_dir_all(&old);
        } else if let Err(e) = fs::rename(&new, dest) {
            let _ = fs::remove_dir_all(&new);
            return Err(write_err(dest)(e));
        }
        Ok(())
    })
}

fn is_empty_dir(p: &Path) -> bool {
    fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}

fn parent_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` and missing ancestors; returns those it created, deepest last.
fn ensure_dir(dir: &Path) -> Result<Vec<PathBuf>, EmitError> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    missing.reverse();
    for (i, d) in missing.iter().enumerate() {
        if let Err(e) = fs::create_dir(d) {
            remove_created(&missing[..i]);
            return Err(write_err(d)(e));
        }
    }
    Ok(missing)
}

fn remove_created(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = fs::remove_dir(d);
    }
}

/// Writes `dest` through a temporary file beside it, renamed into place only when `write`
/// succeeded; directories created for it are removed again on failure.
pub fn atomic_file(
    dest: &Path,
    write: impl FnOnce(&File) -> Result<(), EmitError>,
) -> Result<(), EmitError> {
    if dest.is_dir() {
        return Err(write_err(dest)(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a directory",
        )));
    }
    with_parent(dest, |parent| {
        let tmp = Tracked::new(
            tempfile::Builder::new()
                .prefix(".binpack-")
                .suffix(".tmp")
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .tempfile_in(parent)
                .map_err(|e| write_err(dest)(plain(e)))?,
        );
        write(tmp.get().as_file())?;
        tmp.into_inner()
            .persist(dest)
            .map_err(|e| EmitError::Write {
                path: dest.to_path_buf(),
                source: plain(e.error),
            })?;
        Ok(())
    })
}

/// Runs `write` with `dest`'s parent directory, creating it (and missing ancestors) first
/// and removing what it created if `write` fails.
fn with_parent<T>(
    dest: &Path,
    write: impl FnOnce(&Path) -> Result<T, EmitError>,
) -> Result<T, EmitError> {
    let parent = parent_of(dest);
    let created = ensure_dir(&parent)?;
    let result = write(&parent);
    if result.is_err() {
        remove_created(&created);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_file_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("new/deeper/out.tar");
        let err = atomic_file(&dest, |_| {
            Err(write_err(Path::new("x"))(io::Error::other("boom")))
        })
        .unwrap_err();
        assert!(err.to_string().contains("boom"));
        assert!(!dir.path().join("new").exists(), "created dirs removed");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        atomic_file(&dest, |mut f| f.write_all(b"ok").map_err(write_err(&dest))).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"ok");
        let leftovers: Vec<_> = fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["out.tar"]);
    }

    #[test]
    fn refuses_to_replace_a_directory_that_is_not_a_layout() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("precious"), b"x").unwrap();
        let staging = Staging::new().unwrap();
        let img = image::build(
            &image::RunConfig::default(),
            &crate::platform::Platform::linux("amd64"),
            &image::BaseLayers::default(),
            &[],
        )
        .unwrap();
        let r = Reference::for_program("x");
        let err = write_oci_layout(&staging, &img, &r, dir.path()).unwrap_err();
        assert!(matches!(err, EmitError::NotALayout { .. }));
        assert!(dir.path().join("precious").exists());
    }
}
