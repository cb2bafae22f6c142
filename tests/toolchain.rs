//! Toolchain containers: `binpack go` and `binpack node` with go and node off PATH, built in
//! the toolchain images that scripts/toolchain-images.sh makes from this machine's Go and
//! Node (tagged like the real ones), with docker and podman; caches in named volumes; the
//! output handed back to the caller; clear errors for a missing image and a dead engine.
//! The machine set-up these tests expect is in docs/machine-setup.md.

mod common;

use binpack::build::toolchain::{Kind, Request, Toolchain};
use binpack::progress::Silent;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const GO_IMAGE: &str = "golang:1.23-bookworm";
const NODE_IMAGE: &str = "node:20-bookworm-slim";

/// Fails the test unless `engine` has `image` (scripts/toolchain-images.sh makes them).
fn need_image(engine: &str, image: &str, conf: Option<&Path>) {
    let mut c = Command::new(engine);
    if let Some(conf) = conf {
        c.env("CONTAINERS_CONF", conf);
    }
    let out = c
        .args(["image", "inspect", image])
        .output()
        .unwrap_or_else(|e| panic!("{engine} image inspect: {e}"));
    assert!(
        out.status.success(),
        "{engine} has no {image}: scripts/toolchain-images.sh {engine} builds it from this machine's Go and Node (docs/machine-setup.md)"
    );
}

/// A PATH holding only the container engines and git (the revision label): no go, no node, no
/// npm.
fn engines_only_path(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["docker", "podman", "git"] {
        let link = bin.join(tool);
        if let (Some(p), false) = (which(tool), link.exists()) {
            std::os::unix::fs::symlink(p, link).unwrap();
        }
    }
    bin
}

/// podman here needs runc and no default ulimits (docs/machine-setup.md).
fn podman_conf(dir: &Path) -> PathBuf {
    let conf = dir.join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n",
    )
    .unwrap();
    conf
}

/// binpack with only the engines on PATH, its own cache, temporary directory and cache
/// volumes (named after the test directory, so the first build is cold and a developer's own
/// volumes are left alone).
fn binpack_without_toolchains(dir: &Path) -> Command {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut c = binpack();
    c.env("PATH", engines_only_path(dir))
        .env("BINPACK_CACHE", dir.join("cache"))
        .env("BINPACK_VOLUME_PREFIX", volume_prefix(dir))
        .env("TMPDIR", tmp);
    c
}

fn volume_prefix(dir: &Path) -> String {
    let name = dir.file_name().unwrap().to_string_lossy();
    format!(
        "binpack-test{}",
        name.to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    )
}

/// Removes the test's cache volumes when dropped.
struct Volumes(&'static str, Vec<String>);

impl Drop for Volumes {
    fn drop(&mut self) {
        for v in &self.1 {
            let _ = Command::new(self.0)
                .args(["volume", "rm", "-f", v])
                .output();
        }
    }
}

/// Nothing of a run is left in its temporary directory.
fn assert_no_temporaries(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir.join("tmp"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// examples/<name> copied to `dir/<name>` and committed there: a git checkout whose .git is a
/// directory (go stamps VCS information from it; a worktree's .git file it ignores).
fn git_checkout(dir: &Path, name: &str) -> PathBuf {
    let src = dir.join(name);
    std::fs::create_dir_all(&src).unwrap();
    for e in std::fs::read_dir(repo().join("examples").join(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), src.join(e.file_name())).unwrap();
    }
    let git = |args: &[&str]| {
        ok(Command::new("git")
            .arg("-C")
            .arg(&src)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args))
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "example"]);
    src
}

fn timed(cmd: &mut Command) -> (serde_json::Value, Duration) {
    let start = Instant::now();
    let s = pack_json(cmd);
    (s, start.elapsed())
}

