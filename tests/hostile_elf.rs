//! Crafted ELF files and hostile roots, driven through the CLI: what may enter a closure,
//! inputs that are not regular files, and roots made to cost exponential work.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const GLIBC_INTERP: &str = "/lib64/ld-linux-x86-64.so.2";
/// Where the loader of an amd64 glibc binary looks first after ld.so.conf.
const MULTIARCH: &str = "lib/x86_64-linux-gnu";

/// A minimal ELF64 (little-endian) with an optional PT_INTERP (`interp`, NUL added) and a
/// PT_DYNAMIC naming `needed`, all inside one PT_LOAD.
fn dynamic_elf(machine: u16, e_type: u16, interp: Option<&[u8]>, needed: &[&[u8]]) -> Vec<u8> {
    let phnum = 1 + u16::from(interp.is_some()) + u16::from(!needed.is_empty());
    let mut data = Vec::new();
    let data_at = 64 + 56 * u64::from(phnum);
    let mut interp_ph = None;
    if let Some(i) = interp {
        interp_ph = Some((data_at, i.len() as u64 + 1));
        data.extend(i);
        data.push(0);
    }
    let strtab_at = data_at + data.len() as u64;
    let mut strtab = vec![0u8];
    let mut dynamic = Vec::new();
    for n in needed {
        dynamic.push((1u64, strtab.len() as u64)); // DT_NEEDED
        strtab.extend(*n);
        strtab.push(0);
    }
    data.extend(&strtab);
    while data.len() % 8 != 0 {
        data.push(0);
    }
    let dynamic_at = data_at + data.len() as u64;
    let base = 0x400000u64;
    dynamic.extend([(5, base + strtab_at), (10, strtab.len() as u64), (0, 0)]); // STRTAB, STRSZ, NULL
    for (tag, val) in &dynamic {
        data.extend(tag.to_le_bytes());
        data.extend(val.to_le_bytes());
    }
    let dynamic_len = 16 * dynamic.len() as u64;
    let code_at = data_at + data.len() as u64;
    data.extend([0xf4u8; 16]);
    let size = data_at + data.len() as u64;

    let mut b = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    b.extend(e_type.to_le_bytes());
    b.extend(machine.to_le_bytes());
    b.extend(1u32.to_le_bytes());
    b.extend((base + code_at).to_le_bytes()); // entry
    b.extend(64u64.to_le_bytes()); // phoff
    b.extend(0u64.to_le_bytes()); // shoff
    b.extend(0u32.to_le_bytes());
    for v in [64u16, 56, phnum, 64, 0, 0] {
        b.extend(v.to_le_bytes());
    }
    let mut ph = |kind: u32, flags: u32, offset: u64, filesz: u64| {
        b.extend(kind.to_le_bytes());
        b.extend(flags.to_le_bytes());
        for v in [offset, base + offset, base + offset, filesz, filesz, 8] {
            b.extend(v.to_le_bytes());
        }
    };
    ph(1, 5, 0, size); // PT_LOAD
    if let Some((at, len)) = interp_ph {
        ph(3, 4, at, len); // PT_INTERP
    }
    if !needed.is_empty() {
        ph(2, 6, dynamic_at, dynamic_len); // PT_DYNAMIC
    }
    b.extend(data);
    b
}

/// Sets the PT_INTERP's file offset (the second program header) of a [`dynamic_elf`].
fn set_interp_offset(elf: &mut [u8], offset: u64) {
    let at = 64 + 56 + 8;
    elf[at..at + 8].copy_from_slice(&offset.to_le_bytes());
}

