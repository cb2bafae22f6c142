//! One binary target of a Cargo workspace, built stripped (`cargo rustc --release --bin B --
//! -C strip=symbols`); cargo_metadata finds the targets, and cargo's JSON messages say where
//! the executable is (`--target`, a custom profile and `build.target` all move it).

mod builder;
pub use builder::CargoBuilder;

use super::toolchain::{file_error, FileError};
use super::{git, Built};
use super::{Component, Ecosystem};
use crate::support::cleanup::Tracked;
use crate::support::platform::Platform;
use cargo_metadata::{Message, PackageId};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What to build.
#[derive(Clone, Debug, Default)]
pub struct CargoBuild {
    /// The workspace (or package) directory.
    pub dir: PathBuf,
    /// The binary target; needed when the workspace has several.
    pub bin: Option<String>,
    pub package: Option<String>,
    /// Extra cargo build flags (features, target, profile, ...).
    pub flags: Vec<String>,
    /// The platform to build for (`--target` its Rust triple); None: cargo's default.
    pub platform: Option<Platform>,
}

#[derive(Debug, thiserror::Error)]
pub enum CargoError {
    #[error("cargo not found on PATH: install Rust (rustup) to build with binpack cargo")]
    NotFound,
    #[error("no Cargo.toml in {} or any parent directory: binpack cargo builds a Cargo package or workspace", .0.display())]
    NoManifest(PathBuf),
    #[error("cargo metadata in {}: {}", .0.display(), .1)]
    Metadata(PathBuf, String),
    #[error("{0}")]
    Target(String),
    #[error("cargo rustc failed (its output is above)")]
    BuildFailed,
    #[error("cargo rustc in {} named no executable for the binary target {bin}", dir.display())]
    NoExecutable { dir: PathBuf, bin: String },
    #[error("cargo rustc made {bin} several times ({}): binpack packs one, give one --target", list(.paths))]
    SeveralExecutables { bin: String, paths: Vec<PathBuf> },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("copying {} to {}: {source}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
}

/// Paths for a message: `a, b`.
fn list(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// Builds the binary target and returns it.
pub fn build(spec: &CargoBuild) -> Result<Built, CargoError> {
    let cargo = which::which("cargo").map_err(|_| CargoError::NotFound)?;
    let manifest = spec.dir.join("Cargo.toml");
    let meta = cargo_metadata::MetadataCommand::new()
        .cargo_path(&cargo)
        .manifest_path(&manifest)
        .no_deps()
        .exec()
        .map_err(|e| CargoError::Metadata(spec.dir.clone(), e.to_string()))?;
    let (package, bin) = select_bin(&meta, spec, &manifest)?;
    // Made before the build, so that a broken temporary directory fails before a long build.
    let tmp = std::env::temp_dir();
    let out_dir = Tracked::new(
        tempfile::Builder::new()
            .prefix(&crate::support::cleanup::private_prefix())
            .tempdir()
            .map_err(file_error("creating a temporary directory in", &tmp))?,
    );
    if spec.platform.is_some()
        && target_triple(&spec.flags, Path::new(""), Path::new("/")).is_some()
    {
        return Err(CargoError::Target(
            "--platform and --cargo-flag=--target both choose the target: give one".into(),
        ));
    }
    let target = target_for(spec.platform.as_ref())?;
    let built = cargo_build(&cargo, spec, target.as_ref(), &package, &bin)?;
    // Packed from a private copy: a later cargo build must not change it under binpack.
    let exe = out_dir.path().join(&bin);
    std::fs::copy(&built, &exe).map_err(|source| CargoError::Copy {
        from: built.clone(),
        to: exe.clone(),
        source,
    })?;
    let target_dir = meta.target_directory.as_std_path();
    let triple = match &target {
        Some(t) => Some(t.triple.to_string()),
        None => target_triple(&spec.flags, &built, target_dir),
    };
    let platform = match &spec.platform {
        Some(p) => Some(p.clone()),
        None => triple.as_deref().and_then(triple_platform),
    };
    let mut built = Built::new(exe, bin, out_dir);
    built.artifact.provenance.vcs = git::describe(&spec.dir);
    built.artifact.provenance.built_on = Some(super::BuiltOn::Host);
    built.artifact.provenance.platform = platform;
    built.artifact.provenance.components = crates(&cargo, &manifest, &package.id, triple);
    Ok(built)
}

/// The crates in the binary, for the SBOM: the package and its normal dependencies (not dev
/// or build ones), as Cargo.lock resolves them for the target. Empty when cargo metadata
/// fails: the SBOM then lists no crates, the image is still built.
fn crates(
    cargo: &Path,
    manifest: &Path,
    root: &PackageId,
    triple: Option<String>,
) -> Vec<Component> {
    let mut cmd = cargo_metadata::MetadataCommand::new();
    cmd.cargo_path(cargo).manifest_path(manifest);
    // Without a platform, cargo lists every target's dependencies (windows-sys on Linux).
    if let Some(t) = triple.or_else(host_triple) {
        cmd.other_options(vec!["--filter-platform".into(), t]);
    }
    let Ok(meta) = cmd.exec() else {
        return vec![];
    };
    let Some(resolve) = meta.resolve.as_ref() else {
        return vec![];
    };
    let nodes: std::collections::HashMap<_, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    // Proc macros run in the compiler: neither they nor what only they use is in the binary.
    let proc_macros: std::collections::HashSet<_> = meta
        .packages
        .iter()
        .filter(|p| p.targets.iter().any(|t| t.is_proc_macro()))
        .map(|p| &p.id)
        .collect();
    let mut seen = std::collections::HashSet::from([root]);
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in &node.deps {
            let normal = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind == cargo_metadata::DependencyKind::Normal);
            if normal && !proc_macros.contains(&dep.pkg) && seen.insert(&dep.pkg) {
                stack.push(&dep.pkg);
            }
        }
    }
    let mut out: Vec<Component> = meta
        .packages
        .iter()
        .filter(|p| seen.contains(&p.id))
        .map(|p| Component {
            ecosystem: Ecosystem::Cargo,
            name: p.name.to_string(),
            version: p.version.to_string(),
            license: p.license.clone(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The package and binary target `spec` names: the only one there is, or an error listing them.
fn select_bin(
    meta: &cargo_metadata::Metadata,
    spec: &CargoBuild,
    manifest: &Path,
) -> Result<(cargo_metadata::Package, String), CargoError> {
    let wanted = |name: &str, want: &Option<String>| want.as_deref().is_none_or(|w| w == name);
    let bins: Vec<(&cargo_metadata::Package, &str)> = meta
        .workspace_packages()
        .into_iter()
        .filter(|p| wanted(&p.name, &spec.package))
        .flat_map(|p| {
            p.targets
                .iter()
                .filter(|t| t.is_bin())
                .map(move |t| (p, &*t.name))
        })
        .filter(|(_, t)| wanted(t, &spec.bin))
        .collect();
    match bins.as_slice() {
        [(p, b)] => Ok(((*p).clone(), b.to_string())),
        [] => Err(CargoError::Target(format!(
            "no binary target{}{} in {}",
            spec.bin
                .as_ref()
                .map(|b| format!(" named {b}"))
                .unwrap_or_default(),
            spec.package
                .as_ref()
                .map(|p| format!(" in package {p}"))
                .unwrap_or_default(),
            manifest.display()
        ))),
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|(p, b)| format!("{b} ({})", p.name))
                .collect();
            Err(CargoError::Target(format!(
                "several binary targets: {}; choose one with --bin (and --package)",
                names.join(", ")
            )))
        }
    }
}

/// Runs the build and returns the executable cargo reports for `bin`.
fn cargo_build(
    cargo: &Path,
    spec: &CargoBuild,
    target: Option<&Target>,
    package: &cargo_metadata::Package,
    bin: &str,
) -> Result<PathBuf, CargoError> {
    let mut cmd = Command::new(cargo);
    // `cargo rustc` passes -C strip to the final compile only: the dependencies stay shared
    // with the user's own `cargo build` (a profile's strip setting would rebuild them all).
    cmd.current_dir(&spec.dir)
        .args(["rustc", "--package", &package.name, "--bin", bin])
        .args(release_unless_chosen(&spec.flags))
        // JSON on stdout for binpack; cargo renders the diagnostics itself, on stderr.
        .arg("--message-format=json-render-diagnostics")
        .args(&spec.flags)
        .args(target.map(|t| format!("--target={}", t.triple)))
        .args(
            target
                .and_then(Target::cpu_config)
                .map(|c| ["--config".into(), c])
                .into_iter()
                .flatten(),
        )
        .args(["--", "-C", "strip=symbols"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    forget_cargo_run(&mut cmd);
    if let Some((var, linker)) = target.and_then(|t| t.linker.as_ref()) {
        cmd.env(var, linker);
    }
    let mut child = cmd
        .spawn()
        .map_err(file_error("running cargo rustc in", &spec.dir))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let found = executables(BufReader::new(stdout), &package.id, bin);
    let status = child
        .wait()
        .map_err(file_error("waiting for cargo rustc in", &spec.dir))?;
    let found = found.map_err(file_error(
        "reading the messages of cargo rustc in",
        &spec.dir,
    ))?;
    if !status.success() {
        return Err(CargoError::BuildFailed);
    }
    match <[PathBuf; 1]>::try_from(found) {
        Ok([one]) => Ok(one),
        Err(none) if none.is_empty() => Err(CargoError::NoExecutable {
            dir: spec.dir.clone(),
            bin: bin.into(),
        }),
        Err(paths) => Err(CargoError::SeveralExecutables {
            bin: bin.into(),
            paths,
        }),
    }
}

/// A Rust target to build for, and the linker cargo is told to use for it (env var, program).
#[derive(Debug)]
struct Target {
    triple: &'static str,
    linker: Option<(String, String)>,
    /// The CPU level a platform variant asks for (`linux/amd64/v3`: `x86-64-v3`), as GOAMD64.
    cpu: Option<String>,
}

impl Target {
    /// `--config` giving every crate of the build the variant's CPU level (the precompiled
    /// standard library stays at the target's baseline). As `build.rustflags` it joins the
    /// user's own `build.rustflags` (arrays merge); RUSTFLAGS or a `target.<triple>.rustflags`
    /// of the user's replace it, as cargo's precedence says.
    fn cpu_config(&self) -> Option<String> {
        let cpu = self.cpu.as_ref()?;
        Some(format!("build.rustflags=[\"-Ctarget-cpu={cpu}\"]"))
    }
}

/// The `-C target-cpu` of an amd64 variant (v2-v4); None for the others.
fn variant_cpu(p: &Platform) -> Option<String> {
    match (p.arch.as_str(), p.variant.as_deref()) {
        ("amd64", Some(v @ ("v2" | "v3" | "v4"))) => Some(format!("x86-64-{v}")),
        _ => None,
    }
}

/// The target of `platform`, checked to be installed; a foreign one gets the cross linker
/// Debian names `<multiarch triplet>-gcc`, unless the user's configuration names one.
fn target_for(platform: Option<&Platform>) -> Result<Option<Target>, CargoError> {
    // The host's platform is cargo's default: no --target, so the user's own build's
    // target directory (and its compiled dependencies) is shared.
    let Some(p) = platform.filter(|p| **p != Platform::host()) else {
        return Ok(None);
    };
    let triple = p
        .rust_target()
        .ok_or_else(|| CargoError::Target(format!("no Rust target is known for {p}")))?;
    let linker = format!("{}-gcc", p.multiarch_triplet());
    let host = Platform::host();
    let foreign = p.arch != host.arch;
    if !installed_targets().iter().any(|t| t == triple) {
        let needs = match foreign {
            true => format!(
                " and the linker {linker} (on Debian: apt-get install gcc-{})",
                p.multiarch_triplet()
            ),
            false => String::new(),
        };
        return Err(CargoError::Target(format!(
            "the Rust target {triple} (for {p}) is not installed: run `rustup target add {triple}`{needs}"
        )));
    }
    let var = format!(
        "CARGO_TARGET_{}_LINKER",
        triple.to_uppercase().replace('-', "_")
    );
    let linker = (foreign && std::env::var_os(&var).is_none())
        .then(|| {
            which::which(&linker).map_err(|_| {
                CargoError::Target(format!(
                    "building for {p} ({triple}) needs the linker {linker}: on Debian, apt-get install gcc-{}, or set {var}",
                    p.multiarch_triplet()
                ))
            })
        })
        .transpose()?
        .map(|l| (var, l.to_string_lossy().into_owned()));
    Ok(Some(Target {
        triple,
        linker,
        cpu: variant_cpu(p),
    }))
}

/// `rustup target list --installed`; without rustup, the host's target only.
fn installed_targets() -> Vec<String> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .collect(),
        _ => Platform::host()
            .rust_target()
            .map(String::from)
            .into_iter()
            .collect(),
    }
}

/// `--release`, unless the flags already choose a profile (cargo refuses both, or twice).
fn release_unless_chosen(flags: &[String]) -> Option<&'static str> {
    let chosen = flags.iter().any(|f| {
        matches!(f.as_str(), "-r" | "--release" | "--profile") || f.starts_with("--profile=")
    });
    (!chosen).then_some("--release")
}

/// The executables cargo reports for the binary target `bin` of `package` (one per --target);
/// lines that are not cargo's messages go on to the user's stderr.
fn executables(
    messages: impl io::BufRead,
    package: &PackageId,
    bin: &str,
) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for message in Message::parse_stream(messages) {
        match message? {
            Message::CompilerArtifact(a)
                if &a.package_id == package && a.target.is_bin() && a.target.name == bin =>
            {
                found.extend(a.executable.map(PathBuf::from));
            }
            Message::TextLine(line) => eprintln!("{line}"),
            _ => {}
        }
    }
    Ok(found)
}

