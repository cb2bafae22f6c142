//! `--load`: the image into the local engine (docker, else podman), through the archive: the
//! one `-o` wrote when there is one, else a private one.

use super::{Archive, Emit, EmitError, Outcome, Output};
use crate::engine::{self, Engine};
use std::path::PathBuf;

pub struct Load {
    /// None: docker if on PATH, else podman.
    pub engine: Option<Engine>,
    /// An archive an earlier output writes, to load instead of writing another.
    pub archive: Option<PathBuf>,
}

impl Output for Load {
    fn describe(&self) -> String {
        "loading the image into the local engine".into()
    }

    fn emit(&self, e: &Emit) -> Result<Outcome, EmitError> {
        // The archive an earlier output wrote, else one of its own.
        let archive = match self.archive.as_ref().filter(|a| a.is_file()) {
            Some(a) => a.clone(),
            None => {
                let path = e.staging.path().join("load.tar");
                Archive { path: path.clone() }.emit(e)?;
                path
            }
        };
        let (engine, name) = engine::load(&archive, self.engine)?;
        Ok(Outcome::Loaded(format!("{engine}: {name}")))
    }
}
