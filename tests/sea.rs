//! The SEA blob writer against node's own, and the injector on a real node binary.

mod common;

use binpack::sea::blob::{Blob, Layout};
use binpack::sea::inject::{make_executable, SeaError, FUSE};
use goblin::elf::program_header::{PF_R, PT_LOAD, PT_NOTE, PT_PHDR};
use std::path::{Path, PathBuf};
use std::process::Command;

fn host_node() -> PathBuf {
    common::need(&["node"]);
    common::which("node").unwrap()
}

/// The blob `node --experimental-sea-config` writes for `script`.
fn node_blob(node: &Path, dir: &Path, script: &Path) -> Vec<u8> {
    let cfg = dir.join("sea-config.json");
    let out = dir.join("node.blob");
    std::fs::write(
        &cfg,
        serde_json::json!({
            "main": script.to_str().unwrap(),
            "output": out.to_str().unwrap(),
            "disableExperimentalSEAWarning": true,
        })
        .to_string(),
    )
    .unwrap();
    common::ok(
        Command::new(node)
            .arg("--experimental-sea-config")
            .arg(&cfg)
            .current_dir(dir),
    );
    std::fs::read(out).unwrap()
}

fn script(dir: &Path) -> PathBuf {
    let p = dir.join("main.js");
    std::fs::write(
        &p,
        "const os = require('os');\nconsole.log('sea says hi from', process.version, process.argv.length, os.platform());\n",
    )
    .unwrap();
    p
}

/// Checks our blob equals node's for `node`.
fn blob_matches(node: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let main = script(dir.path());
    let theirs = node_blob(node, dir.path(), &main);
    let ours = Blob {
        main_path: main.to_str().unwrap().into(),
        code: std::fs::read(&main).unwrap(),
        ..Default::default()
    }
    .to_bytes(Layout::detect(&std::fs::read(node).unwrap()));
    assert_eq!(ours.len(), theirs.len(), "{}", node.display());
    assert!(ours == theirs, "blob bytes differ for {}", node.display());
}

#[test]
#[ignore = "needs node"]
fn blob_is_byte_equal_to_nodes_own_for_the_host_node() {
    blob_matches(&host_node());
}

#[test]
#[ignore = "needs npm (an official node from the npm registry)"]
fn blob_is_byte_equal_to_nodes_own_for_another_version() {
    common::need(&["npm"]);
    let node = common::official_node("22.23.3");
    blob_matches(&node);
}

#[test]
#[ignore = "needs node and readelf"]
fn injected_node_runs_prints_and_still_parses() {
    common::need(&["readelf"]);
    let node = host_node();
    let dir = tempfile::tempdir().unwrap();
    let main = script(dir.path());
    let exe = dir.path().join("app");
    let blob = Blob {
        main_path: "main.js".into(),
        code: std::fs::read(&main).unwrap(),
        ..Default::default()
    };
    let stats = make_executable(&node, &exe, &blob).unwrap();
    assert!(
        stats.dropped > 1_000_000,
        "symbols and debug info dropped: {stats:?}"
    );
    assert!(stats.output_size < stats.input_size);
    let out = common::ok(Command::new(&exe).args(["a", "b"]));
    let text = common::stdout(&out);
    assert!(text.starts_with("sea says hi from v"), "{text}");
    assert!(text.contains(" 4 linux"), "argv passes through: {text}");
    assert!(
        common::stderr(&out).is_empty(),
        "no SEA warning: {}",
        common::stderr(&out)
    );

    // goblin and readelf still read it; the note is where node looks.
    let bytes = std::fs::read(&exe).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    let notes: Vec<_> = elf
        .iter_note_headers(&bytes)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|n| n.name == "NODE_SEA_BLOB")
        .collect();
    assert_eq!(notes.len(), 1);
    // The new table is page-aligned, PT_PHDR points at it, and one read-only PT_LOAD maps it
    // and the note, after the other PT_LOADs.
    let phoff = elf.header.e_phoff;
    assert_eq!(phoff % 0x1000, 0);
    let table_len = u64::from(elf.header.e_phnum) * 56;
    let find = |t| elf.program_headers.iter().filter(move |p| p.p_type == t);
    let pt_phdr = find(PT_PHDR).next().expect("PT_PHDR");
    assert_eq!((pt_phdr.p_offset, pt_phdr.p_filesz), (phoff, table_len));
    let loads: Vec<_> = find(PT_LOAD).collect();
    let last = loads.last().unwrap();
    assert!(loads.windows(2).all(|w| w[0].p_vaddr < w[1].p_vaddr));
    assert_eq!((last.p_offset, last.p_flags), (phoff, PF_R));
    assert_eq!(
        last.p_vaddr - last.p_offset,
        loads[0].p_vaddr - loads[0].p_offset
    );
    let note = find(PT_NOTE).next_back().unwrap();
    assert_eq!(note.p_offset + note.p_filesz, last.p_offset + last.p_filesz);
    assert!(!elf.section_headers.iter().any(|s| {
        let name = elf.shdr_strtab.get_at(s.sh_name).unwrap_or("");
        name.starts_with(".debug") || name == ".symtab"
    }));
    let out = common::ok(Command::new("readelf").args(["-lSW"]).arg(&exe));
    assert!(
        common::stderr(&out).is_empty(),
        "readelf complains: {}",
        common::stderr(&out)
    );
    assert!(common::stdout(&out).contains("NOTE"));
    // Injecting into the result is refused: the fuse is flipped.
    let again = make_executable(&exe, &dir.path().join("twice"), &blob).unwrap_err();
    assert!(matches!(again, SeaError::FuseFlipped(_)), "{again}");
}

