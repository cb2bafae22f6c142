//! `go build` with CGO_ENABLED=0 into a static ELF, with the host's go or in a toolchain
//! container.

mod builder;
pub use builder::GoBuilder;

use super::toolchain::{
    file_error, temp_dir, volume, Commands, Exec, FileError, Show, Toolchain, ToolchainError,
};
use super::{git, Built};
use crate::cleanup::Tracked;
use crate::platform::Platform;
use crate::progress::Progress;
use serde::Deserialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;

/// What to build.
#[derive(Clone, Debug)]
pub struct GoBuild {
    /// A directory (built from inside it) or a package path.
    pub package: String,
    pub platform: Platform,
    /// Extra `go build` flags, passed before the package.
    pub flags: Vec<String>,
    /// Extra ldflags, appended to binpack's `-s -w -buildid=`.
    pub ldflags: Option<String>,
    /// Embed Go's time zone database (the `timetzdata` tag, ~400 KB): scratch has no
    /// /usr/share/zoneinfo, and `time.LoadLocation` fails without one or the other.
    pub tzdata: bool,
}

/// How to get go, for the errors that say it is missing.
pub const INSTALL: &str = "Go 1.21 or later (on Debian: apt-get install -t bookworm-backports golang-1.23-go, then add /usr/lib/go-1.23/bin to PATH)";

#[derive(Debug, thiserror::Error)]
pub enum GoError {
    #[error(
        "go not found on PATH: install {INSTALL}, or build in a container with --toolchain docker"
    )]
    NotFound,
    #[error("no such directory: {}", .0.display())]
    NoSuchDirectory(PathBuf),
    #[error("{import_path} is package {name}, not a main package: binpack go builds commands (package main)")]
    NotMain { import_path: String, name: String },
    #[error("{} {} \"C\" (cgo), so the program cannot be built with CGO_ENABLED=0; remove the cgo dependency, or build the binary yourself and pack it with `binpack bin`", packages.join(", "), if packages.len() == 1 { "imports" } else { "import" })]
    NeedsCgo { packages: Vec<String> },
    #[error("go list {package}: {message}")]
    List { package: String, message: String },
    #[error("go build failed (its output is above)")]
    BuildFailed,
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    #[error("{what}: {source}")]
    Spawn {
        what: &'static str,
        source: FileError,
    },
    #[error(transparent)]
    File(#[from] FileError),
}

/// The fields of `go list -json` binpack reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedPackage {
    #[serde(default)]
    name: String,
    #[serde(default)]
    import_path: String,
    error: Option<ListError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListError {
    err: String,
}

/// The caller's Go settings passed into a toolchain container (paths on the host, like
/// GOPATH and GOCACHE, are not: the container has its own, in the cache volume).
const PASS_ENV: &[&str] = &[
    "GOFLAGS",
    "GOPROXY",
    "GOPRIVATE",
    "GONOPROXY",
    "GONOSUMDB",
    "GOSUMDB",
    "GOINSECURE",
    "GO111MODULE",
    "GOEXPERIMENT",
    "GOTOOLCHAIN",
    "GOAMD64",
    "GOARM64",
];