#[test]
#[ignore = "needs go, git and a Docker engine with the golang toolchain image"]
fn go_in_docker_without_go_on_path_runs_and_caches() {
    need(&["go", "git"]);
    need_docker();
    need_image("docker", GO_IMAGE, None);
    let dir = tempfile::tempdir().unwrap();
    let tag = "binpack-test/tc-hello:1";
    let name = "binpack-test-tc-hello";
    let _cleanup = DockerCleanup(vec![name.into(), tag.into()]);
    let volume = format!("{}-go-cache", volume_prefix(dir.path()));
    let _volumes = Volumes("docker", vec![volume.clone()]);
    let src = git_checkout(dir.path(), "hello-http");
    let build = |out: &str| {
        let mut c = binpack_without_toolchains(dir.path());
        c.arg("go")
            .arg(&src)
            .args([
                "--toolchain-image",
                GO_IMAGE,
                "--network",
                "none",
                "-t",
                tag,
            ])
            .arg("-o")
            .arg(dir.path().join(out));
        c
    };
    // auto: no go on PATH, so docker.
    let (first, cold) = timed(&mut build("1.tar"));
    let (second, warm) = timed(build("2.tar").args(["--toolchain", "docker"]));
    eprintln!("go in docker: first build {cold:.1?}, second build {warm:.1?} (cache volume)");
    assert_eq!(first["toolchain"], format!("docker {GO_IMAGE}"));
    assert_eq!(first["base"], "scratch");
    assert_eq!(first["digest"], second["digest"], "two builds, one digest");
    // The host's go (the one the toolchain image was made from, scripts/toolchain-images.sh)
    // on the same git checkout: the host sees .git, the container does not; same digest.
    let host = pack_json(
        binpack()
            .arg("go")
            .arg(&src)
            .args(["--toolchain", "host", "-t", tag, "-o"])
            .arg(dir.path().join("host.tar")),
    );
    assert_eq!(host["toolchain"], "host");
    assert_eq!(
        first["digest"], host["digest"],
        "host and container builds, one digest"
    );
    assert!(
        warm < cold,
        "the second build ({warm:?}) should reuse the cache volume and beat the first ({cold:?})"
    );
    // The build cache is in the named volume, not in the container that is gone.
    ok(Command::new("docker").args(["volume", "inspect", &volume]));
    assert_no_temporaries(dir.path());

    let port = docker_serve(&dir.path().join("2.tar"), tag, name);
    let resp = http_get(port, "/ping").expect("the server built in docker answers");
    assert!(resp.starts_with("HTTP/1.0 200"), "{resp}");
    assert!(resp.contains("uid 65532, path /ping"), "{resp}");
}

#[test]
#[ignore = "needs podman with the golang toolchain image"]
fn go_in_podman_prints_its_roots() {
    need(&["podman"]);
    let dir = tempfile::tempdir().unwrap();
    let conf = podman_conf(dir.path());
    need_image("podman", GO_IMAGE, Some(&conf));
    let archive = dir.path().join("certpool.tar");
    let _volumes = Volumes(
        "podman",
        vec![format!("{}-go-cache", volume_prefix(dir.path()))],
    );
    let s = pack_json(
        binpack_without_toolchains(dir.path())
            .env("CONTAINERS_CONF", &conf)
            .arg("go")
            .arg(repo().join("examples/certpool"))
            .args(["--toolchain", "podman", "--toolchain-image", GO_IMAGE])
            .args([
                "--network",
                "none",
                "-t",
                "binpack-test/tc-certpool:1",
                "-o",
            ])
            .arg(&archive),
    );
    assert_eq!(s["toolchain"], format!("podman {GO_IMAGE}"));
    let podman = || {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &conf);
        c
    };
    ok(podman().arg("load").arg("-i").arg(&archive));
    let out = ok(podman().args([
        "run",
        "--rm",
        "--network",
        "none",
        "binpack-test/tc-certpool:1",
    ]));
    let _ = podman()
        .args(["rmi", "-f", "binpack-test/tc-certpool:1"])
        .output();
    let text = stdout(&out);
    let count: u32 = text
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no count in {text:?}"));
    assert!(count > 0, "{text}");
}

