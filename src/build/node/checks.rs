//! What a bundle cannot hold: esbuild's diagnostics (raised from debug level so they show)
//! and a scan of the bundled sources for code that locates files at run time (workers and
//! forked scripts by path, data files read relative to `__dirname` inside node_modules, paths
//! built from the code's own location anywhere).
//! Each is a [`Construct`] with its file and line, so `--layout sea` can refuse by name and
//! `--layout auto` can choose `files` and say why.

use std::path::Path;

/// esbuild's flags that make the constructs it does not bundle visible as warnings.
pub const RAISE: &[&str] = &[
    "--log-override:unsupported-require-call=warning",
    "--log-override:unsupported-dynamic-import=warning",
    "--log-override:indirect-require=warning",
    "--log-override:require-resolve-not-external=warning",
];

/// A kind of code a single bundle cannot hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    ComputedRequire,
    ComputedImport,
    IndirectRequire,
    RequireResolve,
    NativeAddon,
    TopLevelAwait,
    Worker,
    Fork,
    DirnameRead,
    DirnamePath,
    /// A dependency requires a package that is not installed (an optional one, reached only
    /// on some path: union's `spdy`): left a run-time require, as node would.
    MissingPackage,
    /// An `import()` inside code made at run time (`new Function("m", "return import(m)")`,
    /// prettier's bin): esbuild cannot see it, and it resolves against the executable's path.
    HiddenImport,
    /// A package.json read at run time (read-package-up, pkg-dir, find-up of package.json,
    /// `createRequire(import.meta.url)('../package.json')`): a single executable has none.
    PackageJsonRead,
    /// A command run through a shell (`execSync("ldd --version")`, `shell: true`): the image
    /// has no /bin/sh. Said in a note under either layout; the layout cannot help it.
    ShellCommand,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::ComputedRequire => "a require() whose module name is computed at run time",
            Kind::ComputedImport => "an import() whose specifier is computed at run time",
            Kind::IndirectRequire => "an indirect call to require",
            Kind::RequireResolve => "require.resolve() of a module",
            Kind::NativeAddon => "a native addon (.node)",
            Kind::TopLevelAwait => "top-level await",
            Kind::Worker => "a worker started from a file path",
            Kind::Fork => "a child process forked from a script path",
            Kind::DirnameRead => "a file read relative to __dirname inside node_modules",
            Kind::DirnamePath => {
                "a file path built from the code's own location (__dirname, __filename or import.meta)"
            }
            Kind::MissingPackage => "a require() of a package that is not installed",
            Kind::HiddenImport => "an import() inside code made at run time (new Function or eval)",
            Kind::PackageJsonRead => "a package.json read at run time",
            Kind::ShellCommand => "a command run through a shell",
        }
    }

    /// Whether it reaches files the tracer may not follow (a module named at run time, a
    /// path relative to the code): the package holding it is shipped whole.
    pub fn hides_files(self) -> bool {
        matches!(
            self,
            Kind::ComputedRequire
                | Kind::ComputedImport
                | Kind::IndirectRequire
                | Kind::RequireResolve
                | Kind::DirnameRead
                | Kind::DirnamePath
                | Kind::HiddenImport
        )
    }
}

/// One construct, where it is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Construct {
    pub kind: Kind,
    /// `path:line:col` (or `path:line`), relative to the project.
    pub location: String,
    /// The source line.
    pub code: String,
}

impl Construct {
    /// The path part of the location.
    pub fn file(&self) -> &str {
        self.location.split(':').next().unwrap_or_default()
    }

    /// Inside a dependency, judged by the real path relative to the project: a project that
    /// is itself a package under node_modules (typescript's bin/tsc) is still its own code.
    pub fn in_dependency(&self, project: &Path) -> bool {
        let path = project.join(self.file());
        let real = path.canonicalize().unwrap_or(path);
        let rel = real.strip_prefix(project).unwrap_or(&real);
        rel.components().any(|c| c.as_os_str() == "node_modules")
    }

    /// The same construct with its path relative to `to` instead of `from` (both absolute).
    pub fn rebased(&self, from: &Path, to: &Path) -> Construct {
        let file = self.file();
        let abs = lexical(&from.join(file));
        let rel = abs.strip_prefix(to).unwrap_or(&abs);
        Construct {
            location: format!("{}{}", rel.display(), &self.location[file.len()..]),
            ..self.clone()
        }
    }

    /// One line for the user: what, where, the code.
    pub fn sentence(&self) -> String {
        format!(
            "{} at {} (`{}`)",
            self.kind.describe(),
            self.location,
            self.code
        )
    }
}

