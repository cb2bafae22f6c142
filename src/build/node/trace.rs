//! The files a Node.js app reads at run time, found by @vercel/nft (the tracer Next.js's
//! standalone output uses), pinned in runtimes/toolchains.json and installed once into
//! binpack's cache with npm; and the npm packages those files (or a bundle's inputs) belong to.
//! A package whose code reaches files the tracer cannot follow (a module named at run time, a
//! path built from its own location) is shipped whole.

use super::checks::{lexical, Construct};
use super::trace_cache::Analysis;
use super::{run_script, run_tool, tool_err, NodeError, Tools};
use crate::build::toolchain::{file_error, pinned, Exec, Runner};
use crate::build::{Component, Ecosystem};
use crate::support::cache;
use crate::support::progress::Progress;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::path::Path;

const PACKAGE: &str = "@vercel/nft";

/// Traces ENTRIES under BASE: `node trace.js NFT BASE SEEDS ENTRY...`. Prints JSON: the traced
/// files relative to BASE, every path the trace looked at (absolute; the script's own
/// directory left out), and each file analysis made now with the paths it looked at.
/// SEEDS (a JSON file, or empty) holds analyses still valid from earlier runs: nft parses those files
/// no more. Every fs function a look goes through is wrapped before nft loads (graceful-fs
/// and glob keep the functions they find then); AsyncLocalStorage says which analysis is on.
const SCRIPT: &str = r#"const [nft, base, seeds, ...entries] = process.argv.slice(2);
const fs = require("fs"), path = require("path");
const { AsyncLocalStorage } = require("async_hooks");
const own = new AsyncLocalStorage(), probed = new Set();
const skip = __dirname + path.sep;
const note = (p) => {
  if (p instanceof URL) p = require("url").fileURLToPath(p); else if (Buffer.isBuffer(p)) p = p.toString();
  if (typeof p !== "string") return;
  const abs = p[0] === "/" && !p.includes("/.") && !p.endsWith("/") ? p : path.resolve(p);
  if (abs.startsWith(skip)) return;
  probed.add(abs);
  const set = own.getStore(); if (set) set.add(abs);
};
const wrap = (obj, names) => { for (const n of names) { const f = obj[n]; if (typeof f !== "function") continue;
  obj[n] = Object.assign(function (p, ...rest) { note(p); return f.call(this, p, ...rest); }, f); } };
const names = ["access", "exists", "lstat", "stat", "readFile", "readlink", "readdir", "realpath", "open", "opendir"];
wrap(fs, names.flatMap((n) => [n, n + "Sync"]));
wrap(fs.promises, names);
const { nodeFileTrace } = require(nft);
wrap(require(path.join(nft, "out/fs")).CachedFileSystem.prototype, ["stat", "readFile", "readlink"]);
const analyze = require(path.join(nft, "out/analyze")), made = [];
const analyzeNow = analyze.default;
let running = 0;
// nft drops a file outside BASE without a word: each one is kept, to be refused by name.
const outside = new Set(), wrapped = Symbol("binpack");
analyze.default = function (id, ...rest) {
  const job = rest[1];
  if (job && typeof job.ignoreFn === "function" && !job[wrapped]) {
    const ignore = job.ignoreFn; job[wrapped] = true;
    job.ignoreFn = (p, ...more) => {
      if (typeof p === "string" && p.startsWith(".." + path.sep) && !p.includes("*")) outside.add(path.resolve(base, p));
      return ignore(p, ...more);
    };
  }
  const set = new Set([path.resolve(id)]);
  running++;
  return own.run(set, async () => {
    try { const r = await analyzeNow.call(this, id, ...rest); made.push([id, r, set]); return r; }
    // Async hooks slow every promise: off while no analysis runs.
    finally { if (--running === 0) own.disable(); }
  });
};
const cache = { analysisCache: new Map() };
if (seeds) for (const a of JSON.parse(fs.readFileSync(seeds, "utf8")))
  cache.analysisCache.set(a.path, { deps: new Set(a.deps), imports: new Set(a.imports), assets: new Set(a.assets), isESM: a.isESM });
