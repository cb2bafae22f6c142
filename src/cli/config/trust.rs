//! What a binpack.toml may ask for. Building a repository runs its code, as `make` does, but
//! a config file is the easiest place to hide a command in a cloned repository, so options
//! that run a program on this machine or read a file from outside the project are refused
//! when they come from a file (the same flag on the command line is the user's own choice):
//!
//! - go build flags: only those that choose what is compiled (`-tags`, `-trimpath`, `-mod`,
//!   ...). Refused among others: `-toolexec` and `-exec` (run a program for each tool),
//!   `-overlay`, `-modfile`, `-pgo=FILE`, `-C`, `-pkgdir` (read files elsewhere), `-o`
//!   (writes anywhere), `-compiler`/`-gccgoflags` (another compiler), `-gcflags`/`-asmflags`
//!   (`-importcfg`, `-I`, `-embedcfg` read files; `-asmhdr`, `-cpuprofile` write them).
//! - `ldflags`: `-s`, `-w`, `-X`, `-buildid`, `-B`, `-compressdwarf`, `-v` only: `-extld`,
//!   `-extldflags` and `-linkmode=external` run a C linker of the file's choosing (with
//!   `-fuse-ld=`, `-B` and `@file` of its own); `-I`, `-L`, `-r`, `-importcfg` and `-tmpdir`
//!   name host paths.
//! - cargo flags: features, profiles, `--locked`, `--jobs`, a target triple. Refused among
//!   others: `--config` (sets `build.rustc-wrapper`, `target.*.runner`, `linker`), `-Z`,
//!   `--target FILE.json` (a target spec names its linker), `--manifest-path`,
//!   `--target-dir`, `--artifact-dir`, `+toolchain`. (A crate's build.rs still runs: cargo
//!   builds are the project's code, with or without a config file.)
//! - `add`, `asset` and `manifest-dir` sources, and the outputs (`output`, `oci-layout`,
//!   `sbom`), must lie inside the project: the directory holding the file.
//! - `ca-certs` must be a bundle of PEM certificates and nothing else.

use std::path::{Component, Path, PathBuf};

/// Go build flags a config file may give (the name before `=`, leading dashes dropped).
const GO_FLAGS: &[&str] = &[
    "a",
    "race",
    "msan",
    "asan",
    "cover",
    "covermode",
    "coverpkg",
    "v",
    "x",
    "n",
    "work",
    "p",
    "tags",
    "trimpath",
    "mod",
    "modcacherw",
    "buildvcs",
    "buildmode",
    "installsuffix",
    "ldflags",
    "pgo",
];

/// Go linker flags a config file may give in `ldflags`.
const LD_FLAGS: &[&str] = &["s", "w", "X", "buildid", "B", "compressdwarf", "v"];

/// Cargo build flags a config file may give (long names, and short ones as one letter).
const CARGO_FLAGS: &[&str] = &[
    "features",
    "F",
    "all-features",
    "no-default-features",
    "profile",
    "release",
    "r",
    "locked",
    "frozen",
    "offline",
    "jobs",
    "j",
    "verbose",
    "v",
    "quiet",
    "q",
    "target",
    "keep-going",
    "ignore-rust-version",
    "color",
    "timings",
];

/// Keys whose values are host paths that must lie inside the project.
const INSIDE: &[&str] = &[
    "add",
    "asset",
    "manifest-dir",
    "output",
    "oci-layout",
    "sbom",
];

/// Checks one option from a config file: `key` with its values (as given to the flag).
/// `project` is the directory holding the file, `cwd` where relative paths start from.
pub fn check(key: &str, values: &[String], project: &Path, cwd: &Path) -> Result<(), String> {
    match key {
        "build-flag" => flags(values, GO_FLAGS, "go build", |name, value| {
            match name {
                "ldflags" => value.map_or(Ok(()), ld_flags),
                // auto and off read the main package's default.pgo; any other is a path.
                "pgo" if !matches!(value, Some("auto" | "off")) => {
                    Err("-pgo=FILE reads a file chosen by the config; use auto or off".into())
                }
                _ => Ok(()),
            }
        }),
        "ldflags" => values.iter().try_for_each(|v| ld_flags(v)),
        "cargo-flag" => flags(values, CARGO_FLAGS, "cargo build", |name, value| {
            match (name, value) {
                ("target", Some(t)) if t.contains('/') || t.ends_with(".json") => Err(format!(
                    "--target {t}: a target spec file names its own linker; give a target triple"
                )),
                _ => Ok(()),
            }
        }),
        "ca-certs" => values
            .iter()
            .try_for_each(|p| binpack::registry::check_ca_bundle(Path::new(p)).map(|_| ())),
        k if INSIDE.contains(&k) => values.iter().try_for_each(|v| {
            // `add` is SRC:DEST, split at the last colon.
            let src = match k {
                "add" => v.rsplit_once(':').map_or(v.as_str(), |(s, _)| s),
                _ => v,
            };
            inside(project, &cwd.join(src))
        }),
        _ => Ok(()),
    }
}

/// Checks a list of flags against `allowed`; a bare word is the value of the flag before it.
/// `more` checks a flag's value.
fn flags(
    values: &[String],
    allowed: &[&str],
    tool: &str,
    more: impl Fn(&str, Option<&str>) -> Result<(), String>,
) -> Result<(), String> {
    let mut pending: Option<&str> = None;
    for v in values {
        let Some(name) = flag_name(v) else {
            match pending.take() {
                Some(name) => more(name, Some(v))?,
                None => return Err(format!("{v:?}: not a {tool} flag")),
            }
            continue;
        };
        if !allowed.contains(&name) {
            return Err(format!(
                "{v}: a config file may not give this {tool} flag (it can run a program or \
                 read a file outside the project); give it on the command line if you mean it"
            ));
        }
        let value = v.split_once('=').map(|(_, value)| value);
        if value.is_some() {
            more(name, value)?;
        }
        pending = value.is_none().then_some(name);
    }
    Ok(())
}

