//! Which node the executable is made from: the host's (its `node --version` remembered by
//! the binary's identity), a toolchain image's, or an official one fetched with npm, verified
//! against the registry's integrity and cached by version; and the stripped copy a files
//! layout ships, kept in binpack's cache.

use super::entry::Entry;
use super::trace_cache::{binpack_identity, identity, key};
use super::{run_script, run_tool, tool_err, Ctx, NodeBuild, NodeError, Tools, HERE};
use crate::build::toolchain::{cache_entry, file_error, pinned, Exec, Runner};
use crate::sea;
use crate::support::cache;
use crate::support::cache::stamp::{self, settled, Seal, Stamp, Times};
use crate::support::digest::Digest;
use crate::support::progress::Progress;
use sha2::{Digest as _, Sha512};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The node runtime to build from: `--node-version`'s official one, else the toolchain's own
/// node; another platform than the host's always gets the official node (of the same version).
pub(super) fn runtime_for(
    spec: &NodeBuild,
    tools: Tools,
    (runner, entry, out_dir): (&Runner, &Entry, &Path),
    platform: &crate::support::platform::Platform,
    progress: &dyn Progress,
) -> Result<Runtime, NodeError> {
    let native = *platform == crate::support::platform::Platform::host();
    let own = || match runner {
        Runner::Host => host_node_in(tools.host, spec.cache.as_deref()),
        Runner::Container { .. } => image_node(tools.run, runner, entry, out_dir),
    };
    let official_node = |v: &str| official_node(tools.host, v, platform);
    match &spec.node_version {
        Some(v) => {
            progress.stage(&format!("fetching the official node {v} with npm"));
            official_node(v)
        }
        None if native => own(),
        None => {
            let v = own()?.version;
            progress.stage(&format!(
                "fetching the official node {v} for {platform} with npm"
            ));
            official_node(&v)
        }
    }
}

/// A node runtime to build the executable from.
#[derive(Debug)]
pub(super) struct Runtime {
    pub(super) node: PathBuf,
    /// `v20.20.2`
    pub(super) version: String,
    /// `host`, `official, from npm` or `toolchain image`.
    pub(super) origin: String,
}

impl Runtime {
    pub(super) fn major(&self) -> u32 {
        major(&self.version)
    }
}

/// The host's node, its version kept in the cache `root` (when given) while the binary is
/// the same file.
pub(super) fn host_node_in(host: &dyn Exec, root: Option<&Path>) -> Result<Runtime, NodeError> {
    let node = which::which("node").map_err(|_| NodeError::NodeNotFound)?;
    let version = [OsString::from("--version")];
    let ask = || {
        run_tool(
            host,
            node.as_os_str(),
            &version,
            Path::new(HERE),
            "node --version",
        )
    };
    let version = match root {
        Some(root) => remembered(root, "node --version", &node, ask)?,
        None => ask()?,
    };
    Ok(Runtime {
        node,
        version,
        origin: "host".into(),
    })
}

fn npm() -> Result<PathBuf, NodeError> {
    which::which("npm").map_err(|_| NodeError::NpmNotFound("fetch node runtimes and esbuild"))
}

/// The official node `version` for `platform`, from the npm package
/// `node-linux-<arch>`: resolved to an exact version, verified against the registry's sha512
/// integrity, extracted, and cached by version.
fn official_node(
    host: &dyn Exec,
    version: &str,
    platform: &crate::support::platform::Platform,
) -> Result<Runtime, NodeError> {
    let arch = platform.arch.clone();
    let package = pinned()["node"]["packages"][arch.as_str()]
        .as_str()
        .map(String::from)
        .ok_or_else(|| {
            tool_err(
                "--node-version",
                format!("no official node package for {arch}"),
            )
        })?;
    let npm = npm()?;
    let spec = format!("{package}@{}", version.trim_start_matches('v'));
    let npm = |args: &[&OsStr], what: &str| {
        let args: Vec<OsString> = args.iter().map(|a| a.to_os_string()).collect();
        run_tool(host, npm.as_os_str(), &args, Path::new(HERE), what)
    };
    let exact = exact_version(&npm, &spec)?;
    let dir = cache::dir()
        .join("node")
        .join(format!("{exact}-linux-{arch}"));
    let dir = cache_entry(&dir, |tmp| -> Result<(), NodeError> {
        let pinned = format!("{package}@{exact}");
        let view = format!("npm view {pinned}");
        let integrity = npm(&os(&["view", &pinned, "dist.integrity"]), &view)?;
        let tgz = npm_pack(host, &pinned, tmp)?;
        let ours = sha512_integrity(&tgz)?;
        if ours != integrity {
            return Err(NodeError::Integrity {
                version: exact.clone(),
                expected: integrity,
            });
        }
        extract_node(&tgz, &tmp.join("node"))?;
        std::fs::remove_file(&tgz).map_err(file_error("removing", &tgz))?;
        Ok(())
    })?;
    Ok(Runtime {
        node: dir.join("node"),
        version: format!("v{exact}"),
        origin: "official, from npm".into(),
    })
}