const opts = { base, processCwd: base, moduleSyncCatchall: true, cache };
// Every file a traced package's "exports" names: the runtime's node may pick a condition
// the tracer did not (module-sync inside an array of alternatives).
function exportTargets(files) {
  const out = [];
  const walk = (dir, v) => {
    if (typeof v === "string") {
      const f = path.join(dir, v);
      if (!v.includes("*") && fs.existsSync(f) && fs.statSync(f).isFile()) out.push(f);
    } else if (v && typeof v === "object") Object.values(v).forEach((x) => walk(dir, x));
  };
  for (const f of files) {
    if (!f.endsWith("package.json") || !f.includes("node_modules")) continue;
    try { const p = path.join(base, f); walk(path.dirname(p), JSON.parse(fs.readFileSync(p, "utf8")).exports); } catch {}
  }
  return out;
}
(async () => {
  let r = await nodeFileTrace(entries, opts);
  const extra = exportTargets(r.fileList).filter((f) => !r.fileList.has(path.relative(base, f)));
  if (extra.length) r = await nodeFileTrace([...entries, ...extra], opts);
  const analyses = made.map(([id, a, set]) => ({ path: id, deps: [...a.deps], imports: [...a.imports],
    assets: [...a.assets], isESM: a.isESM, probed: [...set].sort() }));
  const isFile = (f) => { try { return fs.statSync(f).isFile(); } catch { return false; } };
  process.stdout.write(JSON.stringify({ files: [...r.fileList].sort(), probed: [...probed].sort(), analyses,
    outside: [...outside].filter(isFile).sort() }));
})().catch((e) => { console.error(String((e && e.stack) || e)); process.exit(1); });
"#;

/// The pinned tracer's version.
pub fn version() -> String {
    pinned()["nft"]["version"]
        .as_str()
        .expect("nft version pinned")
        .to_string()
}

/// The project's own tracer (see [`super::entry::own_copy`]: never an ancestor's), only
/// when it is the pinned version: the traced files, and so the app layer's digest, must not
/// depend on the project's dependency tree.
fn local_pinned(cwd: &Path) -> Option<std::path::PathBuf> {
    let manifest = format!("node_modules/{PACKAGE}/package.json");
    let manifest = super::entry::own_copy(cwd, &manifest)?;
    let text = std::fs::read_to_string(&manifest).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let pinned = v["version"].as_str() == Some(version().as_str());
    pinned.then(|| manifest.parent().expect("in a package").to_path_buf())
}

/// Where the host's tracer is, or will be once installed: part of a cached trace's key.
pub fn host_tracer_path(cwd: &Path) -> std::path::PathBuf {
    local_pinned(cwd).unwrap_or_else(|| {
        let dir = cache::dir().join("nft").join(version());
        dir.join("node_modules").join(PACKAGE)
    })
}

/// The tracer's package directory, as `runner` sees it: the project's own (in its own
/// node_modules), else installed into binpack's cache (on the host) or the
/// cache volume (in a toolchain container), once.
pub(super) fn tracer(
    tools: Tools,
    runner: &Runner,
    cwd: &Path,
    progress: &dyn Progress,
) -> Result<OsString, NodeError> {
    if let Some(p) = local_pinned(cwd) {
        return Ok(runner.path(&p).into_os_string());
    }
    let version = version();
    let what = format!("npm install {PACKAGE}@{version}");
    if runner.in_container() {
        progress.stage(&format!("{what} into the cache volume (once)"));
        let script = format!(
            r#"set -e
d=/cache/nft/{version}
if [ ! -f "$d/node_modules/{PACKAGE}/package.json" ]; then
  mkdir -p /cache/nft; t=$(mktemp -d "$d.tmp.XXXXXX")
  (cd "$t" && npm install --no-save --no-audit --no-fund --cache /cache/npm {PACKAGE}@{version} >&2) || {{ rm -rf "$t"; exit 1; }}
  [ -e "$d" ] || mv "$t" "$d"; rm -rf "$t"
fi
echo "$d/node_modules/{PACKAGE}""#
        );
        let out = run_script(tools.run, &script, cwd, &what)?;
        return Ok(OsString::from(out.lines().last().unwrap_or_default()));
    }
    // Absolute: the script runs from the project, and require() wants a real path.
    let dir = std::path::absolute(cache::dir().join("nft").join(&version))
        .map_err(file_error("resolving the cache", &cache::dir()))?;
    let pkg = dir.join("node_modules").join(PACKAGE);
    if !pkg.join("package.json").is_file() {
        progress.stage(&format!("installing {PACKAGE} {version} with npm (once)"));
        super::npm_install_cached(
            tools.host,
            &dir,
            &format!("{PACKAGE}@{version}"),
            "install @vercel/nft",
        )?;
    }
    Ok(pkg.into_os_string())
}

/// What the trace script is: part of what a cached trace was made by.
pub fn script_id() -> crate::support::digest::Digest {
    crate::support::digest::Digest::of(SCRIPT.as_bytes())
}

/// What one run of the tracer found.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Traced {
    /// The files `entry` needs at run time, relative to the base, sorted.
    pub files: Vec<String>,
    /// Every path the trace looked at, absolute (as the runner sees them).
    pub probed: Vec<String>,
    /// The file analyses made in this run.
    pub analyses: Vec<Analysis>,
    /// Files the code reads outside the base, which nft leaves out (absolute).
    #[serde(default)]
    pub outside: Vec<String>,
}

