//! Which repositories of a registry hold a blob, as far as binpack has seen (pushed there, or
//! pulled a base from there), so a push can mount instead of upload: one append-only file per
//! registry, lines `digest repository`. Appends of one short line are atomic, so concurrent
//! binpack processes do not tear it.

use crate::support::cache;
use crate::support::digest::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};

fn file(registry: &str) -> PathBuf {
    let safe: String = registry
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cache::dir().join("pushed").join(format!("{safe}.log"))
}

/// Records that `repository` of `registry` holds `digest` (best effort: a record only saves
/// an upload later).
pub fn add(registry: &str, digest: &Digest, repository: &str) {
    if repos_with(registry, digest).iter().any(|r| r == repository) {
        return;
    }
    let path = file(registry);
    let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")));
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = f.write_all(format!("{digest} {repository}\n").as_bytes());
    }
}

/// The repositories of `registry` known to hold `digest`.
pub fn repos_with(registry: &str, digest: &Digest) -> Vec<String> {
    std::fs::read_to_string(file(registry))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(d, _)| *d == digest.as_str())
        .map(|(_, r)| r.to_string())
        .collect()
}
