//! The outputs, behind one small interface: each takes what was built (one image, or an index
//! of images for several platforms) and writes it somewhere. One file per output: the archive
//! every engine loads, the OCI layout directory, a load into the local engine, a registry
//! push. The CLI turns flags into the list; [`emit_all`] runs it in order.

mod archive;
mod fs;
mod layout;
pub(crate) mod leftovers;
mod load;
mod push;
mod referrer;
mod sbom_file;
mod staging;

pub use archive::Archive;
pub use fs::{atomic_file, is_stream, replaceable};
pub use layout::OciLayout;
pub use leftovers::{sweep_beside, sweep_staging};
pub use load::Load;
pub use push::Push;
pub use sbom_file::SbomFile;
pub use staging::Staging;

use crate::image::layer::LayerError;
use crate::image::{ImageError, Packed};
use crate::registry::push::PushStats;
use crate::registry::reference::Reference;
use crate::registry::RegistryError;
use crate::support::engine::EngineError;
use crate::support::progress::Progress;
use std::path::{Path, PathBuf};

/// What every output is given.
pub struct Emit<'a> {
    pub packed: &'a Packed,
    /// The name the image is given (a push names its own).
    pub reference: &'a Reference,
    /// Where every blob of `packed` is.
    pub staging: &'a Staging,
    /// Timestamps of the archive's entries.
    pub mtime: u64,
    /// Each image's SBOM, by the digest of its manifest, for a push to attach.
    pub sboms: &'a [(crate::support::digest::Digest, Vec<u8>)],
}

/// What an output did, for the summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Archive(PathBuf),
    Layout(PathBuf),
    /// The engine (`docker`, `podman`) and what it said it loaded.
    Loaded {
        engine: String,
        image: String,
    },
    Pushed {
        /// `registry/repo:tag@digest`, one per name pushed.
        references: Vec<String>,
        stats: PushStats,
    },
    /// The SBOM files written (one per platform).
    Sbom(Vec<PathBuf>),
}

/// The names an archive or layout gives the image: `names` when there are any (`-t a -t b`),
/// else the one every output is given.
pub(crate) fn names_of<'a>(e: &'a Emit, names: &'a [Reference]) -> Vec<&'a Reference> {
    match names {
        [] => vec![e.reference],
        _ => names.iter().collect(),
    }
}

/// The layout's index.json naming the image once per name (each entry carries the tag, as
/// `docker save a b` writes it).
pub(crate) fn index_json(e: &Emit, names: &[&Reference]) -> Result<Vec<u8>, ImageError> {
    let mut index: Option<serde_json::Value> = None;
    for name in names {
        let one = crate::image::layout_index_json(e.packed, name)?;
        let one: serde_json::Value = serde_json::from_slice(&one).expect("our index is JSON");
        match index.as_mut().and_then(|i| i["manifests"].as_array_mut()) {
            Some(all) => all.extend(one["manifests"].as_array().cloned().unwrap_or_default()),
            None => index = Some(one),
        }
    }
    Ok(crate::image::canonical_json(
        &index.unwrap_or(serde_json::Value::Null),
    ))
}

/// One place an image goes.
pub trait Output {
    /// What it is doing, for the progress line.
    fn describe(&self) -> String;
    /// The file or directory it writes on this machine, if any: checked against the inputs
    /// before anything is written, so no output replaces what it is made from.
    fn destination(&self) -> Option<&Path> {
        None
    }
    /// Refuses, before any output is written, a destination it would not replace: something
    /// already there that is not what this output writes (a source file named by `-o`).
    fn check(&self) -> Result<(), EmitError> {
        Ok(())
    }
    /// Writes the image; long steps (each blob of a push) are reported to `progress`.
    fn emit(&self, e: &Emit, progress: &dyn Progress) -> Result<Outcome, EmitError>;
}

/// Runs every output in order; the first failure stops the rest.
pub fn emit_all(
    outputs: &[Box<dyn Output>],
    e: &Emit,
    progress: &dyn Progress,
) -> Result<Vec<Outcome>, EmitError> {
    let mut done = Vec::new();
    for o in outputs {
        progress.stage(&o.describe());
        done.push(o.emit(e, progress)?);
    }
    progress.finish_stage();
    Ok(done)
}

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} exists and is not an OCI image layout; not replacing it", path.display())]
    NotALayout { path: PathBuf },
    #[error("{} exists and is not {what}; not replacing it (choose another path, or remove it first)", path.display())]
    NotReplaceable { path: PathBuf, what: &'static str },
    #[error("{} is not a valid OCI image index ({reason}); not changing the layout", path.display())]
    BadIndex { path: PathBuf, reason: String },
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("--load: no engine answers ({said}); start one, name one that runs (--load=podman), or write the archive with -o and load it elsewhere")]
    NoEngineAnswers { said: String },
}
