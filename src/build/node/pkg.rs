//! `--packer pkg`: @yao-pkg/pkg (6.x) makes the executable instead of binpack's SEA writer.
//!
//! - node >= 22: pkg's SEA mode, offline. pkg 6 asks nodejs.org for the node it injects into;
//!   its API takes a local node (`nodePath`) but its CLI passes none. Given an exact version
//!   (`--targets node22.23.3-linux-x64`) it skips the version list, and it reuses a node it
//!   finds extracted and marked complete in `$HOME/.pkg-cache/sea`: binpack puts the runtime it
//!   already has there, in a private HOME for that run. pkg itself runs on that node (pkg's
//!   SEA mode needs node >= 22 to run). The project's package.json is given as pkg's config so
//!   pkg walks the dependencies (its "enhanced" SEA mode) rather than taking the entry alone.
//! - node < 22: pkg's classic mode, which needs pkg-fetch's patched node binaries (downloaded
//!   from GitHub, or found in PKG_CACHE_PATH): pkg tries, and its failure is explained.

use super::runtime::major;
use super::{Ctx, Made, NodeError};
use crate::build::toolchain::{file_error, temp_dir, Exec, Show};
use crate::support::cleanup::Tracked;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// One pkg run.
pub struct PkgJob<'a> {
    /// The directory holding package.json (or the entry's directory).
    pub project: &'a Path,
    /// The entry, relative to `project`.
    pub entry: &'a Path,
    /// The node runtime binpack has (host or official), for the host's architecture.
    pub node: &'a Path,
    /// Its version, `v22.23.3`.
    pub version: &'a str,
    /// Where the executable goes (the host's platform: the CLI refuses another).
    pub out: &'a Path,
}

/// Runs pkg through `host`; its output goes to stderr.
pub(super) fn pack(host: &dyn Exec, job: &PkgJob) -> Result<(), NodeError> {
    let pkg = find_pkg(job.project)?;
    // pkg runs in the project: a relative node path (a relative BINPACK_CACHE) would not resolve.
    let node = &job
        .node
        .canonicalize()
        .map_err(file_error("resolving the node runtime", job.node))?;
    let version = job.version.trim_start_matches('v');
    let arch = pkg_arch();
    let mut args: Vec<OsString> = vec![job.entry.into()];
    if job.project.join("package.json").is_file() {
        args.extend(["--config", "package.json"].map(OsString::from));
    }
    // pkg is a node script: the runtime's directory first on PATH makes it run on that node.
    let mut env = vec![("PATH", path_with(node)?)];
    let sea = major(version) >= 22;
    let home = match sea {
        true => Some(Tracked::new(temp_dir()?)),
        false => None,
    };
    let target = match &home {
        Some(home) => {
            seed_home(home.path(), node, version, arch)?;
            env.push(("HOME", utf8(home.path().as_os_str())?));
            args.push("--sea".into());
            format!("node{version}-linux-{arch}")
        }
        None => format!("node{}-linux-{arch}", major(version)),
    };
    args.extend(["--targets".into(), target.into(), "--output".into()]);
    args.push(job.out.into());
    let ran = host.run(pkg.as_os_str(), &args, job.project, &env, Show::All);
    let status = ran.map_err(|e| NodeError::Pkg(e.to_string()))?.status;
    if status.success() && job.out.is_file() {
        return Ok(());
    }
    Err(NodeError::Pkg(if sea {
        format!("pkg --sea failed with node v{version} (its output is above); the default packer (sea) needs nothing more")
    } else {
        format!(
            "pkg failed (its output is above): with node v{version} pkg runs in its classic mode, which needs pkg-fetch's patched node {} binary for linux-{arch}, downloaded from GitHub or built from nodejs.org's source, or found in PKG_CACHE_PATH (~/.pkg-cache); give --node-version 22 or later for pkg's SEA mode, which binpack runs offline with its own node, or use the default packer (sea)",
            major(version)
        )
    }))
}

/// `--packer pkg`: pkg makes the executable from the project and the runtime.
pub(super) fn with_pkg(ctx: &Ctx) -> Result<Made, NodeError> {
    ctx.progress.stage("packing with pkg");
    let exe = ctx.out_dir.join(&ctx.entry.name);
    pack(
        ctx.tools.host,
        &PkgJob {
            project: &ctx.entry.project,
            entry: &ctx.entry.relative,
            node: &ctx.runtime.node,
            version: &ctx.runtime.version,
            out: &exe,
        },
    )?;
    Ok(Made::sea(exe, "packed by pkg (--packer pkg)".into()))
}

/// The project's pkg (node_modules/.bin of it or an ancestor), else `pkg` on PATH.
pub(super) fn find_pkg(project: &Path) -> Result<PathBuf, NodeError> {
    super::entry::own_copy(project, "node_modules/.bin/pkg")
        .or_else(|| which::which("pkg").ok())
        .ok_or_else(|| {
            NodeError::Pkg(
                "--packer pkg: pkg is not installed in the project (npm install --save-dev @yao-pkg/pkg) nor on PATH; the default packer (sea) needs nothing".into(),
            )
        })
}

/// pkg's (and node's) name for the host architecture.
fn pkg_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// PATH with the directory of `node` first.
fn path_with(node: &Path) -> Result<String, NodeError> {
    let dir = node.parent().unwrap_or(Path::new("/")).to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&rest)))
        .map_err(|e| NodeError::Pkg(format!("{}: cannot go on PATH: {e}", node.display())))?;
    utf8(&path)
}

/// A variable's value for [`Exec`], which takes text.
fn utf8(value: &std::ffi::OsStr) -> Result<String, NodeError> {
    value
        .to_str()
        .map(String::from)
        .ok_or_else(|| NodeError::Pkg(format!("{}: not UTF-8", value.to_string_lossy())))
}

/// pkg's SEA download cache, as pkg leaves it after a verified download and extraction of
/// `node-v<version>-linux-<arch>.tar.gz`, with `node` in place of the extracted binary.
fn seed_home(home: &Path, node: &Path, version: &str, arch: &str) -> Result<(), NodeError> {
    let cache = home.join(".pkg-cache/sea");
    let name = format!("node-v{version}-linux-{arch}");
    let bin = cache.join(&name).join("bin");
    std::fs::create_dir_all(&bin).map_err(file_error("creating", &bin))?;
    let link = bin.join("node");
    std::os::unix::fs::symlink(node, &link).map_err(file_error("linking", &link))?;
    let archive = cache.join(format!("{name}.tar.gz"));
    for marker in [
        archive.clone(),
        cache.join(format!("{name}.tar.gz.ok")),
        bin.join("node.ok"),
    ] {
        std::fs::write(&marker, b"").map_err(file_error("writing", &marker))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_home_is_what_pkg_finds() {
        let home = tempfile::tempdir().unwrap();
        let node = home.path().join("node");
        std::fs::write(&node, b"#!/bin/sh\n").unwrap();
        seed_home(home.path(), &node, "22.23.3", "x64").unwrap();
        let sea = home.path().join(".pkg-cache/sea");
        let bin = sea.join("node-v22.23.3-linux-x64/bin/node");
        assert_eq!(
            std::fs::read_link(&bin).unwrap(),
            node.canonicalize().unwrap()
        );
        assert!(sea.join("node-v22.23.3-linux-x64/bin/node.ok").is_file());
        assert!(sea.join("node-v22.23.3-linux-x64.tar.gz.ok").is_file());
        assert_eq!(major("22.23.3"), 22);
        assert_eq!(major("bad"), 0);
    }
}
