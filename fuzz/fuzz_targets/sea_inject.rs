//! The SEA injector on any "node binary": an injected copy or a SeaError, never a panic.
//! It reads a file and writes one, so each input goes through a temporary directory.
#![no_main]

use binpack::sea::blob::Blob;
use binpack::sea::inject::make_executable;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
}

fuzz_target!(|data: &[u8]| {
    let (node, out) = (dir().path().join("node"), dir().path().join("out"));
    std::fs::write(&node, data).expect("write the input");
    let blob = Blob {
        main_path: "main.js".into(),
        code: b"console.log(1)".to_vec(),
        ..Blob::default()
    };
    let _ = make_executable(&node, &out, &blob);
});