#[test]
#[ignore = "needs gcc"]
fn fuse_missing_doubled_flipped_and_non_elf_are_refused() {
    common::need(&["gcc"]);
    let dir = tempfile::tempdir().unwrap();
    let blob = Blob::default();
    let out = dir.path().join("out");
    let fuse = String::from_utf8(FUSE.to_vec()).unwrap();

    let e = make_executable(Path::new("/usr/bin/id"), &out, &blob).unwrap_err();
    assert!(matches!(e, SeaError::FuseMissing(_)), "{e}");
    assert!(e.to_string().contains("has no SEA fuse"), "{e}");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let e = make_executable(&text, &out, &blob).unwrap_err();
    assert!(matches!(e, SeaError::NotElf(_)), "{e}");

    // Tiny ELF executables carrying the fuse the way node does, once, twice, or flipped.
    let build = |name: &str, body: &str| -> PathBuf {
        let src = dir.path().join(format!("{name}.c"));
        std::fs::write(&src, body).unwrap();
        let exe = dir.path().join(name);
        common::ok(Command::new("gcc").arg("-O0").arg("-o").arg(&exe).arg(&src));
        exe
    };
    let main = "int main(int c, char **v) { return v[0][0] + s1[0]; }";
    let once = build(
        "once",
        &format!("const volatile char s1[] = \"{fuse}0\";\n{main}"),
    );
    let twice = build(
        "twice",
        &format!("const volatile char s1[] = \"{fuse}0\";\nconst volatile char s2[] = \"{fuse}0\";\nint main(int c, char **v) {{ return s1[0] + s2[0]; }}"),
    );
    let flipped = build(
        "flipped",
        &format!("const volatile char s1[] = \"{fuse}1\";\n{main}"),
    );

    let stats = make_executable(&once, &out, &blob).unwrap();
    assert!(stats.output_size > 0);
    let injected = std::fs::read(&out).unwrap();
    let at = memchr::memmem::find(&injected, FUSE).unwrap();
    assert_eq!(injected[at + FUSE.len()], b'1', "fuse flipped in the copy");
    // The C program still runs after injection (exit code = 'x' + 'N' is nonzero but defined).
    let status = Command::new(&out).status().unwrap();
    assert!(status.code().is_some(), "crashed: {status:?}");

    // Malformed headers and truncations are refused with an error, never a panic or an abort.
    let good = std::fs::read(&once).unwrap();
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let u64_at =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    let (phoff, shoff) = (u64_at(&good, 32), u64_at(&good, 40));
    let mut variants: Vec<(&str, Vec<u8>)> = vec![];
    let mut v = good.clone();
    v[62..64].copy_from_slice(&500u16.to_le_bytes());
    variants.push(("e_shstrndx out of range", v));
    let mut v = good.clone();
    v[phoff + 40..phoff + 48].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
    variants.push(("huge p_memsz", v));
    let mut v = good.clone();
    let last = shoff + (u16_at(&good, 60) - 1) * 64;
    v[last + 24..last + 32].copy_from_slice(&(u64::MAX - 4).to_le_bytes());
    variants.push(("section offset overflows", v));
    for cut in [10, 100, 5000, good.len() / 2] {
        variants.push(("truncated", good[..cut.min(good.len())].to_vec()));
    }
    for (what, bytes) in variants {
        let p = dir.path().join("bad");
        std::fs::write(&p, &bytes).unwrap();
        let r =
            std::panic::catch_unwind(|| make_executable(&p, &dir.path().join("bad-out"), &blob));
        match r {
            Ok(Err(_)) => {}
            Ok(Ok(_)) => panic!("{what}: accepted"),
            Err(_) => panic!("{what}: panicked"),
        }
    }

    let e = make_executable(&twice, &out, &blob).unwrap_err();
    assert!(matches!(e, SeaError::FuseDoubled(_, 2)), "{e}");
    let e = make_executable(&flipped, &out, &blob).unwrap_err();
    assert!(matches!(e, SeaError::FuseFlipped(_)), "{e}");
}
