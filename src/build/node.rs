//! A Node.js app as one executable: esbuild bundles the entry into one CommonJS script, and
//! the SEA stage injects it into a copy of a node runtime (the host's, or an official one
//! fetched with npm). `--packer pkg` hands the job to pkg instead.

use super::toolchain::{
    cache_entry, file_error, pinned, temp_dir, volume, FileError, Runner, Toolchain, ToolchainError,
};
use super::{git, Built};
use crate::cache;
use crate::cleanup::Tracked;
use crate::progress::Progress;
use crate::sea::{self, blob::Blob, inject::SeaError};
use serde::Deserialize;
use sha2::{Digest, Sha512};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How the executable is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Packer {
    /// Node's single executable applications, written natively by binpack
    #[default]
    Sea,
    /// @yao-pkg/pkg, when the project or PATH has it
    Pkg,
}

/// What to build.
#[derive(Clone, Debug, Default)]
pub struct NodeBuild {
    /// A .js/.cjs/.mjs file, or a directory whose package.json names the entry.
    pub entry: PathBuf,
    /// An official node version (`22`, `22.12.0`); None is the host's node.
    pub node_version: Option<String>,
    pub packer: Packer,
    /// Files or directories shipped beside the executable.
    pub assets: Vec<PathBuf>,
    /// The platform to build for; None is the host's. Another platform's node is the
    /// official one from npm (of `node_version`, else of the host node's version).
    pub platform: Option<crate::platform::Platform>,
}

