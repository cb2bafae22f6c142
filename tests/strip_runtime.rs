//! The runtime layer's libraries ship without symbols and debug info (a source-built
//! interpreter's libpython keeps 17 MB of them); the program itself ships as built. A C
//! library built with `-g` stands for such a library: Debian's own are stripped already.

mod common;

use common::*;
use std::io::Read;
use std::path::Path;
use std::process::Command;

const LIB: &str = "int answer(void) { return 42; }\n";
const MAIN: &str = "#include <stdio.h>\nint answer(void);\nint main(void) { printf(\"answer %d\\n\", answer()); return 0; }\n";

/// Whether the ELF bytes have a symbol table.
fn has_symtab(bytes: &[u8]) -> bool {
    let elf = goblin::elf::Elf::parse(bytes).expect("an ELF file");
    elf.section_headers
        .iter()
        .any(|s| s.sh_type == goblin::elf::section_header::SHT_SYMTAB)
}

/// The files of the image's first layer, by path.
fn first_layer(archive: &Path) -> std::collections::HashMap<String, Vec<u8>> {
    let files = ArchiveFiles::open(archive);
    let layer = files.blob(&files.manifest()["layers"][0]["digest"]);
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut out = std::collections::HashMap::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        out.insert(path, bytes);
    }
    out
}

#[test]
#[ignore = "needs gcc and a Docker engine"]
fn a_library_with_debug_info_ships_stripped_and_still_loads() {
    need(&["gcc"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("answer.c"), LIB).unwrap();
    std::fs::write(d.join("main.c"), MAIN).unwrap();
    let gcc = |args: &[&str]| ok(Command::new("gcc").current_dir(d).args(args));
    gcc(&[
        "-g",
        "-shared",
        "-fPIC",
        "-Wl,-soname,libanswer.so.1",
        "-o",
        "libanswer.so.1",
        "answer.c",
    ]);
    gcc(&[
        "-g",
        "-o",
        "main",
        "main.c",
        "-L.",
        "-l:libanswer.so.1",
        "-Wl,-rpath,$ORIGIN",
    ]);
    let original = std::fs::read(d.join("libanswer.so.1")).unwrap();
    assert!(has_symtab(&original), "gcc -g left no symbol table");
    let archive = d.join("image.tar");
    let tag = "binpack-test/strip:it";
    let _cleanup = DockerCleanup(vec![tag.into()]);
    let cache = d.join("cache");
    let pack = |out: &Path| {
        let mut cmd = binpack();
        cmd.env("BINPACK_CACHE", &cache)
            .arg("bin")
            .arg(d.join("main"));
        ok(cmd.arg("-o").arg(out).args(["-t", tag, "--quiet"]))
    };
    // The stripped copy is made once and kept in the cache (once its source settled) ...
    std::thread::sleep(std::time::Duration::from_millis(1100));
    pack(&archive);
    let first = ArchiveFiles::open(&archive).manifest();
    // ... and one damaged in place, its size kept, is made again, not shipped.
    let kept: Vec<_> = std::fs::read_dir(cache.join("stripped-lib"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(kept.len(), 1, "one stripped copy in the cache");
    let copy = kept[0].path().join("lib");
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&copy, &bytes).unwrap();
    pack(&d.join("again.tar"));
    let again = ArchiveFiles::open(&d.join("again.tar")).manifest();
    assert_eq!(again, first, "a damaged copy shipped");
    let layer = first_layer(&archive);
    let (path, lib) = layer
        .iter()
        .find(|(p, _)| p.ends_with("libanswer.so.1"))
        .expect("the library is in the first layer");
    assert!(!has_symtab(lib), "{path} still has its symbol table");
    assert!(
        lib.len() < original.len(),
        "{path}: {} bytes, was {}",
        lib.len(),
        original.len()
    );
    let (_, exe) = layer
        .iter()
        .find(|(p, _)| p.ends_with("/main"))
        .expect("the program");
    assert!(has_symtab(exe), "the program itself was stripped");
    ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let out = ok(Command::new("docker").args(["run", "--rm", "--network", "none", tag]));
    assert_eq!(stdout(&out).trim(), "answer 42");
}
