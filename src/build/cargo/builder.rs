//! Rust as a [`Builder`]: one `cargo rustc` per platform, on the host.

use super::{build, CargoBuild, CargoError};
use crate::build::{BuildCx, BuildError, Builder, Built};
use crate::support::platform::Platform;
use std::path::{Path, PathBuf};

/// `binpack cargo`'s request: everything but the platform.
#[derive(Clone, Debug)]
pub struct CargoBuilder {
    /// A directory of the package or workspace (its Cargo.toml or a parent's is used).
    pub dir: PathBuf,
    pub bin: Option<String>,
    pub package: Option<String>,
    pub flags: Vec<String>,
}

impl Builder for CargoBuilder {
    fn name(&self) -> &'static str {
        "cargo"
    }

    fn describe(&self) -> String {
        let bin = self.bin.as_ref().map(|b| format!(" --bin {b}"));
        let flags: String = self.flags.iter().map(|f| format!(" {f}")).collect();
        format!("cargo build{}{flags} (stripped)", bin.unwrap_or_default())
    }

    fn platforms(&self) -> &'static [&'static str] {
        &["linux/amd64", "linux/arm64"]
    }

    fn build(&self, platform: &Platform, cx: &BuildCx) -> Result<Built, BuildError> {
        let spec = CargoBuild {
            dir: manifest_dir(&self.dir).map_err(BuildError::new)?,
            bin: self.bin.clone(),
            package: self.package.clone(),
            flags: self.flags.clone(),
            // The host's platform by default is cargo's default target: no --target.
            platform: cx.explicit_platform.then(|| platform.clone()),
        };
        build(&spec).map_err(BuildError::new)
    }
}

/// The directory of the Cargo.toml that `dir` belongs to: `dir`'s own, else the nearest
/// parent's, as cargo itself looks (`binpack cargo src/` works).
pub fn manifest_dir(dir: &Path) -> Result<PathBuf, CargoError> {
    if !dir.is_dir() {
        return Err(CargoError::NoManifest(dir.to_path_buf()));
    }
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let found = abs.ancestors().find(|d| d.join("Cargo.toml").is_file());
    // Keep the user's spelling when the directory itself holds it: messages name their path.
    match found {
        Some(d) if d == abs => Ok(dir.to_path_buf()),
        Some(d) => Ok(d.to_path_buf()),
        None => Err(CargoError::NoManifest(dir.to_path_buf())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_found_from_a_subdirectory() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("Cargo.toml"), "[package]\n").unwrap();
        std::fs::create_dir_all(tmp.path().join("src/bin")).unwrap();
        assert_eq!(manifest_dir(tmp.path()).unwrap(), tmp.path());
        let from_src = manifest_dir(&tmp.path().join("src/bin")).unwrap();
        assert_eq!(from_src, std::path::absolute(tmp.path()).unwrap());
    }

    #[test]
    fn no_manifest_names_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let e = manifest_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains(&tmp.path().display().to_string()), "{e}");
        assert!(e.contains("no Cargo.toml"), "{e}");
        let missing = manifest_dir(&tmp.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nope"), "{missing}");
    }
}