/// rustc's host triple (`rustc -vV`), the target of a build without `--target`.
fn host_triple() -> Option<String> {
    let out = Command::new("rustc").arg("-vV").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(String::from)
}

/// What `cargo run` (and `cargo test`) sets for the program it runs, besides CARGO_PKG_* and
/// the build script's own `rustc-env` variables. Under `cargo run -- cargo`, binpack passing
/// them on changes what the nested build's fingerprints see: build scripts that declare them
/// (ring's) rerun and their crates rebuild, then again at the next plain `cargo build`. The
/// user's own configuration (CARGO_HOME, CARGO_TARGET_DIR, CARGO_BUILD_*, RUSTFLAGS) stays.
const CARGO_RUN_VARS: &[&str] = &[
    "CARGO",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "OUT_DIR",
];

/// Removes from `cmd`'s environment what `cargo run` put in binpack's.
fn forget_cargo_run(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if CARGO_RUN_VARS.contains(&&*name) || name.starts_with("CARGO_PKG_") {
            cmd.env_remove(&key);
        }
    }
}

/// The target triple the executable was built for: the last `--target` flag, else the
/// directory cargo put it in (`<target-dir>/<triple>/<profile>/<bin>`, for a `build.target`
/// in cargo's configuration).
fn target_triple(flags: &[String], exe: &Path, target_dir: &Path) -> Option<String> {
    let mut from_flags = None;
    let mut args = flags.iter();
    while let Some(f) = args.next() {
        if f == "--target" {
            from_flags = args.next().cloned();
        } else if let Some(t) = f.strip_prefix("--target=") {
            from_flags = Some(t.to_string());
        }
    }
    from_flags.or_else(|| {
        let parts: Vec<_> = exe.strip_prefix(target_dir).ok()?.iter().collect();
        match parts.as_slice() {
            [triple, _profile, _bin] => Some(triple.to_string_lossy().into_owned()),
            _ => None,
        }
    })
}