/// Where a program reads the system's own files (`/etc/os-release`, `/proc/self/...`): the
/// image has its own, so a read there is no file of the app's.
const SYSTEM: &[&str] = &["/etc/", "/proc/", "/sys/", "/dev/", "/usr/", "/run/"];

/// The first file the trace found outside `base`: code it follows, or a file beside the
/// project that the code reads (a file elsewhere is the machine's, as `/etc/os-release`).
fn first_outside(base: &Path, traced: &Traced) -> Option<std::path::PathBuf> {
    let listed = (traced.files.iter())
        .filter(|f| f.starts_with(".."))
        .map(|f| lexical(&base.join(f)));
    let read = traced.outside.iter().map(std::path::PathBuf::from);
    // Beside the project (`../shared.json`), not anywhere on this machine (a snapshot a
    // watcher keeps in /tmp, which the image makes itself).
    let beside = base.parent().unwrap_or(base);
    let app_s =
        |p: &std::path::PathBuf| p.starts_with(beside) && !SYSTEM.iter().any(|s| p.starts_with(s));
    listed.chain(read.filter(app_s)).next()
}

/// Traces `entries` (under `base`). `node` and `nft` are as `runner` sees them; the script
/// (and `seeds`, analyses nft need not make again) are written into `work` (mounted for it).
/// A traced file outside `base` is refused by name: it has no place under /app.
pub(super) fn trace(
    exec: &dyn Exec,
    (runner, base, work): (&Runner, &Path, &Path),
    (node, nft): (&OsStr, &OsStr),
    entries: &[&Path],
    seeds: &[Analysis],
) -> Result<Traced, NodeError> {
    let script = work.join("binpack-trace.js");
    std::fs::write(&script, SCRIPT).map_err(file_error("writing", &script))?;
    let mut args = vec![
        runner.path(&script).into_os_string(),
        nft.to_os_string(),
        runner.path(base).into_os_string(),
        OsString::new(),
    ];
    if !seeds.is_empty() {
        let file = work.join("binpack-seeds.json");
        let json = serde_json::to_vec(seeds).expect("analyses serialize");
        std::fs::write(&file, json).map_err(file_error("writing", &file))?;
        args[3] = runner.path(&file).into_os_string();
    }
    args.extend(entries.iter().map(|e| runner.path(e).into_os_string()));
    let first = entries.first().map(|e| e.display().to_string());
    let what = format!("tracing {} with {PACKAGE}", first.unwrap_or_default());
    let out = run_tool(exec, node, &args, base, &what)?;
    let traced: Traced = serde_json::from_str(&out).map_err(|e| tool_err(&what, e.to_string()))?;
    if let Some(path) = first_outside(base, &traced) {
        return Err(NodeError::TracedOutside {
            path,
            root: base.to_path_buf(),
        });
    }
    Ok(traced)
}

