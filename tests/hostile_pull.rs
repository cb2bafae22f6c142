//! A registry that lies: a blob longer than its descriptor says, a digest that is a path, a
//! manifest too large; and a cache damaged on disk. Each through the CLI against a fake
//! registry on 127.0.0.1 that this file runs (plain HTTP, bounded, stopping by itself).

mod common;

use common::fixture::{base_layer, write_fixture, EM_X86_64};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the fake registry answers a path.
#[derive(Clone)]
enum Answer {
    Bytes(Vec<u8>),
    /// A body that never ends (the server gives up after 64 MiB or 20 s).
    Endless,
    /// A body declared at this many bytes that comes one byte a second (for up to 100 s).
    Drip(u64),
}

/// A registry on 127.0.0.1 serving fixed answers by path; it stops when dropped, and after
/// 60 s in any case.
struct Registry {
    port: u16,
    stop: Arc<AtomicBool>,
    /// The paths asked for, in order.
    asked: Arc<Mutex<Vec<String>>>,
    /// The paths whose endless answer the client hung up on (before the server gave up).
    cut_off: Arc<Mutex<Vec<String>>>,
}

impl Registry {
    fn start(answers: HashMap<String, Answer>) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let cut_off = Arc::new(Mutex::new(Vec::new()));
        let (s, a, c) = (stop.clone(), asked.clone(), cut_off.clone());
        let answers = Arc::new(answers);
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::Relaxed) && Instant::now() < until {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (answers, a, c) = (answers.clone(), a.clone(), c.clone());
                        std::thread::spawn(move || serve(conn, &answers, &a, &c));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Registry {
            port,
            stop,
            asked,
            cut_off,
        }
    }

    fn times_asked(&self, path: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    /// Whether the client hung up on the endless answer at `path`: the server's thread may
    /// see its write fail a moment after binpack has exited, so it is waited for (a bound,
    /// not a timing check).
    fn was_cut_off(&self, path: &str) -> bool {
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if self.cut_off.lock().unwrap().iter().any(|p| p == path) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Answers the requests of one connection (HTTP/1.1, kept alive) until it closes.
fn serve(
    conn: TcpStream,
    answers: &HashMap<String, Answer>,
    asked: &Mutex<Vec<String>>,
    cut_off: &Mutex<Vec<String>>,
) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        // The headers, up to the blank line (GETs have no body).
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
        }
        asked.lock().unwrap().push(path.clone());
        let ok = match answers.get(&path) {
            Some(Answer::Bytes(b)) => respond(&mut conn, "200 OK", b),
            Some(Answer::Endless) => {
                if endless(&mut conn) {
                    cut_off.lock().unwrap().push(path);
                }
                return;
            }
            Some(Answer::Drip(size)) => {
                if drip(&mut conn, *size) {
                    cut_off.lock().unwrap().push(path);
                }
                return;
            }
            None => respond(&mut conn, "404 Not Found", b"{}"),
        };
        if !ok {
            return;
        }
    }
}

fn respond(conn: &mut TcpStream, status: &str, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).is_ok() && conn.write_all(body).is_ok()
}

/// A body with no length that goes on until the client hangs up (or 64 MiB, or 20 s);
/// whether the client hung up first.
fn endless(conn: &mut TcpStream) -> bool {
    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    let chunk = vec![b'x'; 64 << 10];
    let until = Instant::now() + Duration::from_secs(20);
    for _ in 0..1024 {
        if Instant::now() > until {
            return false;
        }
        if conn.write_all(&chunk).is_err() {
            return true;
        }
    }
    false
}

/// A body declared at `size` bytes, sent one byte a second for up to 100 s; whether the
/// client hung up first.
fn drip(conn: &mut TcpStream, size: u64) -> bool {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
    let _ = conn.write_all(head.as_bytes());
    for _ in 0..100 {
        if conn.write_all(b"x").is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    false
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A base image: its config and one gzip layer, and the manifest naming them.
struct Base {
    config: Vec<u8>,
    layer: Vec<u8>,
}

impl Base {
    fn new() -> Base {
        let (tar, gz) = base_layer();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(&tar)]},
        });
        Base {
            config: serde_json::to_vec(&config).unwrap(),
            layer: gz,
        }
    }

    /// The manifest, with the layer's descriptor digest as given.
    fn manifest(&self, layer_digest: &str) -> Vec<u8> {
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha(&self.config), "size": self.config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": self.layer.len()}],
        });
        serde_json::to_vec(&m).unwrap()
    }

    /// The registry's answers: the manifest as tag `1`, the config, and the layer as `layer`.
    fn answers(&self, manifest: Vec<u8>, layer: Answer) -> HashMap<String, Answer> {
        HashMap::from([
            ("/v2/base/manifests/1".into(), Answer::Bytes(manifest)),
            (
                blob_url(&sha(&self.config)),
                Answer::Bytes(self.config.clone()),
            ),
            (blob_url(&sha(&self.layer)), layer),
        ])
    }
}

