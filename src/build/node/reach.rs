//! The app's own files that an `import()` or `require()` it names at run time can reach (a
//! plugin directory, a module named on the command line or in a config file). Neither
//! esbuild nor the tracer can follow such a call, so the files layout ships what it can
//! reach: the directory its static prefix names (`` import(`./plugins/${name}.js`) ``,
//! `join(here, 'plugins', name)`), else every module file of the project outside
//! node_modules; and says so, naming the line.

use super::checks::{Construct, Kind};
use super::NodeError;
use crate::build::toolchain::file_error;
use std::path::{Path, PathBuf};

/// What one computed import in the app's own code can reach.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Reach {
    pub(super) construct: Construct,
    /// The directory searched, relative to the mount root ("" is the mount root itself).
    pub(super) dir: String,
    /// Whether `dir` came from the call's static prefix (else it is the whole project).
    pub(super) from_prefix: bool,
    /// The module files under `dir`, relative to the mount root, sorted.
    pub(super) files: Vec<String>,
}

impl Reach {
    /// The note for the user: where, what, what was shipped.
    pub(super) fn note(&self) -> String {
        let dir = if self.dir.is_empty() { "." } else { &self.dir };
        let what = if self.from_prefix {
            format!(
                "the {} module files under {dir}/ it names",
                self.files.len()
            )
        } else {
            format!(
                "the project's {} own module files (under {dir}/, outside node_modules): its module can be any of them",
                self.files.len()
            )
        };
        format!(
            "{}: `{}` names its module at run time, which the tracer cannot follow: shipped {what}, and what they import",
            self.construct.location, self.construct.code
        )
    }
}

/// Each computed `import()`/`require()` of the app's own code among `found` (locations
/// relative to `mount`) with the files it can reach; `project` (relative to `mount`) bounds a
/// call without a static prefix.
pub(super) fn own_reach(
    mount: &Path,
    project: &Path,
    found: &[Construct],
) -> Result<Vec<Reach>, NodeError> {
    let mut out = Vec::new();
    for c in found.iter().filter(|c| own_computed(c)) {
        let file_dir = Path::new(c.file()).parent().unwrap_or(Path::new(""));
        let (dir, from_prefix) = match static_dir(&c.code) {
            Some(rel) => (super::checks::lexical(&file_dir.join(rel)), true),
            None => (project.to_path_buf(), false),
        };
        // A prefix that climbs out of the mount root reaches nothing binpack may ship.
        if dir.starts_with("..") || dir.is_absolute() {
            continue;
        }
        let files = module_files(mount, &dir)?;
        out.push(Reach {
            construct: c.clone(),
            dir: dir.to_string_lossy().into_owned(),
            from_prefix,
            files,
        });
    }
    Ok(out)
}

fn own_computed(c: &Construct) -> bool {
    let own = !c.file().split('/').any(|p| p == "node_modules");
    own && matches!(c.kind, Kind::ComputedImport | Kind::ComputedRequire)
}

/// The directory (relative to the calling file) a computed specifier's static prefix names:
/// `` `./plugins/${x}` `` or `'./plugins/' + x` is `./plugins`; `join(here, 'plugins', x)` is
/// `plugins`. None when the call has no such prefix.
pub(super) fn static_dir(code: &str) -> Option<String> {
    let call = ["import(", "require("]
        .iter()
        .filter_map(|c| code.find(c).map(|at| &code[at + c.len()..]))
        .next()?;
    let arg = call.trim_start();
    let prefix = match arg.chars().next()? {
        q @ ('`' | '\'' | '"') => {
            let body = &arg[1..];
            let end = body.find([q, '$']).unwrap_or(body.len());
            body[..end].to_string()
        }
        _ => joined_segments(arg)?,
    };
    let relative = prefix.starts_with("./") || prefix.starts_with("../");
    let dir = prefix.rsplit_once('/').map(|(d, _)| d)?;
    (relative && !dir.is_empty()).then(|| dir.to_string())
}