/// `p` with its `.` and `..` resolved by name: esbuild's `../../node_modules/x` from a
/// workspace member.
pub(super) fn lexical(p: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Reads esbuild's text diagnostics: a `▲ [WARNING]` or `✘ [ERROR]` head line, a blank line,
/// the indented `path:line:col:` and the source line (`  3 │ code`).
pub fn parse_esbuild(stderr: &str) -> Vec<Construct> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !(line.contains("[WARNING]") || line.contains("[ERROR]")) {
            continue;
        }
        let Some(kind) = kind_of(line) else { continue };
        let mut c = Construct {
            kind,
            location: String::new(),
            code: String::new(),
        };
        let mut rest = lines[i + 1..].iter().map(|l| l.trim());
        if let Some(loc) = rest.find(|l| !l.is_empty()) {
            c.location = loc.trim_end_matches(':').to_string();
        }
        if let Some(code) = rest.next().and_then(|l| l.split_once('│')) {
            c.code = code.1.trim().to_string();
        }
        match kind {
            Kind::NativeAddon => c.code = addon_name(line).unwrap_or_default(),
            // Missing from the app's own code is the app's error (npm ci not run): esbuild's.
            Kind::MissingPackage if !c.location.contains("node_modules/") => continue,
            Kind::MissingPackage => c.code = missing_package(line).unwrap_or_default(),
            _ => {}
        }
        out.push(c);
    }
    out
}

fn kind_of(head: &str) -> Option<Kind> {
    let ids = [
        ("[unsupported-require-call]", Kind::ComputedRequire),
        ("[unsupported-dynamic-import]", Kind::ComputedImport),
        ("[indirect-require]", Kind::IndirectRequire),
        ("[require-resolve-not-external]", Kind::RequireResolve),
    ];
    if let Some((_, k)) = ids.iter().find(|(id, _)| head.contains(id)) {
        return Some(*k);
    }
    if addon_name(head).is_some() {
        return Some(Kind::NativeAddon);
    }
    if missing_package(head).is_some() {
        return Some(Kind::MissingPackage);
    }
    head.contains("Top-level await is currently not supported")
        .then_some(Kind::TopLevelAwait)
}

/// The bare package an error says esbuild could not resolve (`Could not resolve "spdy"`).
pub(super) fn missing_package(head: &str) -> Option<String> {
    let name = head
        .split("Could not resolve \"")
        .nth(1)?
        .split('"')
        .next()?;
    let bare = !name.starts_with(['.', '/']) && !name.ends_with(".node") && !name.is_empty();
    bare.then(|| name.to_string())
}

/// The `.node` file an addon error names.
fn addon_name(head: &str) -> Option<String> {
    if let Some(rest) = head
        .split("No loader is configured for \".node\" files: ")
        .nth(1)
    {
        return Some(rest.trim().to_string());
    }
    if head.contains("Could not resolve \"") && head.contains(".node\"") {
        return head.split('"').nth(1).map(String::from);
    }
    None
}

