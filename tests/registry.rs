//! Registries and engines: push to a real distribution registry on 127.0.0.1 (plain and with
//! basic auth), pull a base from it, push through a proxy that fails, load into podman.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// binpack with a private cache (pushed-blob records, base blobs) per test.
fn binpack_in(cache: &Path) -> Command {
    let mut c = binpack();
    c.env("BINPACK_CACHE", cache);
    c.env("DOCKER_CONFIG", cache.join("docker-config"));
    c
}

/// What the registry says of a tag, asked with skopeo (an independent client).
#[derive(Debug, PartialEq)]
enum Tag {
    /// The tag points at the manifest with this digest.
    Digest(String),
    /// The registry answered that it has no such manifest.
    Missing,
}

/// `skopeo inspect docker://REFERENCE`: the digest of the tag, or [`Tag::Missing`] when the
/// registry says it does not have it. Any other failure (the registry down, credentials
/// refused, skopeo broken) fails the test: it says nothing about the tag.
fn skopeo_tag(reference: &str, creds: Option<&str>) -> Tag {
    let mut c = Command::new("skopeo");
    c.args(["inspect", "--tls-verify=false"]);
    if let Some(cr) = creds {
        c.args(["--creds", cr]);
    }
    let out = c
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap_or_else(|e| panic!("skopeo: {e}"));
    if out.status.success() {
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "skopeo inspect {reference}: bad JSON ({e}): {}",
                stdout(&out)
            )
        });
        let digest = j["Digest"]
            .as_str()
            .unwrap_or_else(|| panic!("skopeo inspect {reference}: no Digest in {j}"));
        return Tag::Digest(digest.to_string());
    }
    // The distribution registry's MANIFEST_UNKNOWN, as skopeo prints it (for a tag, and for a
    // repository that never got a manifest).
    let err = stderr(&out);
    if err.contains("manifest unknown") {
        return Tag::Missing;
    }
    panic!(
        "skopeo inspect {reference} failed, and not because the tag is missing ({}): {err}",
        out.status
    );
}

/// The digest the tag points at; the test fails if there is none.
fn skopeo_digest(reference: &str, creds: Option<&str>) -> String {
    match skopeo_tag(reference, creds) {
        Tag::Digest(d) => d,
        Tag::Missing => panic!("the registry has no {reference}"),
    }
}