/// How to get node, for the errors that say it is missing.
pub const INSTALL: &str = "Node.js 20 or later (on Debian: apt-get install nodejs)";

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("no such file or directory: {}", .0.display())]
    NoSuchEntry(PathBuf),
    #[error("{}: the entry must be a .js, .cjs or .mjs file, or a directory with a package.json", .0.display())]
    BadEntry(PathBuf),
    #[error("{}: {why}", path.display())]
    PackageJson { path: PathBuf, why: String },
    #[error("node not found on PATH: install {INSTALL}, give --node-version X to use an official runtime fetched with npm, or build in a container with --toolchain docker")]
    NodeNotFound,
    #[error(
        "npm not found on PATH: it is needed to {0}; install it (on Debian: apt-get install npm)"
    )]
    NpmNotFound(&'static str),
    #[error("{what} failed: {detail}")]
    Tool { what: String, detail: String },
    #[error("{location}: `{code}` requires a module whose name is computed at run time, so the bundle cannot contain it; require it by a literal name (require('x')), or a static map of literal requires")]
    ComputedRequire { location: String, code: String },
    #[error("{location}: the native addon {addon} cannot go into a single executable (it is a shared library, not JavaScript); use a pure-JS alternative, or ship it with --asset and load it with process.dlopen")]
    NativeAddon { location: String, addon: String },
    #[error("esbuild could not bundle {} (its messages are above)", .0.display())]
    Bundle(PathBuf),
    #[error("node {version}: the downloaded package does not match the registry's integrity ({expected}); not caching it")]
    Integrity { version: String, expected: String },
    #[error("{0}")]
    Pkg(String),
    #[error(transparent)]
    Sea(#[from] SeaError),
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    #[error(transparent)]
    File(#[from] FileError),
}

fn tool_err(what: &str, detail: impl Into<String>) -> NodeError {
    NodeError::Tool {
        what: what.to_string(),
        detail: detail.into(),
    }
}

/// The caller's npm settings passed into a toolchain container.
const PASS_ENV: &[&str] = &["NPM_CONFIG_REGISTRY", "npm_config_registry"];

/// Builds the single executable, running esbuild (and taking node) from `toolchain`.
pub fn build(
    spec: &NodeBuild,
    toolchain: &Toolchain,
    progress: &dyn Progress,
) -> Result<Built, NodeError> {
    let entry = Entry::resolve(&spec.entry)?;
    if spec.packer == Packer::Pkg && !matches!(toolchain, Toolchain::Host) {
        return Err(NodeError::Pkg(
            "--packer pkg runs on the host toolchain only (--toolchain host); the default packer (sea) works in a toolchain container".into(),
        ));
    }
    let out_dir = Tracked::new(temp_dir()?);
    let mount = mount_root(&entry.project);
    let runner = toolchain.runner(&mount, out_dir.path(), &volume("npm-cache"));
    let host = crate::platform::Platform::host();
    let platform = spec.platform.clone().unwrap_or_else(|| host.clone());
    let runtime = match (&spec.node_version, &runner) {
        (Some(v), _) => {
            progress.stage(&format!("fetching the official node {v} with npm"));
            official_node(v, &platform)?
        }
        // The host's node runs on the host only: another platform gets the official node
        // of the same version.
        (None, _) if platform != host => {
            let v = match runner {
                Runner::Host => host_node()?.version,
                Runner::Container { .. } => image_node(&runner, &entry, out_dir.path())?.version,
            };
            progress.stage(&format!(
                "fetching the official node {v} for {platform} with npm"
            ));
            official_node(&v, &platform)?
        }
        (None, Runner::Host) => host_node()?,
        (None, Runner::Container { .. }) => image_node(&runner, &entry, out_dir.path())?,
    };
    let assets = spec
        .assets
        .iter()
        .map(|a| asset_path(&entry.project, a))
        .collect::<Result<Vec<_>, _>>()?;
    let exe = out_dir.path().join(&entry.name);
    let mut notes = Vec::new();
    match spec.packer {
        Packer::Sea => {
            let esbuild = match runner {
                Runner::Host => find_esbuild(&entry.project, progress)?.into_os_string(),
                Runner::Container { .. } => container_esbuild(&runner, &entry, &mount, progress)?,
            };
            progress.stage(&format!(
                "bundling {} with esbuild",
                entry.relative.display()
            ));
            let bundle = out_dir.path().join(format!("{}.js", entry.name));
            notes = bundle_with(&runner, &esbuild, &entry, &runtime, &bundle)?;
            progress.stage(&format!(
                "injecting the bundle into node {}",
                runtime.version
            ));
            let blob = Blob {
                main_path: format!("{}.js", entry.name),
                code: std::fs::read(&bundle).map_err(file_error("reading the bundle", &bundle))?,
                ..Default::default()
            };
            sea::inject::make_executable(&runtime.node, &exe, &blob)?;
        }
        Packer::Pkg => {
            progress.stage("packing with pkg");
            super::pkg::pack(&super::pkg::PkgJob {
                project: &entry.project,
                entry: &entry.relative,
                node: &runtime.node,
                version: &runtime.version,
                out: &exe,
            })?;
        }
    }
    let root = toolchain.library_root(progress)?;
    let mut built = Built::new(exe, entry.name.clone(), out_dir);
    let artifact = &mut built.artifact;
    artifact.provenance.vcs = git::describe(&entry.project);
    artifact.provenance.runtime = Some(format!("node {} ({})", runtime.version, runtime.origin));
    artifact.provenance.toolchain = Some(toolchain.describe());
    artifact.provenance.platform = Some(platform);
    artifact.root = root;
    artifact.os_files.push(crate::rootfs::hosts_file());
    artifact.files = assets;
    artifact.notes = notes;
    Ok(built)
}

/// What a toolchain container mounts: the outermost directory from the project up that has
/// both package.json and node_modules (a workspace root, where dependencies are hoisted), else
/// the project.
fn mount_root(project: &Path) -> PathBuf {
    project
        .ancestors()
        .filter(|d| d.join("package.json").is_file() && d.join("node_modules").is_dir())
        .last()
        .unwrap_or(project)
        .to_path_buf()
}

/// The toolchain image's node, copied out beside the build.
fn image_node(runner: &Runner, entry: &Entry, out_dir: &Path) -> Result<Runtime, NodeError> {
    let node = out_dir.join(".node");
    let script = format!(
        "set -e; cp \"$(command -v node)\" {}; node --version",
        runner.path(&node).display()
    );
    let version = output_of(
        &mut runner.script(&script, &entry.project, PASS_ENV),
        "node in the toolchain image",
    )?;
    Ok(Runtime {
        node,
        version,
        origin: "toolchain image".into(),
    })
}

/// esbuild for a container build: the project's, else the image's, else the pinned version
/// installed with the image's npm into the cache volume (once).
fn container_esbuild(
    runner: &Runner,
    entry: &Entry,
    mount: &Path,
    progress: &dyn Progress,
) -> Result<OsString, NodeError> {
    // Only an esbuild inside the mounted tree is visible in the container.
    if let Some(local) = project_esbuild(&entry.project).filter(|p| p.starts_with(mount)) {
        return Ok(runner.path(&local).into_os_string());
    }
    let version = esbuild_version();
    progress.stage(&format!("finding esbuild in the toolchain image (else npm install esbuild@{version} into the cache volume)"));
    // Installed into a fresh temporary directory and renamed, so an interrupted install is
    // never used and a concurrent one keeps the first that finished; run from that directory
    // rather than with --prefix, which would move npm's global config.
    let script = format!(
        r#"set -e
if command -v esbuild >/dev/null; then command -v esbuild; exit 0; fi
d=/cache/esbuild/{version}
if [ ! -x "$d/node_modules/.bin/esbuild" ]; then
  mkdir -p /cache/esbuild; t=$(mktemp -d "$d.tmp.XXXXXX")
  (cd "$t" && npm install --no-save --no-audit --no-fund --cache /cache/npm esbuild@{version} >&2) || {{ rm -rf "$t"; exit 1; }}
  [ -e "$d" ] || mv "$t" "$d"; rm -rf "$t"
fi
echo "$d/node_modules/.bin/esbuild""#
    );
    let path = output_of(
        &mut runner.script(&script, &entry.project, PASS_ENV),
        &format!("esbuild in the toolchain image (npm install esbuild@{version})"),
    )?;
    Ok(OsString::from(path.lines().last().unwrap_or_default()))
}

/// The app's entry script and the project around it.
#[derive(Debug)]
struct Entry {
    /// The directory holding package.json (or the entry's directory): esbuild runs here, so
    /// the bundle holds no path of this machine.
    project: PathBuf,
    /// The entry, relative to `project`.
    relative: PathBuf,
    /// The program's name.
    name: String,
}

#[derive(Deserialize)]
struct PackageJson {
    name: Option<String>,
    main: Option<String>,
    bin: Option<serde_json::Value>,
}

impl Entry {
    fn resolve(entry: &Path) -> Result<Entry, NodeError> {
        if !entry.exists() {
            return Err(NodeError::NoSuchEntry(entry.to_path_buf()));
        }
        let entry = entry
            .canonicalize()
            .map_err(file_error("resolving the entry", entry))?;
        if entry.is_dir() {
            let pj = entry.join("package.json");
            // No package.json: not an app directory. Another failure is that file's.
            let text = std::fs::read_to_string(&pj).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => NodeError::BadEntry(entry.clone()),
                _ => file_error("reading", &pj)(e).into(),
            })?;
            let pkg: PackageJson =
                serde_json::from_str(&text).map_err(|e| NodeError::PackageJson {
                    path: pj.clone(),
                    why: e.to_string(),
                })?;
            let pkg_name = pkg
                .name
                .as_deref()
                .map(|n| n.rsplit('/').next().unwrap_or(n).to_string());
            // `bin` (a path, or a map of command -> path), else `main`, else index.js as npm does.
            let (name, script) = match &pkg.bin {
                Some(serde_json::Value::String(s)) => (pkg_name.clone(), s.clone()),
                Some(serde_json::Value::Object(m)) if !m.is_empty() => {
                    let (cmd, path) = pkg_name
                        .as_ref()
                        .and_then(|n| m.get_key_value(n))
                        .unwrap_or_else(|| m.iter().next().expect("non-empty"));
                    let path = path.as_str().ok_or_else(|| NodeError::PackageJson {
                        path: pj.clone(),
                        why: format!("bin.{cmd} is not a path"),
                    })?;
                    (Some(cmd.clone()), path.to_string())
                }
                _ => (
                    pkg_name.clone(),
                    pkg.main.clone().unwrap_or_else(|| "index.js".into()),
                ),
            };
            let file = entry.join(&script);
            if !file.is_file() {
                return Err(NodeError::PackageJson {
                    path: pj,
                    why: format!("it names the entry {script}, which does not exist"),
                });
            }
            let name = name.unwrap_or_else(|| file_stem(&file));
            return Ok(Entry {
                relative: PathBuf::from(script.trim_start_matches("./")),
                project: entry,
                name,
            });
        }
        let ext = entry.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "js" | "cjs" | "mjs") {
            return Err(NodeError::BadEntry(entry));
        }
        let dir = entry.parent().unwrap_or(Path::new("/"));
        let project = dir
            .ancestors()
            .find(|d| d.join("package.json").is_file())
            .unwrap_or(dir)
            .to_path_buf();
        Ok(Entry {
            relative: entry.strip_prefix(&project).unwrap_or(&entry).to_path_buf(),
            name: file_stem(&entry),
            project,
        })
    }
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into())
}

