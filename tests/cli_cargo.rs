//! `binpack cargo` packs binpack itself, and the image runs `binpack --version`; a small crate
//! built for an explicit target, with a custom profile, stripped.

mod common;

use binpack::platform::Platform;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
#[ignore = "needs cargo and a Docker engine"]
fn binpack_packs_itself() {
    need(&["cargo"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("binpack.tar");
    let tag = "binpack-test/self:it";
    let s = pack_json(
        binpack()
            .current_dir(repo())
            .args(["cargo", "--bin", "binpack", "-t", tag, "-o"])
            .arg(&archive),
    );
    // binpack links glibc: its closure, chosen from the binary, not from the language.
    assert_eq!(s["base"], "closure", "{s}");
    assert!(s["linkage"]["needed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "libc.so.6"));

    // Several targets would need --bin: a target that does not exist is named.
    let out = binpack()
        .current_dir(repo())
        .args(["cargo", "--bin", "nope", "-o"])
        .arg(dir.path().join("nope.tar"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no binary target named nope"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("nope.tar").exists());

    let _cleanup = DockerCleanup(vec![tag.into()]);
    ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let run =
        ok(Command::new("docker").args(["run", "--rm", "--network", "none", tag, "--version"]));
    assert_eq!(
        stdout(&run).trim(),
        format!("binpack {}", env!("CARGO_PKG_VERSION"))
    );
}

/// A hello-world crate in `dir` whose release profile keeps full debug info (so stripping
/// shows), with a custom profile `fast`.
fn hello_crate(dir: &Path) -> PathBuf {
    let root = dir.join("hello");
    std::fs::create_dir_all(root.join("src")).unwrap();
    let manifest = "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
        [workspace]\n\n[profile.release]\ndebug = true\n\n[profile.fast]\ninherits = \"release\"\n";
    std::fs::write(root.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() { println!(\"hello\"); }\n",
    )
    .unwrap();
    root
}

/// The host's target triple, as rustc names it (only the host's standard library is installed).
fn host_triple() -> String {
    let out = ok(Command::new("rustc").arg("-vV"));
    stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

/// `binpack cargo` in `krate` with `flags`, into `archive`; the summary.
fn pack_crate(krate: &Path, flags: &[&str], archive: &Path) -> serde_json::Value {
    pack_json(
        binpack()
            .current_dir(krate)
            .arg("cargo")
            .args(flags)
            .args(["-t", "binpack-test/hello:it", "-o"])
            .arg(archive),
    )
}

/// The sections of an ELF that strip removes: the symbol table and the debug info. Not
/// .debug_gdb_scripts, which is loaded (SHF_ALLOC) and which strip keeps.
fn strippable(elf: &[u8]) -> Vec<String> {
    let elf = goblin::elf::Elf::parse(elf).unwrap();
    let loaded = u64::from(goblin::elf::section_header::SHF_ALLOC);
    elf.section_headers
        .iter()
        .filter(|s| s.sh_flags & loaded == 0)
        .filter_map(|s| elf.shdr_strtab.get_at(s.sh_name))
        .filter(|n| *n == ".symtab" || n.starts_with(".debug"))
        .map(String::from)
        .collect()
}

/// The bytes of `path` in the app layer (the last) of the image in a binpack archive.
fn app_file(archive: &Path, path: &str) -> Vec<u8> {
    use std::io::Read;
    let files = ArchiveFiles::open(archive);
    let manifest = files.manifest();
    let layer = files.blob(&manifest["layers"].as_array().unwrap().last().unwrap()["digest"]);
    let mut inner = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut entry = inner
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().to_string_lossy() == path)
        .unwrap_or_else(|| panic!("{path} is not in the app layer"));
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn target_profile_and_config_target_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let krate = hello_crate(dir.path());
    let triple = host_triple();
    let archive = dir.path().join("hello.tar");
    // The executable is in target/<triple>/release, target/release is never made.
    let target_eq = format!("--cargo-flag=--target={triple}");
    let target_two = ["--cargo-flag=--target", "--cargo-flag", &triple];
    for flags in [&[target_eq.as_str()][..], &target_two] {
        let s = pack_crate(&krate, flags, &archive);
        assert_eq!(s["platform"], Platform::host().to_string(), "{s}");
    }
    assert!(krate
        .join("target")
        .join(&triple)
        .join("release/hello")
        .is_file());
    assert!(!krate.join("target/release/hello").exists());
    // A custom profile: target/fast.
    pack_crate(&krate, &["--cargo-flag=--profile=fast"], &archive);
    assert!(krate.join("target/fast/hello").is_file());
    // The target from cargo's configuration.
    std::fs::create_dir_all(krate.join(".cargo")).unwrap();
    let config = format!("[build]\ntarget = \"{triple}\"\n");
    std::fs::write(krate.join(".cargo/config.toml"), config).unwrap();
    pack_crate(&krate, &["--cargo-flag=--profile=fast"], &archive);
    assert!(krate
        .join("target")
        .join(&triple)
        .join("fast/hello")
        .is_file());
}

#[test]
fn the_packed_binary_is_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let krate = hello_crate(dir.path());
    let archive = dir.path().join("hello.tar");
    pack_crate(&krate, &[], &archive);
    let packed = strippable(&app_file(&archive, "app/hello"));
    assert!(packed.is_empty(), "{packed:?}");
    // The user's own build is left as the profile says: with its symbols and debug info.
    ok(Command::new("cargo")
        .current_dir(&krate)
        .args(["build", "--release", "--quiet"]));
    let own = strippable(&std::fs::read(krate.join("target/release/hello")).unwrap());
    assert!(own.iter().any(|s| s == ".debug_info"), "{own:?}");
}

#[test]
fn io_errors_name_the_path_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let krate = hello_crate(dir.path());
    // A file where the temporary directory should be.
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let out = binpack()
        .current_dir(&krate)
        .env("TMPDIR", &not_a_dir)
        .args(["cargo", "-o"])
        .arg(dir.path().join("hello.tar"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let want = format!("creating a temporary directory in {}", not_a_dir.display());
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("Not a directory"), "{err}");
}

#[test]
fn cargo_run_variables_do_not_reach_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let krate = hello_crate(dir.path());
    // As ring's build script does: cargo reruns it when these differ from the last build.
    let build_rs =
        "fn main() {\n    println!(\"cargo:rerun-if-env-changed=CARGO_MANIFEST_DIR\");\n    \
        println!(\"cargo:rerun-if-env-changed=CARGO_PKG_NAME\");\n}\n";
    std::fs::write(krate.join("build.rs"), build_rs).unwrap();
    let pack = |env: &[(&str, &str)]| {
        let out = ok(binpack()
            .current_dir(&krate)
            .envs(env.iter().copied())
            .args(["cargo", "-o"])
            .arg(dir.path().join("hello.tar")));
        stderr(&out)
    };
    pack(&[]);
    // What `cargo run -- cargo` gives binpack: the variables of the package cargo runs.
    let again = pack(&[
        ("CARGO_MANIFEST_DIR", "/elsewhere"),
        ("CARGO_PKG_NAME", "elsewhere"),
    ]);
    assert!(!again.contains("Compiling"), "{again}");
}