#[test]
#[ignore = "needs docker-registry, skopeo and a Docker engine"]
fn push_then_pull_and_run_and_a_second_push_uploads_nothing() {
    need(&["docker-registry", "skopeo"]);
    need_docker();
    let reg = Registry::start(None);
    let cache = tempfile::tempdir().unwrap();
    let target = format!("{}/binpack-test/id:1", reg.host());
    let out_file = cache.path().join("id.tar");
    let s = pack_json(
        binpack_in(cache.path())
            .args(["bin", "/usr/bin/id", "--push", &target, "-o"])
            .arg(&out_file),
    );
    let digest = s["digest"].as_str().unwrap().to_string();
    // The layer and the config, then the SBOM artifact's empty config and the SBOM itself.
    assert_eq!(s["push"]["uploaded"], 4, "{s}");
    assert_eq!(
        s["pushed"],
        serde_json::json!([format!("{target}@{digest}")])
    );
    assert_eq!(skopeo_digest(&target, None), digest);
    // The archive written alongside is the same image.
    let oci = ok(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", out_file.display())));
    let oci: serde_json::Value = serde_json::from_slice(&oci.stdout).unwrap();
    assert_eq!(oci["Digest"], digest);

    let again = pack_json(binpack_in(cache.path()).args(["bin", "/usr/bin/id", "--push", &target]));
    assert_eq!(again["digest"], digest);
    assert_eq!(again["push"]["uploaded"], 0, "{again}");
    // (4: the image's two blobs and its SBOM artifact's two.)
    assert_eq!(again["push"]["skipped"], 4, "{again}");

    // Another repository of the same registry: the blobs are mounted, not uploaded.
    let other = format!("{}/binpack-test/other:1", reg.host());
    let mounted =
        pack_json(binpack_in(cache.path()).args(["bin", "/usr/bin/id", "--push", &other]));
    assert_eq!(mounted["push"]["uploaded"], 0, "{mounted}");
    assert_eq!(mounted["push"]["mounted"], 4, "{mounted}");

    let _cleanup = DockerCleanup(vec![target.clone()]);
    ok(Command::new("docker").args(["pull", "-q", &target]));
    let run = ok(Command::new("docker").args(["run", "--rm", "--network", "none", &target]));
    assert!(
        stdout(&run).starts_with("uid=65532(nonroot)"),
        "{}",
        stdout(&run)
    );
}

#[test]
#[ignore = "needs docker-registry, skopeo and htpasswd"]
fn authenticated_registry_takes_docker_config_credentials_and_refuses_without() {
    need(&["docker-registry", "skopeo", "htpasswd"]);
    let reg = Registry::start(Some(("ci", "s3cret-pass")));
    let cache = tempfile::tempdir().unwrap();
    let target = format!("{}/private/id:1", reg.host());

    // No credentials: refused, named, nothing tagged.
    let out = binpack_in(cache.path())
        .args(["bin", "/usr/bin/id", "--push", &target])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{} refused", reg.host())), "{err}");
    assert!(err.contains("no credentials for it were found"), "{err}");
    assert!(
        err.contains("docker-config/config.json"),
        "names where it looked: {err}"
    );
    assert_eq!(skopeo_tag(&target, Some("ci:s3cret-pass")), Tag::Missing);

    // Wrong credentials: refused, and the secret is not printed.
    let config_dir = cache.path().join("docker-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let write_auth = |user: &str, pass: &str| {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        std::fs::write(
            config_dir.join("config.json"),
            serde_json::json!({"auths": {reg.host(): {"auth": auth}}}).to_string(),
        )
        .unwrap();
    };
    write_auth("ci", "wrong-pass");
    let out = binpack_in(cache.path())
        .args(["bin", "/usr/bin/id", "--push", &target])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("were not accepted"), "{err}");
    assert!(!err.contains("wrong-pass"), "secret printed: {err}");
    assert_eq!(skopeo_tag(&target, Some("ci:s3cret-pass")), Tag::Missing);

    write_auth("ci", "s3cret-pass");
    let s = pack_json(binpack_in(cache.path()).args(["bin", "/usr/bin/id", "--push", &target]));
    assert_eq!(skopeo_digest(&target, Some("ci:s3cret-pass")), s["digest"]);

    // A credential helper named for the registry (credHelpers), run as docker runs it:
    // `docker-credential-<name> get`, the server on stdin, JSON on stdout.
    let bin = cache.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-binpacktest");
    std::fs::write(
        &helper,
        "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"ci\",\"Secret\":\"s3cret-pass\"}' \"$server\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        config_dir.join("config.json"),
        serde_json::json!({"credHelpers": {reg.host(): "binpacktest"}}).to_string(),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let helped = format!("{}/private/helped:1", reg.host());
    let s = pack_json(binpack_in(cache.path()).env("PATH", &path).args([
        "bin",
        "/usr/bin/id",
        "--push",
        &helped,
    ]));
    assert_eq!(skopeo_digest(&helped, Some("ci:s3cret-pass")), s["digest"]);
}

