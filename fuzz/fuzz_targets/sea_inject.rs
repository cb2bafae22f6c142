//! The SEA injector on any "node binary": an injected copy or a SeaError, never a panic.
//! It reads a file and writes one, so each input goes through a temporary directory, made
//! and removed per input (libFuzzer exits without running destructors: a shared one would
//! be left behind).
#![no_main]

use binpack::sea::blob::Blob;
use binpack::sea::inject::make_executable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (node, out) = (dir.path().join("node"), dir.path().join("out"));
    std::fs::write(&node, data).expect("write the input");
    let blob = Blob {
        main_path: "main.js".into(),
        code: b"console.log(1)".to_vec(),
        ..Blob::default()
    };
    let _ = make_executable(&node, &out, &blob);
});
