//! What a run killed with SIGKILL left behind (no handler runs then): its staging directory
//! under TMPDIR and the `.binpack-*.tmp` temporaries beside an output. Their names carry the
//! writer's pid and pid namespace; the next run removes those whose writer is gone, and
//! nothing without binpack's pattern.

use crate::support::cleanup::{effective_uid, pid_namespace};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Longer than any run: past this a temporary is stale whatever its pid says (pids are reused,
/// and a writer in another pid namespace, on a shared volume, cannot be looked up).
const STALE: Duration = Duration::from_secs(24 * 60 * 60);

/// Removes stale staging directories (`binpack-<pid>-<ns>-XXXXXX`) of this user under TMPDIR.
pub fn sweep_staging() {
    sweep_dir(&std::env::temp_dir(), "binpack-", "");
}

/// Removes stale `.binpack-<pid>-<ns>-XXXXXX.tmp` temporaries beside `dest`, and inside it when it
/// is a layout directory (its index.json and blobs are written through them too).
pub fn sweep_beside(dest: &Path) {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    sweep_dir(parent, ".binpack-", ".tmp");
    if dest.join("oci-layout").is_file() {
        sweep_dir(dest, ".binpack-", ".tmp");
        sweep_dir(&dest.join("blobs/sha256"), ".binpack-", ".tmp");
    }
}

pub(crate) fn sweep_dir(dir: &Path, prefix: &str, suffix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let (uid, ns) = (effective_uid(), pid_namespace());
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(writer) = name.to_str().and_then(|n| writer_of(n, prefix, suffix)) else {
            continue;
        };
        // Another user's is not ours to judge (and in a sticky /tmp not ours to remove).
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let path = entry.path();
        if Some(meta.uid()) != uid || !stale(last_change(&path, &meta, 3), writer, ns) {
            continue;
        }
        let _ = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
}

/// (pid, pid namespace) from `<prefix><pid>-<ns>-<6 letters or digits><suffix>`, the last
/// part tempfile's random one.
fn writer_of(name: &str, prefix: &str, suffix: &str) -> Option<(u32, u64)> {
    let rest = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    let mut parts = rest.split('-');
    let (pid, ns, random) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let alnum = random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric());
    if parts.next().is_some() || !alnum || !digits(pid) || !digits(ns) {
        return None;
    }
    Some((pid.parse().ok()?, ns.parse().ok()?))
}

/// The newest modification time in `path` (a live writer keeps touching the file it writes,
/// which in a staging directory is a level or two down).
fn last_change(path: &Path, meta: &fs::Metadata, depth: u32) -> SystemTime {
    let own = meta.modified().unwrap_or_else(|_| SystemTime::now());
    if !meta.is_dir() || depth == 0 {
        return own;
    }
    let Ok(entries) = fs::read_dir(path) else {
        return own;
    };
    entries
        .flatten()
        .filter_map(|e| Some((e.path(), e.path().symlink_metadata().ok()?)))
        .map(|(p, m)| last_change(&p, &m, depth - 1))
        .fold(own, SystemTime::max)
}

/// Stale: its writer, in our pid namespace, is gone; or it is older than any run.
fn stale(changed: SystemTime, (pid, its_ns): (u32, u64), ns: u64) -> bool {
    let age = SystemTime::now()
        .duration_since(changed)
        .unwrap_or_default();
    let gone = its_ns == ns
        && ns != 0
        && pid != std::process::id()
        && !Path::new("/proc").join(pid.to_string()).exists();
    gone || age >= STALE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_binpack_names_name_a_writer() {
        let w = |n: &str, p: &str, s: &str| writer_of(n, p, s);
        assert_eq!(
            w(".binpack-12-99-aB3xyz.tmp", ".binpack-", ".tmp"),
            Some((12, 99))
        );
        assert_eq!(w("binpack-7-5-abcdef", "binpack-", ""), Some((7, 5)));
        for other in [
            ".binpack-abcdef.tmp",
            ".binpack-12-abcdef.tmp",
            ".binpack-12-99-abc.tmp",
            ".binpack-12-99-abcdef",
            ".binpack-12-99-abcdef-x.tmp",
        ] {
            assert_eq!(w(other, ".binpack-", ".tmp"), None, "{other}");
        }
        for other in ["binpack-cache", "binpack-go-abcdef", "binpack-12-ab-def"] {
            assert_eq!(w(other, "binpack-", ""), None, "{other}");
        }
    }
}