/// Builds the package with `toolchain` and returns the executable.
pub fn build(
    spec: &GoBuild,
    toolchain: &Toolchain,
    progress: &dyn Progress,
) -> Result<Built, GoError> {
    let program = match toolchain {
        Toolchain::Host => which::which("go").map_err(|_| GoError::NotFound)?,
        Toolchain::Container(_) => PathBuf::from("go"),
    };
    let (workdir, target) = locate(&spec.package)?;
    let out_dir = Tracked::new(temp_dir()?);
    let workdir = workdir
        .canonicalize()
        .map_err(file_error("resolving the package directory", &workdir))?;
    let runner = toolchain.runner(&module_root(&workdir), out_dir.path(), &volume("go-cache"));
    let commands = Commands {
        runner: &runner,
        pass_env: PASS_ENV,
    };
    let go = Go {
        exec: &commands,
        program,
        cwd: workdir,
        env: go_env(&spec.platform, runner.in_container()),
        spec,
        target,
    };
    let name = go.build_one(out_dir.path(), &runner.path(out_dir.path()))?;
    let out = out_dir.path().join(&name);
    let mut built = Built::new(out, name, out_dir);
    let artifact = &mut built.artifact;
    artifact.provenance.vcs = git::describe(&go.cwd);
    artifact.provenance.platform = Some(spec.platform.clone());
    // Go's database is embedded (`timetzdata`), or left out on purpose (--no-tzdata).
    artifact.own_tzdata = true;
    // The host's root is the default. A container's is an image export, needed only for a
    // dynamic binary; which one is known from the flags (see `links_dynamically`).
    let goflags = std::env::var("GOFLAGS").unwrap_or_default();
    if matches!(toolchain, Toolchain::Container(_)) && links_dynamically(spec, &goflags) {
        artifact.root = toolchain.library_root(progress)?;
    }
    artifact.provenance.built_on = Some(toolchain.built_on());
    Ok(built)
}

/// The target platform as go's environment, and the caches for a container build.
fn go_env(platform: &Platform, in_container: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("GOOS", platform.os.clone()),
        ("GOARCH", platform.arch.clone()),
    ];
    let arm_version = platform
        .variant
        .as_deref()
        .and_then(|v| v.strip_prefix('v'));
    match (arm_version, platform.arch.as_str()) {
        (Some(v), "arm") => env.push(("GOARM", v.to_string())),
        // amd64's variant is a microarchitecture level; none is go's default (v1).
        (Some(v), "amd64") => env.push(("GOAMD64", format!("v{v}"))),
        _ => {}
    }
    if in_container {
        // The caches live in the named volume, so a second container build is fast.
        env.push(("GOPATH", "/cache/go".into()));
        env.push(("GOCACHE", "/cache/go-build".into()));
    }
    env
}

/// One package's `go` commands, run through [`Exec`] (a fake one in the tests).
struct Go<'a> {
    exec: &'a dyn Exec,
    /// `go`: a path on the host, a name in a container.
    program: PathBuf,
    cwd: PathBuf,
    /// The platform's variables (and a container's caches); CGO_ENABLED is added per command.
    env: Vec<(&'static str, String)>,
    spec: &'a GoBuild,
    /// The package argument.
    target: String,
}

