//! Native addons delivered as platform-specific optional dependencies: lightningcss loads
//! `lightningcss-linux-x64-gnu`, @parcel/watcher `@parcel/watcher-linux-x64-glibc`, by a
//! name computed at run time that the tracer cannot follow. npm installs only the host's. For
//! each shipped package whose optional dependencies carry `os`/`cpu` (a platform package), the
//! one for the target platform is shipped whole; for another platform than the host's, the
//! host's is left out and the target's is fetched from npm at the version the lockfile holds,
//! verified against its integrity (as binpack fetches node itself), or refused by name.

use super::checks::{lexical, Construct, Kind};
use super::runtime::{npm_pack, sha512_integrity};
use super::{trace, Ctx, NodeError};
use crate::build::toolchain::{cache_entry, file_error};
use crate::support::platform::Platform;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What the target platform's optional packages add to (and take from) the files layout.
#[derive(Debug, Default)]
pub(super) struct Platforms {
    /// Files of installed packages, relative to the mount root.
    pub(super) add: Vec<String>,
    /// Package directories (relative to the mount root) built for another platform.
    pub(super) drop: Vec<String>,
    /// Files fetched from npm: (path relative to the mount root, where it is on the host).
    pub(super) fetched: Vec<(String, PathBuf)>,
    pub(super) notes: Vec<String>,
}

/// npm's `os`/`cpu`/`libc` of an installed package.
#[derive(Debug, Default)]
struct Target {
    os: Vec<String>,
    cpu: Vec<String>,
    libc: Vec<String>,
}

