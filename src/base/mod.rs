//! The base: `choose` decides it from the ELF (the policy), this module resolves it (the
//! library closure from a root, or a pulled image), `closure` resolves libraries as the
//! loader would (`root` resolving a root's paths as the kernel would, with the root as `/`),
//! `packages` and `rootfs` say what a root holds (package databases, the
//! essentials every image carries), `zoneinfo` the time zone files. It reads roots and pulled
//! bases; it runs no program and writes no output.
//!
//! The resolve-base stage: from the base choice to what the base brings: nothing (scratch),
//! the binary's library closure from its root, or a pulled image. When an image cannot be had
//! and the choice has a fallback (musl -> alpine, offline), the closure serves instead, with a
//! note. Nothing else decides the base.

pub mod choose;
pub mod closure;
pub mod packages;
pub mod root;
pub mod rootfs;
pub mod zoneinfo;

use crate::base::choose::{Base, Choice};
use crate::build::Artifact;
use crate::elf::inspect::Linkage;
use crate::registry::pull::{self, PullError, PulledBase};
use crate::registry::RegistryOptions;
use crate::support::progress::Progress;
use choose::Plan;
use closure::{ClosureError, Origin, Resolved};
use std::path::Path;

/// What the base brings.
#[derive(Clone, Debug)]
pub enum BaseContent {
    Scratch,
    /// The interpreter and libraries, to copy from the artifact's root.
    Closure(Vec<Resolved>),
    Image(Box<PulledBase>),
}

/// The base as decided and resolved.
#[derive(Clone, Debug)]
pub struct ResolvedBase {
    pub choice: Choice,
    pub content: BaseContent,
    /// Things worth knowing (a fallback taken).
    pub notes: Vec<String>,
}

impl ResolvedBase {
    pub fn image(&self) -> Option<&PulledBase> {
        match &self.content {
            BaseContent::Image(b) => Some(b),
            _ => None,
        }
    }

