//! What a run killed with SIGKILL left behind (no handler runs then): its staging directory
//! under TMPDIR and the `.binpack-<pid>-*.tmp` temporaries beside an output. The next run
//! removes those whose writer is gone; nothing without binpack's pattern is touched.

use crate::cleanup::effective_uid;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Longer than any run: past this a temporary is stale whatever its pid says (pids are reused).
const STALE: Duration = Duration::from_secs(24 * 60 * 60);
/// A pid we cannot see may be a live writer in another pid namespace (a shared volume): what
/// it writes keeps changing, so a temporary unchanged this long is not being written.
const QUIET: Duration = Duration::from_secs(10 * 60);

/// Removes stale staging directories (`binpack-<pid>-XXXXXX`) of this user under TMPDIR.
pub fn sweep_staging() {
    sweep_dir(&std::env::temp_dir(), "binpack-", "");
}

/// Removes stale `.binpack-<pid>-XXXXXX.tmp` temporaries beside `dest`, and inside it when it
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

fn sweep_dir(dir: &Path, prefix: &str, suffix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let uid = effective_uid();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| pid_of(n, prefix, suffix)) else {
            continue;
        };
        // Another user's is not ours to judge (and in a sticky /tmp not ours to remove).
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let path = entry.path();
        if Some(meta.uid()) != uid || !stale(last_change(&path, &meta, 3), pid) {
            continue;
        }
        let _ = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
}

/// The pid in `<prefix><pid>-<6 letters or digits><suffix>`, tempfile's random part.
fn pid_of(name: &str, prefix: &str, suffix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    let (pid, random) = rest.split_once('-')?;
    let alnum = random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric());
    let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    (alnum && digits).then(|| pid.parse().ok()).flatten()
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

fn stale(changed: SystemTime, pid: u32) -> bool {
    let age = SystemTime::now()
        .duration_since(changed)
        .unwrap_or_default();
    let gone = pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists();
    age >= STALE || (age >= QUIET && gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_binpack_names_carry_a_pid() {
        assert_eq!(
            pid_of(".binpack-12-aB3xyz.tmp", ".binpack-", ".tmp"),
            Some(12)
        );
        assert_eq!(pid_of("binpack-7-abcdef", "binpack-", ""), Some(7));
        for other in [
            ".binpack-abcdef.tmp",
            ".binpack-12-abc.tmp",
            ".binpack-12-abcdef",
            "binpack-cache",
            "binpack-go-abcdef",
            "binpack-12-ab-def",
        ] {
            let (p, s) = if other.starts_with('.') {
                (".binpack-", ".tmp")
            } else {
                ("binpack-", "")
            };
            assert_eq!(pid_of(other, p, s), None, "{other}");
        }
    }
}
