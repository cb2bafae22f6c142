//! What binpack writes on this machine never costs the user a file: an output that is an
//! input is refused, a layout keeps the images it already holds, and what a run killed with
//! SIGKILL left behind is removed by the next run (and nothing else is).

mod common;

use common::fixture::*;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

/// A static fixture ELF, executable, in `dir`.
fn fixture(dir: &Path) -> PathBuf {
    let exe = write_fixture(dir, "hello", EM_X86_64);
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    exe
}

/// `binpack bin` with a private cache and TMPDIR, from `dir`.
fn bin(dir: &Path, args: &[&str]) -> Output {
    let tmp = dir.join("tmpdir");
    std::fs::create_dir_all(&tmp).unwrap();
    binpack()
        .current_dir(dir)
        .env("BINPACK_CACHE", dir.join("cache"))
        .env("TMPDIR", &tmp)
        .arg("bin")
        .args(args)
        .output()
        .unwrap()
}

/// `binpack bin ARGS` that must succeed.
fn packed(dir: &Path, args: &[&str]) {
    let out = bin(dir, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
}

fn refused(out: &Output, words: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in words {
        assert!(err.contains(w), "{w:?} not in {err}");
    }
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let exe = fixture(dir.path());
    let before = std::fs::read(&exe).unwrap();
    let ca = dir.path().join("ca.pem");
    // A real bundle: --ca-certs takes PEM certificates only.
    std::fs::copy(repo().join("runtimes/ca-certificates.crt"), &ca).unwrap();

    // The binary itself, named as given and through another spelling.
    let out = bin(dir.path(), &["hello", "-o", "hello"]);
    refused(
        &out,
        &["refusing to write hello", "overwrite the input hello"],
    );
    let out = bin(dir.path(), &["hello", "-o", "./tmpdir/../hello"]);
    refused(&out, &["overwrite the input hello"]);
    // The CA bundle.
    let out = bin(
        dir.path(),
        &["hello", "--ca-certs", "ca.pem", "-o", "ca.pem"],
    );
    refused(&out, &["refusing to write ca.pem", "the input ca.pem"]);

    assert_eq!(
        std::fs::read(&exe).unwrap(),
        before,
        "the binary is unchanged"
    );
    assert_eq!(
        std::fs::read(&ca).unwrap(),
        std::fs::read(repo().join("runtimes/ca-certificates.crt")).unwrap(),
        "the CA bundle is unchanged"
    );
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

/// index.json's entries as (tag, manifest digest).
fn tags(layout: &Path) -> Vec<(String, String)> {
    let index = json(&layout.join("index.json"));
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let tag = &m["annotations"]["org.opencontainers.image.ref.name"];
            (
                tag.as_str().unwrap().into(),
                m["digest"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Every manifest of the layout and every blob it names are present and verify.
fn assert_layout_complete(layout: &Path) {
    assert_blobs_verify(layout);
    for (tag, digest) in tags(layout) {
        let manifest = json(&blob(layout, &digest.clone().into()));
        assert!(
            blob(layout, &manifest["config"]["digest"]).is_file(),
            "{tag}"
        );
        for l in manifest["layers"].as_array().unwrap() {
            assert!(blob(layout, &l["digest"]).is_file(), "{tag}");
        }
    }
}

#[test]
fn a_layout_gets_a_tag_added_or_replaced_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let layout = dir.path().join("layout");
    let l = layout.to_str().unwrap();
    packed(
        dir.path(),
        &["hello", "-q", "-t", "app:a", "--oci-layout", l],
    );
    std::fs::write(layout.join("notes.txt"), "mine").unwrap();
    packed(
        dir.path(),
        &[
            "hello",
            "-q",
            "-t",
            "app:b",
            "--env",
            "B=1",
            "--oci-layout",
            l,
        ],
    );
    let two = tags(&layout);
    let names: Vec<&str> = two.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_ne!(two[0].1, two[1].1, "two different images");
    assert_layout_complete(&layout);

    // Tag a again, as a different image: replaced; b kept as it was.
    packed(
        dir.path(),
        &[
            "hello",
            "-q",
            "-t",
            "app:a",
            "--env",
            "A=2",
            "--oci-layout",
            l,
        ],
    );
    let now = tags(&layout);
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.contains(&two[1]), "b kept: {now:?}");
    let a = now.iter().find(|(t, _)| t == "a").unwrap();
    assert_ne!(a.1, two[0].1, "a replaced");
    assert_layout_complete(&layout);
    assert_eq!(
        std::fs::read_to_string(layout.join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(leftovers(&layout).is_empty() && leftovers(dir.path()).is_empty());

    // A damaged index.json is named and left as it is.
    std::fs::write(layout.join("index.json"), "{not json").unwrap();
    let out = bin(dir.path(), &["hello", "-t", "app:c", "--oci-layout", l]);
    refused(&out, &["index.json", "not a valid OCI image index"]);
    assert_eq!(
        std::fs::read_to_string(layout.join("index.json")).unwrap(),
        "{not json"
    );
}

/// skopeo reads both tags of a layout written in two runs.
#[test]
#[ignore = "needs skopeo"]
fn skopeo_reads_every_tag_of_a_merged_layout() {
    need(&["skopeo"]);
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let l = dir.path().join("layout");
    let l = l.to_str().unwrap();
    packed(
        dir.path(),
        &["hello", "-q", "-t", "app:a", "--oci-layout", l],
    );
    packed(
        dir.path(),
        &[
            "hello",
            "-q",
            "-t",
            "app:b",
            "--env",
            "B=1",
            "--oci-layout",
            l,
        ],
    );
    for tag in ["a", "b"] {
        ok(Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{l}:{tag}")));
    }
}

/// A pid no process has: a child's, after it exited and was reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert!(!Path::new("/proc").join(pid.to_string()).exists());
    pid
}

/// Sets the modification time of `p` (and, for a directory, of everything in it) to `hours`
/// ago.
fn age(p: &Path, hours: u64) {
    let then = SystemTime::now() - Duration::from_secs(hours * 60 * 60);
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            age(&e.unwrap().path(), hours);
        }
    }
    std::fs::File::open(p).unwrap().set_modified(then).unwrap();
}

#[test]
fn leftovers_of_a_killed_run_are_removed_and_nothing_else() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let (dead, live) = (dead_pid(), std::process::id());
    // The pid namespace binpack runs in (ours); a writer in another one cannot be looked up.
    let ns = std::fs::metadata("/proc/self/ns/pid").unwrap().ino();
    let out_dir = dir.path().join("dist");
    std::fs::create_dir(&out_dir).unwrap();
    let beside = |pid: u32, ns: u64| out_dir.join(format!(".binpack-{pid}-{ns}-aB3xyz.tmp"));
    let tmp = dir.path().join("tmpdir");
    let staging = |pid: u32, ns: u64| tmp.join(format!("binpack-{pid}-{ns}-Qw9erT"));
    for d in [staging(dead, ns), staging(live, ns), staging(dead, ns + 1)] {
        std::fs::create_dir_all(d.join("blobs/sha256")).unwrap();
        std::fs::write(d.join("blobs/sha256/half"), "x").unwrap();
    }
    let others = [
        out_dir.join(".binpack-notapid.tmp"),
        out_dir.join(format!(".binpack-{dead}-aB3xyz.tmp")),
        out_dir.join("user-file.tmp"),
        tmp.join(format!("binpack-{dead}")),
        tmp.join("binpack-cache"),
    ];
    let old_elsewhere = beside(dead, ns + 2);
    let files = [beside(dead, ns), beside(live, ns), beside(dead, ns + 1)];
    for p in files.iter().chain(&others).chain([&old_elsewhere]) {
        std::fs::write(p, "x").unwrap();
    }
    // Past the longest run: stale whoever wrote it.
    age(&old_elsewhere, 25);

    let archive = out_dir.join("hello.tar");
    packed(
        dir.path(),
        &["hello", "-q", "-o", archive.to_str().unwrap()],
    );
    assert!(archive.is_file());
    assert!(
        !beside(dead, ns).exists(),
        "the killed run's temporary is removed"
    );
    assert!(
        !staging(dead, ns).exists(),
        "the killed run's staging is removed"
    );
    assert!(!old_elsewhere.exists(), "a day-old temporary is removed");
    assert!(
        beside(live, ns).exists(),
        "a live writer's temporary is kept"
    );
    assert!(staging(live, ns).exists(), "a live run's staging is kept");
    assert!(
        beside(dead, ns + 1).exists(),
        "another namespace's recent one is kept"
    );
    assert!(
        staging(dead, ns + 1).exists(),
        "another namespace's recent one is kept"
    );
    for p in &others {
        assert!(p.exists(), "not binpack's: {p:?} kept");
    }
    // And this run left no staging of its own.
    let names: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

/// `dir`'s entries whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn after_kill_9_the_next_run_removes_what_the_killed_one_left() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    // The fixture padded with incompressible bytes: writing the archive takes a moment.
    let mut big = std::fs::read(dir.path().join("hello")).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    big.extend((0..96 << 20).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    let mut f = std::fs::File::create(dir.path().join("big")).unwrap();
    f.write_all(&big).unwrap();
    drop(f);
    std::fs::set_permissions(dir.path().join("big"), PermissionsExt::from_mode(0o755)).unwrap();
    let (out_dir, tmp) = (dir.path().join("dist"), dir.path().join("tmpdir"));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = binpack()
        .current_dir(dir.path())
        .env("TMPDIR", &tmp)
        .env("BINPACK_CACHE", dir.path().join("cache"))
        .args(["bin", "big", "-q", "-o", "dist/big.tar"])
        .spawn()
        .unwrap();
    // SIGKILL once the archive is being written beside its destination.
    let started = std::time::Instant::now();
    while !out_dir.is_dir() || named(&out_dir, ".binpack-").is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        assert!(started.elapsed() < Duration::from_secs(120), "never wrote");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(named(&out_dir, ".binpack-").len(), 1);
    assert_eq!(
        named(&tmp, "binpack-").len(),
        1,
        "the staging directory is left"
    );

    packed(dir.path(), &["hello", "-q", "-o", "dist/big.tar"]);
    assert_eq!(named(&out_dir, ""), ["big.tar"]);
    assert!(named(&tmp, "binpack-").is_empty(), "{:?}", named(&tmp, ""));
}

#[test]
fn temporaries_a_killed_run_left_in_the_cache_are_removed() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let (dead, live) = (dead_pid(), std::process::id());
    let ns = std::fs::metadata("/proc/self/ns/pid").unwrap().ino();
    let cache = dir.path().join("cache");
    let blobs = cache.join("blobs/sha256");
    let esbuild = cache.join("esbuild/0.25.0");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::create_dir_all(&esbuild).unwrap();
    std::fs::set_permissions(&cache, PermissionsExt::from_mode(0o700)).unwrap();
    let named = |d: &Path, pid: u32| d.join(format!(".binpack-{pid}-{ns}-aB3xyz.tmp"));
    let (dead_blob, dead_entry) = (named(&blobs, dead), named(&esbuild, dead));
    let (live_blob, old_unnamed, new_unnamed) = (
        named(&blobs, live),
        blobs.join(".tmp-Zx81Qp"),
        blobs.join(".tmp-Yq72Wr"),
    );
    std::fs::create_dir_all(dead_entry.join("package")).unwrap();
    for f in [&dead_blob, &live_blob, &old_unnamed, &new_unnamed] {
        std::fs::write(f, "half").unwrap();
    }
    age(&old_unnamed, 2);
    packed(dir.path(), &["hello", "-q", "-o", "out.tar"]);
    assert!(
        !dead_blob.exists(),
        "a killed run's blob temporary is removed"
    );
    assert!(
        !dead_entry.exists(),
        "a killed run's entry directory is removed"
    );
    assert!(
        !old_unnamed.exists(),
        "an hour-old download temporary is removed"
    );
    assert!(live_blob.exists(), "a live writer's temporary is kept");
    assert!(new_unnamed.exists(), "a recent download temporary is kept");
}

/// `binpack go DIR ARGS` with a private cache, from `dir`.
fn go(dir: &Path, args: &[&str]) -> Output {
    binpack()
        .current_dir(dir)
        .env("BINPACK_CACHE", dir.join("cache"))
        .args(["go", "app"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs go"]
fn an_output_naming_a_source_file_is_refused_and_its_own_outputs_are_replaced() {
    need(&["go"]);
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-http");
    for f in ["main.go", "go.mod"] {
        std::fs::copy(example.join(f), app.join(f)).unwrap();
    }
    let source = |f: &str| std::fs::read(app.join(f)).unwrap();
    let (main_go, go_mod) = (source("main.go"), source("go.mod"));

    // A slip of the tab key: the source is not an input binpack reads, but it must survive.
    let out = go(dir.path(), &["-o", "app/main.go"]);
    refused(&out, &["app/main.go exists and is not a tar archive"]);
    let out = go(dir.path(), &["-o", "out.tar", "--sbom", "app/go.mod"]);
    refused(
        &out,
        &["app/go.mod exists and is not an SPDX JSON document"],
    );
    let out = go(dir.path(), &["--oci-layout", "app"]);
    refused(&out, &["app exists and is not an OCI image layout"]);
    assert_eq!(source("main.go"), main_go);
    assert_eq!(source("go.mod"), go_mod);
    assert!(
        !dir.path().join("out.tar").exists(),
        "written before refusing"
    );

    // binpack's own archive and SBOM are replaced by the next run.
    for _ in 0..2 {
        let out = go(dir.path(), &["-o", "out.tar", "--sbom", "out.spdx.json"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

/// `binpack bin FIXTURE -o out.tar` from `dir` with the environment `env` (and TMPDIR in
/// `dir`), everything else about the cache unset.
fn bin_env(dir: &Path, env: &[(&str, &Path)]) -> Output {
    let exe = fixture(dir);
    let mut c = binpack();
    c.current_dir(dir)
        .env_remove("BINPACK_CACHE")
        .env_remove("XDG_CACHE_HOME")
        .env("TMPDIR", dir)
        .arg("bin")
        .arg(exe)
        .args(["-o", "out.tar"]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn root_only() {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    assert_eq!(
        uid, 0,
        "this test needs root, to chown a file to another user"
    );
}

#[test]
#[ignore = "needs root (to give the cache to another user)"]
fn a_cache_another_user_owns_or_others_can_write_is_refused() {
    root_only();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::os::unix::fs::chown(&cache, Some(65534), None).unwrap();
    let out = bin_env(dir.path(), &[("BINPACK_CACHE", &cache)]);
    refused(
        &out,
        &[&cache.display().to_string(), "another user (uid 65534)"],
    );
    assert!(!dir.path().join("out.tar").exists(), "nothing written");
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "nothing cached"
    );

    std::os::unix::fs::chown(&cache, Some(0), None).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = bin_env(dir.path(), &[("BINPACK_CACHE", &cache)]);
    refused(&out, &["others can write to it (mode 1777)", "chmod go-w"]);
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "nothing cached"
    );

    // A new one is made for this user alone.
    let fresh = dir.path().join("new/cache");
    let out = bin_env(dir.path(), &[("BINPACK_CACHE", &fresh)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// With HOME unset the cache was `$TMPDIR/binpack-cache`, a name another user could make
/// first and fill. Each name it could take in TMPDIR is planted, owned by another user and
/// open to all: the build must not put anything into them.
#[test]
#[ignore = "needs root (to give the planted cache to another user)"]
fn without_home_the_cache_is_no_shared_name_another_user_made() {
    root_only();
    let dir = tempfile::tempdir().unwrap();
    let planted: Vec<PathBuf> = ["binpack-cache", "binpack-cache-0"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    for p in &planted {
        std::fs::create_dir(p).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    let exe = fixture(dir.path());
    let out = binpack()
        .current_dir(dir.path())
        .env_remove("HOME")
        .env_remove("BINPACK_CACHE")
        .env_remove("XDG_CACHE_HOME")
        .env("TMPDIR", dir.path())
        .arg("bin")
        .arg(&exe)
        .args(["-o", "out.tar"])
        .output()
        .unwrap();
    // Built with a cache of its own, or refused naming the planted one: never filling it.
    assert!(
        out.status.success() || stderr(&out).contains("another user"),
        "{}",
        stderr(&out)
    );
    for p in &planted {
        assert_eq!(
            std::fs::read_dir(p).unwrap().count(),
            0,
            "{} was used as the cache",
            p.display()
        );
    }
}