impl Go<'_> {
    fn run(
        &self,
        what: &'static str,
        cgo: &str,
        args: Vec<OsString>,
        show: Show,
    ) -> Result<Output, GoError> {
        let mut env = self.env.clone();
        env.push(("CGO_ENABLED", cgo.to_string()));
        self.exec
            .run(self.program.as_os_str(), &args, &self.cwd, &env, show)
            .map_err(|source| GoError::Spawn { what, source })
    }

    /// `fixed` args, then the user's flags, then the package.
    fn args(&self, fixed: &[&str]) -> Vec<OsString> {
        let fixed = fixed.iter().map(OsString::from);
        let flags = self.spec.flags.iter().map(OsString::from);
        fixed
            .chain(flags)
            .chain([OsString::from(&self.target)])
            .collect()
    }

    fn list_failed(&self, message: impl Into<String>) -> GoError {
        GoError::List {
            package: self.spec.package.clone(),
            message: message.into(),
        }
    }

    /// The one main package `go list` finds, or why there is none.
    fn list(&self) -> Result<ListedPackage, GoError> {
        let args = self.args(&["list", "-e", "-json"]);
        let listed = self.run("go list", "0", args, Show::Stderr)?;
        // A pattern (./...) lists several packages: binpack builds one command.
        let pkgs: Vec<ListedPackage> = serde_json::Deserializer::from_slice(&listed.stdout)
            .into_iter::<ListedPackage>()
            .collect::<Result<_, _>>()
            .map_err(|e| self.list_failed(format!("unreadable output: {e}")))?;
        let pkg = match <[ListedPackage; 1]>::try_from(pkgs) {
            Ok([one]) => one,
            Err(many) if many.is_empty() && !listed.status.success() => {
                return Err(self.list_failed("failed (its output is above)"))
            }
            Err(many) => {
                return Err(self.list_failed(format!(
                    "matches {} packages; binpack go builds one main package",
                    many.len()
                )))
            }
        };
        if let Some(e) = &pkg.error {
            // With CGO_ENABLED=0 a cgo package lists as "build constraints exclude all Go files".
            return Err(self
                .cgo_users()
                .unwrap_or_else(|| self.list_failed(e.err.trim())));
        }
        if !listed.status.success() {
            return Err(self.list_failed("failed (its output is above)"));
        }
        if pkg.name != "main" {
            return Err(GoError::NotMain {
                import_path: pkg.import_path,
                name: pkg.name,
            });
        }
        Ok(pkg)
    }

    /// Builds into the directory `dir` (`go_dir` as go sees it), named by go itself as it
    /// names commands, and returns the name. `go list` (a whole extra pass over the package
    /// graph) runs only when the build did not give one executable, to say why.
    fn build_one(&self, dir: &Path, go_dir: &Path) -> Result<String, GoError> {
        let mut out = go_dir.as_os_str().to_owned();
        out.push("/");
        self.build(Path::new(&out))?;
        let names: Vec<String> = std::fs::read_dir(dir)
            .map_err(file_error("listing the build output", dir))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(file_error("listing the build output", dir))?;
        match <[String; 1]>::try_from(names) {
            Ok([name]) => Ok(name),
            Err(_) => Err(self.explain().unwrap_or(GoError::BuildFailed)),
        }
    }

    /// Why the build gave no single main package, as `go list` tells it.
    fn explain(&self) -> Option<GoError> {
        self.list().err()
    }

    /// `go build` into `out` (a path as go sees it): stripped, reproducible, static.
    fn build(&self, out: &Path) -> Result<(), GoError> {
        let mut ldflags = "-s -w -buildid=".to_string();
        if let Some(extra) = &self.spec.ldflags {
            ldflags.push(' ');
            ldflags.push_str(extra);
        }
        let out = out.to_string_lossy();
        let goflags = std::env::var("GOFLAGS").unwrap_or_default();
        let fixed = ["build", "-trimpath", "-ldflags", &ldflags, "-o", &out];
        let args = fixed
            .iter()
            .map(|s| s.to_string())
            .chain(build_flags(self.spec, &goflags))
            .chain([self.target.clone()])
            .map(OsString::from)
            .collect();
        // go's own output reaches the user unchanged.
        let built = self.run("go build", "0", args, Show::All)?;
        if !built.status.success() {
            // Not a main package, several, none: `go list` says which; else maybe cgo.
            let why = self.explain().or_else(|| self.cgo_users());
            return Err(why.unwrap_or(GoError::BuildFailed));
        }
        Ok(())
    }

    /// After a failure: which packages of the build need cgo? None when none do (or when
    /// go cannot say).
    fn cgo_users(&self) -> Option<GoError> {
        let args = ["list", "-e", "-deps", "-f", CGO_USERS, &self.target]
            .map(OsString::from)
            .to_vec();
        let out = self.run("go list -deps", "1", args, Show::Nothing).ok()?;
        let packages: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        (!packages.is_empty()).then_some(GoError::NeedsCgo { packages })
    }
}