/// The bundled source files esbuild's metafile lists (relative to the project).
pub fn metafile_inputs(metafile: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(metafile).unwrap_or_default();
    let mut inputs: Vec<String> = v["inputs"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    inputs.sort();
    inputs
}

/// Scans the bundled sources (or the traced files) for workers and forks started from a path,
/// files read relative to `__dirname` inside node_modules and paths built from the code's own
/// location.
pub fn scan_sources(project: &Path, inputs: &[String]) -> Vec<Construct> {
    let mut out = Vec::new();
    for rel in inputs {
        let Ok(text) = std::fs::read_to_string(project.join(rel)) else {
            continue;
        };
        let in_deps = rel.split('/').any(|c| c == "node_modules");
        for (n, line) in text.lines().enumerate() {
            if let Some(kind) = line_kind(line, in_deps) {
                out.push(Construct {
                    kind,
                    location: format!("{rel}:{}", n + 1),
                    code: line.trim().chars().take(120).collect(),
                });
            }
        }
    }
    out
}

fn line_kind(line: &str, in_deps: bool) -> Option<Kind> {
    let code = line.trim_start();
    if code.starts_with("//") || code.starts_with('*') {
        return None;
    }
    if hidden_import(code) {
        return Some(Kind::HiddenImport);
    }
    if reads_package_json(code) {
        return Some(Kind::PackageJsonRead);
    }
    if runs_a_shell(code) {
        return Some(Kind::ShellCommand);
    }
    if code.contains("new Worker(") && !code.contains("new Worker(`data:") {
        return Some(Kind::Worker);
    }
    if code.contains("fork(") && !code.contains("function fork(") && !code.contains(".fork()") {
        // cluster.fork() takes no script; child_process.fork(path) does.
        let arg = code.split("fork(").nth(1).unwrap_or_default();
        if !arg.starts_with(')') {
            return Some(Kind::Fork);
        }
    }
    let reads = [
        "readFileSync(",
        "readFile(",
        "readdirSync(",
        "createReadStream(",
    ];
    let dirname = code.contains("__dirname") || code.contains("import.meta.url");
    if in_deps && dirname && reads.iter().any(|r| code.contains(r)) {
        return Some(Kind::DirnameRead);
    }
    builds_own_path(code).then_some(Kind::DirnamePath)
}

/// `new Function(..., "return import(m)")` or `eval("import(...)")`: an import esbuild never
/// sees, which resolves against the file that made it.
fn hidden_import(code: &str) -> bool {
    let made = code.contains("new Function(") || code.contains("eval(");
    let quoted = [
        "\"return import(",
        "'return import(",
        "\"import(",
        "'import(",
    ];
    made && quoted.iter().any(|q| code.contains(q))
}

/// `execSync` of a command line (it always runs /bin/sh), or a spawn with `shell: true`.
fn runs_a_shell(code: &str) -> bool {
    let literal = ["execSync(\"", "execSync('", "execSync(`"];
    literal.iter().any(|l| code.contains(l)) || code.contains("shell: true")
}

/// The package-up helpers' calls (read-package-up, read-pkg-up, pkg-dir, package-up), a
/// find-up of `package.json`, or a package.json path from the code's own location.
fn reads_package_json(code: &str) -> bool {
    const CALLS: &[&str] = &[
        "readPackageUp(",
        "readPackageUpSync(",
        "readPkgUp(",
        "readPkgUpSync(",
        "readPkgUp.sync(",
        "packageDirectory(",
        "packageDirectorySync(",
        "pkgDir(",
        "pkgDir.sync(",
        "packageUp(",
        "packageUpSync(",
        "pkgUp(",
        "pkgUp.sync(",
    ];
    let definition = code.contains("function ");
    let call = !definition && CALLS.iter().any(|c| code.contains(c));
    let named = [
        "'package.json'",
        "\"package.json\"",
        "/package.json'",
        "/package.json\"",
    ];
    let names_it = named.iter().any(|n| code.contains(n));
    let found_up = names_it && (code.contains("findUp") || code.contains("find-up"));
    let own = names_it && code.contains("createRequire(import.meta.url)(");
    call || found_up || own
}

/// What names the code's own location.
const HERE: &[&str] = &[
    "__dirname",
    "__filename",
    "import.meta.dirname",
    "import.meta.filename",
    "import.meta.url",
];

/// `join(`/`resolve(` whose first argument is the code's location (`path.join(__dirname, 'w.js')`,
/// `resolve(dirname(fileURLToPath(import.meta.url)), '..')`), or `new URL(x, import.meta.url)`:
/// a path to a file beside the code, which a single executable does not have.
fn builds_own_path(code: &str) -> bool {
    let first_arg_is_here = |call: &str| {
        code.split(call).skip(1).any(|rest| {
            let arg = first_arg(rest);
            HERE.iter().any(|h| arg.contains(h))
        })
    };
    let url = code.split("new URL(").skip(1).any(|rest| {
        let arg = first_arg(rest);
        rest[arg.len()..]
            .trim_start_matches([',', ' '])
            .starts_with("import.meta.url")
    });
    url || first_arg_is_here("join(") || first_arg_is_here("resolve(")
}

/// The text of a call's first argument: up to the first `,` or `)` outside brackets.
fn first_arg(rest: &str) -> &str {
    let mut depth = 0;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return &rest[..i],
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => return &rest[..i],
            _ => {}
        }
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esbuild_messages() {
        let text = "▲ [WARNING] This call to \"require\" will not be bundled because the argument is not a string literal [unsupported-require-call]\n\n    index.js:3:15:\n      3 │ const plugin = require(name);\n        ╵                ~~~~~~~\n\n\
▲ [WARNING] This \"import\" expression will not be bundled because the argument is not a string literal [unsupported-dynamic-import]\n\n    node_modules/x/a.js:5:16:\n      5 │ const m = await import(name);\n\n\
✘ [ERROR] Top-level await is currently not supported with the \"cjs\" output format\n\n    index.mjs:5:10:\n      5 │ const m = await import(name);\n\n\
✘ [ERROR] No loader is configured for \".node\" files: build/Release/addon.node\n\n    index.js:2:22:\n      2 │ const addon = require('./build/Release/addon.node');\n\n\
▲ [WARNING] \"import.meta\" is not available with the \"cjs\" output format and will be empty [empty-import-meta]\n\n    a.mjs:1:1:\n";
        let m = parse_esbuild(text);
        let kinds: Vec<Kind> = m.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::ComputedRequire,
                Kind::ComputedImport,
                Kind::TopLevelAwait,
                Kind::NativeAddon
            ]
        );
        assert_eq!(m[0].location, "index.js:3:15");
        assert_eq!(m[0].code, "const plugin = require(name);");
        assert_eq!(m[1].file(), "node_modules/x/a.js");
        assert_eq!(m[3].code, "build/Release/addon.node");
    }

    #[test]
    fn packages_a_dependency_requires_but_nobody_installed() {
        let spdy = "✘ [ERROR] Could not resolve \"spdy\"\n\n    node_modules/union/lib/core.js:89:25:\n      89 │       var spdy = require('spdy');\n\n";
        let own = "✘ [ERROR] Could not resolve \"lodash\"\n\n    index.js:1:10:\n      1 │ require('lodash');\n\n";
        let found = parse_esbuild(&format!("{spdy}{own}"));
        // Missing from the app's own code is left to esbuild's error.
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, Kind::MissingPackage);
        assert_eq!(found[0].code, "spdy");
        assert_eq!(found[0].location, "node_modules/union/lib/core.js:89:25");
    }

    #[test]
    fn source_lines() {
        assert_eq!(
            line_kind("const w = new Worker(join(__dirname, 'w.js'))", false),
            Some(Kind::Worker)
        );
        assert_eq!(
            line_kind("child_process.fork(__filename, ['child'])", false),
            Some(Kind::Fork)
        );
        assert_eq!(line_kind("cluster.fork()", false), None);
        let read = "fs.readFileSync(path.join(__dirname, 'data.json'))";
        assert_eq!(line_kind(read, true), Some(Kind::DirnameRead));
        assert_eq!(line_kind(read, false), Some(Kind::DirnamePath));
        assert_eq!(line_kind("// new Worker(x)", false), None);
    }

    #[test]
    fn hidden_imports_and_package_json_reads() {
        let hidden = r#"var dynamicImport = new Function("module", "return import(module)");"#;
        assert_eq!(line_kind(hidden, true), Some(Kind::HiddenImport));
        let reads = [
            "const foundPackage = readPackageUpSync({",
            "const pkg = readPkgUp.sync({cwd: __dirname});",
            "const root = await packageDirectory({cwd});",
            "const file = findUp.sync('package.json', {cwd: here});",
            "const { version } = createRequire(import.meta.url)('../package.json');",
        ];
        for code in reads {
            assert_eq!(line_kind(code, true), Some(Kind::PackageJsonRead), "{code}");
        }
        let shell = r#"stderr = execSync("ldd --version", {"#;
        assert_eq!(line_kind(shell, true), Some(Kind::ShellCommand));
        let no = [
            "export function readPackageUpSync(options) {",
            "const pkg = require('../package.json');",
            "const m = await import(name);",
        ];
        for code in no {
            assert_eq!(line_kind(code, true), None, "{code}");
        }
    }

    #[test]
    fn paths_from_the_codes_location() {
        let yes = [
            "new Piscina({ filename: path.resolve(__dirname, 'worker.js'), maxThreads: 2 });",
            "const toExecute = overrides['w'] || join(__dirname, 'lib', 'worker.js')",
            "const dir = path.join(path.dirname(__filename), '..', 'locales')",
            "resolve(dirname(fileURLToPath(import.meta.url)), '../man/x.1')",
            "const w = new URL('./worker.js', import.meta.url);",
            "readFile(join(import.meta.dirname, 'data.json'))",
        ];
        for code in yes {
            assert_eq!(line_kind(code, false), Some(Kind::DirnamePath), "{code}");
        }
        let no = [
            "const here = fileURLToPath(import.meta.url);",
            "const u = new URL(import.meta.url);",
            "app.use(express.static(path.join(process.cwd(), 'public')))",
            "console.log(__dirname, path.join('a', 'b'))",
            "const parts = [__dirname, 'x'].join('/')",
            "return Promise.resolve(value)",
        ];
        for code in no {
            assert_eq!(line_kind(code, false), None, "{code}");
        }
    }

    #[test]
    fn rebased_to_the_mount() {
        let c = Construct {
            kind: Kind::IndirectRequire,
            location: "../../node_modules/m/m.js:3:9".into(),
            code: String::new(),
        };
        let r = c.rebased(Path::new("/w/packages/app"), Path::new("/w"));
        assert_eq!(r.location, "node_modules/m/m.js:3:9");
    }

    #[test]
    fn dependency_by_real_path() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().canonicalize().unwrap();
        let at = |loc: &str| Construct {
            kind: Kind::ComputedRequire,
            location: loc.into(),
            code: String::new(),
        };
        assert!(at("node_modules/x/a.js:1:1").in_dependency(&p));
        assert!(!at("lib/tsc.js:1:1").in_dependency(&p));
        // The project itself inside node_modules: its own files are not a dependency's.
        let tsc = p.join("node_modules/typescript");
        std::fs::create_dir_all(tsc.join("lib")).unwrap();
        assert!(!at("lib/tsc.js:3:1").in_dependency(&tsc));
    }
}
