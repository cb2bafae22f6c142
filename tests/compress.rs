//! The parallel gzip (binpack-layer/3) and the layer cache over several layers.
mod common;

use binpack::compress::{gzip, Gzip, Sums, BLOCK};
use binpack::digest::Digest;
use binpack::emit::Staging;
use binpack::layer::{Content, Tree};
use binpack::layers::{self, LayerCache};
use binpack::progress::Progress;
use std::cell::RefCell;
use std::io::Write;
use std::process::{Command, Stdio};

/// ~1.3 MB, several blocks and a ragged end: text that repeats across block edges (so the
/// dictionary matters) and noise that does not compress.
fn input() -> Vec<u8> {
    let mut out = Vec::new();
    let mut x: u32 = 12345;
    while out.len() < 10 * BLOCK + 777 {
        out.extend_from_slice(b"binpack writes layers that every engine reads; ");
        for _ in 0..40 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            out.push((x >> 16) as u8);
        }
    }
    out.truncate(10 * BLOCK + 777);
    out
}

fn zip(data: &[u8], threads: usize) -> (Vec<u8>, Sums) {
    let opts = Gzip {
        level: binpack::layer::LEVEL,
        threads,
    };
    let ((), out, sums) = gzip(Vec::new(), opts, |w| w.write_all(data)).unwrap();
    (out, sums)
}

#[test]
fn the_same_bytes_for_any_thread_count_and_a_pinned_digest() {
    let data = input();
    let (one, sums) = zip(&data, 1);
    for threads in [2, 8] {
        assert!(zip(&data, threads).0 == one, "{threads} threads differ");
    }
    assert_eq!(sums.digest, Digest::of(&one));
    assert_eq!(sums.diff_id, Digest::of(&data));
    assert_eq!(sums.uncompressed_size, data.len() as u64);
    // The scheme's bytes: a change here changes every image digest (README, Reproducibility).
    assert_eq!(sums.digest.to_string(), PINNED, "binpack-layer/3 changed");
}

/// On a real executable (this test's, megabytes of machine code), runs repeated: a compressor
/// state that leaked from one block to the next gave sizes that varied with the scheduling.
#[test]
fn the_same_bytes_for_any_thread_count_on_a_real_binary() {
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let data = &exe[..exe.len().min(8 << 20)];
    let (one, _) = zip(data, 1);
    for threads in [2, 8, 2, 8, 3] {
        assert!(zip(data, threads).0 == one, "{threads} threads differ");
    }
}

#[test]
fn zstd_bytes_are_pinned_too() {
    let data = input();
    let ((), out, sums) = binpack::compress::zstd(Vec::new(), |w| w.write_all(&data)).unwrap();
    assert_eq!(zstd::decode_all(out.as_slice()).unwrap(), data);
    assert_eq!(sums.diff_id, Digest::of(&data));
    assert_eq!(
        sums.digest.to_string(),
        ZSTD_PINNED,
        "the zstd scheme changed"
    );
}

const ZSTD_PINNED: &str = "sha256:0bca09c165775825d3db8f81401b5054d250b58f4451f9696e23ccd16d4bb8e5";

const PINNED: &str = "sha256:a4ea1444f41bbbbfc8c433da79cad5b614ac36402e9fe390c1a0110af3006c79";

