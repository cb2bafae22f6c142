//! The stat-identity rule every cache of binpack follows, once: a file is known by its stat
//! identity (kind, device, inode, size, mtime, ctime; a symlink adds its target's); a
//! digest recorded with that identity is trusted while the identity is the same, but only
//! when the identity was taken long enough after the file's last change ([`RACY`], git's
//! racy-index rule); otherwise the file is read again, checked by its digest, and sealed
//! again.

use super::racy_limit_ns;
use crate::support::digest::Digest;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

/// What stat says of a path ("-" when there is nothing there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp(String);

/// Which times a stamp holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// mtime and ctime: any change to the file or its metadata moves the stamp.
    Both,
    /// mtime only, for a file that is hard-linked elsewhere (linking moves its ctime, not its
    /// content).
    Mtime,
}

impl Stamp {
    /// The stamp of `p` and its newest time (ns since the epoch; 0 when absent).
    pub fn of(p: &Path, times: Times) -> (Stamp, i128) {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return (Stamp("-".into()), 0);
        };
        let kind = match () {
            _ if m.is_dir() => 'd',
            _ if m.is_symlink() => 'l',
            _ => 'f',
        };
        let mtime = ns(m.mtime(), m.mtime_nsec());
        let (mut s, mut newest) = match times {
            Times::Both => {
                let ctime = ns(m.ctime(), m.ctime_nsec());
                let (dev, ino, size) = (m.dev(), m.ino(), m.size());
                (
                    format!("{kind} {dev} {ino} {size} {mtime} {ctime}"),
                    mtime.max(ctime),
                )
            }
            Times::Mtime => (
                format!("{kind} {} {} {} {mtime}", m.dev(), m.ino(), m.size()),
                mtime,
            ),
        };
        if m.is_symlink() {
            let (t, n) = match std::fs::metadata(p) {
                Ok(t) => (
                    format!("{} {} {}", t.ino(), t.size(), ns(t.mtime(), t.mtime_nsec())),
                    ns(t.ctime(), t.ctime_nsec()),
                ),
                Err(_) => ("-".into(), 0),
            };
            s = format!("{s} -> {t}");
            newest = newest.max(n);
        }
        (Stamp(s), newest)
    }

    /// The stamp as text, for a key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn ns(s: i64, n: i64) -> i128 {
    s as i128 * 1_000_000_000 + n as i128
}

/// Whether a stamp whose newest time is `newest` (ns), taken at `at`, tells the next change:
/// the file was last changed more than [`RACY`] before. A time in whole seconds is what a file
/// system with one-second timestamps (ext3, HFS+, some network mounts) records: a write later
/// in that second leaves it as it is, so such a stamp settles only once that second is over.
pub fn settled(newest: i128, at: SystemTime) -> bool {
    let grain = if newest % SECOND == 0 { SECOND } else { 0 };
    newest + grain < racy_limit_ns(at)
}

const SECOND: i128 = 1_000_000_000;

/// A file's digest and length with the stamp it had when they were read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub digest: String,
    pub len: u64,
    pub stamp: Stamp,
    /// Whether the stamp was taken long enough after the file's last change to tell the next
    /// change by it; an unsettled seal is checked by reading the file.
    pub settled: bool,
}

impl Seal {
    /// The seal kept at `path`; None when there is none or it is damaged.
    pub fn read(path: &Path) -> Option<Seal> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Keeps the seal at `path`, written whole; what cannot be written only costs the next
    /// run a read of the file.
    pub fn keep(&self, path: &Path) {
        let _ = super::write_file(path, &serde_json::to_vec(self).expect("a seal serializes"));
    }
}

/// The digest and length of `file`: the seal's when the seal is settled and the file's stamp
/// is the one sealed, else read now, with the new seal to keep (None: the old one holds).
pub fn digest(
    file: &Path,
    seal: Option<&Seal>,
    times: Times,
) -> std::io::Result<(Digest, u64, Option<Seal>)> {
    let (stamp, newest) = Stamp::of(file, times);
    if let Some(s) = seal.filter(|s| s.settled && s.stamp == stamp) {
        if let Ok(d) = Digest::parse(&s.digest) {
            return Ok((d, s.len, None));
        }
    }
    let (digest, len) = Digest::of_reader(&mut std::fs::File::open(file)?)?;
    // The stamp taken before the read: a change during the read moves the file's away from it.
    let seal = Seal {
        digest: digest.to_string(),
        len,
        stamp,
        settled: settled(newest, SystemTime::now()),
    };
    Ok((digest, len, Some(seal)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::cache::RACY;

    #[test]
    fn a_seal_is_trusted_once_settled_and_read_again_otherwise() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("blob");
        std::fs::write(&f, "one").unwrap();
        // Just written: read, and sealed unsettled.
        let (first, len, seal) = digest(&f, None, Times::Both).unwrap();
        let seal = seal.unwrap();
        assert_eq!((first.clone(), len), (Digest::of(b"one"), 3));
        assert!(!seal.settled);
        // An unsettled seal is not trusted: the file is read (and resealed) again.
        let (_, _, again) = digest(&f, Some(&seal), Times::Both).unwrap();
        assert!(again.is_some());
        std::thread::sleep(RACY * 2);
        let (_, _, settled) = digest(&f, Some(&seal), Times::Both).unwrap();
        let settled = settled.unwrap();
        assert!(settled.settled);
        // Settled and unchanged: trusted without reading.
        let (trusted, _, none) = digest(&f, Some(&settled), Times::Both).unwrap();
        assert_eq!((trusted, none), (first, None));
        // Changed: read again, whatever the seal said.
        std::fs::write(&f, "two").unwrap();
        let (changed, _, resealed) = digest(&f, Some(&settled), Times::Both).unwrap();
        assert_eq!(changed, Digest::of(b"two"));
        assert!(resealed.is_some());
    }

    /// On a file system with one-second timestamps, a file written at 12.9 s is stamped 12 s;
    /// taken at 12.95 s, the stamp must not be trusted: a write at 12.99 s would keep it.
    #[test]
    fn a_whole_second_stamp_settles_after_its_second() {
        let at = |ns: u64| std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
        let whole = 12 * SECOND;
        assert!(!settled(whole, at(12_950_000_000)));
        assert!(!settled(whole, at(13_020_000_000)));
        assert!(settled(whole, at(13_100_000_000)));
        // Nanosecond stamps keep the RACY rule alone.
        assert!(settled(whole + 1, at(12_100_000_000)));
    }

    #[test]
    fn an_mtime_stamp_ignores_links() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("blob");
        std::fs::write(&f, "x").unwrap();
        let (before, _) = Stamp::of(&f, Times::Mtime);
        let (full, _) = Stamp::of(&f, Times::Both);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::hard_link(&f, d.path().join("link")).unwrap();
        assert_eq!(Stamp::of(&f, Times::Mtime).0, before);
        assert_ne!(Stamp::of(&f, Times::Both).0, full);
    }
}