/// An alpine-like base (musl's loader + busybox-static), made with umoci and pushed with
/// skopeo, the independent tools.
fn push_alpine_like(reg: &Registry, dir: &Path) -> String {
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let image = format!("{}:3", layout.display());
    ok(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    ok(Command::new("umoci").args(["new", "--image", &image]));
    ok(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let root = bundle.join("rootfs");
    for d in ["lib", "bin", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let musl = std::fs::canonicalize("/lib/ld-musl-x86_64.so.1").unwrap();
    std::fs::copy(musl, root.join("lib/ld-musl-x86_64.so.1")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    ok(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    ok(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.env",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "--config.env",
        "FROM_BASE=yes",
        "--config.workingdir",
        "/srv",
        "--os",
        "linux",
        "--architecture",
        "amd64",
    ]));
    let base = format!("{}/alpine-like:3", reg.host());
    ok(Command::new("skopeo").args([
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{image}"),
        &format!("docker://{base}"),
    ]));
    base
}

#[test]
#[cfg_attr(
    target_arch = "x86_64",
    ignore = "needs docker-registry, skopeo, umoci, musl-gcc, busybox, go and a Docker engine"
)]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "x86_64 only: the base is made from musl's x86_64 loader"
)]
fn musl_binary_gets_the_alpine_base_and_runs() {
    need(&[
        "docker-registry",
        "skopeo",
        "umoci",
        "musl-gcc",
        "busybox",
        "go",
    ]);
    need_docker();
    if !cfg!(target_arch = "x86_64") {
        panic!("this test makes an amd64 base from musl's x86_64 loader: it runs on x86_64 only");
    }
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    let base = push_alpine_like(&reg, dir.path());
    let src = dir.path().join("hello.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <stdlib.h>\nint main(void) { printf(\"hello from musl, FROM_BASE=%s\\n\", getenv(\"FROM_BASE\")); return 0; }\n",
    )
    .unwrap();
    let exe = dir.path().join("hello-musl");
    ok(Command::new("musl-gcc").arg("-o").arg(&exe).arg(&src));

    let cache = dir.path().join("cache");
    let target = format!("{}/hello-musl:1", reg.host());
    let s = pack_json(
        binpack_in(&cache)
            .env("BINPACK_ALPINE_BASE", &base)
            .arg("bin")
            .arg(&exe)
            .args(["--push", &target]),
    );
    assert_eq!(s["base"], base, "auto picks alpine for musl: {s}");
    assert!(s["base_manifest"].as_str().unwrap().starts_with("sha256:"));
    // The base layer is already in the registry (another repository): mounted, not uploaded.
    assert_eq!(s["push"]["mounted"], 1, "{s}");

    // Several binpack processes filling one fresh cache with the same base at once: all
    // succeed with one digest, and no partial blob is left in the cache.
    let shared = dir.path().join("shared-cache");
    let children: Vec<_> = (0..3)
        .map(|i| {
            binpack_in(&shared)
                .arg("bin")
                .arg(&exe)
                .args(["--base", &base, "--json", "-q", "-o"])
                .arg(dir.path().join(format!("concurrent-{i}.tar")))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let digests: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            j["digest"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(digests.iter().all(|d| d == &digests[0]), "{digests:?}");
    let mut stack = vec![shared.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".tmp-"),
                "partial cache entry {}",
                e.path().display()
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }

    // Offline (the base cannot be reached): the musl closure, with a note.
    let out = ok(binpack_in(&cache)
        .env("BINPACK_ALPINE_BASE", "127.0.0.1:1/nowhere:1")
        .arg("bin")
        .arg(&exe)
        .args(["--json", "-q", "-t", "binpack-test/musl-fallback:1", "-o"])
        .arg(dir.path().join("fallback.tar")));
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["base"], "closure");
    assert!(
        stderr(&out).contains("could not be had"),
        "{}",
        stderr(&out)
    );

    // A base whose platform is not the binary's is refused, and nothing is written.
    let arm = dir.path().join("arm.tar");
    let out = binpack_in(&cache)
        .arg("go")
        .arg(repo().join("examples/hello-http"))
        .args(["--platform", "linux/arm64", "--base", &base, "-o"])
        .arg(&arm)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "base {base} is linux/amd64, but the binary is linux/arm64"
        )),
        "{err}"
    );
    assert!(!arm.exists());

    let _cleanup = DockerCleanup(vec![target.clone(), "binpack-test/musl-fallback:1".into()]);
    ok(Command::new("docker").args(["pull", "-q", &target]));
    let run = ok(Command::new("docker").args(["run", "--rm", "--network", "none", &target]));
    assert_eq!(
        stdout(&run).trim(),
        "hello from musl, FROM_BASE=yes",
        "base env kept"
    );
    let cfg = ok(Command::new("docker").args([
        "image",
        "inspect",
        "-f",
        "{{.Config.WorkingDir}}",
        &target,
    ]));
    assert_eq!(stdout(&cfg).trim(), "/srv", "base workdir kept");

    // The offline fallback (musl's own closure, no alpine) runs too.
    ok(Command::new("docker")
        .args(["load", "-i"])
        .arg(dir.path().join("fallback.tar")));
    let run = ok(Command::new("docker").args([
        "run",
        "--rm",
        "--network",
        "none",
        "binpack-test/musl-fallback:1",
    ]));
    assert!(
        stdout(&run).starts_with("hello from musl"),
        "{}",
        stdout(&run)
    );
}

