//! What the files layout keeps between builds, in binpack's cache: the traced file list with
//! the esbuild diagnostics that pick whole packages (an unchanged project runs neither
//! esbuild nor the tracer), @vercel/nft's analysis of each file (after a change only the
//! changed files are parsed again), and the stripped node runtime.
//!
//! An entry is valid while every path it was made from, and the directory each is in (a file
//! added beside them changes it), still has the same stat identity: kind, device, inode,
//! size, mtime and ctime. An entry is not kept when one of those paths changed after the
//! build began (its stamp could not tell that change from the next); a damaged entry reads
//! as absent and is written again; entries are written whole (temporary file + rename).

use super::checks::Construct;
use crate::support::cache::stamp::{settled, Stamp, Times};
use crate::support::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The stamp of `p` (mtime and ctime), and its newest time (ns since the epoch).
fn stamp(p: &Path) -> (Stamp, i128) {
    Stamp::of(p, Times::Both)
}

/// Paths with their stamps.
pub type Watch = Vec<(String, Stamp)>;

/// Whether every watched path still has its stamp.
pub fn unchanged(watch: &Watch) -> bool {
    watch.iter().all(|(p, s)| stamp(Path::new(p)).0 == *s)
}

/// `paths` and, inside `project`, the directory each is in (for one that does not exist,
/// each missing directory above it up to the first that exists), stamped; None when one of
/// them changed after `since` (less [`crate::support::cache::RACY`]). Outside the project only the path itself is
/// watched: a node_modules looked for in /tmp is there or not, whatever else /tmp gets.
pub fn watch<'a>(
    paths: impl IntoIterator<Item = &'a str>,
    project: &Path,
    since: SystemTime,
) -> Option<Watch> {
    let mut all = BTreeSet::new();
    for p in paths {
        let p = Path::new(p);
        all.insert(p.to_path_buf());
        let mut dir = p.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(project)) {
            all.insert(d.to_path_buf());
            if d.exists() {
                break;
            }
            dir = d.parent();
        }
    }
    let mut out = Vec::with_capacity(all.len());
    for p in all {
        let (s, newest) = stamp(&p);
        if !settled(newest, since) {
            return None;
        }
        out.push((p.to_string_lossy().into_owned(), s));
    }
    Some(out)
}

/// The key of an entry: what it was made by and from, one part per line.
pub fn key<S: AsRef<str>>(parts: &[S]) -> Digest {
    let parts: Vec<&str> = parts.iter().map(AsRef::as_ref).collect();
    Digest::of(parts.join("\n").as_bytes())
}

/// The stamp of a file for a key (its path and stat identity), "-" when absent.
pub fn identity(p: &Path) -> String {
    format!("{} {}", p.display(), stamp(p).0.as_str())
}

/// binpack's own executable: what it does with a cache entry is in its code.
pub fn binpack_identity() -> String {
    std::env::current_exe()
        .map(|p| identity(&p))
        .unwrap_or_default()
}

/// One file's analysis by nft, as its trace script prints and reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub path: String,
    pub deps: Vec<String>,
    pub imports: Vec<String>,
    pub assets: Vec<String>,
    #[serde(rename = "isESM")]
    pub is_esm: bool,
    /// Every path the analysis looked at, its own file among them.
    #[serde(default)]
    pub probed: Vec<String>,
}

/// A trace as the cache keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct TraceEntry {
    /// What it was made by and from: an entry of another key in the same file is stale.
    key: String,
    files: Vec<String>,
    /// (kind, location, code) of each esbuild diagnostic.
    constructs: Vec<Construct>,
    watch: Watch,
}

/// The analyses of one project, as the cache keeps them.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Analyses {
    key: String,
    entries: Vec<AnalysisEntry>,
}

/// An analysis as the cache keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct AnalysisEntry {
    analysis: Analysis,
    watch: Watch,
}

/// What an unchanged project's trace was.
#[derive(Debug)]
pub struct Known {
    pub files: Vec<String>,
    pub constructs: Vec<Construct>,
}

/// The trace cache of one project, one tracer and one binpack.
pub struct TraceCache {
    /// The mount root: its directories are watched as well as the paths read.
    project: PathBuf,
    trace: PathBuf,
    trace_key: String,
    analyses: PathBuf,
    analysis_key: String,
    /// When the build began: a path changed after that cannot be trusted to its stamp.
    since: SystemTime,
}