/// `join(X, 'a', 'b', rest)` (or `resolve(`) inside the argument, X naming the code's own
/// directory: `./a/b/`.
fn joined_segments(arg: &str) -> Option<String> {
    let at = arg.find("join(").or_else(|| arg.find("resolve("))?;
    let inner = &arg[at..];
    let inner = &inner[inner.find('(')? + 1..];
    let mut parts = inner.split(',').map(str::trim);
    let first = parts.next()?;
    let here = ["__dirname", "import.meta.dirname", "dir", "here"];
    if !here.iter().any(|h| first.contains(h)) {
        return None;
    }
    let mut out = String::from("./");
    for p in parts {
        let quoted =
            (p.starts_with('\'') && p.ends_with('\'')) || (p.starts_with('"') && p.ends_with('"'));
        if !quoted || p.len() < 2 {
            break;
        }
        out.push_str(&p[1..p.len() - 1]);
        out.push('/');
    }
    (out.len() > 2).then_some(out)
}

/// The files a module specifier can name under `dir` (relative to `mount`): scripts, JSON and
/// addons, not under node_modules or a hidden directory; relative to `mount`, sorted.
fn module_files(mount: &Path, dir: &Path) -> Result<Vec<String>, NodeError> {
    const MODULES: &[&str] = &["js", "mjs", "cjs", "json", "node"];
    let mut out = Vec::new();
    let mut todo: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let host = mount.join(&d);
        let Ok(entries) = std::fs::read_dir(&host) else {
            continue; // Not there: the call reaches nothing that exists.
        };
        for e in entries {
            let e = e.map_err(file_error("listing", &host))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let kind = e.file_type().map_err(file_error("reading", &e.path()))?;
            if name.starts_with('.') || name == "node_modules" {
                continue;
            }
            let rel = d.join(&name);
            let ext = name.rsplit_once('.').map(|(_, x)| x).unwrap_or_default();
            if kind.is_dir() {
                todo.push(rel);
            } else if MODULES.contains(&ext) {
                out.push(rel.to_string_lossy().into_owned());
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
    fn prefixes_of_computed_specifiers() {
        let table = [
            (
                "const p = await import(`./plugins/${name}.js`);",
                Some("./plugins"),
            ),
            (
                "const p = require('./lib/rules/' + id);",
                Some("./lib/rules"),
            ),
            ("await import(`../shared/x/${n}`)", Some("../shared/x")),
            (
                "await import(pathToFileURL(join(here, 'plugins', `${n}.js`)).href)",
                Some("./plugins"),
            ),
            ("await import(pathToFileURL(resolve(spec)).href)", None),
            ("await import(process.argv[2])", None),
            ("require(name)", None),
            ("await import(`${dir}/${name}.js`)", None),
            ("await import(`@scope/plugin-${name}`)", None),
        ];
        for (code, want) in table {
            assert_eq!(static_dir(code).as_deref(), want, "{code}");
        }
    }

    #[test]
    fn reaches_the_prefix_s_directory_or_the_whole_project() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path();
        for f in [
            "app/main.js",
            "app/plugins/a.js",
            "app/plugins/deep/b.mjs",
            "app/plugins/readme.md",
            "app/lib/c.cjs",
            "app/node_modules/x/i.js",
            "app/.git/hook.js",
        ] {
            std::fs::create_dir_all(m.join(f).parent().unwrap()).unwrap();
            std::fs::write(m.join(f), "").unwrap();
        }
        let at = |kind, loc: &str, code: &str| Construct {
            kind,
            location: loc.into(),
            code: code.into(),
        };
        let found = [
            at(
                Kind::ComputedImport,
                "app/main.js:3:9",
                "import(`./plugins/${n}.js`)",
            ),
            at(
                Kind::ComputedImport,
                "app/main.js:4:9",
                "import(process.argv[2])",
            ),
            at(
                Kind::ComputedRequire,
                "app/node_modules/x/i.js:1:1",
                "require(n)",
            ),
            at(Kind::DirnamePath, "app/main.js:5:1", "join(__dirname, 'a')"),
        ];
        let r = own_reach(m, Path::new("app"), &found).unwrap();
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0].dir, "app/plugins");
        assert_eq!(r[0].files, ["app/plugins/a.js", "app/plugins/deep/b.mjs"]);
        assert!(
            r[0].note().starts_with(
                "app/main.js:3:9: `import(`./plugins/${n}.js`)` names its module at run time"
            ),
            "{}",
            r[0].note()
        );
        assert_eq!(r[1].dir, "app");
        assert!(!r[1].from_prefix);
        assert_eq!(
            r[1].files,
            [
                "app/lib/c.cjs",
                "app/main.js",
                "app/plugins/a.js",
                "app/plugins/deep/b.mjs"
            ]
        );
    }
}