/// A temporary directory holding the binary, the root and the outputs.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let s = Scene {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["root", "out", "cache"] {
            std::fs::create_dir(s.path(d)).unwrap();
        }
        s
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn root(&self) -> PathBuf {
        self.path("root")
    }

    /// Writes `bytes` at `rel` inside the root, making its directories.
    fn plant(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.root().join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// A working amd64 glibc loader and the library `name` in /usr/lib.
    fn plant_glibc(&self, libs: &[&str]) {
        self.plant(GLIBC_INTERP, &dynamic_elf(EM_X86_64, ET_DYN, None, &[]));
        for lib in libs {
            self.plant(
                &format!("/usr/lib/{lib}"),
                &dynamic_elf(EM_X86_64, ET_DYN, None, &[]),
            );
        }
    }

    fn binary(&self, elf: &[u8]) -> PathBuf {
        let p = self.path("app");
        std::fs::write(&p, elf).unwrap();
        p
    }

    /// `binpack ARGS`, in the scene's directory with its own cache, so nothing outside is read
    /// or written.
    fn binpack(&self, args: &[&std::ffi::OsStr]) -> Command {
        let mut c = common::binpack();
        c.args(args)
            .current_dir(self.dir.path())
            .env("BINPACK_CACHE", self.path("cache"));
        c
    }

    fn inspect(&self, file: &Path, root: &Path) -> Command {
        self.binpack(&[
            "inspect".as_ref(),
            file.as_os_str(),
            "--root".as_ref(),
            root.as_os_str(),
        ])
    }

    /// `binpack bin FILE --root ROOT -o out/app.tar`.
    fn bin(&self, file: &Path) -> Command {
        let out = self.path("out/app.tar");
        let root = self.root();
        self.binpack(&[
            "bin".as_ref(),
            file.as_os_str(),
            "--root".as_ref(),
            root.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ])
    }

    /// Nothing at all was written to the output directory (no archive, no temporary file).
    fn assert_nothing_written(&self) {
        let left: Vec<_> = std::fs::read_dir(self.path("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "written to the output directory: {left:?}");
    }
}

/// Runs `cmd`, killing it and failing the test if it runs longer than `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    (child.wait_with_output().unwrap(), elapsed)
}

/// The command failed with exit code 1 and an error naming every one of `words`.
fn assert_refused(out: &Output, words: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    for w in words {
        assert!(stderr.contains(w), "{w:?} not in: {stderr}");
    }
    stderr
}

/// A guard against a hang, not a timing check: a refusal is immediate.
const LIMIT: Duration = Duration::from_secs(60);

fn mkfifo(path: &Path) {
    common::ok(Command::new("mkfifo").arg(path));
}

fn glibc_binary(scene: &Scene, interp: &str, needed: &[&[u8]]) -> PathBuf {
    scene.binary(&dynamic_elf(
        EM_X86_64,
        ET_EXEC,
        Some(interp.as_bytes()),
        needed,
    ))
}

#[test]
fn an_interpreter_naming_a_text_file_is_refused_and_nothing_is_written() {
    let s = Scene::new();
    s.plant("/etc/shadow", b"root:secret-hash:19000::::::\n");
    let bin = glibc_binary(&s, "/etc/shadow", &[]);
    let (out, took) = run_within(&mut s.bin(&bin), LIMIT);
    assert_refused(
        &out,
        &["the interpreter /etc/shadow", "refused", "not an ELF file"],
    );
    s.assert_nothing_written();
    eprintln!("refused in {took:?}");

    let (out, _) = run_within(&mut s.inspect(&bin, &s.root()), LIMIT);
    let stderr = assert_refused(&out, &["/etc/shadow", "not an ELF file"]);
    assert!(!stderr.contains("secret"), "{stderr}");
}

#[test]
fn an_interpreter_that_is_a_directory_or_a_fifo_is_refused_quickly() {
    let s = Scene::new();
    std::fs::create_dir_all(s.root().join("lib64/ld-linux-x86-64.so.2")).unwrap();
    let bin = glibc_binary(&s, GLIBC_INTERP, &[]);
    let (out, _) = run_within(&mut s.bin(&bin), LIMIT);
    assert_refused(&out, &[GLIBC_INTERP, "a directory, not a regular file"]);
    s.assert_nothing_written();

    // A FIFO would block the copy for ever, waiting for a writer.
    std::fs::remove_dir(s.root().join("lib64/ld-linux-x86-64.so.2")).unwrap();
    mkfifo(&s.root().join("lib64/ld-linux-x86-64.so.2"));
    let (out, took) = run_within(&mut s.bin(&bin), LIMIT);
    assert_refused(&out, &[GLIBC_INTERP, "a FIFO, not a regular file"]);
    s.assert_nothing_written();
    eprintln!("FIFO interpreter refused in {took:?}");
}

#[test]
fn an_interpreter_that_is_a_device_is_refused() {
    // With / as the root, /dev/zero is a real character device: copying it would never end.
    let s = Scene::new();
    let bin = glibc_binary(&s, "/dev/zero", &[]);
    let (out, took) = run_within(&mut s.inspect(&bin, Path::new("/")), LIMIT);
    assert_refused(
        &out,
        &[
            "the interpreter /dev/zero",
            "a character device, not a regular file",
        ],
    );
    eprintln!("device interpreter refused in {took:?}");
}

#[test]
fn an_interpreter_of_the_wrong_machine_is_refused() {
    let s = Scene::new();
    s.plant(GLIBC_INTERP, &dynamic_elf(EM_AARCH64, ET_DYN, None, &[]));
    let bin = glibc_binary(&s, GLIBC_INTERP, &[]);
    let (out, _) = run_within(&mut s.bin(&bin), LIMIT);
    assert_refused(&out, &[GLIBC_INTERP, "an ELF for AARCH64 (64-bit)"]);
    s.assert_nothing_written();
}

#[test]
fn libraries_the_loader_would_not_load_are_passed_over() {
    let s = Scene::new();
    s.plant_glibc(&["libfoo.so"]);
    // Found first in the search order: of another machine, a FIFO (which would block a read),
    // a text file. The loader passes over each; so does binpack.
    s.plant(
        &format!("{MULTIARCH}/libfoo.so"),
        &dynamic_elf(EM_AARCH64, ET_DYN, None, &[]),
    );
    std::fs::create_dir_all(s.root().join("usr").join(MULTIARCH)).unwrap();
    mkfifo(&s.root().join("usr").join(MULTIARCH).join("libfoo.so"));
    s.plant("/lib64/libfoo.so", b"not a library\n");
    let bin = glibc_binary(&s, GLIBC_INTERP, &[b"libfoo.so"]);
    let (out, took) = run_within(&mut s.inspect(&bin, &s.root()), LIMIT);
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("libfoo.so => /usr/lib/libfoo.so"),
        "{stdout}"
    );
    eprintln!("searched past a FIFO in {took:?}");

    // With no loadable one left, the error names each file passed over and why.
    std::fs::remove_file(s.root().join("usr/lib/libfoo.so")).unwrap();
    let (out, _) = run_within(&mut s.inspect(&bin, &s.root()), LIMIT);
    assert_refused(
        &out,
        &[
            "libfoo.so (needed by /app/app) is not in",
            "/lib/x86_64-linux-gnu/libfoo.so: an ELF for AARCH64 (64-bit), the binary is for X86_64 (64-bit)",
            "/usr/lib/x86_64-linux-gnu/libfoo.so: a FIFO, not a regular file",
            "/lib64/libfoo.so: not an ELF file",
        ],
    );
}

