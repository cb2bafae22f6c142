//! The local engine sink: `docker load`, else `podman load`, of the archive. A foreign process
//! outside the build stage, on purpose: loading is what the engine's own CLI does, and its
//! socket protocol is not binpack's to reimplement.

use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Docker,
    Podman,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("--load: neither docker nor podman is on PATH; install one, or write the archive with -o and load it elsewhere")]
    NoEngine,
    #[error("--load: {0} is not on PATH")]
    Missing(&'static str),
    #[error("{engine} load failed: {detail}")]
    Failed {
        engine: &'static str,
        detail: String,
    },
}

impl Engine {
    /// The engines on PATH, in the order binpack prefers them when none is named: docker first.
    pub fn on_path() -> Vec<Engine> {
        [Engine::Docker, Engine::Podman]
            .into_iter()
            .filter(|e| which::which(e.name()).is_ok())
            .collect()
    }

    /// The Debian package that provides it.
    pub fn package(self) -> &'static str {
        match self {
            Engine::Docker => "docker.io",
            Engine::Podman => "podman",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }
}

/// Loads `archive` into `engine` (None: docker if on PATH, else podman). Returns the engine
/// used and what it said it loaded.
pub fn load(archive: &Path, engine: Option<Engine>) -> Result<(Engine, String), EngineError> {
    let engine = match engine {
        Some(e) => {
            which::which(e.name()).map_err(|_| EngineError::Missing(e.name()))?;
            e
        }
        None => *Engine::on_path().first().ok_or(EngineError::NoEngine)?,
    };
    let out = Command::new(engine.name())
        .arg("load")
        .arg("-i")
        .arg(archive)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| EngineError::Failed {
            engine: engine.name(),
            detail: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(EngineError::Failed {
            engine: engine.name(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    // "Loaded image: name:tag" (docker), "Loaded image(s): name:tag" (podman).
    let name = text
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(_, n)| n.trim().to_string()))
        .next_back()
        .unwrap_or(text);
    Ok((engine, name))
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