fn blob_url(digest: &str) -> String {
    format!("/v2/base/blobs/{digest}")
}

/// A test's directory: the binary, a cache of its own, the output.
struct Run {
    dir: tempfile::TempDir,
    exe: PathBuf,
}

impl Run {
    fn new() -> Run {
        let dir = tempfile::tempdir().unwrap();
        let exe = write_fixture(dir.path(), "hello", EM_X86_64);
        Run { dir, exe }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out.tar")
    }

    /// `binpack bin hello --base 127.0.0.1:PORT/base:1 -o out.tar`.
    fn pack(&self, port: u16) -> Output {
        common::binpack()
            .arg("bin")
            .arg(&self.exe)
            .args(["--base", &format!("127.0.0.1:{port}/base:1"), "-o"])
            .arg(self.out())
            .env("BINPACK_CACHE", self.cache())
            .output()
            .unwrap()
    }
}

/// Every name under `dir`, relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            names.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    names.sort();
    names
}

fn assert_failed(out: &Output, wants: &[&str]) -> String {
    let err = common::stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in wants {
        assert!(err.contains(w), "wanted {w:?} in: {err}");
    }
    err
}

#[test]
fn a_blob_longer_than_its_descriptor_says_is_cut_off_and_not_cached() {
    let base = Base::new();
    let layer = sha(&base.layer);
    let reg = Registry::start(base.answers(base.manifest(&layer), Answer::Endless));
    let run = Run::new();
    let out = run.pack(reg.port);
    let size = base.layer.len();
    assert_failed(
        &out,
        &[
            &layer,
            &format!("more than the {size} bytes the manifest declares"),
        ],
    );
    // It hung up at the excess, not when the server gave up.
    assert!(reg.was_cut_off(&blob_url(&layer)), "read to the end");
    let blobs = run.cache().join("blobs/sha256");
    let left: Vec<String> = tree(&blobs);
    // The manifest and config were whole and stay; of the layer nothing, not even a
    // temporary file.
    let mut whole = [sha(&base.manifest(&layer)), sha(&base.config)].map(|d| d[7..].to_string());
    whole.sort();
    assert_eq!(left, whole);
    assert!(!run.out().exists());
}

#[test]
fn a_layer_digest_that_is_a_path_is_refused_before_it_names_a_file() {
    let base = Base::new();
    let reg = Registry::start(base.answers(base.manifest("sha256:../../x"), Answer::Endless));
    let run = Run::new();
    // What the digest would name, were it joined to the cache's blob directory.
    let target = run.cache().join("x");
    std::fs::create_dir_all(run.cache()).unwrap();
    std::fs::write(&target, b"not a layer").unwrap();
    let before = tree(run.dir.path());
    let out = run.pack(reg.port);
    assert_failed(&out, &["sha256:../../x", "expected sha256:<64 hex digits>"]);
    assert_eq!(std::fs::read(&target).unwrap(), b"not a layer");
    let after: Vec<String> = tree(run.dir.path())
        .into_iter()
        .filter(|n| !n.starts_with("cache/blobs"))
        .collect();
    assert_eq!(after, before, "written beside the cache");
    assert_eq!(reg.times_asked("/v2/base/blobs/sha256:../../x"), 0);
}

#[test]
fn a_manifest_larger_than_the_limit_is_refused_as_such() {
    let base = Base::new();
    let mut big = base.manifest(&sha(&base.layer));
    big.truncate(big.len() - 1);
    big.extend(std::iter::repeat_n(b' ', 9 << 20));
    big.push(b'}');
    let reg = Registry::start(base.answers(big, Answer::Endless));
    let run = Run::new();
    let out = run.pack(reg.port);
    assert_failed(&out, &["manifest 1 is larger than 8 MiB"]);
    assert!(!run.out().exists());
}