/// A TCP proxy to the registry that answers the first `failures` connections with a 500 or by
/// hanging up, then forwards. Bounded: it serves at most `limit` connections and stops.
fn faulty_proxy(upstream: u16, failures: usize, limit: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(limit) {
            let Ok(mut client) = conn else { continue };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            if n < failures {
                let mut buf = [0u8; 4096];
                let _ = client.set_read_timeout(Some(Duration::from_millis(500)));
                let _ = client.read(&mut buf);
                if n % 2 == 0 {
                    let _ = client.write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
                continue; // dropped (odd) or answered 500 (even), then closed
            }
            forward(client, upstream);
        }
    });
    (port, seen)
}

/// Copies `client`'s connection to and from 127.0.0.1:`upstream`, each way on its own thread.
fn forward(client: TcpStream, upstream: u16) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut client = client;
        let mut server = server;
        let _ = std::io::copy(&mut server, &mut client);
        let _ = client.shutdown(std::net::Shutdown::Write);
    });
}

/// An HTTP proxy to the registry that refuses every manifest PUT with a 500 and forwards the
/// rest, one request per connection (it answers `Connection: close`). Bounded: at most
/// `limit` connections, then it stops.
fn manifest_refusing_proxy(upstream: u16, limit: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let refused = Arc::new(AtomicUsize::new(0));
    let counter = refused.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(limit) {
            let Ok(mut client) = conn else { continue };
            let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
            // The request head, then as much body as it announces.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match client.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let length: usize = text
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            if client.read_exact(&mut body).is_err() {
                continue;
            }
            let first = text.lines().next().unwrap_or("");
            if first.starts_with("PUT ") && first.contains("/manifests/") {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = client.write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            // Forward with the connection closed after the answer.
            let head = text.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let _ = server.write_all(head.as_bytes());
            let _ = server.write_all(&body);
            let _ = std::io::copy(&mut server, &mut client);
        }
    });
    (port, refused)
}

#[test]
#[ignore = "needs docker-registry and skopeo"]
fn push_survives_a_flaky_registry_and_fails_cleanly_on_a_dead_one() {
    need(&["docker-registry", "skopeo"]);
    let reg = Registry::start(None);
    let cache = tempfile::tempdir().unwrap();
    // Four failures (500, dropped, 500, dropped), then a working registry.
    let (port, seen) = faulty_proxy(reg.port, 4, 200);
    let target = format!("127.0.0.1:{port}/flaky/id:1");
    let s = pack_json(binpack_in(cache.path()).args(["bin", "/usr/bin/id", "--push", &target]));
    assert!(seen.load(Ordering::SeqCst) > 4, "the proxy was used");
    let direct = format!("{}/flaky/id:1", reg.host());
    assert_eq!(skopeo_digest(&direct, None), s["digest"]);

    // A registry that never recovers: a clear error, and no tag points at anything.
    let (port, _) = faulty_proxy(reg.port, 1000, 1000);
    let target = format!("127.0.0.1:{port}/dead/id:1");
    let out = binpack_in(cache.path())
        .args(["bin", "/usr/bin/id", "--push", &target])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed after 6 attempts"), "{err}");
    assert_eq!(
        skopeo_tag(&format!("{}/dead/id:1", reg.host()), None),
        Tag::Missing
    );

    // A registry that takes the blobs and then fails the manifest: the push fails after its
    // retries, and no tag points at the blobs it did upload.
    let (port, refused) = manifest_refusing_proxy(reg.port, 200);
    let target = format!("127.0.0.1:{port}/halfway/id:1");
    let out = binpack_in(cache.path())
        .args(["bin", "/usr/bin/id", "--push", &target, "--json", "-q"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed after 6 attempts"), "{err}");
    assert_eq!(
        refused.load(Ordering::SeqCst),
        6,
        "the manifest PUT was retried"
    );
    let direct = format!("{}/halfway/id:1", reg.host());
    assert_eq!(
        skopeo_tag(&direct, None),
        Tag::Missing,
        "no tag after a failed push"
    );
}

#[test]
#[ignore = "needs podman"]
fn load_into_podman() {
    need(&["podman"]);
    let dir = tempfile::tempdir().unwrap();
    // podman here needs runc and no default ulimits (docs/machine-setup.md).
    let conf: PathBuf = dir.path().join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n",
    )
    .unwrap();
    let tag = "binpack-test/podman-id:1";
    let s = pack_json(binpack().env("CONTAINERS_CONF", &conf).args([
        "bin",
        "/usr/bin/id",
        "--load=podman",
        "-t",
        tag,
    ]));
    assert_eq!(
        s["loaded"],
        serde_json::json!({"engine": "podman", "image": format!("docker.io/{tag}")})
    );
    let run = ok(Command::new("podman").env("CONTAINERS_CONF", &conf).args([
        "run",
        "--rm",
        "--network",
        "none",
        tag,
    ]));
    assert!(
        stdout(&run).starts_with("uid=65532(nonroot)"),
        "{}",
        stdout(&run)
    );
    let _ = Command::new("podman")
        .env("CONTAINERS_CONF", &conf)
        .args(["rmi", "-f", tag])
        .output();
}

#[test]
#[ignore = "needs a Docker engine"]
fn load_into_docker_and_archive_agree() {
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let tag = "binpack-test/docker-load:1";
    let _cleanup = DockerCleanup(vec![tag.into()]);
    let archive = dir.path().join("a.tar");
    let s = pack_json(
        binpack()
            .args(["bin", "/usr/bin/id", "--load", "-t", tag, "-o"])
            .arg(&archive),
    );
    assert_eq!(
        s["loaded"],
        serde_json::json!({"engine": "docker", "image": tag})
    );
    assert!(archive.is_file(), "-o with --load writes the archive too");
    // The engine got the very image in the archive: its ID is the archive's config digest.
    let id = ok(Command::new("docker").args(["image", "inspect", "-f", "{{.Id}}", tag]));
    assert_eq!(
        stdout(&id).trim(),
        ArchiveFiles::open(&archive).manifest()["config"]["digest"]
    );
    let run = ok(Command::new("docker").args(["run", "--rm", "--network", "none", tag]));
    assert!(stdout(&run).starts_with("uid=65532(nonroot)"));
}

/// Debian's docker-registry serving TLS on 127.0.0.1 with a certificate from a private CA
/// (`tls_certs`); stopped when the child is killed. Returns (child, port, ca.pem, dir).
fn tls_registry() -> (std::process::Child, u16, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_certs(dir.path());
    let port = free_port();
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
         http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n",
        dir.path().join("data").display(),
        cert.display(),
        key.display()
    );
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (child, port, ca, dir);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("docker-registry did not listen on 127.0.0.1:{port} within 5 s");
}