impl Target {
    fn of(manifest: &Value) -> Target {
        let list = |k: &str| -> Vec<String> {
            let a = manifest[k].as_array().cloned().unwrap_or_default();
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        Target {
            os: list("os"),
            cpu: list("cpu"),
            libc: list("libc"),
        }
    }

    fn platform_specific(&self) -> bool {
        !self.os.is_empty() || !self.cpu.is_empty()
    }

    /// Whether it runs on linux/`cpu` with glibc (node's official runtime).
    fn fits(&self, cpu: &str) -> bool {
        let allows = |list: &[String], v: &str| {
            let yes: Vec<&String> = list.iter().filter(|x| !x.starts_with('!')).collect();
            let no = list.iter().any(|x| x.strip_prefix('!') == Some(v));
            !no && (yes.is_empty() || yes.iter().any(|x| *x == v))
        };
        allows(&self.os, "linux") && allows(&self.cpu, cpu) && allows(&self.libc, "glibc")
    }
}

/// npm's name for the platform's CPU (`x64` for amd64).
pub(super) fn npm_cpu(platform: &Platform) -> &str {
    match platform.arch.as_str() {
        "amd64" => "x64",
        "386" => "ia32",
        a => a,
    }
}

/// Whether an optional dependency's name says it is for linux/`cpu` with glibc
/// (`lightningcss-linux-arm64-gnu`, `@esbuild/linux-arm64`), for one not installed.
pub(super) fn named_for(name: &str, cpu: &str) -> bool {
    let words: Vec<&str> = name.split(['-', '/', '@', '.']).collect();
    words.contains(&"linux") && words.contains(&cpu) && !name.contains("musl")
}

/// For each bundled package (`inputs`, relative to `project`) with an installed platform
/// package among its optional dependencies, a native addon construct: a single executable
/// cannot hold it, and the require that loads it is computed, so esbuild says nothing of it.
pub(super) fn addon_constructs(project: &Path, inputs: &[String]) -> Vec<Construct> {
    let mut parents: BTreeSet<String> = inputs
        .iter()
        .filter_map(|f| trace::package_dir(f))
        .collect();
    // The project itself (a package's own bin packed from its directory: @biomejs/biome).
    parents.insert(String::new());
    let mut out = Vec::new();
    for parent in parents {
        let abs = lexical(&project.join(&parent));
        let shown = Path::new(&parent).join("package.json");
        let manifest = abs.join("package.json");
        let Some(optional) = read_json(&manifest).and_then(|m| {
            m["optionalDependencies"]
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
        }) else {
            continue;
        };
        let rel = abs.strip_prefix("/").unwrap_or(&abs);
        let platform_specific = |name: &String| {
            let dir = installed_at(Path::new("/"), &path(rel), name)?;
            let m = read_json(&Path::new("/").join(dir).join("package.json"))?;
            Target::of(&m).platform_specific().then(|| name.clone())
        };
        if let Some(name) = optional.iter().find_map(platform_specific) {
            out.push(Construct {
                kind: Kind::NativeAddon,
                location: path(&shown),
                code: format!("optionalDependencies: {name} (for each platform)"),
            });
        }
    }
    out
}

/// The platform packages of the packages `files` (relative to the mount root) belong to.
pub(super) fn platform_packages(
    ctx: &Ctx,
    files: &BTreeSet<String>,
) -> Result<Platforms, NodeError> {
    let mut out = Platforms::default();
    let mut parents: BTreeSet<String> =
        files.iter().filter_map(|f| trace::package_dir(f)).collect();
    // The app's own optional dependencies too (the mount root's package.json).
    parents.insert(String::new());
    for parent in &parents {
        let Some(manifest) = read_json(&ctx.mount.join(parent).join("package.json")) else {
            continue;
        };
        let Some(optional) = manifest["optionalDependencies"].as_object() else {
            continue;
        };
        let names: Vec<&String> = optional.keys().collect();
        for_parent(ctx, parent, &names, files, &mut out)?;
    }
    Ok(out)
}

/// One package's optional dependencies: ship the installed ones that fit, drop those that do
/// not, fetch the target's when none fits.
fn for_parent(
    ctx: &Ctx,
    parent: &str,
    names: &[&String],
    files: &BTreeSet<String>,
    out: &mut Platforms,
) -> Result<(), NodeError> {
    let cpu = npm_cpu(ctx.platform);
    let mut installed = Vec::new();
    for name in names {
        let Some(dir) = installed_at(ctx.mount, parent, name) else {
            continue;
        };
        let target = read_json(&ctx.mount.join(&dir).join("package.json"))
            .map(|m| Target::of(&m))
            .unwrap_or_default();
        if target.platform_specific() {
            installed.push((name.as_str(), dir, target.fits(cpu)));
        }
    }
    // Not a package with platform builds (none installed, none named for this platform: an
    // install with --omit=optional still names them).
    if installed.is_empty() && !names.iter().any(|n| named_for(n, cpu)) {
        return Ok(());
    }
    let who = if parent.is_empty() { "the app" } else { parent };
    for (name, dir, fits) in &installed {
        if !fits {
            out.drop.push(dir.clone());
            continue;
        }
        let all = trace::package_files(ctx.mount, dir)?;
        // Another parent (sharp and @img/sharp-linux-x64 both name libvips) may have added it.
        let had = |f: &String| files.contains(f) || out.add.contains(f);
        let new = all.iter().filter(|f| !had(f)).count();
        if new > 0 {
            out.notes.push(format!(
                "{dir} is shipped whole ({new} more files): {who} loads its native code from this optional dependency, {name}, by a name the tracer cannot follow"
            ));
        }
        out.add.extend(all);
    }
    if installed.iter().any(|(_, _, fits)| *fits) {
        return Ok(());
    }
    // Beside the host's (the node_modules directory it is installed in), else in the
    // node_modules directory holding the package that names it.
    let beside = match installed.first() {
        Some((name0, dir0, _)) => PathBuf::from(dir0.strip_suffix(name0).unwrap_or(dir0)),
        None => modules_of(parent),
    };
    let wanted = names.iter().filter(|n| named_for(n, cpu));
    for name in wanted {
        let rel = beside.join(name.as_str());
        let fetched = fetch(ctx, parent, name)?;
        let n = fetched.len();
        for (sub, cached) in fetched {
            let at = rel.join(sub);
            out.fetched
                .push((path(&at), laid_out(ctx.out_dir, &at, &cached)?));
        }
        out.notes.push(format!(
            "{} is fetched from npm for {} ({n} files): {who} loads its native code from it, and npm did not install it",
            path(&rel),
            ctx.platform
        ));
    }
    Ok(())
}

/// The node_modules directory `parent` (a package directory, or "" for the app) is
/// installed in, where node finds its dependencies when nothing nearer has them.
fn modules_of(parent: &str) -> PathBuf {
    match parent.rfind("node_modules/") {
        Some(at) => PathBuf::from(&parent[..at + "node_modules/".len()]),
        None => PathBuf::from("node_modules"),
    }
}

/// A fetched file linked (else copied) to `at` under the build's own directory, so the
/// fetched packages lie beside each other as in the image: an addon's `$ORIGIN/../..` run
/// path (sharp's libvips) resolves there.
fn laid_out(out_dir: &Path, at: &Path, cached: &Path) -> Result<PathBuf, NodeError> {
    let to = out_dir.join("platform-packages").join(at);
    let dir = to.parent().unwrap_or(out_dir);
    std::fs::create_dir_all(dir).map_err(file_error("creating", dir))?;
    if std::fs::hard_link(cached, &to).is_err() {
        std::fs::copy(cached, &to).map_err(file_error("copying to", &to))?;
    }
    Ok(to)
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn read_json(file: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()
}

/// Where node finds `name` from the package at `parent`: the nearest `node_modules/<name>`
/// from it up to the mount root (relative to it).
fn installed_at(mount: &Path, parent: &str, name: &str) -> Option<String> {
    Path::new(parent)
        .ancestors()
        .filter(|d| d.file_name().is_none_or(|n| n != "node_modules"))
        .map(|d| d.join("node_modules").join(name))
        .find(|d| mount.join(d).join("package.json").is_file())
        .map(|d| path(&d))
}

/// The version and integrity the lockfile holds for `name`.
fn locked(mount: &Path, parent: &str, name: &str) -> Option<(String, String)> {
    let lock = read_json(&mount.join("package-lock.json"))?;
    let keys = [
        format!("{parent}/node_modules/{name}"),
        format!("node_modules/{name}"),
    ];
    let entry = keys
        .iter()
        .map(|k| &lock["packages"][k])
        .find(|e| e.is_object())?;
    let field = |k: &str| entry[k].as_str().map(String::from);
    Some((field("version")?, field("integrity")?))
}

/// The target platform's package `name` from npm, at the locked version, checked against the
/// lockfile's integrity and cached: its files (path inside the package, path on the host).
fn fetch(ctx: &Ctx, parent: &str, name: &str) -> Result<Vec<(String, PathBuf)>, NodeError> {
    let refuse = |why: String| NodeError::PlatformPackage {
        parent: if parent.is_empty() { "the app" } else { parent }.into(),
        name: name.into(),
        platform: ctx.platform.to_string(),
        why,
    };
    let Some((version, integrity)) = locked(ctx.mount, parent, name) else {
        return Err(refuse(
            "the project's package-lock.json does not lock its version".into(),
        ));
    };
    ctx.progress.stage(&format!(
        "fetching {name}@{version} for {} with npm",
        ctx.platform
    ));
    // Keyed by the integrity too: a lockfile naming other bytes never takes these.
    let id = crate::support::digest::Digest::of(integrity.as_bytes()).to_string();
    let short = id
        .rsplit(':')
        .next()
        .unwrap_or(&id)
        .get(..16)
        .unwrap_or_default();
    let slot = format!("{}@{version}-{short}", name.replace('/', "+"));
    let dir = crate::support::cache::dir().join("npm-platform").join(slot);
    let spec = format!("{name}@{version}");
    let dir = cache_entry(&dir, |tmp| -> Result<(), NodeError> {
        let tgz = npm_pack(ctx.tools.host, &spec, tmp)?;
        if sha512_integrity(&tgz)? != integrity {
            return Err(refuse(format!(
                "the {spec} npm downloaded does not match the lockfile's integrity ({integrity}); not caching it"
            )));
        }
        unpack(&tgz, &tmp.join("package"))?;
        std::fs::remove_file(&tgz)
            .map_err(file_error("removing", &tgz))
            .map_err(NodeError::from)
    })
    .map_err(|e| match e {
        NodeError::Tool { detail, .. } => refuse(format!("fetching {spec} failed: {detail}")),
        e => e,
    })?;
    files_under(&dir.join("package"))
}

/// Unpacks an npm tarball's `package/` into `dest`: regular files only, no path leaving it.
fn unpack(tgz: &Path, dest: &Path) -> Result<(), NodeError> {
    let reading = || file_error("reading", tgz);
    let file = std::fs::File::open(tgz).map_err(reading())?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().map_err(reading())? {
        let mut entry = entry.map_err(reading())?;
        let name = entry.path().map_err(reading())?.into_owned();
        let Ok(rel) = name.strip_prefix("package") else {
            continue;
        };
        let plain = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain || !entry.header().entry_type().is_file() {
            continue;
        }
        let to = dest.join(rel);
        let parent = to.parent().unwrap_or(dest);
        std::fs::create_dir_all(parent).map_err(file_error("creating", parent))?;
        entry.unpack(&to).map_err(file_error("unpacking", &to))?;
    }
    Ok(())
}

/// Every file under `dir`: (relative path, host path), sorted.
fn files_under(dir: &Path) -> Result<Vec<(String, PathBuf)>, NodeError> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).map_err(file_error("listing", &d))? {
            let e = e.map_err(file_error("listing", &d))?;
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap_or(&p);
                out.push((path(rel), p.clone()));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_packages_by_manifest_and_by_name() {
        let t = |m: &str| Target::of(&serde_json::from_str(m).unwrap());
        let gnu = t(r#"{"os":["linux"],"cpu":["x64"],"libc":["glibc"]}"#);
        assert!(gnu.platform_specific() && gnu.fits("x64") && !gnu.fits("arm64"));
        assert!(!t(r#"{"os":["linux"],"cpu":["x64"],"libc":["musl"]}"#).fits("x64"));
        assert!(!t(r#"{"os":["darwin"],"cpu":["arm64"]}"#).fits("arm64"));
        assert!(t(r#"{"os":["!win32"]}"#).fits("arm64"));
        assert!(!t(r#"{"name":"plain"}"#).platform_specific());
        let yes = [
            "lightningcss-linux-arm64-gnu",
            "@parcel/watcher-linux-arm64-glibc",
            "@esbuild/linux-arm64",
            "@img/sharp-linux-arm64",
        ];
        for n in yes {
            assert!(named_for(n, "arm64"), "{n}");
        }
        let no = [
            "lightningcss-linux-arm64-musl",
            "@img/sharp-linuxmusl-arm64",
            "lightningcss-linux-x64-gnu",
            "lightningcss-darwin-arm64",
            "@parcel/watcher-linux-arm-glibc",
        ];
        for n in no {
            assert!(!named_for(n, "arm64"), "{n}");
        }
    }

    #[test]
    fn installed_from_the_package_up() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path();
        for dir in [
            "node_modules/lightningcss",
            "node_modules/lightningcss-linux-x64-gnu",
            "node_modules/a/node_modules/b",
            "node_modules/a/node_modules/c",
        ] {
            std::fs::create_dir_all(m.join(dir)).unwrap();
            std::fs::write(m.join(dir).join("package.json"), "{}").unwrap();
        }
        let at = |p: &str, n: &str| installed_at(m, p, n);
        assert_eq!(
            at("node_modules/lightningcss", "lightningcss-linux-x64-gnu").as_deref(),
            Some("node_modules/lightningcss-linux-x64-gnu")
        );
        assert_eq!(
            at("node_modules/a/node_modules/b", "c").as_deref(),
            Some("node_modules/a/node_modules/c")
        );
        assert_eq!(at("node_modules/lightningcss", "nope"), None);
        assert_eq!(
            modules_of("node_modules/@parcel/watcher"),
            Path::new("node_modules")
        );
        assert_eq!(
            modules_of("node_modules/a/node_modules/b"),
            Path::new("node_modules/a/node_modules")
        );
        assert_eq!(modules_of(""), Path::new("node_modules"));
    }
}
