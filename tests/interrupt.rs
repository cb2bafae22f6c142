//! An interrupted run leaves no corrupt archive and no temporary file, and an earlier output
//! at the same path survives untouched.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigint_while_packing_leaves_the_old_output_and_no_temporaries() {
    interrupted_by("-INT", 130);
}

/// SIGTERM (`kill PID`, a CI runner's timeout) ends the run as shells report it: 128 + 15.
#[test]
fn sigterm_exits_143_and_leaves_the_old_output_and_no_temporaries() {
    interrupted_by("-TERM", 143);
}

fn interrupted_by(signal: &str, want: i32) {
    let dir = tempfile::tempdir().unwrap();
    // A real dynamic ELF padded with incompressible bytes, so packing takes seconds.
    let big = dir.path().join("big");
    let mut f = std::fs::File::create(&big).unwrap();
    f.write_all(&std::fs::read("/usr/bin/id").unwrap()).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..256 {
        for b in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&chunk).unwrap();
    }
    drop(f);
    let out = dir.path().join("out.tar");
    // An earlier archive (binpack replaces only a tar at its output path).
    let mut previous = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(18);
    h.set_cksum();
    previous
        .append_data(&mut h, "previous", &b"the previous image"[..])
        .unwrap();
    let previous = previous.into_inner().unwrap();
    std::fs::write(&out, &previous).unwrap();

    let mut child = binpack()
        .args(["bin", big.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is writing the layer, then interrupt it.
    let started = Instant::now();
    let staging_seen = loop {
        let busy = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("binpack-"));
        if busy || started.elapsed() > Duration::from_secs(10) {
            break busy;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(staging_seen, "binpack never started staging");
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    assert_eq!(
        code,
        Some(want),
        "a run ended by {signal} must exit {want} (did it finish first?)"
    );
    assert_eq!(std::fs::read(&out).unwrap(), previous);
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}
