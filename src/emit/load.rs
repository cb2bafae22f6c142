//! `--load`: the image into the local engine (docker, else podman), through the archive: the
//! one `-o` wrote when there is one, else a private one. Which engine, and whether it can read
//! the image, is settled by [`Output::check`], before anything is built.

use super::{Archive, Emit, EmitError, Outcome, Output};
use crate::support::engine::{self, Engine, EngineError};
use crate::support::progress::Progress;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub struct Load {
    /// None: docker if its engine answers, else podman.
    pub engine: Option<Engine>,
    /// An archive an earlier output writes, to load instead of writing another.
    pub archive: Option<PathBuf>,
    /// Every name the image gets; empty: the one the image is given.
    pub names: Vec<crate::registry::reference::Reference>,
    /// Whether the layers are zstd (docker before 23 cannot read them).
    pub zstd: bool,
    /// The engine [`Output::check`] found answering.
    chosen: OnceLock<Engine>,
}

impl Load {
    pub fn new(
        engine: Option<Engine>,
        archive: Option<PathBuf>,
        names: Vec<crate::registry::reference::Reference>,
        zstd: bool,
    ) -> Load {
        Load {
            engine,
            archive,
            names,
            zstd,
            chosen: OnceLock::new(),
        }
    }

    /// The engine to load into: the one named, else the first on PATH whose engine answers.
    fn choose(&self) -> Result<Engine, EmitError> {
        let candidates = match self.engine {
            Some(e) => vec![e],
            None => Engine::on_path(),
        };
        if candidates.is_empty() {
            return Err(EngineError::NoEngine.into());
        }
        let mut said = Vec::new();
        for e in candidates {
            match server_version(e) {
                Ok(v) => {
                    refuse_zstd_for_old_docker(self.zstd, e, &v)?;
                    return Ok(e);
                }
                Err(why) => said.push(format!("{e}: {why}")),
            }
        }
        Err(EmitError::NoEngineAnswers {
            said: said.join("; "),
        })
    }
}

impl Output for Load {
    fn describe(&self) -> String {
        match self.chosen.get() {
            Some(e) => format!("loading the image into {e}"),
            None => "loading the image into the local engine".into(),
        }
    }

    fn check(&self) -> Result<(), EmitError> {
        if self.chosen.get().is_none() {
            let _ = self.chosen.set(self.choose()?);
        }
        Ok(())
    }

    fn emit(&self, e: &Emit, progress: &dyn Progress) -> Result<Outcome, EmitError> {
        self.check()?;
        let engine = *self.chosen.get().expect("checked above");
        // The archive an earlier output wrote, else one of its own.
        let archive = match self.archive.as_ref().filter(|a| a.is_file()) {
            Some(a) => a.clone(),
            None => {
                let path = e.staging.path().join("load.tar");
                Archive {
                    path: path.clone(),
                    names: self.names.clone(),
                }
                .emit(e, progress)?;
                path
            }
        };
        progress.stage(&format!("{engine} load"));
        let (engine, name) = engine::load(&archive, Some(engine))?;
        Ok(Outcome::Loaded {
            engine: engine.to_string(),
            image: name,
        })
    }
}

/// docker before 23 cannot read zstd layers: say so before the build instead of letting its
/// load fail obscurely (or, worse, succeed and fail at run time).
fn refuse_zstd_for_old_docker(zstd: bool, engine: Engine, version: &str) -> Result<(), EmitError> {
    if !zstd || engine != Engine::Docker {
        return Ok(());
    }
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= 23 => Ok(()),
        _ => Err(EmitError::Engine(EngineError::Failed {
            engine: "docker",
            detail: format!(
                "the image would have zstd layers, which docker {version} cannot read (docker 23 and later can): pack with --compression gzip (the default), or --load=podman"
            ),
        })),
    }
}

/// The engine's version if it answers, else what it said.
fn server_version(engine: Engine) -> Result<String, String> {
    // podman has no daemon: it answers when it runs at all.
    let args: &[&str] = match engine {
        Engine::Docker => &["version", "--format", "{{.Server.Version}}"],
        Engine::Podman => &["version"],
    };
    let out = Command::new(engine.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            Err(err.lines().last().unwrap_or("no answer").trim().to_string())
        }
        Err(err) => Err(err.to_string()),
    }
}
