//! Content digests: `sha256:<64 lowercase hex>`, checked when parsed, so a digest from a
//! registry or a cache can name a file without escaping its directory.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A sha256 digest, always valid.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid digest {0:?}: expected sha256:<64 hex digits>")]
pub struct BadDigest(pub String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// The digest a hasher has seen.
    pub fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("sha256:{:x}", h.finalize()))
    }

    /// The digest and length of everything `r` yields (a file, streamed).
    pub fn of_reader(r: &mut impl std::io::Read) -> std::io::Result<(Digest, u64)> {
        let mut h = Sha256::new();
        let len = std::io::copy(r, &mut h)?;
        Ok((Digest::from_hasher(h), len))
    }

    pub fn parse(s: &str) -> Result<Digest, BadDigest> {
        let ok = s.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(Digest(s.to_string()))
        } else {
            Err(BadDigest(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The first 12 hex digits, for messages.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    /// `blobs/sha256/<hex>`: where an OCI layout, an archive and binpack's cache keep it.
    pub fn blob_rel(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }

    /// The blob's file under a layout-shaped directory.
    pub fn blob_in(&self, dir: &Path) -> PathBuf {
        dir.join("blobs/sha256").join(self.hex())
    }

    pub fn to_oci(&self) -> oci_spec::image::Digest {
        self.0.parse().expect("a checked sha256 digest parses")
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Digest {
    type Err = BadDigest;
    fn from_str(s: &str) -> Result<Digest, BadDigest> {
        Digest::parse(s)
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = BadDigest;
    fn try_from(d: &oci_spec::image::Digest) -> Result<Digest, BadDigest> {
        Digest::parse(d.as_ref())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_sha256_hex() {
        let d = Digest::of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert_eq!(d.blob_rel(), format!("blobs/sha256/{}", d.hex()));
        for bad in [
            "sha256:../../x",
            "sha256:",
            "sha512:e3b0",
            &d.as_str().to_uppercase(),
            &format!("{d}0"),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