#[test]
fn a_damaged_cached_blob_is_fetched_again_with_a_note() {
    let base = Base::new();
    let layer = sha(&base.layer);
    let reg =
        Registry::start(base.answers(base.manifest(&layer), Answer::Bytes(base.layer.clone())));
    let run = Run::new();
    let out = run.pack(reg.port);
    assert!(out.status.success(), "{}", common::stderr(&out));
    // Garbage of the same size: only its digest can tell.
    let cached = run.cache().join("blobs/sha256").join(&layer[7..]);
    std::fs::write(&cached, vec![b'?'; base.layer.len()]).unwrap();
    std::fs::remove_file(run.out()).unwrap();

    let out = run.pack(reg.port);
    let err = common::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(reg.times_asked(&blob_url(&layer)), 2);
    assert_eq!(std::fs::read(&cached).unwrap(), base.layer);
    let files = common::ArchiveFiles::open(&run.out());
    let layers = files.manifest()["layers"].clone();
    assert_eq!(files.blob(&layers[0]["digest"]), base.layer.as_slice());
    // The note travels in PulledBase::notes; base.rs passes it on to the summary.
    assert!(
        err.contains(&format!(
            "note: the cache {}: its bytes do not match its digest; removed, and fetched again",
            cached.display()
        )),
        "{err}"
    );
}

/// A layer declared at 1 GiB that drips a byte a second: the size is the registry's claim and
/// buys no time (it was allowed over an hour); the transfer is judged by what arrives and
/// dropped after one window of too little.
#[test]
fn a_huge_declared_layer_that_drips_is_dropped_by_its_progress() {
    let base = Base::new();
    let layer = sha(&base.layer);
    let mut manifest: serde_json::Value = serde_json::from_slice(&base.manifest(&layer)).unwrap();
    manifest["layers"][0]["size"] = serde_json::json!(1u64 << 30);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let reg = Registry::start(base.answers(manifest, Answer::Drip(1 << 30)));
    let run = Run::new();
    let out = run.pack(reg.port);
    let err = assert_failed(&out, &[&layer, "sent only", "KiB/s"]);
    eprintln!("dripping layer: {err}");
    assert!(
        reg.was_cut_off(&blob_url(&layer)),
        "read until the server gave up"
    );
    assert!(!run.out().exists());
}

/// A base whose manifest names a config of 512 MiB, or 130 layers, is refused before anything
/// is fetched (the config was read whole into memory: 3 GiB for 512 MiB; docker refuses an
/// image of more than 125 layers after it was built).
#[test]
fn a_huge_config_or_too_many_layers_are_refused_before_fetching() {
    let base = Base::new();
    let layer = sha(&base.layer);
    let plain: serde_json::Value = serde_json::from_slice(&base.manifest(&layer)).unwrap();
    let mut huge = plain.clone();
    huge["config"]["size"] = serde_json::json!(512u64 << 20);
    let mut many = plain.clone();
    many["layers"] = serde_json::Value::Array(vec![plain["layers"][0].clone(); 130]);
    for (manifest, wants) in [
        (huge, vec!["declared at 536870912 bytes", "8 MiB"]),
        (many, vec!["130 layers", "125"]),
    ] {
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let reg = Registry::start(base.answers(bytes, Answer::Endless));
        let run = Run::new();
        let out = run.pack(reg.port);
        assert_failed(&out, &wants);
        assert_eq!(reg.times_asked(&blob_url(&layer)), 0, "a layer was fetched");
        assert!(!run.out().exists());
    }
}

/// A gzip base layer that inflates a thousand times (600 MiB of zeros from about 600 KiB) is
/// refused as such, not inflated to the end.
#[test]
fn a_gzip_bomb_base_layer_is_refused() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..600 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let mut base = Base::new();
    base.layer = bomb;
    let layer = sha(&base.layer);
    let reg =
        Registry::start(base.answers(base.manifest(&layer), Answer::Bytes(base.layer.clone())));
    let run = Run::new();
    let out = run.pack(reg.port);
    assert_failed(&out, &[&layer, "gzip bomb"]);
    assert!(!run.out().exists());
}