/// A TLS registry on this machine: with --registry-ca the push is made over TLS (issue 22,
/// item 6); without it binpack does not fall back to plain HTTP but stops at once, naming the
/// certificate problem and the flag that fixes it.
#[test]
#[ignore = "needs docker-registry, openssl and skopeo"]
fn a_tls_registry_on_this_machine_takes_registry_ca() {
    need(&["docker-registry", "openssl", "skopeo"]);
    let (mut registry, port, ca, dir) = tls_registry();
    let exe = fixture_exe(dir.path());
    let cache = dir.path().join("cache");
    for host in ["localhost", "127.0.0.1"] {
        let reference = format!("{host}:{port}/app:1");
        let out = binpack_in(&cache)
            .arg("bin")
            .arg(&exe)
            .args(["--push", &reference])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("certificate") && err.contains("--registry-ca"),
            "{err}"
        );
        ok(binpack_in(&cache)
            .arg("bin")
            .arg(&exe)
            .arg("--registry-ca")
            .arg(&ca)
            .args(["--push", &reference]));
        assert!(
            matches!(skopeo_tag(&reference, None), Tag::Digest(_)),
            "{reference} was not pushed"
        );
    }
    let _ = registry.kill();
    let _ = registry.wait();
}

/// A TLS-only registry on this machine that resets a plain HTTP request instead of answering
/// it (socat in front of the registry, OpenSSL's TLS): binpack finds that it speaks TLS
/// (issue 22, item 6). Its certificate untrusted, the push is refused at once, naming the
/// certificate problem and `--registry-ca`; trusted (the flag, or SSL_CERT_FILE as for
/// docker and skopeo), the push is made over TLS.
#[test]
#[ignore = "needs docker-registry, openssl, socat and skopeo"]
fn a_tls_only_registry_that_resets_plain_http_is_spoken_to_over_tls() {
    need(&["docker-registry", "openssl", "socat", "skopeo"]);
    let reg = Registry::behind_tls();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_certs(dir.path());
    let front = common::registry::TlsFront::start(reg.port, &cert, &key);
    let exe = fixture_exe(dir.path());
    let cache = dir.path().join("cache");
    let push = |tag: &str| {
        let mut c = binpack_in(&cache);
        c.env_remove("SSL_CERT_FILE").arg("bin").arg(&exe);
        c.args([
            "--push",
            &format!("127.0.0.1:{}/tls-only/app:{tag}", front.port),
        ]);
        c
    };

    let out = push("1").output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}", front.port))
            && err.contains("certificate")
            && err.contains("--registry-ca"),
        "{err}"
    );
    assert!(!err.contains("attempts"), "refused after retries: {err}");
    assert_eq!(
        skopeo_tag(&reg.reference("tls-only/app:1"), None),
        Tag::Missing
    );

    ok(push("1").arg("--registry-ca").arg(&ca));
    ok(push("2").env("SSL_CERT_FILE", &ca));
    for tag in ["1", "2"] {
        skopeo_digest(&reg.reference(&format!("tls-only/app:{tag}")), None);
    }
}