#[test]
#[ignore = "needs npm and a Docker engine with the node toolchain image"]
fn node_in_docker_without_node_on_path_answers_http() {
    need(&["npm"]);
    need_docker();
    need_image("docker", NODE_IMAGE, None);
    let app = repo().join("examples/node-express");
    // The project's dependencies, installed on the host as a checkout would have them.
    ok(Command::new("npm")
        .args(["ci", "--silent", "--no-audit", "--no-fund"])
        .current_dir(&app));
    let dir = tempfile::tempdir().unwrap();
    let tag = "binpack-test/tc-express:1";
    let name = "binpack-test-tc-express";
    let _cleanup = DockerCleanup(vec![name.into(), tag.into()]);
    let _volumes = Volumes(
        "docker",
        vec![format!("{}-npm-cache", volume_prefix(dir.path()))],
    );
    let build = |network: &str, out: &str| {
        let mut c = binpack_without_toolchains(dir.path());
        c.arg("node")
            .arg(&app)
            .args(["--toolchain", "docker", "--toolchain-image", NODE_IMAGE])
            // The single executable: one layer (express goes to files under --layout auto).
            .args(["--layout", "sea"])
            .args(["--network", network, "-t", tag, "-o"])
            .arg(dir.path().join(out));
        c
    };
    // The first build may install esbuild with the image's npm into the cache volume; the
    // second is hermetic and finds it there.
    let (first, t1) = timed(&mut build("host", "1.tar"));
    let (second, t2) = timed(&mut build("none", "2.tar"));
    eprintln!("node in docker: first build {t1:.1?}, second build {t2:.1?} (--network none)");
    assert_eq!(first["digest"], second["digest"]);
    assert_eq!(first["base"], "closure");
    assert_eq!(second["runtime"], "node v20.20.2 (toolchain image)");
    assert_eq!(first["libraries"].as_array().unwrap().len(), 7);
    // The libraries come from the image the runtime was taken from, not the host: this image
    // has a real /lib directory where the host (merged /usr) has a symlink to usr/lib.
    let libc = app_layer_entries(&dir.path().join("1.tar"))
        .into_iter()
        .find(|(p, _)| {
            p.trim_start_matches('/')
                .ends_with("x86_64-linux-gnu/libc.so.6")
        })
        .expect("libc in the layer");
    assert_eq!(
        libc.0.trim_start_matches('/'),
        "lib/x86_64-linux-gnu/libc.so.6"
    );
    if std::fs::symlink_metadata("/lib").is_ok_and(|m| m.file_type().is_symlink()) {
        let host = tempfile::tempdir().unwrap();
        let archive = host.path().join("host.tar");
        pack_json(
            binpack()
                .env("BINPACK_CACHE", dir.path().join("cache"))
                .arg("node")
                .arg(&app)
                .args(["--toolchain", "host", "--layout", "sea", "-o"])
                .arg(&archive),
        );
        assert!(app_layer_entries(&archive).iter().any(|(p, _)| p
            .trim_start_matches('/')
            .starts_with("usr/lib/x86_64-linux-gnu/libc.so")));
    }

    let port = docker_serve(&dir.path().join("2.tar"), tag, name);
    let resp = http_get(port, "/").expect("the express server answers");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        resp.contains("hello from binpack node (uid 65532, node v20.20.2)"),
        "{resp}"
    );
}

/// The container gives what it writes back to the owner of the output directory: the caller.
#[test]
#[ignore = "needs a Docker engine with the golang toolchain image"]
fn container_output_is_owned_by_the_caller() {
    need_docker();
    need_image("docker", GO_IMAGE, None);
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    // A caller that is not root: the directory binpack made for it is 65534's.
    std::os::unix::fs::chown(&out, Some(65534), Some(65534)).unwrap();
    let req = Request {
        kind: Kind::Docker,
        image: Some(GO_IMAGE.into()),
        network: Some("none".into()),
    };
    let go = binpack::build::Tool {
        program: "go",
        install: "go",
        off_path: &[],
    };
    let tc = Toolchain::select(&req, &go, &Silent).unwrap();
    let runner = tc.runner(&src, &out, "binpack-test-ownership");
    ok(&mut runner.script(
        "mkdir -p /out/sub && go version > /out/sub/version",
        &src,
        &[],
    ));
    let written = out.join("sub/version");
    assert!(std::fs::read_to_string(&written)
        .unwrap()
        .starts_with("go version"));
    for p in [out.join("sub"), written] {
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65534), "{}", p.display());
    }
    let _ = Command::new("docker")
        .args(["volume", "rm", "-f", "binpack-test-ownership"])
        .output();
}