/// `npm pack SPEC` into `dir`: the tarball's path.
pub(super) fn npm_pack(host: &dyn Exec, spec: &str, dir: &Path) -> Result<PathBuf, NodeError> {
    let mut args: Vec<OsString> = ["pack", "--silent", spec, "--pack-destination"]
        .map(OsString::from)
        .to_vec();
    args.push(dir.as_os_str().to_owned());
    let npm = npm()?;
    let file = run_tool(
        host,
        npm.as_os_str(),
        &args,
        Path::new(HERE),
        &format!("npm pack {spec}"),
    )?;
    Ok(dir.join(file.lines().last().unwrap_or_default()))
}

/// npm run with these arguments, for this purpose: its stdout.
type Npm<'a> = dyn Fn(&[&OsStr], &str) -> Result<String, NodeError> + 'a;

/// The newest version of the npm package `spec` (a range, or one version) names.
fn exact_version(npm: &Npm, spec: &str) -> Result<String, NodeError> {
    let view = npm(
        &os(&["view", "--json", spec, "version"]),
        &format!("npm view {spec}"),
    )?;
    // One version is a JSON string; a range matching several is an array, newest last.
    let exact = match serde_json::from_str::<serde_json::Value>(&view) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Array(a)) => a
            .last()
            .and_then(|v| v.as_str())
            .map(String::from)
            .unwrap_or_default(),
        _ => String::new(),
    };
    if exact.is_empty() {
        return Err(tool_err(
            "--node-version",
            format!("the npm registry has no {spec}"),
        ));
    }
    Ok(exact)
}

fn os<'a>(args: &[&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(|a| OsStr::new(*a)).collect()
}

/// The npm integrity string (`sha512-<base64>`) of the file `tgz`.
pub(super) fn sha512_integrity(tgz: &Path) -> Result<String, NodeError> {
    use base64::Engine;
    let mut hasher = Sha512::new();
    std::fs::File::open(tgz)
        .and_then(|mut f| io::copy(&mut f, &mut hasher))
        .map_err(file_error("reading", tgz))?;
    Ok(format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
    ))
}

/// Extracts `package/bin/node` from the npm tarball.
fn extract_node(tgz: &Path, dest: &Path) -> Result<(), NodeError> {
    let reading = || file_error("reading", tgz);
    let file = std::fs::File::open(tgz).map_err(reading())?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().map_err(reading())? {
        let mut entry = entry.map_err(reading())?;
        if entry.path().map_err(reading())?.as_ref() == Path::new("package/bin/node") {
            let writing = || file_error("writing", dest);
            let mut out = std::fs::File::create(dest).map_err(writing())?;
            // A failed copy may be the archive's fault or the disk's: io::copy cannot say.
            io::copy(&mut entry, &mut out)
                .map_err(file_error("extracting package/bin/node to", dest))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))
                .map_err(writing())?;
            return Ok(());
        }
    }
    Err(tool_err(
        "unpacking the node package",
        "it has no package/bin/node",
    ))
}

/// The toolchain image's node, copied out beside the build.
pub(super) fn image_node(
    exec: &dyn Exec,
    runner: &Runner,
    entry: &Entry,
    out_dir: &Path,
) -> Result<Runtime, NodeError> {
    let node = out_dir.join(".node");
    let script = format!(
        "set -e; cp \"$(command -v node)\" {}; node --version",
        runner.path(&node).display()
    );
    let version = run_script(exec, &script, &entry.project, "node in the toolchain image")?;
    Ok(Runtime {
        node,
        version,
        origin: "toolchain image".into(),
    })
}

/// Stripped as the sea executable is: ~13 MB less, and the same bytes on every build; kept
/// in the cache for the next build (a toolchain image's node is a new copy every time).
pub(super) fn stripped_node(ctx: &Ctx) -> Result<PathBuf, NodeError> {
    let node = &ctx.runtime.node;
    let strip = |out: &Path| -> Result<(), NodeError> {
        sea::inject::strip(node, out)?;
        Ok(())
    };
    match (ctx.cache, ctx.runner) {
        (Some(root), Runner::Host) => cached_strip(root, node, strip),
        _ => {
            let exe = ctx.out_dir.join("node-stripped");
            strip(&exe)?;
            Ok(exe)
        }
    }
}