#[test]
#[ignore = "needs gzip"]
fn gzip_checks_and_gunzip_restores_it() {
    common::need(&["gzip"]);
    let data = input();
    let (zipped, _) = zip(&data, 2);
    let run = |args: &[&str]| {
        let mut child = Command::new("gzip")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let bytes = zipped.clone();
        let feeder = std::thread::spawn(move || stdin.write_all(&bytes));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(
            out.status.success(),
            "gzip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&["-t"]);
    assert!(run(&["-dc"]) == data, "gunzip gives the input back");
}

/// binpack-layer/3 written again by another program on another zlib (Python's `zlib`, the
/// system's libz): the scheme is stock zlib's deflate, so anyone can check a layer's bytes.
const PYTHON_SCHEME: &str = r#"
import struct, sys, zlib
BLOCK, WINDOW, LEVEL = 128 * 1024, 32 * 1024, 5
data = sys.stdin.buffer.read()
out = [bytes([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])]
n = len(data) // BLOCK  # a full block is never the last: the rest (maybe empty) is
for i in range(n + 1):
    dict = {"zdict": data[i * BLOCK - WINDOW:i * BLOCK]} if i else {}
    c = zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, **dict)
    out.append(c.compress(data[i * BLOCK:(i + 1) * BLOCK if i < n else None]))
    out.append(c.flush(zlib.Z_FINISH if i == n else zlib.Z_SYNC_FLUSH))
out.append(struct.pack("<II", zlib.crc32(data), len(data) & 0xffffffff))
sys.stdout.buffer.write(b"".join(out))
"#;

#[test]
#[ignore = "needs python3"]
fn another_zlib_writes_the_same_bytes() {
    common::need(&["python3"]);
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    for (name, data) in [
        ("the fixed input", input()),
        ("a real binary", exe[..exe.len().min(3 << 20)].to_vec()),
    ] {
        let mut child = Command::new("python3")
            .args(["-c", PYTHON_SCHEME])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed = data.clone();
        let feeder = std::thread::spawn(move || stdin.write_all(&feed));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(out.status.success(), "python3 failed on {name}");
        assert!(
            zip(&data, 2).0 == out.stdout,
            "{name}: python's zlib differs"
        );
    }
}

#[derive(Default)]
struct Stages(RefCell<Vec<String>>);

impl Progress for Stages {
    fn stage(&self, m: &str) {
        self.0.borrow_mut().push(m.to_string());
    }
}

impl Stages {
    fn compressed(&self) -> usize {
        let stages = self.0.borrow();
        stages
            .iter()
            .filter(|s| s.starts_with("writing the layer"))
            .count()
    }
    fn cached(&self) -> usize {
        let stages = self.0.borrow();
        stages
            .iter()
            .filter(|s| s.contains("taken from the cache"))
            .count()
    }
}

/// A runtime layer under an app layer, as binpack node's `files` layout writes them.
fn trees(app: &str) -> Vec<Tree> {
    let mut runtime = Tree::new();
    runtime
        .file("usr/local/bin/node", Content::Bytes(input()), 0o755)
        .unwrap();
    let mut app_tree = Tree::new();
    app_tree
        .file(
            "app/server.js",
            Content::Bytes(app.as_bytes().to_vec()),
            0o644,
        )
        .unwrap();
    vec![runtime, app_tree]
}

fn build(trees: &[Tree], cache: &LayerCache) -> (Vec<Digest>, Stages) {
    let stages = Stages::default();
    let staging = Staging::new().unwrap();
    let stats = layers::write_layers(trees, 0, &staging, cache, &stages).unwrap();
    (stats.into_iter().map(|s| s.digest).collect(), stages)
}

#[test]
fn a_rebuild_compresses_nothing_and_a_damaged_entry_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LayerCache::at(dir.path());
    let (first, stages) = build(&trees("v1"), &cache);
    assert_eq!((stages.compressed(), stages.cached()), (2, 0));

    let (again, stages) = build(&trees("v1"), &cache);
    assert_eq!(again, first);
    assert_eq!(
        (stages.compressed(), stages.cached()),
        (0, 2),
        "nothing compressed"
    );

    // A one-line change to the app: only the app layer is compressed.
    let (changed, stages) = build(&trees("v2"), &cache);
    assert_eq!(changed[0], first[0]);
    assert_ne!(changed[1], first[1]);
    assert_eq!((stages.compressed(), stages.cached()), (1, 1));

    // The runtime's cached blob damaged: detected, compressed again, the same bytes.
    let blob = first[0].blob_in(dir.path());
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let (healed, stages) = build(&trees("v1"), &cache);
    assert_eq!(healed, first);
    assert_eq!((stages.compressed(), stages.cached()), (1, 1));
    assert_eq!(Digest::of(&std::fs::read(&blob).unwrap()), first[0]);
}

#[test]
#[ignore = "needs a Docker engine, podman and skopeo"]
fn zstd_layers_load_in_podman_and_old_docker_refuses_them() {
    common::need_docker();
    common::need(&["podman", "skopeo"]);
    let dir = tempfile::tempdir().unwrap();
    let exe = common::fixture::write_fixture(dir.path(), "hello", common::fixture::EM_X86_64);
    let archive = dir.path().join("z.tar");
    let pack = |extra: &[&str]| {
        let mut c = common::binpack();
        c.env("BINPACK_CACHE", dir.path().join("cache"))
            .args(["-q", "bin"])
            .arg(&exe)
            .args(["--compression", "zstd", "-t", "binpack-test/zstd:1", "-o"])
            .arg(&archive)
            .args(extra);
        c.output().unwrap()
    };
    assert!(pack(&[]).status.success());
    let files = common::ArchiveFiles::open(&archive);
    let manifest = files.manifest();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let tar = zstd::decode_all(files.blob(&layer["digest"])).unwrap();
    assert_eq!(
        files.config()["rootfs"]["diff_ids"][0],
        Digest::of(&tar).to_string()
    );
    // Readers of zstd: podman and skopeo.
    common::ok(Command::new("podman").args(["load", "-i"]).arg(&archive));
    common::ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}", archive.display())),
    );
    let _ = Command::new("podman")
        .args(["rmi", "-f", "binpack-test/zstd:1"])
        .output();

    let version =
        common::ok(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]));
    let version = common::stdout(&version);
    let major: u32 = version.trim().split('.').next().unwrap().parse().unwrap();
    let out = pack(&["--load=docker"]);
    if major < 23 {
        assert_eq!(out.status.code(), Some(1));
        let err = common::stderr(&out);
        assert!(
            err.contains("zstd layers") && err.contains("--compression gzip"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    } else {
        assert!(out.status.success(), "{}", common::stderr(&out));
        let _ = Command::new("docker")
            .args(["rmi", "-f", "binpack-test/zstd:1"])
            .output();
    }
}
