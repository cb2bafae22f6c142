//! `cargo build --release` of one binary target of a Cargo workspace; cargo_metadata finds the
//! targets and the target directory.

use super::{git, Built};
use crate::cleanup::Tracked;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What to build.
#[derive(Clone, Debug, Default)]
pub struct CargoBuild {
    /// The workspace (or package) directory.
    pub dir: PathBuf,
    /// The binary target; needed when the workspace has several.
    pub bin: Option<String>,
    pub package: Option<String>,
    /// Extra `cargo build` arguments (features, target, ...).
    pub flags: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CargoError {
    #[error("cargo not found on PATH: install Rust (rustup) to build with binpack cargo")]
    NotFound,
    #[error("cargo metadata in {}: {}", .0.display(), .1)]
    Metadata(PathBuf, String),
    #[error("{0}")]
    Target(String),
    #[error("cargo build failed (its output is above)")]
    BuildFailed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Builds the binary target and returns it.
pub fn build(spec: &CargoBuild) -> Result<Built, CargoError> {
    let cargo = which::which("cargo").map_err(|_| CargoError::NotFound)?;
    let manifest = spec.dir.join("Cargo.toml");
    let meta = cargo_metadata::MetadataCommand::new()
        .cargo_path(&cargo)
        .manifest_path(&manifest)
        .no_deps()
        .exec()
        .map_err(|e| CargoError::Metadata(spec.dir.clone(), e.to_string()))?;
    let bins: Vec<(String, String)> = meta
        .workspace_packages()
        .iter()
        .filter(|p| {
            spec.package
                .as_ref()
                .is_none_or(|want| &p.name.to_string() == want)
        })
        .flat_map(|p| {
            p.targets
                .iter()
                .filter(|t| t.is_bin())
                .map(move |t| (p.name.to_string(), t.name.clone()))
        })
        .filter(|(_, t)| spec.bin.as_ref().is_none_or(|want| t == want))
        .collect();
    let (package, bin) = match bins.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(CargoError::Target(format!(
                "no binary target{}{} in {}",
                spec.bin
                    .as_ref()
                    .map(|b| format!(" named {b}"))
                    .unwrap_or_default(),
                spec.package
                    .as_ref()
                    .map(|p| format!(" in package {p}"))
                    .unwrap_or_default(),
                manifest.display()
            )))
        }
        many => {
            let names: Vec<String> = many.iter().map(|(p, b)| format!("{b} ({p})")).collect();
            return Err(CargoError::Target(format!(
                "several binary targets: {}; choose one with --bin (and --package)",
                names.join(", ")
            )));
        }
    };
    // cargo's human output goes to the user's stderr; stdout stays clean for --json.
    let status = Command::new(&cargo)
        .current_dir(&spec.dir)
        .args(["build", "--release", "--package", &package, "--bin", &bin])
        .args(&spec.flags)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()?;
    if !status.success() {
        return Err(CargoError::BuildFailed);
    }
    let target_dir: &Path = meta.target_directory.as_std_path();
    let built = target_dir.join("release").join(&bin);
    // Packed from a private copy: a later cargo build must not change it under binpack.
    let out_dir = Tracked::new(
        tempfile::Builder::new()
            .prefix("binpack-cargo-")
            .tempdir()?,
    );
    let exe = out_dir.path().join(&bin);
    std::fs::copy(&built, &exe)?;
    let mut built = Built::new(exe, bin, out_dir);
    built.artifact.provenance.vcs = git::describe(&spec.dir);
    built.artifact.provenance.toolchain = Some("host".into());
    Ok(built)
}