#[test]
#[ignore = "needs a Docker engine"]
fn missing_image_dead_engine_and_no_toolchain_are_clear_errors() {
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.tar");
    let go = |extra: &[&str]| {
        let mut c = binpack_without_toolchains(dir.path());
        c.arg("go")
            .arg(repo().join("examples/hello-http"))
            .arg("-o")
            .arg(&out)
            .args(extra);
        c
    };
    let table: Vec<(Command, &str)> = vec![
        (
            // Refused at once: nothing listens on port 1.
            go(&["--toolchain", "docker", "--toolchain-image", "127.0.0.1:1/nope/golang:0"]),
            "toolchain image 127.0.0.1:1/nope/golang:0 is not in docker's images and cannot be pulled",
        ),
        (
            {
                let mut c = go(&["--toolchain", "docker"]);
                c.env("DOCKER_HOST", format!("unix://{}/no.sock", dir.path().display()));
                c
            },
            "docker is installed but its engine does not answer",
        ),
        (
            go(&["--toolchain", "host"]),
            "go not found on PATH",
        ),
        (
            {
                let mut c = binpack();
                c.env("PATH", dir.path().join("empty"))
                    .arg("node")
                    .arg(repo().join("examples/node-express"))
                    .arg("-o")
                    .arg(&out);
                c
            },
            "node is not on PATH and neither docker nor podman is there",
        ),
    ];
    // Where scripts/install-deps.sh puts Go: named by the errors that find no go on PATH.
    let off_path = "go is installed in /usr/lib/go-1.23/bin, which is not on PATH: `export PATH=/usr/lib/go-1.23/bin:$PATH`";
    for (mut cmd, want) in table {
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{want}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(want), "wanted {want:?} in:\n{err}");
        if want == "go not found on PATH" {
            assert!(err.contains(off_path), "wanted {off_path:?} in:\n{err}");
        }
        assert!(!out.exists(), "{want}: no output");
        assert!(leftovers(dir.path()).is_empty());
    }
    // auto, only docker on PATH and its engine down: the Go off PATH is named too.
    let only_docker = dir.path().join("only-docker");
    std::fs::create_dir_all(&only_docker).unwrap();
    std::os::unix::fs::symlink(which("docker").unwrap(), only_docker.join("docker")).unwrap();
    let o = go(&[])
        .env("PATH", &only_docker)
        .env(
            "DOCKER_HOST",
            format!("unix://{}/no.sock", dir.path().display()),
        )
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("docker is installed but its engine does not answer"),
        "{err}"
    );
    assert!(err.contains(off_path), "wanted {off_path:?} in:\n{err}");
    assert!(!out.exists());
}

/// `binpack go examples/<example>` in the golang image under docker, offline, with the test's
/// own cache volume (removed when the returned guard is dropped).
fn go_in_docker(dir: &Path, example: &str) -> (Command, Volumes) {
    let volumes = Volumes("docker", vec![format!("{}-go-cache", volume_prefix(dir))]);
    let mut c = binpack_without_toolchains(dir);
    c.arg("go")
        .arg(repo().join("examples").join(example))
        .args(["--toolchain", "docker", "--toolchain-image", GO_IMAGE])
        .args(["--network", "none"]);
    (c, volumes)
}

/// A failure inside the container (the cgo example) is go's own, named, and leaves nothing.
#[test]
#[ignore = "needs a Docker engine with the golang toolchain image"]
fn a_build_failing_in_the_container_is_named_and_leaves_nothing() {
    need_docker();
    need_image("docker", GO_IMAGE, None);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cgo.tar");
    let (mut cmd, _volumes) = go_in_docker(dir.path(), "cgo");
    let o = cmd.arg("-o").arg(&out).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("imports \"C\" (cgo)"), "{err}");
    assert!(!out.exists());
    assert_no_temporaries(dir.path());
}

/// An interrupted container build stops its container and removes its temporaries.
#[test]
#[ignore = "needs a Docker engine with the golang toolchain image"]
fn an_interrupted_container_build_leaves_no_container() {
    need_docker();
    need_image("docker", GO_IMAGE, None);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.tar");
    // A cold cache volume: compiling the standard library takes long enough to interrupt.
    let (mut cmd, _volumes) = go_in_docker(dir.path(), "hello-http");
    let mut child = cmd.args(["-q", "-o"]).arg(&out).spawn().unwrap();
    let ours = format!("name=binpack-{}-", child.id());
    let containers = || {
        let o = ok(Command::new("docker").args(["ps", "-aq", "--filter", &ours]));
        stdout(&o).split_whitespace().count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while containers() == 0 {
        assert!(
            Instant::now() < deadline,
            "the build container never started"
        );
        assert!(child.try_wait().unwrap().is_none(), "binpack ended early");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Past `go list` (a second), into `go build` of a cold cache (half a minute).
    std::thread::sleep(Duration::from_secs(2));
    assert!(containers() > 0, "the build container is running");
    ok(Command::new("kill").args(["-INT", &child.id().to_string()]));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(containers(), 0, "the build container was removed");
    assert!(!out.exists());
    assert_no_temporaries(dir.path());
}