impl TraceCache {
    /// `root` is binpack's cache; `trace_key` names everything the trace of `entry` and the
    /// diagnostics depend on, `analysis_key` what nft's analyses do (the tracer, node, the
    /// base). One file per entry and one per project, each replaced when its key changes
    /// (a new binpack or node), so the cache does not grow with every upgrade.
    pub fn new(
        root: &Path,
        (project, entry): (&Path, &Path),
        trace_key: &Digest,
        analysis_key: &Digest,
    ) -> TraceCache {
        let dir = root.join("trace");
        let slot = |p: &Path| Digest::of(p.as_os_str().as_encoded_bytes());
        TraceCache {
            project: project.to_path_buf(),
            trace: dir.join(format!("{}.json", slot(entry).hex())),
            trace_key: trace_key.to_string(),
            analyses: dir.join(format!("analyses-{}.json", slot(project).hex())),
            analysis_key: analysis_key.to_string(),
            since: SystemTime::now(),
        }
    }

    /// The trace, when the cache has one whose every input is unchanged.
    pub fn lookup(&self) -> Option<Known> {
        let entry: TraceEntry = read(&self.trace)?;
        if entry.key != self.trace_key || !unchanged(&entry.watch) {
            return None;
        }
        Some(Known {
            files: entry.files,
            constructs: entry.constructs,
        })
    }

    /// The analyses kept from earlier runs whose inputs are unchanged.
    pub fn seeds(&self) -> Vec<Analysis> {
        let kept: Analyses = read(&self.analyses).unwrap_or_default();
        if kept.key != self.analysis_key {
            return vec![];
        }
        kept.entries
            .into_iter()
            .filter(|e| unchanged(&e.watch))
            .map(|e| e.analysis)
            .collect()
    }

    /// Keeps the analyses (`seeds` reused, `made` now) and the trace, which read `probed`
    /// and `also` (the esbuild inputs, package.json, the lockfile). What cannot be written
    /// only costs the next build its time.
    pub fn store(&self, t: &Trace, made: &[Analysis], seeds: &[Analysis]) {
        let entries: Vec<AnalysisEntry> = seeds
            .iter()
            .chain(made)
            .filter_map(|a| {
                let paths = a.probed.iter().map(String::as_str);
                let watch = watch(paths, &self.project, self.since)?;
                Some(AnalysisEntry {
                    analysis: a.clone(),
                    watch,
                })
            })
            .collect();
        let analyses = Analyses {
            key: self.analysis_key.clone(),
            entries,
        };
        let _ = write(&self.analyses, &analyses);
        let reused = seeds.iter().flat_map(|a| a.probed.iter());
        let paths = t.probed.iter().chain(reused).chain(&t.also);
        let Some(watch) = watch(paths.map(String::as_str), &self.project, self.since) else {
            return;
        };
        let entry = TraceEntry {
            key: self.trace_key.clone(),
            files: t.files.to_vec(),
            constructs: t.constructs.to_vec(),
            watch,
        };
        let _ = write(&self.trace, &entry);
    }
}

/// A finished trace and what it read, for [`TraceCache::store`].
pub struct Trace<'a> {
    pub files: &'a [String],
    pub constructs: &'a [Construct],
    pub probed: &'a [String],
    pub also: Vec<String>,
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn write<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    crate::support::cache::write_file(
        path,
        &serde_json::to_vec(value).map_err(std::io::Error::other)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_watch_sees_changes_additions_and_races() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.js");
        std::fs::write(&a, "1").unwrap();
        let missing = d.path().join("gone/x.js");
        let paths = [a.to_str().unwrap(), missing.to_str().unwrap()];
        // Written just now: too new to be trusted.
        let at = d.path();
        assert!(watch(paths, at, SystemTime::now()).is_none());
        let later = SystemTime::now() + Duration::from_secs(1);
        let w = watch(paths, at, later).unwrap();
        let listed: Vec<&str> = w.iter().map(|(p, _)| p.as_str()).collect();
        assert!(listed.contains(&d.path().to_str().unwrap()), "{listed:?}");
        assert!(listed.contains(&d.path().join("gone").to_str().unwrap()));
        assert!(unchanged(&w));
        // A file added beside them changes their directory.
        std::fs::write(d.path().join("b.js"), "").unwrap();
        assert!(!unchanged(&w));
        let w = watch(paths, at, later + Duration::from_secs(1)).unwrap();
        std::fs::create_dir(d.path().join("gone")).unwrap();
        assert!(!unchanged(&w));
        let w = watch(paths, at, later + Duration::from_secs(1)).unwrap();
        std::fs::write(&a, "2").unwrap();
        assert!(!unchanged(&w));
    }
}
