//! Temporary paths that must not outlive an interrupted run. Drop handlers remove temporaries
//! on errors; a signal skips them, so the CLI's signal handler calls [`remove_all`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Containers a run started, as (engine, name): removed on a signal, so an interrupted build
/// does not go on without us.
static CONTAINERS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Registers a container (started with `--rm`, or removed by its creator when done) for
/// removal on a signal.
pub fn track_container(engine: &str, name: &str) {
    if let Ok(mut c) = CONTAINERS.lock() {
        c.push((engine.to_string(), name.to_string()));
    }
}

/// Keeps a tempfile or tempdir registered for removal on a signal while it lives.
pub struct Tracked<T: AsRef<Path>> {
    inner: Option<T>,
}

impl<T: AsRef<Path>> Tracked<T> {
    pub fn new(inner: T) -> Self {
        if let Ok(mut p) = PENDING.lock() {
            p.push(inner.as_ref().to_path_buf());
        }
        Tracked { inner: Some(inner) }
    }

    pub fn get(&self) -> &T {
        self.inner.as_ref().expect("present until into_inner")
    }

    pub fn path(&self) -> &Path {
        self.get().as_ref()
    }

    /// Stops tracking and hands back the inner value (e.g. to persist it).
    pub fn into_inner(mut self) -> T {
        let inner = self.inner.take().expect("present until into_inner");
        untrack(inner.as_ref());
        inner
    }
}

impl<T: AsRef<Path>> Drop for Tracked<T> {
    fn drop(&mut self) {
        if let Some(inner) = &self.inner {
            untrack(inner.as_ref());
        }
    }
}

fn untrack(path: &Path) {
    if let Ok(mut p) = PENDING.lock() {
        p.retain(|x| x != path);
    }
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once a signal asked the run to stop: the failures that follow (a killed container, a
/// removed directory) are its consequence, not errors to report.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Removes every tracked container and path (called on SIGINT/SIGTERM, just before exiting).
pub fn remove_all() {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    let containers = CONTAINERS
        .lock()
        .map(|mut c| std::mem::take(&mut *c))
        .unwrap_or_default();
    for (engine, name) in containers {
        let _ = std::process::Command::new(engine)
            .args(["rm", "-f", &name])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    let paths = match PENDING.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(_) => return,
    };
    for p in paths {
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// The effective uid of this process: the owner of `/proc/self` (std has no geteuid), else of
/// a file just created in the temporary directory.
pub fn effective_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata("/proc/self") {
        return Some(m.uid());
    }
    let probe = tempfile::NamedTempFile::new().ok()?;
    probe.as_file().metadata().ok().map(|m| m.uid())
}

/// `<pid>-<pid namespace inode>`: this run's part of its temporaries' names, so a later run can
/// tell one whose writer was killed (SIGKILL runs no handler) from one still being written.
pub fn run_tag() -> String {
    format!("{}-{}", std::process::id(), pid_namespace())
}

/// The inode of this process's pid namespace (0 when /proc does not say).
pub fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// The prefix of this run's private directories under TMPDIR (staging, build outputs):
/// `binpack-<pid>-<ns>-`, swept by a later run once the writer is gone.
pub fn private_prefix() -> String {
    format!("binpack-{}-", run_tag())
}

/// The prefix of this run's temporaries beside an output (`.binpack-<pid>-<ns>-`, with the
/// suffix `.tmp`).
pub fn beside_prefix() -> String {
    format!(".binpack-{}-", run_tag())
}

/// The signals that end a run: each is waited for by one thread (`sigwait`), which runs
/// `handler` with the signal's number. Called first thing in `main`, before any other thread
/// starts, so that every thread has them blocked; children get an empty mask from `Command`.
pub fn on_signals(handler: fn(i32)) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || loop {
        if let Ok(sig) = set.wait() {
            handler(sig as i32);
        }
    });
}

/// The exit code for a run ended by `sig`: 128 + its number (130 for SIGINT, 143 for
/// SIGTERM), as shells report it.
pub fn exit_code(sig: i32) -> i32 {
    128 + sig
}

/// Sends SIGTERM to every process this run started, and theirs (npm, esbuild, a compiler):
/// a signal sent to binpack alone (`kill PID`, a CI runner's timeout) must not leave them
/// running. Found by their parent pids in /proc.
pub fn stop_descendants() {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()));
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![std::process::id() as i32];
    let mut i = 0;
    while i < found.len() {
        let of = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == of).map(|(p, _)| *p));
        i += 1;
    }
    for pid in found.into_iter().skip(1) {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
}

/// How long a temporary without its writer's pid (`.tmp-XXXXXX`) is left alone in the cache:
/// a live writer touches it far more often than this.
const UNNAMED_STALE: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Removes the temporaries a killed run left in the cache `dir` (SIGKILL runs no handler):
/// `.binpack-<pid>-<ns>-XXXXXX.tmp` whose writer is gone, and `.tmp-XXXXXX` of ours unchanged
/// for an hour. Looks `depth` levels down (`blobs/sha256/`, `esbuild/<version>/`).
pub fn sweep_cache(dir: &std::path::Path, depth: u32) {
    use std::os::unix::fs::MetadataExt;
    crate::emit::leftovers::sweep_dir(dir, ".binpack-", ".tmp");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let (path, name) = (e.path(), e.file_name());
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        let name = name.to_string_lossy();
        let unnamed = name.strip_prefix(".tmp-").is_some_and(|r| r.len() == 6);
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= UNNAMED_STALE);
        if unnamed && old && Some(meta.uid()) == effective_uid() {
            let _ = match meta.is_dir() {
                true => std::fs::remove_dir_all(&path),
                false => std::fs::remove_file(&path),
            };
        } else if meta.is_dir() && depth > 0 && !name.starts_with('.') {
            sweep_cache(&path, depth - 1);
        }
    }
}