/// A node runtime to build the executable from.
#[derive(Debug)]
struct Runtime {
    node: PathBuf,
    /// `v20.20.2`
    version: String,
    /// `host`, `official, from npm` or `toolchain image`.
    origin: String,
}

impl Runtime {
    fn major(&self) -> u32 {
        self.version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    }
}

fn output_of(cmd: &mut Command, what: &str) -> Result<String, NodeError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| tool_err(what, e.to_string()))?;
    if !out.status.success() {
        return Err(tool_err(
            what,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn host_node() -> Result<Runtime, NodeError> {
    let node = which::which("node").map_err(|_| NodeError::NodeNotFound)?;
    let version = output_of(Command::new(&node).arg("--version"), "node --version")?;
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
    version: &str,
    platform: &crate::platform::Platform,
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
    let view = output_of(
        Command::new(&npm).args(["view", "--json", &spec, "version"]),
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
    let dir = cache::dir()
        .join("node")
        .join(format!("{exact}-linux-{arch}"));
    let dir = cache_entry(&dir, |tmp| -> Result<(), NodeError> {
        let pinned = format!("{package}@{exact}");
        let integrity = output_of(
            Command::new(&npm).args(["view", &pinned, "dist.integrity"]),
            &format!("npm view {pinned}"),
        )?;
        let file = output_of(
            Command::new(&npm)
                .args(["pack", "--silent", &pinned, "--pack-destination"])
                .arg(tmp),
            &format!("npm pack {pinned}"),
        )?;
        let tgz = tmp.join(file.lines().last().unwrap_or_default());
        let mut hasher = Sha512::new();
        std::fs::File::open(&tgz)
            .and_then(|mut f| io::copy(&mut f, &mut hasher))
            .map_err(file_error("reading", &tgz))?;
        use base64::Engine;
        let ours = format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
        );
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

/// The project's own esbuild (node_modules/.bin of it or an ancestor).
fn project_esbuild(project: &Path) -> Option<PathBuf> {
    project
        .ancestors()
        .map(|d| d.join("node_modules/.bin/esbuild"))
        .find(|p| p.is_file())
}

fn esbuild_version() -> String {
    pinned()["esbuild"]["version"]
        .as_str()
        .expect("esbuild version pinned")
        .to_string()
}

/// esbuild from the project's node_modules, else PATH, else the pinned version installed into
/// binpack's cache with npm.
fn find_esbuild(project: &Path, progress: &dyn Progress) -> Result<PathBuf, NodeError> {
    if let Some(local) = project_esbuild(project) {
        return Ok(local);
    }
    if let Ok(p) = which::which("esbuild") {
        return Ok(p);
    }
    let version = esbuild_version();
    let npm = which::which("npm").map_err(|_| NodeError::NpmNotFound("install esbuild"))?;
    let dir = cache::dir().join("esbuild").join(&version);
    let bin = dir.join("node_modules/.bin/esbuild");
    if bin.is_file() {
        return Ok(bin);
    }
    progress.stage(&format!("installing esbuild {version} with npm (once)"));
    cache_entry(&dir, |tmp| -> Result<(), NodeError> {
        output_of(
            Command::new(&npm)
                .args([
                    "install",
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                ])
                .arg(tmp)
                .arg(format!("esbuild@{version}")),
            &format!("npm install esbuild@{version}"),
        )?;
        Ok(())
    })?;
    Ok(bin)
}

/// Bundles the entry into `out`. A computed require in the app's own code or a native addon
/// fails with its name and place; computed requires inside node_modules (express's view
/// engines, say) become notes, as they only fail if that code path runs.
fn bundle_with(
    runner: &Runner,
    esbuild: &OsStr,
    entry: &Entry,
    runtime: &Runtime,
    out: &Path,
) -> Result<Vec<String>, NodeError> {
    let mut args: Vec<OsString> = vec![entry.relative.clone().into_os_string()];
    args.extend(
        [
            "--bundle",
            "--platform=node",
            "--format=cjs",
            "--log-level=warning",
            "--color=false",
            // esbuild reports these only at debug level: make them visible to parse.
            "--log-override:unsupported-require-call=warning",
        ]
        .map(OsString::from),
    );
    args.push(format!("--target=node{}", runtime.major().max(12)).into());
    let mut outfile = OsString::from("--outfile=");
    outfile.push(runner.path(out));
    args.push(outfile);
    let output = runner
        .command(esbuild, &args, &entry.project, &[], PASS_ENV)
        .output()
        .map_err(|e| tool_err("esbuild", e.to_string()))?;
    let messages = parse_esbuild(&String::from_utf8_lossy(&output.stderr));
    if let Some(m) = messages.iter().find(|m| m.addon.is_some()) {
        return Err(NodeError::NativeAddon {
            location: m.location.clone(),
            addon: m.addon.clone().unwrap_or_default(),
        });
    }
    let (ours, theirs): (Vec<&Message>, Vec<&Message>) = messages
        .iter()
        .filter(|m| m.computed_require)
        .partition(|m| !m.location.contains("node_modules/"));
    if let Some(m) = ours.first() {
        return Err(NodeError::ComputedRequire {
            location: m.location.clone(),
            code: m.code.clone(),
        });
    }
    if !output.status.success() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        return Err(NodeError::Bundle(entry.relative.clone()));
    }
    Ok(theirs
        .iter()
        .map(|m| {
            format!(
                "{}: `{}` is not bundled (computed module name); it fails at run time if that code runs",
                m.location, m.code
            )
        })
        .collect())
}

/// One esbuild diagnostic, as much of it as binpack acts on.
#[derive(Debug, Default, PartialEq, Eq)]
struct Message {
    /// `path:line:col`
    location: String,
    /// The source line it points at.
    code: String,
    computed_require: bool,
    /// The `.node` file of a native addon.
    addon: Option<String>,
}

/// Reads esbuild's text diagnostics: a `▲ [WARNING]` or `✘ [ERROR]` line, a blank line, the
/// indented `path:line:col:` and the source line (`  3 │ code`).
fn parse_esbuild(stderr: &str) -> Vec<Message> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let is_head = line.contains("[WARNING]") || line.contains("[ERROR]");
        if !is_head {
            continue;
        }
        let mut m = Message {
            computed_require: line.contains("[unsupported-require-call]"),
            ..Default::default()
        };
        if let Some(rest) = line
            .split("No loader is configured for \".node\" files: ")
            .nth(1)
        {
            m.addon = Some(rest.trim().to_string());
        } else if line.contains("Could not resolve \"") && line.contains(".node\"") {
            m.addon = line.split('"').nth(1).map(String::from);
        }
        if !m.computed_require && m.addon.is_none() {
            continue;
        }
        let mut rest = lines[i + 1..].iter().map(|l| l.trim());
        if let Some(loc) = rest.find(|l| !l.is_empty()) {
            m.location = loc.trim_end_matches(':').to_string();
        }
        if let Some(code) = rest.next().and_then(|l| l.split_once('│')) {
            m.code = code.1.trim().to_string();
        }
        out.push(m);
    }
    out
}

/// Where an asset goes, relative to the app directory: its path inside the project, else its
/// file name.
fn asset_path(project: &Path, asset: &Path) -> Result<(String, PathBuf), NodeError> {
    let host = asset.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => NodeError::NoSuchEntry(asset.to_path_buf()),
        _ => file_error("resolving the asset", asset)(e).into(),
    })?;
    let rel = host
        .strip_prefix(project)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| PathBuf::from(host.file_name().unwrap_or_default()));
    Ok((rel.to_string_lossy().into_owned(), host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esbuild_messages() {
        let text = "▲ [WARNING] This call to \"require\" will not be bundled because the argument is not a string literal [unsupported-require-call]\n\n    index.js:3:15:\n      3 │ const plugin = require(name);\n        ╵                ~~~~~~~\n\n\
▲ [WARNING] This call to \"require\" will not be bundled because the argument is not a string literal [unsupported-require-call]\n\n    node_modules/express/lib/view.js:81:13:\n      81 │     var fn = require(mod).__express\n\n\
✘ [ERROR] No loader is configured for \".node\" files: build/Release/addon.node\n\n    index.js:2:22:\n      2 │ const addon = require('./build/Release/addon.node');\n\n\
✘ [ERROR] Could not resolve \"./missing.node\"\n\n    a.js:1:0:\n";
        let m = parse_esbuild(text);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].location, "index.js:3:15");
        assert_eq!(m[0].code, "const plugin = require(name);");
        assert!(m[0].computed_require);
        assert_eq!(m[1].location, "node_modules/express/lib/view.js:81:13");
        assert_eq!(m[2].addon.as_deref(), Some("build/Release/addon.node"));
        assert_eq!(m[2].location, "index.js:2:22");
        assert_eq!(m[3].addon.as_deref(), Some("./missing.node"));
    }

    #[test]
    fn io_failures_name_their_path() {
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
        // A package.json that cannot be read is that file's error, not a bad entry.
        std::fs::create_dir(p.join("package.json")).unwrap();
        let err = Entry::resolve(p).unwrap_err().to_string();
        let pj = p.canonicalize().unwrap().join("package.json");
        assert!(
            err.starts_with(&format!("reading {}: ", pj.display())),
            "{err}"
        );
        // An asset below a file.
        std::fs::write(p.join("file"), "").unwrap();
        let below = p.join("file/asset");
        let err = asset_path(p, &below).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "resolving the asset {}: Not a directory (os error 20)",
                below.display()
            )
        );
    }

    #[test]
    fn entries_from_files_and_package_json() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().canonicalize().unwrap();
        std::fs::create_dir_all(p.join("src")).unwrap();
        std::fs::write(p.join("src/cli.js"), "").unwrap();
        std::fs::write(p.join("server.mjs"), "").unwrap();
        std::fs::write(p.join("notes.txt"), "").unwrap();
        let table = [
            (
                r#"{"name":"@acme/tool","bin":{"tool":"./src/cli.js"}}"#,
                "tool",
                "src/cli.js",
            ),
            (
                r#"{"name":"@acme/tool","bin":"src/cli.js"}"#,
                "tool",
                "src/cli.js",
            ),
            (r#"{"name":"web","main":"server.mjs"}"#, "web", "server.mjs"),
        ];
        for (pj, name, rel) in table {
            std::fs::write(p.join("package.json"), pj).unwrap();
            let e = Entry::resolve(&p).unwrap();
            assert_eq!(
                (e.name.as_str(), e.relative.to_str().unwrap()),
                (name, rel),
                "{pj}"
            );
            assert_eq!(e.project, p);
        }
        std::fs::write(p.join("package.json"), r#"{"main":"gone.js"}"#).unwrap();
        assert!(Entry::resolve(&p)
            .unwrap_err()
            .to_string()
            .contains("gone.js, which does not exist"));
        let e = Entry::resolve(&p.join("src/cli.js")).unwrap();
        assert_eq!(
            (e.name.as_str(), e.relative.to_str().unwrap()),
            ("cli", "src/cli.js")
        );
        assert!(matches!(
            Entry::resolve(&p.join("notes.txt")),
            Err(NodeError::BadEntry(_))
        ));
        assert!(matches!(
            Entry::resolve(&p.join("nope.js")),
            Err(NodeError::NoSuchEntry(_))
        ));
    }
}