    pub fn libraries(&self) -> &[Resolved] {
        match &self.content {
            BaseContent::Closure(l) => l,
            _ => &[],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error(transparent)]
    Closure(#[from] ClosureError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error("cannot read the base's layer {}: {source}", path.display())]
    ReadLayer {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the base {base} cannot run {program}: it is a {libc} dynamic program and the base has no {}; the container would fail with `exec ...: no such file or directory`. Use --base closure (the default for it: exactly the loader and libraries it needs, from --root), a base that has them, or build it static", missing.join(", "))]
    Lacks {
        base: String,
        program: String,
        libc: &'static str,
        missing: Vec<String>,
    },
}

/// Resolves the base `plan` chose for `artifact`, run as `entrypoint`.
pub fn resolve(
    plan: &Plan,
    artifact: &Artifact,
    entrypoint: &str,
    registry: &RegistryOptions,
    progress: &dyn Progress,
) -> Result<ResolvedBase, BaseError> {
    let mut notes = Vec::new();
    let mut choice = plan.choice.clone();
    if let Base::Image(r) = &choice.base {
        progress.stage(&format!("pulling the base {r}"));
        match pull::pull(r, &plan.platform, registry) {
            Ok(b) => {
                check_runs_on(&b, &plan.linkage, entrypoint)?;
                notes.extend(b.notes.iter().cloned());
                return Ok(resolved(choice, BaseContent::Image(Box::new(b)), notes));
            }
            Err(e) => match choice.fallback.take() {
                Some(reason) => {
                    notes.push(format!(
                        "the base {r} could not be had ({e}); using the closure instead"
                    ));
                    choice = Choice {
                        base: Base::Closure,
                        reason,
                        fallback: None,
                    };
                }
                None => return Err(e.into()),
            },
        }
    }
    let content = match choice.base {
        Base::Closure => {
            if let Some(note) = foreign_root_note(artifact) {
                notes.push(note);
            }
            progress.stage(&format!(
                "resolving shared libraries in {}",
                artifact.root.display()
            ));
            BaseContent::Closure(closure_of(
                &artifact.root,
                &plan.linkage,
                &artifact.executable,
                entrypoint,
            )?)
        }
        _ => BaseContent::Scratch,
    };
    Ok(resolved(choice, content, notes))
}

/// A dynamic binary built in a container whose filesystem the builder did not export would
/// get this machine's libraries: say so, it may not run.
fn foreign_root_note(artifact: &Artifact) -> Option<String> {
    let toolchain = artifact.provenance.built_on.as_ref()?;
    let in_container = matches!(toolchain, crate::build::BuiltOn::Container { .. });
    (in_container && artifact.root == Path::new("/")).then(|| {
        format!(
            "{} is dynamic but was built in {toolchain}; its libraries come from this machine's /, \
             which may not match the ones it was linked against",
            artifact.name
        )
    })
}

fn resolved(choice: Choice, content: BaseContent, notes: Vec<String>) -> ResolvedBase {
    ResolvedBase {
        choice,
        content,
        notes,
    }
}

/// The interpreter and libraries of `executable` from `root`, as the loader would find them
/// with the executable at `entrypoint` in the image.
pub fn closure_of(
    root: &Path,
    linkage: &Linkage,
    executable: &Path,
    entrypoint: &str,
) -> Result<Vec<Resolved>, ClosureError> {
    let in_root = Origin::root_path_of(root, executable);
    let origin = Origin {
        image_path: entrypoint,
        root_path: in_root.as_deref(),
    };
    closure::resolve(root, linkage, &origin)
}

/// What an image base holds: every path of its merged layers (whiteouts applied), symlinks
/// with their targets, and the few small files binpack reads (users, loader paths).
#[derive(Clone, Debug, Default)]
pub struct BaseFiles {
    entries: std::collections::HashMap<String, BaseEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum BaseEntry {
    Dir,
    File(Option<Vec<u8>>),
    Link(String),
}

/// The small files whose contents are kept: users and groups, the loaders' search paths.
fn keeps_content(path: &str) -> bool {
    matches!(path, "etc/passwd" | "etc/group" | "etc/ld.so.conf")
        || path.starts_with("etc/ld.so.conf.d/")
        || (path.starts_with("etc/ld-musl-") && path.ends_with(".path"))
}

impl BaseFiles {
    /// Reads the layers of `base` from the cache, bottom first.
    pub fn read(base: &PulledBase) -> Result<BaseFiles, BaseError> {
        let mut files = BaseFiles::default();
        for layer in &base.layers {
            let path = PulledBase::blob_path(&layer.digest);
            files
                .add_layer(&path, &layer.media_type)
                .map_err(|source| BaseError::ReadLayer { path, source })?;
        }
        Ok(files)
    }

    fn add_layer(&mut self, blob: &Path, media_type: &str) -> std::io::Result<()> {
        let file = std::io::BufReader::new(std::fs::File::open(blob)?);
        let reader: Box<dyn std::io::Read> = if media_type.ends_with("gzip") {
            Box::new(flate2::read::GzDecoder::new(file))
        } else if media_type.ends_with("zstd") {
            Box::new(zstd::stream::read::Decoder::new(file)?)
        } else {
            Box::new(file)
        };
        let mut tar = tar::Archive::new(reader);
        for entry in tar.entries()? {
            self.add_entry(entry?)?;
        }
        Ok(())
    }

    fn add_entry<R: std::io::Read>(&mut self, mut e: tar::Entry<R>) -> std::io::Result<()> {
        let path = normal(&e.path()?.to_string_lossy());
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if name == ".wh..wh..opq" {
            let prefix = format!("{dir}/");
            self.entries.retain(|p, _| !p.starts_with(&prefix));
            return Ok(());
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            let gone = if dir.is_empty() {
                gone.to_string()
            } else {
                format!("{dir}/{gone}")
            };
            let prefix = format!("{gone}/");
            self.entries
                .retain(|p, _| *p != gone && !p.starts_with(&prefix));
            return Ok(());
        }
        let entry = match e.header().entry_type() {
            tar::EntryType::Directory => BaseEntry::Dir,
            tar::EntryType::Symlink => {
                let target = e.link_name()?.map(|t| t.to_string_lossy().into_owned());
                BaseEntry::Link(target.unwrap_or_default())
            }
            _ if keeps_content(&path) => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(&mut e, 1 << 20), &mut bytes)?;
                BaseEntry::File(Some(bytes))
            }
            _ => BaseEntry::File(None),
        };
        // A layer may list a file without its directories: they exist all the same.
        let mut dir = path.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            self.entries
                .entry(parent.to_string())
                .or_insert(BaseEntry::Dir);
            dir = parent;
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    /// `path` with every symlink on the way followed; None if it is not there.
    fn resolve(&self, path: &str) -> Option<(String, &BaseEntry)> {
        let mut todo: Vec<String> = normal(path).split('/').rev().map(String::from).collect();
        let mut at = String::new();
        let mut hops = 0;
        while let Some(part) = todo.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    at = at
                        .rsplit_once('/')
                        .map_or(String::new(), |(d, _)| d.to_string());
                    continue;
                }
                _ => {}
            }
            let next = if at.is_empty() {
                part
            } else {
                format!("{at}/{part}")
            };
            match self.entries.get(&next)? {
                BaseEntry::Link(target) => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    if target.starts_with('/') {
                        at.clear();
                    }
                    todo.extend(target.split('/').rev().map(String::from));
                }
                _ => at = next,
            }
        }
        self.entries.get(&at).map(|e| (at.clone(), e))
    }

    /// Whether `path` is a file (after symlinks).
    pub fn has_file(&self, path: &str) -> bool {
        matches!(self.resolve(path), Some((_, BaseEntry::File(_))))
    }

    /// The contents of a small file binpack keeps (`/etc/passwd`, ...).
    pub fn contents(&self, path: &str) -> Option<&[u8]> {
        match self.resolve(path)? {
            (_, BaseEntry::File(Some(bytes))) => Some(bytes),
            _ => None,
        }
    }

    /// Directories `dir/*` whose name matches `pred` (the multiarch library directories).
    fn subdirs(&self, dir: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let prefix = format!("{dir}/");
        let mut found: Vec<String> = (self.entries.keys())
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter(|n| !n.contains('/') && pred(n))
            .map(|n| format!("/{dir}/{n}"))
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

/// A tar path as a key: no leading `./` or `/`, no trailing `/`.
fn normal(p: &str) -> String {
    p.trim_start_matches("./").trim_matches('/').to_string()
}

/// Refuses an image base that lacks the loader or a library a dynamic program needs (read
/// from the base's layers). Only the program's own needs are checked, not those of the
/// base's libraries, and a library found through `$ORIGIN` is taken to come with the app.
fn check_runs_on(base: &PulledBase, linkage: &Linkage, program: &str) -> Result<(), BaseError> {
    if linkage.interpreter.is_none() && linkage.needed.is_empty() {
        return Ok(());
    }
    let files = BaseFiles::read(base)?;
    let missing = missing_in(&files, linkage);
    if missing.is_empty() {
        return Ok(());
    }
    Err(BaseError::Lacks {
        base: base.reference.clone(),
        program: program.to_string(),
        libc: linkage.libc().unwrap_or("no libc"),
        missing,
    })
}

/// musl's loader answers these names itself: they are all libc.
const MUSL_BUILTIN: [&str; 7] = ["c", "pthread", "rt", "m", "dl", "util", "xnet"];

/// The loader and the needed libraries `files` does not have, by name.
pub fn missing_in(files: &BaseFiles, linkage: &Linkage) -> Vec<String> {
    let mut missing = Vec::new();
    let musl = linkage.libc() == Some("musl");
    if let Some(interp) = &linkage.interpreter {
        if !files.has_file(interp) {
            missing.push(format!(
                "loader {}",
                crate::support::printable::printable(interp)
            ));
        }
    }
    let run_paths = if linkage.runpath.is_empty() {
        &linkage.rpath
    } else {
        &linkage.runpath
    };
    let origin = run_paths
        .iter()
        .any(|p| p.contains("$ORIGIN") || p.contains("${ORIGIN}"));
    let dirs = search_dirs(files, run_paths, musl);
    for name in &linkage.needed {
        let builtin = (name.strip_prefix("lib").and_then(|n| n.split(".so").next()))
            .is_some_and(|n| MUSL_BUILTIN.contains(&n));
        if (musl && builtin) || origin {
            continue;
        }
        let found = match name.contains('/') {
            true => files.has_file(name),
            false => dirs.iter().any(|d| files.has_file(&format!("{d}/{name}"))),
        };
        if !found {
            missing.push(crate::support::printable::printable(name).to_string());
        }
    }
    missing
}

/// Where the loader looks: the run paths, its configured directories, the defaults.
fn search_dirs(files: &BaseFiles, run_paths: &[String], musl: bool) -> Vec<String> {
    let mut dirs: Vec<String> = run_paths.to_vec();
    for (path, entry) in &files.entries {
        let BaseEntry::File(Some(bytes)) = entry else {
            continue;
        };
        if path.starts_with("etc/ld") {
            let text = String::from_utf8_lossy(bytes);
            let lines = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim());
            dirs.extend(lines.filter(|l| l.starts_with('/')).map(str::to_string));
        }
    }
    if !musl {
        for top in ["lib", "usr/lib"] {
            dirs.extend(files.subdirs(top, |n| n.contains("-linux-")));
        }
    }
    for d in ["/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib"] {
        dirs.push(d.to_string());
    }
    dirs
}
