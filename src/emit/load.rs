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
        refuse_zstd_for_old_docker(e, self.engine)?;
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

/// docker before 23 cannot read zstd layers: say so instead of letting its load fail
/// obscurely (or, worse, succeed and fail at run time).
fn refuse_zstd_for_old_docker(e: &Emit, engine: Option<Engine>) -> Result<(), EmitError> {
    let zstd = e.packed.images().iter().flat_map(|i| &i.layers);
    if !zstd.into_iter().any(|l| l.media_type.ends_with("+zstd")) {
        return Ok(());
    }
    let engine = engine.or_else(|| Engine::on_path().first().copied());
    if engine != Some(Engine::Docker) {
        return Ok(());
    }
    let version = docker_server_version();
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= 23 => Ok(()),
        _ => Err(EmitError::Engine(engine::EngineError::Failed {
            engine: "docker",
            detail: format!(
                "the image has zstd layers, which docker {version} cannot read (docker 23 and later can): pack with --compression gzip (the default), or --load=podman"
            ),
        })),
    }
}

/// `docker version`'s server version, or what went wrong asking.
fn docker_server_version() -> String {
    let out = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => format!("(unknown: {})", String::from_utf8_lossy(&o.stderr).trim()),
        Err(err) => format!("(unknown: {err})"),
    }
}