/// `--name=v` -> `name`, `-name` -> `name`, `-Fx` -> `F` for cargo's short flags; `None`
/// for a bare word. `+toolchain` gives its whole text, which no list allows.
fn flag_name(v: &str) -> Option<&str> {
    if v.starts_with('+') {
        return Some(v);
    }
    let body = v.strip_prefix("--").or_else(|| v.strip_prefix('-'))?;
    let name = body.split('=').next().unwrap_or(body);
    // Cargo's short flags take their value attached (-Ffoo, -j4).
    match name.char_indices().nth(1) {
        Some((i, _)) if !v.starts_with("--") && ["F", "j"].contains(&&name[..i]) => {
            Some(&name[..i])
        }
        _ => Some(name),
    }
}

/// Checks the words of an `-ldflags` value.
fn ld_flags(text: &str) -> Result<(), String> {
    for word in words(text) {
        let Some(body) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
            continue; // the value of the flag before it (`-X main.v=1`)
        };
        let name = body.split('=').next().unwrap_or(body);
        if !LD_FLAGS.contains(&name) {
            return Err(format!(
                "-ldflags {word}: a config file may not give this linker flag (it can run a \
                 program or read a file outside the project); give it on the command line if \
                 you mean it"
            ));
        }
    }
    Ok(())
}

/// Splits flags as go does: at white space, with '...' and "..." kept whole.
fn words(text: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote) = (Vec::new(), String::new(), None);
    let mut any = false;
    for c in text.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            _ => (cur, any) = (cur + &c.to_string(), true),
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// Refuses `path` unless it lies inside `project` once symbolic links are resolved (a link in
/// the project to a host file is outside). A path not made yet (an output) is judged by its
/// nearest existing ancestor.
fn inside(project: &Path, path: &Path) -> Result<(), String> {
    let outside = || {
        format!(
            "{}: outside the project ({}); a config file may only name files inside it \
             (give it on the command line if you mean it)",
            path.display(),
            project.display()
        )
    };
    let root = project.canonicalize().map_err(|e| e.to_string())?;
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    let real = loop {
        match existing.canonicalize() {
            Ok(r) => break r,
            Err(_) => {
                let name = existing.file_name().ok_or_else(outside)?.to_owned();
                rest.push(name);
                existing = existing.parent().ok_or_else(outside)?.to_path_buf();
            }
        }
    };
    // What is not made yet may hold no `..` (it would climb back out).
    let full: PathBuf = rest.iter().rev().fold(real, |p, n| p.join(n));
    let climbs = rest.iter().any(|n| n == "..")
        || full.components().any(|c| matches!(c, Component::ParentDir));
    if climbs || !full.starts_with(&root) {
        return Err(outside());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(flags: &[&str]) -> Result<(), String> {
        let v: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        check("build-flag", &v, Path::new("/"), Path::new("/"))
    }

    #[test]
    fn flags_that_run_programs_are_refused() {
        assert!(go(&["-tags=netgo", "-trimpath", "-tags", "osusergo"]).is_ok());
        for bad in [
            "-toolexec=/bin/sh",
            "-overlay=o.json",
            "--exec=x",
            "-gcflags=-importcfg=/etc/shadow",
            "-modfile=/tmp/go.mod",
            "-pgo=/etc/shadow",
            "-ldflags=-extld=/tmp/x",
            "-C",
        ] {
            let e = go(&[bad]).unwrap_err();
            assert!(e.contains("may not") || e.contains("-pgo"), "{bad}: {e}");
        }
        assert!(go(&["-toolexec", "/bin/sh"]).is_err());
        let ld = |s: &str| check("ldflags", &[s.into()], Path::new("/"), Path::new("/"));
        assert!(ld("-s -w -X 'main.msg=a b' -X main.v=1").is_ok());
        assert!(ld("-X main.v=1 -extldflags '-fuse-ld=/tmp/x'").is_err());
        assert!(ld("-linkmode=external").is_err());
        let cargo = |s: &[&str]| {
            let v: Vec<String> = s.iter().map(|s| s.to_string()).collect();
            check("cargo-flag", &v, Path::new("/"), Path::new("/"))
        };
        assert!(cargo(&[
            "--features=x",
            "-Fy",
            "--release",
            "-j4",
            "--target=x86_64-unknown-linux-musl"
        ])
        .is_ok());
        for bad in [
            "--config=build.rustc-wrapper='/tmp/x'",
            "-Zunstable-options",
            "--target=/tmp/t.json",
            "+nightly",
            "--manifest-path=/x/Cargo.toml",
        ] {
            assert!(cargo(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_must_lie_inside_the_project() {
        let d = tempfile::tempdir().unwrap();
        let project = d.path().join("p");
        std::fs::create_dir_all(project.join("sub")).unwrap();
        std::fs::write(project.join("sub/a"), "").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", project.join("link")).unwrap();
        let add = |s: &str| check("add", &[s.into()], &project, &project);
        assert!(add("sub/a:/a").is_ok());
        assert!(add("link:/a").is_err());
        assert!(add("/etc/hostname:/a").is_err());
        assert!(add("../p/sub/a:/a").is_ok());
        let out = |s: &str| check("output", &[s.into()], &project, &project.join("sub"));
        assert!(out("new/dir/out.tar").is_ok());
        assert!(out("new/../../../out.tar").is_err());
        assert!(out("/tmp/out.tar").is_err());
    }
}
