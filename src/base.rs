//! The resolve-base stage: from the base choice to what the base brings: nothing (scratch),
//! the binary's library closure from its root, or a pulled image. When an image cannot be had
//! and the choice has a fallback (musl -> alpine, offline), the closure serves instead, with a
//! note. Nothing else decides the base.

use crate::build::Artifact;
use crate::choose::{Base, Choice};
use crate::closure::{self, ClosureError, Origin, Resolved};
use crate::inspect::Linkage;
use crate::pack::Plan;
use crate::progress::Progress;
use crate::registry::pull::{self, PullError, PulledBase};
use crate::registry::RegistryOptions;
use std::path::Path;

/// What the base brings.
#[derive(Clone, Debug)]
pub enum BaseContent {
    Scratch,
    /// The interpreter and libraries, to copy from the artifact's root.
    Closure(Vec<Resolved>),
    Image(Box<PulledBase>),
}

/// The base as decided and resolved.
#[derive(Clone, Debug)]
pub struct ResolvedBase {
    pub choice: Choice,
    pub content: BaseContent,
    /// Things worth knowing (a fallback taken).
    pub notes: Vec<String>,
}

impl ResolvedBase {
    pub fn image(&self) -> Option<&PulledBase> {
        match &self.content {
            BaseContent::Image(b) => Some(b),
            _ => None,
        }
    }

    pub fn libraries(&self) -> &[Resolved] {
        match &self.content {
            BaseContent::Closure(l) => l,
            _ => &[],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error(transparent)]
    Closure(#[from] ClosureError),
    #[error(transparent)]
    Pull(#[from] PullError),
}

/// Resolves the base `plan` chose for `artifact`, run as `entrypoint`.
pub fn resolve(
    plan: &Plan,
    artifact: &Artifact,
    entrypoint: &str,
    registry: &RegistryOptions,
    progress: &dyn Progress,
) -> Result<ResolvedBase, BaseError> {
    let mut notes = Vec::new();
    let mut choice = plan.choice.clone();
    if let Base::Image(r) = &choice.base {
        progress.stage(&format!("pulling the base {r}"));
        match pull::pull(r, &plan.platform, registry) {
            Ok(b) => {
                notes.extend(b.notes.iter().cloned());
                return Ok(resolved(choice, BaseContent::Image(Box::new(b)), notes));
            }
            Err(e) => match choice.fallback.take() {
                Some(reason) => {
                    notes.push(format!(
                        "the base {r} could not be had ({e}); using the closure instead"
                    ));
                    choice = Choice {
                        base: Base::Closure,
                        reason,
                        fallback: None,
                    };
                }
                None => return Err(e.into()),
            },
        }
    }
    let content = match choice.base {
        Base::Closure => {
            if let Some(note) = foreign_root_note(artifact) {
                notes.push(note);
            }
            progress.stage(&format!(
                "resolving shared libraries in {}",
                artifact.root.display()
            ));
            BaseContent::Closure(closure_of(
                &artifact.root,
                &plan.linkage,
                &artifact.executable,
                entrypoint,
            )?)
        }
        _ => BaseContent::Scratch,
    };
    Ok(resolved(choice, content, notes))
}

/// A dynamic binary built in a container whose filesystem the builder did not export would
/// get this machine's libraries: say so, it may not run.
fn foreign_root_note(artifact: &Artifact) -> Option<String> {
    let toolchain = artifact.provenance.built_on.as_ref()?;
    let in_container = matches!(toolchain, crate::build::BuiltOn::Container { .. });
    (in_container && artifact.root == Path::new("/")).then(|| {
        format!(
            "{} is dynamic but was built in {toolchain}; its libraries come from this machine's /, \
             which may not match the ones it was linked against",
            artifact.name
        )
    })
}

fn resolved(choice: Choice, content: BaseContent, notes: Vec<String>) -> ResolvedBase {
    ResolvedBase {
        choice,
        content,
        notes,
    }
}

/// The interpreter and libraries of `executable` from `root`, as the loader would find them
/// with the executable at `entrypoint` in the image.
pub fn closure_of(
    root: &Path,
    linkage: &Linkage,
    executable: &Path,
    entrypoint: &str,
) -> Result<Vec<Resolved>, ClosureError> {
    let in_root = Origin::root_path_of(root, executable);
    let origin = Origin {
        image_path: entrypoint,
        root_path: in_root.as_deref(),
    };
    closure::resolve(root, linkage, &origin)
}
