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

/// Answers `go list -json`, the cgo questions (`go list -f` with each template) and
/// `go build` with canned (status, stdout), as go 1.23 printed them; records what it was
/// asked.
struct Fake {
    list: (i32, &'static str),
    /// After a failed build: the packages with cgo files.
    cgo: &'static str,
    /// After a built one: the packages that left files out, and those of them with cgo files.
    left_out: &'static str,
    cgo_files: &'static str,
    build: i32,
    calls: RefCell<Vec<Call>>,
}

impl Fake {
    fn new(list: (i32, &'static str)) -> Fake {
        Fake {
            list,
            cgo: "",
            left_out: "",
            cgo_files: "",
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
        let has = |a: &str| args.iter().any(|x| x == a);
        let (code, stdout) = match args[0].as_str() {
            "list" if has(cgo::CGO_USERS) => (0, self.cgo),
            "list" if has(cgo::LEFT_FILES_OUT) => (0, self.left_out),
            "list" if has(cgo::CGO_FILES) => (0, self.cgo_files),
            "list" => self.list,
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
        cgo: false,
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
    // The happy path asks go the build, then which packages left files out (none did).
    assert_eq!(
        fake.args_of("list"),
        [words("list -e -deps -f")
            .into_iter()
            .chain([cgo::LEFT_FILES_OUT.into(), "-tags=netgo".into(), ".".into()])
            .collect::<Vec<_>>()]
    );
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
    // go's output reaches the user; the cgo question's does not.
    assert_eq!(
        calls.iter().map(|c| c.show).collect::<Vec<_>>(),
        [Show::All, Show::Nothing]
    );
}

/// go 1.23's answers for github.com/mattn/go-sqlite3/_example/simple from Debian's
/// golang-github-mattn-go-sqlite3-dev 1.14.16~ds1-1: go-sqlite3 builds without cgo from its
/// `!cgo` stub (static_mock.go).
const SQLITE_LEFT_OUT: &str = "github.com/mattn/go-sqlite3\n";
const SQLITE_CGO_FILES: &str = "github.com/mattn/go-sqlite3 backup.go callback.go error.go sqlite3.go sqlite3_context.go sqlite3_libsqlite3.go sqlite3_load_extension.go sqlite3_opt_userauth_omit.go sqlite3_other.go sqlite3_type.go\n";

#[test]
fn a_package_whose_cgo_code_was_left_out_is_refused() {
    let mut fake = Fake::new((0, MAIN));
    fake.left_out = SQLITE_LEFT_OUT;
    fake.cgo_files = SQLITE_CGO_FILES;
    let spec = spec(&["-tags=netgo"], None);
    let out = tempfile::tempdir().unwrap();
    let err = go(&fake, &spec)
        .build_one(out.path(), out.path())
        .unwrap_err();
    let GoError::CgoLeftOut { packages } = &err else {
        panic!("{err}")
    };
    assert_eq!(packages[0].import_path, "github.com/mattn/go-sqlite3");
    assert_eq!(packages[0].cgo_files.len(), 10);
    let text = err.to_string();
    assert!(
        text.starts_with("github.com/mattn/go-sqlite3 (cgo files backup.go, callback.go, error.go and 7 more) has cgo code that CGO_ENABLED=0 leaves out"),
        "{text}"
    );
    assert!(text.contains("`binpack go --cgo`"), "{text}");
    // The second question is asked with cgo on, of the packages that left files out only.
    let calls = fake.calls.borrow();
    let second = calls.last().unwrap();
    assert_eq!(
        second.args,
        [
            "list",
            "-e",
            "-f",
            cgo::CGO_FILES,
            "-tags=netgo",
            "github.com/mattn/go-sqlite3"
        ]
    );
    assert!(second.env.contains(&("CGO_ENABLED".into(), "1".into())));
}

#[test]
fn files_left_out_for_another_platform_are_not_cgo_left_out() {
    // x/sys/unix leaves out its other-OS files; none is a cgo file for this platform.
    let mut fake = Fake::new((0, MAIN));
    fake.left_out = "golang.org/x/sys/unix\n";
    let spec = spec(&[], None);
    let out = tempfile::tempdir().unwrap();
    assert_eq!(
        go(&fake, &spec).build_one(out.path(), out.path()).unwrap(),
        "app"
    );
    assert_eq!(fake.args_of("list").len(), 2);
}

#[test]
fn with_cgo_the_build_has_cgo_and_nothing_is_asked() {
    let mut fake = Fake::new((0, MAIN));
    fake.left_out = SQLITE_LEFT_OUT;
    fake.cgo_files = SQLITE_CGO_FILES;
    let mut spec = spec(&[], None);
    spec.cgo = true;
    let out = tempfile::tempdir().unwrap();
    assert_eq!(
        go(&fake, &spec).build_one(out.path(), out.path()).unwrap(),
        "app"
    );
    let calls = fake.calls.borrow();
    assert_eq!(calls.len(), 1, "only the build");
    assert!(calls[0].env.contains(&("CGO_ENABLED".into(), "1".into())));
    assert!(links_dynamically(&spec, ""));
}

#[test]
fn a_failed_cgo_build_is_not_blamed_on_cgo() {
    let mut fake = Fake::new((0, MAIN));
    fake.build = 1;
    fake.cgo = "github.com/mattn/go-sqlite3\n";
    let mut spec = spec(&[], None);
    spec.cgo = true;
    let err = go(&fake, &spec).build(Path::new("/out/")).unwrap_err();
    assert!(matches!(err, GoError::BuildFailed), "{err}");
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
    assert_eq!(
        deps.args,
        ["list", "-e", "-deps", "-f", cgo::CGO_USERS, "."]
    );
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

#[test]
fn cgo_for_another_arch_takes_debians_cross_compiler_or_says_which() {
    let mut s = spec(&[], None);
    s.cgo = true;
    // linux/arm/v7 is never this machine's platform.
    match which::which("arm-linux-gnueabihf-gcc") {
        Ok(_) => assert_eq!(
            cgo::cross_compiler(&s, &Toolchain::Host, None).unwrap(),
            Some(("CC", "arm-linux-gnueabihf-gcc".to_string()))
        ),
        Err(_) => {
            let err = cgo::cross_compiler(&s, &Toolchain::Host, None).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("--cgo for linux/arm/v7 needs a C cross compiler, arm-linux-gnueabihf-gcc: it is not on PATH (on Debian: apt-get install gcc-arm-linux-gnueabihf"),
                "{text}"
            );
        }
    }
    // The user's CC wins; without cgo, or for this machine's platform, go's own choice.
    assert_eq!(
        cgo::cross_compiler(&s, &Toolchain::Host, Some("clang")).unwrap(),
        None
    );
    s.platform = Platform::host();
    assert_eq!(
        cgo::cross_compiler(&s, &Toolchain::Host, None).unwrap(),
        None
    );
    s.cgo = false;
    s.platform = Platform::parse("linux/arm64").unwrap();
    assert_eq!(
        cgo::cross_compiler(&s, &Toolchain::Host, None).unwrap(),
        None
    );
}