/// Whether the binary will be dynamic, told from the flags rather than by reading the binary
/// (the build stage does not inspect). With CGO_ENABLED=0 go links internally into a static
/// binary unless asked otherwise. Measured with Go 1.23: `-buildmode=pie` gives a dynamic
/// PIE with an interpreter (ld-linux) and no DT_NEEDED on amd64, arm64 and ppc64le (and
/// fails elsewhere); `-linkmode=external` and the c-shared and plugin buildmodes fail
/// ("requires external (cgo) linking"), so counting them as dynamic costs nothing. GOFLAGS
/// (passed into a container) counts as much as `--build-flag`.
/// The user's build flags with binpack's: `-buildvcs=false` unless the user set it (a host
/// build sees the .git, a container build does not: stamping would make their digests
/// differ; the revision is in the image's labels either way), and the `timetzdata` tag merged
/// into the user's `-tags` (go keeps only the last `-tags`; the command line's replaces
/// GOFLAGS').
fn build_flags(spec: &GoBuild, goflags: &str) -> Vec<String> {
    let mut flags = Vec::new();
    let vcs_set = |s: &str| s.contains("-buildvcs");
    if !vcs_set(goflags) && !spec.flags.iter().any(|f| vcs_set(f)) {
        flags.push("-buildvcs=false".to_string());
    }
    let mut user = spec.flags.clone();
    if !spec.tzdata {
        flags.extend(user);
        return flags;
    }
    let with_tag = |tags: &str| {
        let tags = tags.trim_matches(['\'', '"']);
        // Space-separated is the old spelling; go reads commas when there are any.
        let tags = if tags.contains(',') {
            tags.to_string()
        } else {
            tags.split_whitespace().collect::<Vec<_>>().join(",")
        };
        if tags.is_empty() {
            TZDATA_TAG.to_string()
        } else {
            format!("{tags},{TZDATA_TAG}")
        }
    };
    let mut merged = false;
    let mut i = 0;
    while i < user.len() {
        let flag = user[i].trim_start_matches('-');
        if let Some(v) = flag.strip_prefix("tags=") {
            user[i] = format!("-tags={}", with_tag(v));
            merged = true;
        } else if flag == "tags" && i + 1 < user.len() {
            user[i + 1] = with_tag(&user[i + 1]);
            merged = true;
            i += 1;
        }
        i += 1;
    }
    if !merged {
        let from_goflags = goflags
            .split_whitespace()
            .find_map(|f| f.trim_start_matches('-').strip_prefix("tags="));
        flags.push(format!("-tags={}", with_tag(from_goflags.unwrap_or(""))));
    }
    flags.extend(user);
    flags
}

/// The build tag that embeds Go's time zone database.
const TZDATA_TAG: &str = "timetzdata";

fn links_dynamically(spec: &GoBuild, goflags: &str) -> bool {
    let text = [goflags, spec.ldflags.as_deref().unwrap_or("")]
        .into_iter()
        .chain(spec.flags.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    // `-buildmode=pie`, `-buildmode pie`, `-ldflags=-linkmode=external`, quoted or not.
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == '=')
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|w| match w {
        ["buildmode", mode] => !matches!(*mode, "exe" | "default"),
        ["linkmode", mode] => *mode == "external",
        _ => false,
    })
}

/// What a toolchain container mounts: the nearest directory with go.work, else go.mod, else
/// the package directory itself.
fn module_root(dir: &Path) -> PathBuf {
    ["go.work", "go.mod"]
        .iter()
        .find_map(|f| dir.ancestors().find(|d| d.join(f).is_file()))
        .unwrap_or(dir)
        .to_path_buf()
}

/// The working directory and the package argument for `go`: a directory is built from inside.
fn locate(package: &str) -> Result<(PathBuf, String), GoError> {
    let path = Path::new(package);
    // `./cmd/...` is a pattern for go, not a directory.
    let path_like = !package.contains("...")
        && (package.starts_with('.') || package.starts_with('/') || path.is_dir());
    if !path_like {
        return Ok((PathBuf::from("."), package.to_string()));
    }
    if !path.is_dir() {
        return Err(GoError::NoSuchDirectory(path.to_path_buf()));
    }
    Ok((path.to_path_buf(), ".".to_string()))
}