/// The npm packages `files` (paths relative to `base`) belong to: the innermost
/// `node_modules/<name>` or `node_modules/@scope/<name>` of each, read from its package.json.
pub fn components(base: &Path, files: &[String]) -> Vec<Component> {
    let dirs: BTreeSet<String> = files.iter().filter_map(|f| package_dir(f)).collect();
    let mut out: Vec<Component> = dirs
        .iter()
        .filter_map(|d| component(&base.join(d).join("package.json")))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The packages under node_modules holding a construct that hides files from the tracer,
/// each with its first such construct; locations relative to the traced base.
pub fn hiding_packages(constructs: &[Construct]) -> BTreeMap<String, Construct> {
    let mut out = BTreeMap::new();
    for c in constructs.iter().filter(|c| c.kind.hides_files()) {
        if let Some(dir) = package_dir(c.file()) {
            out.entry(dir).or_insert_with(|| c.clone());
        }
    }
    out
}

/// Every file and symlink of the package at `dir` (relative to `base`), without its nested
/// node_modules (the dependencies the trace found are already in) and, for a node-gyp addon,
/// without what built it (see [`built_from`]); relative to `base`, sorted.
pub fn package_files(base: &Path, dir: &str) -> Result<Vec<String>, NodeError> {
    let addon = base.join(dir).join("binding.gyp").is_file();
    let mut out = Vec::new();
    let mut todo = vec![dir.to_string()];
    while let Some(d) = todo.pop() {
        let host = base.join(&d);
        let entries = std::fs::read_dir(&host).map_err(file_error("listing", &host))?;
        for e in entries {
            let e = e.map_err(file_error("listing", &host))?;
            let kind = e.file_type().map_err(file_error("reading", &e.path()))?;
            let rel = format!("{d}/{}", e.file_name().to_string_lossy());
            match (kind.is_dir(), e.file_name() == "node_modules") {
                (true, true) => {}
                (true, false) => todo.push(rel),
                (false, _) if addon && built_from(&rel[dir.len() + 1..]) => {}
                (false, _) => out.push(rel),
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A node-gyp package's build inputs and by-products (`rel` inside the package): C/C++
/// sources and gyp files, and its build/ tree but the addons node loads (`build/Release/x.node`;
/// better-sqlite3's are 27 MB of sqlite sources and objects beside a 2 MB addon).
fn built_from(rel: &str) -> bool {
    const SOURCES: &[&str] = &[
        "c", "cc", "cpp", "cxx", "h", "hh", "hpp", "gyp", "gypi", "o", "a",
    ];
    let ext = rel.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    let parts: Vec<&str> = rel.split('/').collect();
    let addon = parts.len() == 3 && ext == "node";
    (parts[0] == "build" && !addon) || SOURCES.contains(&ext)
}

pub(super) fn package_dir(file: &str) -> Option<String> {
    let parts: Vec<&str> = file.split('/').collect();
    let at = parts.iter().rposition(|p| *p == "node_modules")?;
    let take = match parts.get(at + 1) {
        Some(s) if s.starts_with('@') => at + 3,
        Some(_) => at + 2,
        None => return None,
    };
    // The file must lie inside the package, not be its directory.
    (parts.len() > take).then(|| parts[..take].join("/"))
}

pub(super) fn component(package_json: &Path) -> Option<Component> {
    let text = std::fs::read_to_string(package_json).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let license = match &v["license"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("type").and_then(|t| t.as_str()).map(String::from),
        _ => None,
    };
    Some(Component {
        ecosystem: Ecosystem::Npm,
        name: v["name"].as_str()?.to_string(),
        version: v["version"].as_str()?.to_string(),
        license,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_of_files() {
        assert_eq!(
            package_dir("node_modules/a/index.js").as_deref(),
            Some("node_modules/a")
        );
        assert_eq!(
            package_dir("node_modules/@s/b/lib/x.js").as_deref(),
            Some("node_modules/@s/b")
        );
        assert_eq!(
            package_dir("node_modules/a/node_modules/c/i.js").as_deref(),
            Some("node_modules/a/node_modules/c")
        );
        assert_eq!(package_dir("src/index.js"), None);
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("node_modules/a");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(
            a.join("package.json"),
            r#"{"name":"a","version":"1.2.3","license":"MIT"}"#,
        )
        .unwrap();
        let files = [
            "node_modules/a/index.js".to_string(),
            "node_modules/a/package.json".into(),
        ];
        let c = components(d.path(), &files);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].name.as_str(), c[0].version.as_str()), ("a", "1.2.3"));
        assert_eq!(c[0].license.as_deref(), Some("MIT"));
    }

    #[test]
    fn whole_packages() {
        use crate::build::node::checks::Kind;
        let at = |kind, loc: &str| Construct {
            kind,
            location: loc.into(),
            code: String::new(),
        };
        let found = [
            at(Kind::Worker, "node_modules/w/i.js:1:1"),
            at(Kind::IndirectRequire, "node_modules/m/m.js:9:3"),
            at(Kind::DirnamePath, "node_modules/m/lib/x.js:2"),
            at(Kind::ComputedRequire, "src/app.js:1:1"),
        ];
        let hiding = hiding_packages(&found);
        assert_eq!(hiding.keys().collect::<Vec<_>>(), ["node_modules/m"]);
        assert_eq!(hiding["node_modules/m"].location, "node_modules/m/m.js:9:3");
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("node_modules/m");
        std::fs::create_dir_all(m.join("locale")).unwrap();
        std::fs::create_dir_all(m.join("node_modules/dep")).unwrap();
        for f in ["m.js", "locale/fr.js", "node_modules/dep/i.js"] {
            std::fs::write(m.join(f), "").unwrap();
        }
        std::os::unix::fs::symlink("m.js", m.join("alias.js")).unwrap();
        // A node-gyp addon: its sources and build tree stay out, its addon goes in.
        let a = d.path().join("node_modules/a");
        std::fs::create_dir_all(a.join("build/Release/obj.target")).unwrap();
        std::fs::create_dir_all(a.join("deps")).unwrap();
        for f in [
            "binding.gyp",
            "index.js",
            "deps/s.c",
            "build/Makefile",
            "build/Release/a.node",
            "build/Release/obj.target/a.node",
        ] {
            std::fs::write(a.join(f), "").unwrap();
        }
        assert_eq!(
            package_files(d.path(), "node_modules/a").unwrap(),
            [
                "node_modules/a/build/Release/a.node",
                "node_modules/a/index.js"
            ]
        );
        assert_eq!(
            package_files(d.path(), "node_modules/m").unwrap(),
            [
                "node_modules/m/alias.js",
                "node_modules/m/locale/fr.js",
                "node_modules/m/m.js"
            ]
        );
    }
}
