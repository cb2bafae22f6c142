//! The outputs, behind one small interface: each takes what was built (one image, or an index
//! of images for several platforms) and writes it somewhere. One file per output: the archive
//! every engine loads, the OCI layout directory, a load into the local engine, a registry
//! push. The CLI turns flags into the list; [`emit_all`] runs it in order.

mod archive;
mod fs;
mod layout;
mod leftovers;
mod load;
mod push;
mod referrer;
mod staging;

pub use archive::Archive;
pub use fs::{atomic_file, replaceable};
pub use layout::OciLayout;
pub use leftovers::{sweep_beside, sweep_staging};
pub use load::Load;
pub use push::Push;
pub use staging::Staging;

use crate::engine::EngineError;
use crate::image::{ImageError, Packed};
use crate::layer::LayerError;
use crate::progress::Progress;
use crate::reference::Reference;
use crate::registry::push::PushStats;
use crate::registry::RegistryError;
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
    pub sboms: &'a [(crate::digest::Digest, Vec<u8>)],
}

/// What an output did, for the summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Archive(PathBuf),
    Layout(PathBuf),
    /// `engine: name`.
    Loaded(String),
    Pushed {
        /// `registry/repo:tag@digest`.
        reference: String,
        stats: PushStats,
    },
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
    fn emit(&self, e: &Emit) -> Result<Outcome, EmitError>;
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
        done.push(o.emit(e)?);
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
}