/// `go list -deps -f` template naming the non-standard packages that need cgo.
const CGO_USERS: &str = "{{if and .CgoFiles (not .Standard)}}{{.ImportPath}}{{end}}";

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::ffi::OsStr;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    /// One command the fake ran: its args and environment.
    struct Call {
        args: Vec<String>,
        env: Vec<(String, String)>,
        show: Show,
    }

    /// Answers `go list -json`, `go list -deps` (the cgo question) and `go build` with canned
    /// (status, stdout), as go 1.23 printed them; records what it was asked.
    struct Fake {
        list: (i32, &'static str),
        cgo: &'static str,
        build: i32,
        calls: RefCell<Vec<Call>>,
    }

    impl Fake {
        fn new(list: (i32, &'static str)) -> Fake {
            Fake {
                list,
                cgo: "",
                build: 0,
                calls: RefCell::default(),
            }
        }

        fn args_of(&self, first: &str) -> Vec<Vec<String>> {
            let calls = self.calls.borrow();
            let of = calls
                .iter()
                .filter(|c| c.args[0] == first || first.is_empty());
            of.map(|c| c.args.clone()).collect()
        }
    }

    impl Exec for Fake {
        fn run(
            &self,
            program: &OsStr,
            args: &[OsString],
            _cwd: &Path,
            env: &[(&str, String)],
            show: Show,
        ) -> Result<Output, FileError> {
            assert_eq!(program, "go");
            let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
            if let Some(dir) = args.iter().find(|a| a.ends_with('/')) {
                if args[0] == "build" && self.build == 0 {
                    std::fs::write(Path::new(dir).join("app"), b"\x7fELF").unwrap();
                }
            }
            let (code, stdout) = match (args[0].as_str(), args.contains(&"-deps".into())) {
                ("list", true) => (0, self.cgo),
                ("list", false) => self.list,
                _ => (self.build, ""),
            };
            let env = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            self.calls.borrow_mut().push(Call { args, env, show });
            Ok(Output {
                status: ExitStatus::from_raw(code << 8),
                stdout: stdout.into(),
                stderr: vec![],
            })
        }
    }

    fn spec(flags: &[&str], ldflags: Option<&str>) -> GoBuild {
        GoBuild {
            package: "./cmd/app".into(),
            platform: Platform::parse("linux/arm/v7").unwrap(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            ldflags: ldflags.map(String::from),
            tzdata: true,
        }
    }

    fn go<'a>(exec: &'a Fake, spec: &'a GoBuild) -> Go<'a> {
        Go {
            exec,
            program: "go".into(),
            cwd: "/src/cmd/app".into(),
            env: go_env(&spec.platform, false),
            spec,
            target: ".".into(),
        }
    }

    const MAIN: &str = r#"{"Dir": "/src/cmd/app", "ImportPath": "example.com/cmd/app", "Name": "main",
        "Module": {"Path": "example.com", "Main": true}, "Match": ["."]}"#;
    /// `go list -e -json` of examples/cgo with CGO_ENABLED=0 (it exits 0).
    const CGO_MAIN: &str = r#"{"Dir": "/src/cgo", "ImportPath": "example.com/cgo", "Name": "main",
        "Incomplete": true, "IgnoredGoFiles": ["main.go"],
        "Error": {"ImportStack": ["example.com/cgo"], "Pos": "",
                  "Err": "build constraints exclude all Go files in /src/cgo"}}"#;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn a_main_package_builds_static_for_the_platform() {
        let fake = Fake::new((0, MAIN));
        let spec = spec(&["-tags=netgo"], Some("-X main.v=1"));
        let go = go(&fake, &spec);
        let out = tempfile::tempdir().unwrap();
        let name = go.build_one(out.path(), out.path()).unwrap();
        assert_eq!(name, "app", "named by go");
        // The happy path asks go nothing but the build.
        assert!(fake.args_of("list").is_empty());
        let mut want = words("build -trimpath -ldflags");
        want.push("-s -w -buildid= -X main.v=1".into());
        want.push("-o".into());
        want.push(format!("{}/", out.path().display()));
        want.extend(words("-buildvcs=false -tags=netgo,timetzdata ."));
        assert_eq!(fake.args_of("build"), [want]);
        let calls = fake.calls.borrow();
        for var in ["GOOS=linux", "GOARCH=arm", "GOARM=7", "CGO_ENABLED=0"] {
            let (k, v) = var.split_once('=').unwrap();
            for c in calls.iter() {
                assert!(c.env.contains(&(k.into(), v.into())), "{var}: {:?}", c.env);
            }
        }
        // go's output reaches the user; nobody asked about cgo.
        assert_eq!(
            calls.iter().map(|c| c.show).collect::<Vec<_>>(),
            [Show::All]
        );
    }

    #[test]
    fn tzdata_joins_the_users_tags_and_vcs_stamping_is_off_unless_asked() {
        let flags = |f: &[&str], tz: bool, goflags: &str| {
            let mut s = spec(f, None);
            s.tzdata = tz;
            build_flags(&s, goflags).join(" ")
        };
        assert_eq!(flags(&[], true, ""), "-buildvcs=false -tags=timetzdata");
        assert_eq!(flags(&[], false, ""), "-buildvcs=false");
        assert_eq!(
            flags(&["-tags", "netgo osusergo", "-v"], true, ""),
            "-buildvcs=false -tags netgo,osusergo,timetzdata -v"
        );
        assert_eq!(
            flags(&["--tags=a,b"], true, "-buildvcs=true"),
            "-tags=a,b,timetzdata"
        );
        assert_eq!(
            flags(&["-buildvcs=true"], true, "-mod=vendor -tags=netgo"),
            "-tags=netgo,timetzdata -buildvcs=true"
        );
    }

    #[test]
    fn go_env_names_the_platform_and_container_caches() {
        let amd64 = Platform::parse("linux/amd64").unwrap();
        let env = go_env(&amd64, true);
        assert_eq!(
            env.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            ["GOOS", "GOARCH", "GOPATH", "GOCACHE"]
        );
        let arm64 = Platform::parse("linux/arm64/v8").unwrap();
        assert!(!go_env(&arm64, false).iter().any(|(k, _)| *k == "GOARM"));
        let v3 = Platform::parse("linux/amd64/v3").unwrap();
        assert!(go_env(&v3, false).contains(&("GOAMD64", "v3".into())));
    }

    #[test]
    fn a_failed_build_asks_go_list_why() {
        let lib = r#"{"Dir": "/src/lib", "ImportPath": "example.com/x/lib", "Name": "lib"}"#;
        let mut fake = Fake::new((0, lib));
        fake.build = 1;
        let spec = spec(&[], None);
        let out = tempfile::tempdir().unwrap();
        let err = go(&fake, &spec)
            .build_one(out.path(), out.path())
            .unwrap_err();
        assert!(matches!(err, GoError::NotMain { .. }), "{err}");
        assert_eq!(fake.args_of("list").len(), 1);
    }

    #[test]
    fn a_library_package_is_not_main() {
        let lib = r#"{"Dir": "/src/lib", "ImportPath": "example.com/x/lib", "Name": "lib"}"#;
        let fake = Fake::new((0, lib));
        let spec = spec(&[], None);
        let err = go(&fake, &spec).list().unwrap_err();
        assert_eq!(
            err.to_string(),
            "example.com/x/lib is package lib, not a main package: binpack go builds commands (package main)"
        );
        assert!(fake.args_of("build").is_empty());
    }

    #[test]
    fn go_list_errors_are_named() {
        let missing = r#"{"ImportPath": "./nope", "Match": ["./nope"], "Incomplete": true,
            "Error": {"ImportStack": [], "Pos": "", "Err": "stat /src/nope: directory not found\n"}}"#;
        let two = r#"{"ImportPath": "example.com/a", "Name": "main"}
            {"ImportPath": "example.com/b", "Name": "main"}"#;
        for (list, want) in [
            (
                (0, missing),
                "go list ./cmd/app: stat /src/nope: directory not found",
            ),
            ((1, ""), "go list ./cmd/app: failed (its output is above)"),
            ((1, MAIN), "go list ./cmd/app: failed (its output is above)"),
            (
                (0, two),
                "go list ./cmd/app: matches 2 packages; binpack go builds one main package",
            ),
            ((0, "{not json"), "go list ./cmd/app: unreadable output: "),
        ] {
            let fake = Fake::new(list);
            let spec = spec(&[], None);
            let err = go(&fake, &spec).list().unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
    }

    #[test]
    fn a_package_that_needs_cgo_names_the_packages() {
        let mut fake = Fake::new((0, CGO_MAIN));
        fake.cgo = "example.com/cgo\nexample.com/cgo/sqlite\n";
        let spec = spec(&["-tags=netgo"], None);
        let err = go(&fake, &spec).list().unwrap_err();
        assert!(
            matches!(&err, GoError::NeedsCgo { packages } if packages == &["example.com/cgo", "example.com/cgo/sqlite"]),
            "{err}"
        );
        assert!(err.to_string().starts_with(
            "example.com/cgo, example.com/cgo/sqlite import \"C\" (cgo), so the program cannot be built with CGO_ENABLED=0"
        ));
        // The question is asked with cgo on (else go skips the files that import "C").
        let calls = fake.calls.borrow();
        let deps = calls
            .iter()
            .find(|c| c.args.contains(&"-deps".into()))
            .unwrap();
        assert_eq!(deps.args, ["list", "-e", "-deps", "-f", CGO_USERS, "."]);
        assert!(deps.env.contains(&("CGO_ENABLED".into(), "1".into())));
        assert_eq!(deps.show, Show::Nothing);
    }

    #[test]
    fn a_failed_build_says_so_or_names_cgo() {
        let mut fake = Fake::new((0, MAIN));
        fake.build = 1;
        let spec = spec(&[], None);
        let err = go(&fake, &spec).build(Path::new("/out/app")).unwrap_err();
        assert!(matches!(err, GoError::BuildFailed), "{err}");
        assert_eq!(err.to_string(), "go build failed (its output is above)");
        fake.cgo = "example.com/cmd/app/db\n";
        let err = go(&fake, &spec).build(Path::new("/out/app")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("example.com/cmd/app/db imports \"C\""),
            "{err}"
        );
    }

    #[test]
    fn a_go_that_cannot_start_is_named() {
        struct Gone;
        impl Exec for Gone {
            fn run(
                &self,
                program: &OsStr,
                _: &[OsString],
                _: &Path,
                _: &[(&str, String)],
                _: Show,
            ) -> Result<Output, FileError> {
                let e = std::io::Error::from(std::io::ErrorKind::NotFound);
                Err(file_error("running", Path::new(program))(e))
            }
        }
        let spec = spec(&[], None);
        let unused = Fake::new((0, MAIN));
        let go = Go {
            exec: &Gone,
            ..go(&unused, &spec)
        };
        let err = go.list().unwrap_err().to_string();
        assert_eq!(err, "go list: running go: entity not found");
    }

    #[test]
    fn dynamic_only_when_the_flags_ask() {
        let cases: &[(&[&str], Option<&str>, &str, bool)] = &[
            (&[], None, "", false),
            (
                &["-tags=netgo", "-buildmode=exe"],
                Some("-X main.v=1"),
                "",
                false,
            ),
            (&["-buildmode=default"], None, "-mod=vendor", false),
            (&["-ldflags=-X main.buildmode=pie"], None, "", false),
            (&["-buildmode=pie"], None, "", true),
            (&["--buildmode", "pie"], None, "", true),
            (&[], None, "-mod=mod -buildmode=pie", true),
            (&[], Some("-linkmode=external"), "", true),
            (
                &[],
                Some("-linkmode external -extldflags -static"),
                "",
                true,
            ),
            (&["-ldflags='-linkmode=external'"], None, "", true),
            (&["-buildmode=c-shared"], None, "", true),
        ];
        for (flags, ldflags, goflags, want) in cases {
            let s = spec(flags, *ldflags);
            assert_eq!(
                links_dynamically(&s, goflags),
                *want,
                "{flags:?} {ldflags:?} {goflags}"
            );
        }
    }

    #[test]
    fn locate_paths_and_packages() {
        let d = tempfile::tempdir().unwrap();
        let (wd, t) = locate(d.path().to_str().unwrap()).unwrap();
        assert_eq!((wd.as_path(), t.as_str()), (d.path(), "."));
        assert_eq!(
            locate("example.com/cmd/app").unwrap(),
            (PathBuf::from("."), "example.com/cmd/app".to_string())
        );
        assert!(matches!(
            locate("./does/not/exist"),
            Err(GoError::NoSuchDirectory(_))
        ));
    }
}
