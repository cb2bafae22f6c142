//! `--sbom FILE`: each image's SPDX document (the bytes the image carries) written beside the
//! other outputs; with several platforms, one file each, named with the platform
//! (`app.linux-arm64-v8.spdx.json` for `app.spdx.json`).

use super::{Emit, EmitError, Outcome, Output};
use crate::support::platform::Platform;
use crate::support::progress::Progress;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub struct SbomFile {
    pub path: PathBuf,
}

impl Output for SbomFile {
    fn describe(&self) -> String {
        format!("writing the SBOM to {}", self.path.display())
    }

    fn destination(&self) -> Option<&Path> {
        Some(&self.path)
    }

    /// A file that exists and is not an SPDX JSON document (a source file named by mistake)
    /// is not replaced.
    fn check(&self) -> Result<(), EmitError> {
        let is_spdx =
            |head: &[u8]| head.starts_with(b"{") && head.windows(12).any(|w| w == b"\"spdxVersion");
        super::replaceable(&self.path, "an SPDX JSON document", is_spdx)
    }

    fn emit(&self, e: &Emit, _: &dyn Progress) -> Result<Outcome, EmitError> {
        let images = e.packed.images();
        let mut written = Vec::new();
        for image in images {
            let digest = &image.manifest_blob.digest;
            let Some((_, doc)) = e.sboms.iter().find(|(d, _)| d == digest) else {
                continue;
            };
            let dest = match images.len() {
                1 => self.path.clone(),
                _ => with_platform(&self.path, &image.platform),
            };
            super::atomic_file(&dest, |mut f| {
                f.write_all(doc).map_err(|source| EmitError::Write {
                    path: dest.clone(),
                    source,
                })
            })?;
            written.push(dest);
        }
        Ok(Outcome::Sbom(written))
    }
}

/// `file` with the platform before its first extension.
fn with_platform(file: &Path, p: &Platform) -> PathBuf {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    let (stem, ext) = match name.find('.') {
        Some(i) => name.split_at(i),
        None => (name.as_str(), ""),
    };
    let mut tag = format!("{}-{}", p.os, p.arch);
    if let Some(v) = &p.variant {
        tag.push_str(&format!("-{v}"));
    }
    file.with_file_name(format!("{stem}.{tag}{ext}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_gets_its_own_file() {
        let arm = Platform::parse("linux/arm64").unwrap();
        let got = with_platform(Path::new("out/app.spdx.json"), &arm);
        assert_eq!(got, PathBuf::from("out/app.linux-arm64-v8.spdx.json"));
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            with_platform(Path::new("sbom"), &amd),
            PathBuf::from("sbom.linux-amd64")
        );
    }
}