/// What `compute` says of the file `of` (`node --version`), kept under the file's identity
/// (a file changed in the last moments is asked every time).
pub(super) fn remembered<E>(
    root: &Path,
    what: &str,
    of: &Path,
    compute: impl FnOnce() -> Result<String, E>,
) -> Result<String, E> {
    let k = key(&[what, &identity(of)]);
    let file = root.join("memo").join(k.hex());
    if let Ok(v) = std::fs::read_to_string(&file) {
        return Ok(v);
    }
    let value = compute()?;
    if settled(Stamp::of(of, Times::Both).1, SystemTime::now()) {
        let _ = crate::support::cache::write_file(&file, value.as_bytes());
    }
    Ok(value)
}

/// The node runtime stripped (see [`crate::sea::inject::strip`]), kept in binpack's cache:
/// one entry per source path, made for the source's identity and binpack's. Its seal holds
/// that key, the stripped file's digest and stamp: the file is trusted by its stamp once the
/// stamp was taken long enough after its last write, else checked against the digest (then
/// sealed again); a damaged or outdated entry is stripped again, replacing the old one.
pub(super) fn cached_strip(
    root: &Path,
    node: &Path,
    strip: impl FnOnce(&Path) -> Result<(), super::NodeError>,
) -> Result<PathBuf, super::NodeError> {
    // /2: the seal is the shared stat-identity rule's (crate::support::cache::stamp).
    let kd = key(&["binpack-strip/2", &identity(node), &binpack_identity()]);
    let slot = Digest::of(node.as_os_str().as_encoded_bytes());
    let slot = root.join("stripped").join(slot.hex());
    // One directory per key: a build of another node or binpack never removes this one.
    let dir = slot.join(kd.hex());
    let (exe, seal_at) = (dir.join("node"), dir.join("seal"));
    if let Some(seal) = Seal::read(&seal_at) {
        let checked = stamp::digest(&exe, Some(&seal), Times::Both).ok();
        if let Some((_, _, new)) = checked.filter(|(d, ..)| d.as_str() == seal.digest) {
            if let Some(new) = new {
                new.keep(&seal_at);
            }
            return Ok(exe);
        }
    }
    let fail = |doing| crate::build::toolchain::file_error(doing, &dir);
    std::fs::create_dir_all(&dir).map_err(fail("creating the cache entry"))?;
    // Stripped beside it, then renamed over it: a run reading the old file keeps it whole.
    let tmp = dir.join(format!(".node.{}", std::process::id()));
    if let Err(e) = strip(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &exe).map_err(fail("renaming into the cache entry"))?;
    if let Ok((_, _, Some(seal))) = stamp::digest(&exe, None, Times::Both) {
        seal.keep(&seal_at);
    }
    sweep_stale(&slot, kd.hex());
    Ok(exe)
}

/// Removes, best effort, the stripped nodes of other keys under `slot` that nothing touched
/// for a day (a node or binpack since replaced).
fn sweep_stale(slot: &Path, keep: &str) {
    let day = std::time::Duration::from_secs(24 * 3600);
    for e in std::fs::read_dir(slot).into_iter().flatten().flatten() {
        let old = e.metadata().ok().and_then(|m| m.modified().ok());
        let old = old
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if e.file_name() != keep && old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The major version of `v20.20.2` or `20.20.2` (0 when it is not a version).
pub(super) fn major(version: &str) -> u32 {
    (version.trim_start_matches('v').split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_package_is_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let gone = p.join("node-v1.tgz");
        let err = extract_node(&gone, &p.join("node"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "reading {}: No such file or directory (os error 2)",
                gone.display()
            )
        );
    }

    #[test]
    fn the_stripped_node_is_made_once_and_again_when_damaged_or_changed() {
        let d = tempfile::tempdir().unwrap();
        let node = d.path().join("node");
        std::fs::write(&node, "v1").unwrap();
        let root = d.path().join("cache");
        let strip = |from: &Path| {
            let text = std::fs::read_to_string(from).unwrap();
            move |out: &Path| {
                std::fs::write(out, format!("stripped {text}")).unwrap();
                Ok(())
            }
        };
        let exe = cached_strip(&root, &node, strip(&node)).unwrap();
        assert_eq!(std::fs::read_to_string(&exe).unwrap(), "stripped v1");
        let again = cached_strip(&root, &node, |_| panic!("stripped again")).unwrap();
        assert_eq!(again, exe);
        std::fs::write(&exe, "damaged!!!!").unwrap();
        let healed = cached_strip(&root, &node, strip(&node)).unwrap();
        assert_eq!(std::fs::read_to_string(&healed).unwrap(), "stripped v1");
        std::fs::write(&node, "v2").unwrap();
        let newer = cached_strip(&root, &node, strip(&node)).unwrap();
        assert_eq!(std::fs::read_to_string(&newer).unwrap(), "stripped v2");
        assert_eq!(std::fs::read_dir(root.join("stripped")).unwrap().count(), 1);
    }
}