/// The container platform of a Linux target triple (`aarch64-unknown-linux-gnu` ->
/// linux/arm64); None for one binpack does not pack.
fn triple_platform(triple: &str) -> Option<Platform> {
    let (arch, rest) = triple.split_once('-')?;
    if !rest.contains("-linux") {
        return None;
    }
    let oci = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i586" | "i686" => "386",
        // arm-unknown-linux-* is ARMv6 (the Raspberry Pi 1); armv7 and thumbv7neon are v7.
        "arm" => "arm/v6",
        a if a.starts_with("armv7") || a.starts_with("thumbv7") => "arm/v7",
        "riscv64gc" | "riscv64" => "riscv64",
        "powerpc64le" => "ppc64le",
        "s390x" => "s390x",
        _ => return None,
    };
    Platform::parse(&format!("linux/{oci}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_map_to_platforms() {
        for (triple, want) in [
            ("x86_64-unknown-linux-gnu", Some("linux/amd64")),
            ("x86_64-unknown-linux-musl", Some("linux/amd64")),
            ("aarch64-unknown-linux-musl", Some("linux/arm64/v8")),
            ("i686-unknown-linux-gnu", Some("linux/386")),
            ("armv7-unknown-linux-gnueabihf", Some("linux/arm/v7")),
            ("arm-unknown-linux-gnueabihf", Some("linux/arm/v6")),
            ("riscv64gc-unknown-linux-gnu", Some("linux/riscv64")),
            ("powerpc64le-unknown-linux-gnu", Some("linux/ppc64le")),
            ("s390x-unknown-linux-gnu", Some("linux/s390x")),
            ("x86_64-apple-darwin", None),
            ("wasm32-wasip1", None),
            ("mips-unknown-linux-gnu", None),
        ] {
            let got = triple_platform(triple).map(|p| p.to_string());
            assert_eq!(got.as_deref(), want, "{triple}");
        }
    }

    #[test]
    fn the_triple_comes_from_the_flags_else_the_directory() {
        let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let t = Path::new("/w/target");
        let host = Path::new("/w/target/release/app");
        let cross = Path::new("/w/target/aarch64-unknown-linux-gnu/fast/app");
        let triple = |f: &[&str], exe| target_triple(&flags(f), exe, t);
        assert_eq!(triple(&[], host), None);
        assert_eq!(triple(&[], cross).unwrap(), "aarch64-unknown-linux-gnu");
        let two_args = ["--features=x", "--target", "armv7-unknown-linux-gnueabihf"];
        assert_eq!(
            triple(&two_args, cross).unwrap(),
            "armv7-unknown-linux-gnueabihf"
        );
        let one_arg = ["--target=x86_64-unknown-linux-musl"];
        assert_eq!(triple(&one_arg, host).unwrap(), "x86_64-unknown-linux-musl");
        // Outside the target directory (a --target-dir flag): the ELF header will say.
        assert_eq!(triple(&[], Path::new("/elsewhere/x/release/app")), None);
    }

    #[test]
    fn release_is_added_only_when_no_profile_is_chosen() {
        let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            release_unless_chosen(&flags(&["--locked"])),
            Some("--release")
        );
        for chosen in [
            &["-r"][..],
            &["--release"],
            &["--profile", "fast"],
            &["--profile=dev"],
        ] {
            assert_eq!(release_unless_chosen(&flags(chosen)), None, "{chosen:?}");
        }
    }
}
