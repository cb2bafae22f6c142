//! No panics on the edges: a stdout that cannot be written, and headers whose sums overflow.

mod common;

use binpack::sea::blob::Blob;
use binpack::sea::inject::{make_executable, SeaError, FUSE};
use common::fixture::{write_fixture, EM_X86_64};
use common::{binpack, stderr};
use std::fs::File;
use std::process::{Command, Output, Stdio};

/// Runs `cmd` with its stdout on /dev/full (every write fails with ENOSPC).
fn to_dev_full(cmd: &mut Command) -> Output {
    let full = File::options().write(true).open("/dev/full").unwrap();
    cmd.stdout(full).output().unwrap()
}

fn assert_clean_failure(out: &Output, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(
        err.contains(
            "binpack: error: cannot write the result to standard output: No space left on device"
        ),
        "{what}: {err}"
    );
}

#[test]
fn a_full_stdout_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let elf = write_fixture(dir.path(), "app", EM_X86_64);
    for json in [false, true] {
        let mut cmd = binpack();
        cmd.arg("inspect").arg(&elf);
        if json {
            cmd.arg("--json");
        }
        assert_clean_failure(&to_dev_full(&mut cmd), &format!("inspect json={json}"));
    }
    for json in [false, true] {
        let mut cmd = binpack();
        let tar = dir.path().join(format!("app-{json}.tar"));
        cmd.current_dir(dir.path())
            .args(["bin", "--quiet"])
            .arg(&elf)
            .arg("-o")
            .arg(&tar);
        if json {
            cmd.arg("--json");
        }
        let out = to_dev_full(&mut cmd);
        assert_clean_failure(&out, &format!("bin json={json}"));
        // The image was written before the summary could not be.
        assert!(tar.is_file(), "bin json={json}: no {}", tar.display());
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let elf = write_fixture(dir.path(), "app", EM_X86_64);
    // The reader is gone before binpack writes: its writes fail with EPIPE.
    let mut child = binpack()
        .arg("inspect")
        .arg(&elf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err, "", "nothing on stderr");
}

/// An ELF64 x86-64 executable with one PT_LOAD over the whole file, mapped at its offset (0),
/// whose p_memsz reaches the top of the address space, carrying an unflipped SEA fuse.
fn elf_with_huge_memsz() -> Vec<u8> {
    let vaddr = 0u64;
    let size = (64 + 56 + FUSE.len() + 1) as u64;
    let mut b = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    b.extend(2u16.to_le_bytes()); // ET_EXEC
    b.extend(EM_X86_64.to_le_bytes());
    b.extend(1u32.to_le_bytes());
    b.extend((vaddr + 120).to_le_bytes()); // entry
    b.extend(64u64.to_le_bytes()); // phoff
    b.extend(0u64.to_le_bytes()); // shoff: no sections
    b.extend(0u32.to_le_bytes());
    for v in [64u16, 56, 1, 64, 0, 0] {
        b.extend(v.to_le_bytes());
    }
    // PT_LOAD, R+X. vaddr + memsz is exactly 2^64 - 1: it does not wrap, but the next page
    // boundary, where the new segment would go, is 2^64 (align_up overflowed on it).
    b.extend(1u32.to_le_bytes());
    b.extend(5u32.to_le_bytes());
    for v in [0u64, vaddr, vaddr, size, u64::MAX - vaddr, 0x1000] {
        b.extend(v.to_le_bytes());
    }
    b.extend(FUSE);
    b.push(b'0');
    assert_eq!(b.len() as u64, size);
    b
}

#[test]
fn a_p_memsz_near_2_64_is_a_clean_sea_error() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    std::fs::write(&node, elf_with_huge_memsz()).unwrap();
    let out = dir.path().join("app");
    let blob = Blob {
        main_path: "main.js".into(),
        code: b"console.log(1)".to_vec(),
        ..Blob::default()
    };
    let e = make_executable(&node, &out, &blob).unwrap_err();
    assert!(matches!(e, SeaError::Unsupported { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: its segments map more than 1 GiB past the end of the file (up to address 0xffffffffffffffff: p_vaddr + p_memsz)",
            node.display()
        )
    );
    assert!(!out.exists(), "nothing written");
}