#[test]
fn a_library_named_by_path_must_be_an_elf() {
    let s = Scene::new();
    s.plant_glibc(&[]);
    s.plant("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    let bin = glibc_binary(&s, GLIBC_INTERP, &[b"/etc/passwd"]);
    let (out, _) = run_within(&mut s.bin(&bin), LIMIT);
    assert_refused(
        &out,
        &["the library /etc/passwd", "refused", "not an ELF file"],
    );
    s.assert_nothing_written();
}

#[test]
fn an_interpreter_path_that_is_not_utf8_is_an_error_not_static() {
    let s = Scene::new();
    let bin = s.binary(&dynamic_elf(
        EM_X86_64,
        ET_EXEC,
        Some(b"/lib64/ld-\xff\xfe.so"),
        &[],
    ));
    let (out, _) = run_within(&mut s.inspect(&bin, &s.root()), LIMIT);
    assert_refused(
        &out,
        &[
            "app is a truncated or malformed ELF",
            r#"interpreter path (PT_INTERP) "/lib64/ld-\xff\xfe.so" is empty or not valid UTF-8"#,
        ],
    );
    assert!(out.stdout.is_empty(), "{}", common::stdout(&out));
    let (out, _) = run_within(&mut s.bin(&bin), LIMIT);
    assert_refused(&out, &["not valid UTF-8"]);
    s.assert_nothing_written();
}

#[test]
fn an_interpreter_path_past_the_end_of_the_file_is_an_error() {
    let s = Scene::new();
    let mut elf = dynamic_elf(EM_X86_64, ET_EXEC, Some(GLIBC_INTERP.as_bytes()), &[]);
    let len = elf.len();
    set_interp_offset(&mut elf, 1 << 40);
    let bin = s.binary(&elf);
    let (out, _) = run_within(&mut s.inspect(&bin, &s.root()), LIMIT);
    assert_refused(
        &out,
        &[
            "app is a truncated or malformed ELF",
            &format!(
                "bytes at offset {}) lies past the end of the file ({len} bytes)",
                1u64 << 40
            ),
        ],
    );
    // Ending just past the end is caught as well.
    set_interp_offset(&mut elf, len as u64 - 4);
    let bin = s.binary(&elf);
    let (out, _) = run_within(&mut s.inspect(&bin, &s.root()), LIMIT);
    assert_refused(&out, &["PT_INTERP", "lies past the end of the file"]);
}

#[test]
fn inspect_and_bin_of_a_fifo_fail_at_once() {
    let s = Scene::new();
    let fifo = s.path("app.fifo");
    mkfifo(&fifo);
    let (out, took) = run_within(&mut s.inspect(&fifo, &s.root()), LIMIT);
    assert_refused(&out, &["app.fifo is a FIFO, not a regular file"]);
    eprintln!("inspect of a FIFO refused in {took:?}");
    let (out, took) = run_within(&mut s.bin(&fifo), LIMIT);
    assert_refused(&out, &["app.fifo is a FIFO, not a regular file"]);
    s.assert_nothing_written();
    eprintln!("bin of a FIFO refused in {took:?}");
}

#[test]
fn inspect_and_bin_of_dev_zero_fail_at_once() {
    let s = Scene::new();
    let zero = Path::new("/dev/zero");
    // Under a memory cap, so that a regression fails here instead of filling the machine.
    let capped = |args: &[&std::ffi::OsStr]| {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(r#"ulimit -v 4000000 && exec "$0" "$@""#)
            .arg(env!("CARGO_BIN_EXE_binpack"))
            .args(args)
            .current_dir(s.dir.path())
            .env("BINPACK_CACHE", s.path("cache"));
        sh
    };
    let root = s.root();
    let tar = s.path("out/app.tar");
    let inspect = ["inspect".as_ref(), zero.as_os_str()];
    let bin = [
        "bin".as_ref(),
        zero.as_os_str(),
        "--root".as_ref(),
        root.as_os_str(),
        "-o".as_ref(),
        tar.as_os_str(),
    ];
    let (out, took) = run_within(&mut capped(&inspect), LIMIT);
    assert_refused(
        &out,
        &["/dev/zero is a character device, not a regular file"],
    );
    eprintln!("inspect of /dev/zero refused in {took:?}");
    let (out, _) = run_within(&mut capped(&bin), LIMIT);
    assert_refused(
        &out,
        &["/dev/zero is a character device, not a regular file"],
    );
    s.assert_nothing_written();
}

#[test]
fn an_ld_so_conf_whose_includes_fan_out_is_read_once_per_file() {
    let s = Scene::new();
    s.plant_glibc(&["libfoo.so"]);
    s.plant("/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n");
    // Each of 8 files includes all 8: read naively, 8^9 files.
    for i in 0..8 {
        s.plant(
            &format!("/etc/ld.so.conf.d/{i}.conf"),
            format!("/opt/lib{i}\ninclude *.conf\ninclude /etc/ld.so.conf.d/*.conf\n").as_bytes(),
        );
    }
    s.plant(
        "/opt/lib7/libbar.so",
        &dynamic_elf(EM_X86_64, ET_DYN, None, &[]),
    );
    let bin = glibc_binary(&s, GLIBC_INTERP, &[b"libfoo.so", b"libbar.so"]);
    let (out, took) = run_within(&mut s.inspect(&bin, &s.root()), LIMIT);
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("libbar.so => /opt/lib7/libbar.so"),
        "{stdout}"
    );
    assert!(
        stdout.contains("libfoo.so => /usr/lib/libfoo.so"),
        "{stdout}"
    );
    eprintln!("fan-out of 8 read in {took:?}");
}

#[test]
fn a_symlink_loop_in_the_root_gives_eloop() {
    let s = Scene::new();
    std::fs::create_dir_all(s.root().join("lib64")).unwrap();
    symlink("loop-b", s.root().join("lib64/loop-a")).unwrap();
    symlink("loop-a", s.root().join("lib64/loop-b")).unwrap();
    symlink("loop-a", s.root().join("lib64/ld-linux-x86-64.so.2")).unwrap();
    let bin = glibc_binary(&s, GLIBC_INTERP, &[]);
    let (out, _) = run_within(&mut s.bin(&bin), LIMIT);
    assert_refused(&out, &[GLIBC_INTERP, "too many levels of symbolic links"]);
    s.assert_nothing_written();
}

#[test]
fn a_symlink_bomb_in_the_root_gives_eloop_quickly() {
    let s = Scene::new();
    // Each link names the one below twice: 2^30 links to follow if only nesting is limited.
    std::fs::create_dir(s.root().join("b")).unwrap();
    symlink(".", s.root().join("b/l0")).unwrap();
    for k in 1..=30 {
        let below = format!("l{}", k - 1);
        symlink(format!("{below}/{below}"), s.root().join(format!("b/l{k}"))).unwrap();
    }
    let bin = glibc_binary(&s, "/b/l30/ld.so", &[]);
    let (out, took) = run_within(&mut s.bin(&bin), LIMIT);
    assert_refused(&out, &["/b/l30/ld.so", "too many levels of symbolic links"]);
    s.assert_nothing_written();
    eprintln!("symlink bomb refused in {took:?}");
}

#[test]
fn names_read_from_the_elf_are_printed_escaped() {
    let s = Scene::new();
    s.plant_glibc(&[]);
    let evil: &[u8] = b"lib\x1b[31mevil\x07.so";
    let bin = glibc_binary(&s, GLIBC_INTERP, &[evil, b"/opt/\x1b]0;title\x07"]);
    let (out, _) = run_within(&mut s.inspect(&bin, &s.root()), LIMIT);
    let (stdout, stderr) = (common::stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(r"needed       lib\u{1b}[31mevil\u{7}.so, /opt/\u{1b}]0;title\u{7}"),
        "{stdout}"
    );
    assert_refused(
        &out,
        &[r"lib\u{1b}[31mevil\u{7}.so (needed by /app/app) is not in"],
    );
    for (name, text) in [("stdout", &stdout[..]), ("stderr", &stderr[..])] {
        assert!(
            !text.contains(['\x1b', '\x07']),
            "raw control characters on {name}: {text:?}"
        );
    }
}

/// Sets the value of the first `tag` entry of a [`dynamic_elf`]'s PT_DYNAMIC (its last
/// program header).
fn set_dynamic(elf: &mut [u8], tag: u64, value: u64) {
    let phnum = u16::from_le_bytes([elf[56], elf[57]]) as usize;
    let ph = 64 + 56 * (phnum - 1);
    let at = u64::from_le_bytes(elf[ph + 8..ph + 16].try_into().unwrap()) as usize;
    let entry = (at..)
        .step_by(16)
        .find(|&e| u64::from_le_bytes(elf[e..e + 8].try_into().unwrap()) == tag)
        .unwrap();
    elf[entry + 8..entry + 16].copy_from_slice(&value.to_le_bytes());
}

/// binpack reads the dynamic section and its strings range by range (a node executable is
/// not read whole): sizes a header claims past the file, and names it cannot use, are
/// refused by name, never allocated or passed over.
#[test]
fn dynamic_sections_that_lie_are_refused_by_name() {
    let s = Scene::new();
    s.plant_glibc(&["libok.so"]);
    let elf = dynamic_elf(
        EM_X86_64,
        ET_EXEC,
        Some(GLIBC_INTERP.as_bytes()),
        &[b"libok.so"],
    );
    let inspect = |elf: &[u8]| run_within(&mut s.inspect(&s.binary(elf), &s.root()), LIMIT).0;
    let out = inspect(&elf);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stdout(&out).contains("libok.so => /usr/lib/libok.so"));

    // PT_DYNAMIC of 1 TiB (p_filesz of the last program header).
    let mut big = elf.clone();
    let ph = 64 + 56 * 2;
    big[ph + 32..ph + 40].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let out = inspect(&big);
    assert_refused(
        &out,
        &[
            "app is a truncated or malformed ELF",
            "its dynamic section (PT_DYNAMIC): 1099511627776 bytes at offset",
            "past the end of the file",
        ],
    );

    // DT_STRSZ (10) of 1 TiB.
    let mut strsz = elf.clone();
    set_dynamic(&mut strsz, 10, 1 << 40);
    let out = inspect(&strsz);
    assert_refused(
        &out,
        &[
            "its dynamic string table (DT_STRTAB, DT_STRSZ): 1099511627776 bytes",
            "past the end of the file",
        ],
    );

    // A DT_NEEDED that is not UTF-8 would be a library binpack cannot name in the image.
    let bad = dynamic_elf(
        EM_X86_64,
        ET_EXEC,
        Some(GLIBC_INTERP.as_bytes()),
        &[b"lib\xff.so"],
    );
    let out = inspect(&bad);
    assert_refused(
        &out,
        &[r#"a name in its dynamic section, "lib\xff.so", is not valid UTF-8"#],
    );

    // A DT_NEEDED past the string table's end is passed over, as the loader's table
    // lookup would find nothing there.
    let mut past = elf.clone();
    set_dynamic(&mut past, 1, 1 << 20);
    let out = inspect(&past);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        !common::stdout(&out).contains("libok.so"),
        "{}",
        common::stdout(&out)
    );
}