/// A plain registry on this machine that reads a TLS ClientHello and never answers it (Go's
/// server does so when the hello holds no newline; the front here holds every one): binpack
/// takes plain HTTP from the plain probe's answer without waiting for the TLS one, so the
/// push's first request comes before the TLS probe gives up (at its 10 s connect timeout).
#[test]
#[ignore = "needs docker-registry and skopeo"]
fn a_plain_registry_silent_on_a_client_hello_is_not_waited_for() {
    need(&["docker-registry", "skopeo"]);
    let reg = Registry::start(None);
    let front = hello_holding_front(reg.port, 200);
    let dir = tempfile::tempdir().unwrap();
    let exe = fixture_exe(dir.path());
    let reference = format!("127.0.0.1:{}/plain/app:1", front.port);
    ok(binpack_in(&dir.path().join("cache"))
        .arg("bin")
        .arg(&exe)
        .args(["--push", &reference]));
    skopeo_digest(&reg.reference("plain/app:1"), None);
    assert!(
        front.hellos.load(Ordering::SeqCst) > 0,
        "no TLS probe was made"
    );
    let given_up = front.given_up_at_first_request.lock().unwrap();
    assert_eq!(
        *given_up,
        Some(0),
        "the push's first request came after a TLS probe gave up"
    );
}

/// A front on 127.0.0.1 for a plain registry ([`hello_holding_front`]).
struct HelloHolder {
    port: u16,
    /// The ClientHellos that came.
    hellos: Arc<AtomicUsize>,
    /// How many clients had hung up on their held ClientHello when the first request that is
    /// not binpack's plain `GET /v2/` probe came.
    given_up_at_first_request: Arc<std::sync::Mutex<Option<usize>>>,
}

/// A front for the plain registry on `upstream` that holds each TLS ClientHello unanswered
/// until the client hangs up, and forwards everything else. Bounded: at most `limit`
/// connections.
fn hello_holding_front(upstream: u16, limit: usize) -> HelloHolder {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let front = HelloHolder {
        port: listener.local_addr().unwrap().port(),
        hellos: Arc::new(AtomicUsize::new(0)),
        given_up_at_first_request: Default::default(),
    };
    let (hellos, first) = (
        front.hellos.clone(),
        front.given_up_at_first_request.clone(),
    );
    let given_up = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for conn in listener.incoming().take(limit) {
            let Ok(mut client) = conn else { continue };
            let _ = client.set_read_timeout(Some(Duration::from_secs(60)));
            let mut start = [0u8; 16];
            let n = client.peek(&mut start).unwrap_or(0);
            if start[..n].starts_with(&[0x16]) {
                hellos.fetch_add(1, Ordering::SeqCst);
                let given_up = given_up.clone();
                std::thread::spawn(move || {
                    let _ = client.read_to_end(&mut Vec::new());
                    given_up.fetch_add(1, Ordering::SeqCst);
                });
                continue;
            }
            if !start[..n].starts_with(b"GET /v2/ ") {
                let mut first = first.lock().unwrap();
                first.get_or_insert(given_up.load(Ordering::SeqCst));
            }
            let _ = client.set_read_timeout(None);
            forward(client, upstream);
        }
    });
    front
}

/// A static fixture ELF, executable, in `dir`.
fn fixture_exe(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let exe = common::fixture::write_fixture(dir, "hello", common::fixture::EM_X86_64);
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    exe
}
