//! What a CGO_ENABLED=0 build does to packages that use cgo, told by `go list`.
//!
//! A package made only of cgo files does not build without cgo: go says "build constraints
//! exclude all Go files", and [`Go::cgo_users`] names the packages. Worse is a package that
//! ships a `!cgo` stand-in beside its cgo files (go-sqlite3's driver answers every call with
//! "Binary was compiled with 'CGO_ENABLED=0', go-sqlite3 requires cgo to work. This is a
//! stub"): the build succeeds and the program fails in the container. [`Go::check_cgo_left_out`]
//! finds those after the build: the packages of the build (CGO_ENABLED=0) that left files out
//! (`IgnoredGoFiles`), asked again with cgo on for the same platform: the ones with `CgoFiles`
//! then lost cgo code. Files left out for another GOOS (a `_darwin.go` that imports "C") are
//! not cgo files for this platform, so they do not count; nor does the standard library, whose
//! `net` and `os/user` have complete pure-Go fallbacks.

use super::{Go, GoBuild, GoError};
use crate::build::toolchain::{Show, Toolchain};
use crate::support::platform::Platform;
use std::ffi::OsString;

/// `go list -deps -f` template naming the non-standard packages that need cgo.
pub(super) const CGO_USERS: &str = "{{if and .CgoFiles (not .Standard)}}{{.ImportPath}}{{end}}";

/// `go list -deps -f` template (CGO_ENABLED=0): the packages of the build that left files out.
pub(super) const LEFT_FILES_OUT: &str =
    "{{if and .IgnoredGoFiles (not .Standard)}}{{.ImportPath}}{{end}}";

/// `go list -f` template (CGO_ENABLED=1): a package and its cgo files, one line.
pub(super) const CGO_FILES: &str =
    "{{if .CgoFiles}}{{.ImportPath}}{{range .CgoFiles}} {{.}}{{end}}{{end}}";

/// A package whose cgo files the build left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub import_path: String,
    pub cgo_files: Vec<String>,
}

impl Go<'_> {
    /// After a failure: which packages of the build need cgo? None when none do (or when
    /// go cannot say).
    pub(super) fn cgo_users(&self) -> Option<GoError> {
        let args = ["list", "-e", "-deps", "-f", CGO_USERS, &self.target]
            .map(OsString::from)
            .to_vec();
        let out = self.run("go list -deps", "1", args, Show::Nothing).ok()?;
        let packages: Vec<String> = lines(&out.stdout).map(String::from).collect();
        (!packages.is_empty()).then_some(GoError::NeedsCgo { packages })
    }

    /// After a CGO_ENABLED=0 build: refuses it when a package of it has cgo code the build
    /// left out. One `go list` when no package left files out, two otherwise.
    pub(super) fn check_cgo_left_out(&self) -> Result<(), GoError> {
        let args = self.args(&["list", "-e", "-deps", "-f", LEFT_FILES_OUT]);
        let out = self.run("go list -deps", "0", args, Show::Nothing)?;
        let candidates: Vec<&str> = lines(&out.stdout).collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let fixed = ["list", "-e", "-f", CGO_FILES].map(OsString::from);
        let flags = self.spec.flags.iter().map(OsString::from);
        let targets = candidates.iter().map(OsString::from);
        let args = fixed.into_iter().chain(flags).chain(targets).collect();
        let out = self.run("go list", "1", args, Show::Nothing)?;
        let packages: Vec<LeftOut> = lines(&out.stdout)
            .filter_map(|l| {
                let mut words = l.split_whitespace().map(String::from);
                Some(LeftOut {
                    import_path: words.next()?,
                    cgo_files: words.collect(),
                })
            })
            .collect();
        if packages.is_empty() {
            return Ok(());
        }
        Err(GoError::CgoLeftOut { packages })
    }
}

/// The non-empty lines of go's output, trimmed.
fn lines(stdout: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(stdout)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
}

/// The way out, said the same way by both refusals.
const WAY_OUT: &str = "build with cgo: `binpack go --cgo` (or `cgo = true` in binpack.toml's [go]) makes a dynamic binary and packs it on its library closure";

pub(super) fn needs_cgo_message(packages: &[String]) -> String {
    let verb = if packages.len() == 1 {
        "imports"
    } else {
        "import"
    };
    format!(
        "{} {verb} \"C\" (cgo), so the program cannot be built with CGO_ENABLED=0; {WAY_OUT}, or remove the cgo dependency",
        packages.join(", ")
    )
}

pub(super) fn stub_message(packages: &[LeftOut]) -> String {
    let named: Vec<String> = packages
        .iter()
        .map(|p| {
            let shown = p.cgo_files.iter().take(3).cloned().collect::<Vec<_>>();
            let more = p.cgo_files.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("{} (cgo files {}{more})", p.import_path, shown.join(", "))
        })
        .collect();
    let (has, its) = if packages.len() == 1 {
        ("has", "its")
    } else {
        ("have", "their")
    };
    format!(
        "{} {has} cgo code that CGO_ENABLED=0 leaves out: the binary would hold {its} cgo-less stand-in instead, which fails only at run time (go-sqlite3's answers every call with \"requires cgo to work. This is a stub\"); {WAY_OUT}, or use a pure-Go package instead",
        named.join("; ")
    )
}

pub(super) fn cross_way_out(cc: &str, in_container: &bool) -> String {
    let package = format!("gcc-{}", cc.trim_end_matches("-gcc"));
    if *in_container {
        format!("the toolchain container has none; build on this machine (--toolchain host) with {package} installed")
    } else {
        format!("it is not on PATH (on Debian: apt-get install {package}, and the target architecture's -dev packages of the C libraries the program links), or set CC")
    }
}

/// The C compiler of a cgo build for another architecture than this machine's: go uses `gcc`,
/// which compiles for the host only. Debian's cross compiler `<triplet>-gcc`
/// (gcc-aarch64-linux-gnu and the like) when it is on PATH; the user's CC wins. A toolchain
/// container (the golang image) has no cross compiler.
pub(super) fn cross_compiler(
    spec: &GoBuild,
    toolchain: &Toolchain,
    user_cc: Option<&str>,
) -> Result<Option<(&'static str, String)>, GoError> {
    if !spec.cgo || spec.platform.arch == Platform::host().arch {
        return Ok(None);
    }
    let triplet = match spec.platform.multiarch_triplet() {
        // Debian's i386 libraries, its i686 compiler.
        "i386-linux-gnu" => "i686-linux-gnu",
        t => t,
    };
    let cc = format!("{triplet}-gcc");
    match toolchain {
        Toolchain::Host if user_cc.is_some() => Ok(None),
        Toolchain::Host if which::which(&cc).is_ok() => Ok(Some(("CC", cc))),
        _ => Err(GoError::NoCrossCompiler {
            platform: spec.platform.to_string(),
            cc,
            in_container: matches!(toolchain, Toolchain::Container(_)),
        }),
    }
}
