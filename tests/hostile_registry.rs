//! Hostile and broken registries (issue 13, items 4 and 9): fault servers on 127.0.0.1 that
//! never answer, drip one byte a second, ask for a long Retry-After, or send credentials'
//! token requests over plain HTTP; binpack fails by itself (a test's
//! kill after a generous limit would show as no exit code), says why, and writes nothing.

mod common;

use common::fixture::{write_fixture, EM_X86_64};
use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a fault server keeps any connection or accepts new ones: it then stops by itself.
const SERVER_LIFE: Duration = Duration::from_secs(90);

/// A server on 127.0.0.1 handing each of at most `max` connections (numbered from 0) to
/// `handle` on its own thread; it stops accepting after `SERVER_LIFE`.
fn serve(max: usize, handle: impl Fn(usize, TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        let end = Instant::now() + SERVER_LIFE;
        let mut n = 0;
        while n < max && Instant::now() < end {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    let _ = s.set_read_timeout(Some(SERVER_LIFE));
                    let h = handle.clone();
                    let i = n;
                    std::thread::spawn(move || h(i, s));
                    n += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    port
}

/// The request head (up to the blank line; binpack's GETs and HEADs carry no body).
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The head of a request for an image, past binpack's scheme probes (a registry on this
/// machine gets a TLS ClientHello, closed here at once as a plain server would, and a plain
/// `GET /v2/`, answered 200); `None` for a probe.
fn image_request(s: &mut TcpStream) -> Option<String> {
    let mut first = [0u8; 1];
    if s.peek(&mut first).ok()? == 0 || first[0] == 0x16 {
        return None; // closed, or a TLS handshake record
    }
    let head = read_head(s);
    if head.starts_with("GET /v2/ ") {
        answer(s, "200 OK", &[]);
        return None;
    }
    Some(head)
}

fn answer(s: &mut TcpStream, status: &str, headers: &[&str]) {
    let mut text = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    let _ = s.write_all(text.as_bytes());
}

/// binpack with its own cache and Docker config under `dir`, no proxy or CA file from the
/// environment.
fn binpack_in(dir: &Path) -> Command {
    let mut c = binpack();
    c.env("BINPACK_CACHE", dir.join("cache"))
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .current_dir(dir);
    c.env_remove("SSL_CERT_FILE");
    for v in ["ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"] {
        c.env_remove(v).env_remove(v.to_ascii_lowercase());
    }
    c
}

/// Runs `cmd`, killing it after `limit`; returns its output and how long it ran.
fn run_bounded(cmd: &mut Command, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out, start.elapsed())
}

/// A static fixture and the archive path a run would write, in a fresh directory.
fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bin = write_fixture(dir.path(), "app", EM_X86_64);
    (dir, bin)
}

/// `binpack bin app --base <base> -o out.tar`, bounded: (exit code, stderr, seconds taken).
fn pack_on_base(
    dir: &Path,
    bin: &Path,
    base: &str,
    limit: Duration,
) -> (Option<i32>, String, Duration) {
    let (out, took) = run_bounded(
        binpack_in(dir)
            .arg("bin")
            .arg(bin)
            .args(["--base", base, "-o", "out.tar"]),
        limit,
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !dir.join("out.tar").exists(),
        "an archive was written: {err}"
    );
    (out.status.code(), err, took)
}

#[test]
fn a_registry_that_never_answers_fails_on_its_own() {
    let port = serve(20, |_, mut s| {
        read_head(&mut s);
        std::thread::sleep(SERVER_LIFE);
    });
    let (dir, bin) = setup();
    let base = format!("127.0.0.1:{port}/base:1");
    let (code, err, took) = pack_on_base(dir.path(), &bin, &base, Duration::from_secs(120));
    eprintln!("silent registry: failed in {took:?}: {err}");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("fetching the manifest"),
        "{err}"
    );
    assert!(
        err.contains("timeout") || err.contains("timed out"),
        "{err}"
    );
}

#[test]
fn a_manifest_dripping_one_byte_a_second_fails_on_its_own() {
    let port = serve(20, |_, mut s| {
        read_head(&mut s);
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 4000\r\n\r\n";
        let _ = s.write_all(head.as_bytes());
        let end = Instant::now() + SERVER_LIFE;
        while Instant::now() < end && s.write_all(b" ").is_ok() {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let (dir, bin) = setup();
    let base = format!("127.0.0.1:{port}/base:1");
    let (code, err, took) = pack_on_base(dir.path(), &bin, &base, Duration::from_secs(120));
    eprintln!("dripping manifest: failed in {took:?}: {err}");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port} sent only")) && err.contains("256 KiB/s"),
        "{err}"
    );
}

/// A registry answering 429 with `Retry-After: <after>` to its first request for the image
/// and 404 to the others; the times those requests came in.
fn throttling(after: u64) -> (u16, Arc<Mutex<Vec<Instant>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let port = serve(10, move |_, mut s| {
        if image_request(&mut s).is_none() {
            return;
        }
        let first = {
            let mut log = log.lock().unwrap();
            log.push(Instant::now());
            log.len() == 1
        };
        if first {
            answer(
                &mut s,
                "429 Too Many Requests",
                &[&format!("Retry-After: {after}")],
            );
        } else {
            answer(&mut s, "404 Not Found", &[]);
        }
    });
    (port, seen)
}

#[test]
fn retry_after_is_honoured() {
    let (port, seen) = throttling(3);
    let (dir, bin) = setup();
    let base = format!("127.0.0.1:{port}/base:1");
    let (code, err, took) = pack_on_base(dir.path(), &bin, &base, Duration::from_secs(60));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("has no image"), "the retry got the 404: {err}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{err}");
    let waited = seen[1] - seen[0];
    eprintln!("Retry-After: 3 waited {waited:?}, run {took:?}");
    assert!(
        waited >= Duration::from_millis(2900),
        "waited only {waited:?}"
    );
}

#[test]
fn a_retry_after_past_the_cap_is_a_clear_error_at_once() {
    let (port, seen) = throttling(3600);
    let (dir, bin) = setup();
    let base = format!("127.0.0.1:{port}/base:1");
    let (code, err, took) = pack_on_base(dir.path(), &bin, &base, Duration::from_secs(60));
    eprintln!("Retry-After: 3600 failed in {took:?}: {err}");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("come back in 3600 s"),
        "{err}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "no retry: {err}");
}

#[test]
fn a_name_starting_with_127_gets_tls_not_plain_http() {
    // Through a proxy that records how it was asked: CONNECT for TLS, a plain GET for HTTP.
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    let proxy = serve(10, move |_, mut s| {
        let head = read_head(&mut s);
        log.lock()
            .unwrap()
            .push(head.lines().next().unwrap_or("").to_string());
        answer(&mut s, "403 Forbidden", &[]);
    });
    let (dir, bin) = setup();
    let (out, took) = run_bounded(
        binpack_in(dir.path())
            .env("ALL_PROXY", format!("http://127.0.0.1:{proxy}"))
            .arg("bin")
            .arg(&bin)
            .args(["--push", "127.mycorp.example/x:1"]),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err} after {took:?}");
    assert!(err.contains("127.mycorp.example"), "{err}");
    let asked = asked.lock().unwrap();
    assert!(!asked.is_empty(), "the proxy was not used: {err}");
    for line in asked.iter() {
        assert!(
            line.starts_with("CONNECT 127.mycorp.example:443 "),
            "spoken to without TLS: {line}"
        );
    }
}

#[test]
fn credentials_are_not_sent_to_a_plain_http_realm_elsewhere() {
    let realm = "http://auth.registry.example/token";
    let port = serve(10, move |_, mut s| {
        read_head(&mut s);
        let challenge = format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"reg\"");
        answer(&mut s, "401 Unauthorized", &[&challenge]);
    });
    let (dir, bin) = setup();
    let config = dir.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    // alice:s3cret
    let auths = format!(r#"{{"auths":{{"127.0.0.1:{port}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#);
    std::fs::write(config.join("config.json"), auths).unwrap();
    let base = format!("127.0.0.1:{port}/base:1");
    let (code, err, took) = pack_on_base(dir.path(), &bin, &base, Duration::from_secs(60));
    eprintln!("plain-HTTP realm: refused in {took:?}: {err}");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(realm) && err.contains("plain HTTP") && !err.contains("s3cret"),
        "{err}"
    );
}

#[test]
fn a_registry_ca_that_is_not_a_certificate_is_refused_before_any_work() {
    let (dir, bin) = setup();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a certificate\n").unwrap();
    for (ca, why) in [
        (dir.path().join("missing.pem"), "No such file"),
        (text, "no PEM certificate"),
    ] {
        let out = binpack_in(dir.path())
            .arg("bin")
            .arg(&bin)
            .arg("--registry-ca")
            .arg(&ca)
            .args(["-o", "out.tar"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("--registry-ca {}", ca.display())) && err.contains(why),
            "{err}"
        );
        assert!(!dir.path().join("out.tar").exists());
    }
}

/// An HTTPS server on 127.0.0.1 answering 404 to everything, logging each connection to
/// `log`; it stops by itself after 90 s or 20 connections.
const TLS_SERVER: &str = r#"
import socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
s.settimeout(1)
print(s.getsockname()[1], flush=True)
log = open(sys.argv[3], "a")
end, n = time.time() + 90, 0
while time.time() < end and n < 20:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    n += 1
    log.write("connection\n")
    log.flush()
    try:
        c.settimeout(10)
        t = ctx.wrap_socket(c, server_side=True)
        t.recv(65536)
        t.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        t.close()
    except Exception:
        c.close()
"#;

#[test]
#[ignore = "needs openssl and python3"]
fn a_private_ca_is_trusted_with_registry_ca_and_a_certificate_error_is_not_retried() {
    need(&["openssl", "python3"]);
    let (dir, bin) = setup();
    let (ca, cert, key) = tls_certs(dir.path());
    let log = dir.path().join("connections");
    let mut tls = Command::new("python3")
        .args(["-c", TLS_SERVER])
        .args([&cert, &key, &log])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(tls.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let tls_port: u16 = line.trim().parse().unwrap();
    // The registry sends binpack on to the TLS server, inside the same request.
    let port = serve(20, move |_, mut s| {
        read_head(&mut s);
        let to = format!("Location: https://localhost:{tls_port}/v2/base/manifests/1");
        answer(&mut s, "307 Temporary Redirect", &[&to]);
    });
    let base = format!("127.0.0.1:{port}/base:1");
    let connections = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };

    let (code, err, took) = pack_on_base(dir.path(), &bin, &base, Duration::from_secs(60));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("certificate") && err.contains("--registry-ca"),
        "{err}"
    );
    eprintln!("untrusted certificate: failed in {took:?}: {err}");
    assert_eq!(connections(), 1, "a certificate error was retried: {err}");

    let ca = ca.to_str().unwrap();
    // --registry-ca implies TLS, on this machine too: straight to the TLS server.
    let tls_base = format!("localhost:{tls_port}/base:1");
    let out = binpack_in(dir.path())
        .arg("bin")
        .arg(&bin)
        .args(["--registry-ca", ca, "--base", &tls_base, "-o", "out.tar"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("has no image"),
        "the TLS server answered: {err}"
    );

    // SSL_CERT_FILE names the trusted CAs, as for docker and skopeo.
    let out = binpack_in(dir.path())
        .env("SSL_CERT_FILE", ca)
        .arg("bin")
        .arg(&bin)
        .args(["--base", &base, "-o", "out.tar"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has no image"),
        "the TLS server answered: {err}"
    );
    let _ = tls.kill();
    let _ = tls.wait();
}

/// A push to a registry on this machine never goes through `HTTP(S)_PROXY` (its Basic
/// credentials would cross the proxy in clear): loopback is always NO_PROXY, as for docker.
#[test]
fn a_loopback_registry_is_never_proxied() {
    let proxied = Arc::new(Mutex::new(Vec::new()));
    let log = proxied.clone();
    let proxy = serve(10, move |_, mut s| {
        let head = read_head(&mut s);
        log.lock().unwrap().push(head);
        answer(&mut s, "502 Bad Gateway", &[]);
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let port = serve(20, move |_, mut s| {
        let head = read_head(&mut s);
        log.lock().unwrap().push(head);
        answer(
            &mut s,
            "401 Unauthorized",
            &["WWW-Authenticate: Basic realm=\"r\""],
        );
    });
    let (dir, bin) = setup();
    let config = dir.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    for host in ["localhost", "127.0.0.1"] {
        let auths = format!(r#"{{"auths":{{"{host}:{port}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#);
        std::fs::write(config.join("config.json"), auths).unwrap();
        let mut c = binpack_in(dir.path());
        for v in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            c.env(v, format!("http://127.0.0.1:{proxy}"));
        }
        let (out, took) = run_bounded(
            c.arg("bin")
                .arg(&bin)
                .args(["--push", &format!("{host}:{port}/app:1")]),
            Duration::from_secs(60),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err} after {took:?}");
        assert!(
            proxied.lock().unwrap().is_empty(),
            "{host}: the proxy was asked: {:?}",
            proxied.lock().unwrap()
        );
    }
    assert!(
        !seen.lock().unwrap().is_empty(),
        "the registry was not reached"
    );
}

/// This machine's address on its network (not the loopback): a registry there is spoken to
/// over plain HTTP only when listed with --insecure-registry, and is not "this machine" for
/// credentials (the address is reachable by others).
fn network_address() -> std::net::IpAddr {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    // No packet is sent: connecting a UDP socket only picks the route and source address.
    s.connect("10.255.255.1:9").unwrap();
    let ip = s.local_addr().unwrap().ip();
    assert!(!ip.is_loopback(), "no network address on this machine");
    ip
}

#[test]
fn credentials_never_go_over_plain_http_to_an_insecure_registry_elsewhere() {
    let ip = network_address();
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().take(20) {
            let Ok(mut s) = s else { break };
            let head = read_head(&mut s);
            log.lock().unwrap().push(head);
            answer(
                &mut s,
                "401 Unauthorized",
                &["WWW-Authenticate: Basic realm=\"r\""],
            );
        }
    });
    let (dir, bin) = setup();
    let config = dir.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let registry = format!("{ip}:{port}");
    let auths = format!(r#"{{"auths":{{"{registry}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#);
    std::fs::write(config.join("config.json"), auths).unwrap();
    let (out, took) = run_bounded(
        binpack_in(dir.path())
            .arg("bin")
            .arg(&bin)
            .args(["--insecure-registry", &registry])
            .args(["--push", &format!("{registry}/app:1")]),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err} after {took:?}");
    assert!(err.contains("plain HTTP"), "{err}");
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "the registry was not reached: {err}");
    for head in seen.iter() {
        assert!(
            !head.to_ascii_lowercase().contains("authorization:"),
            "credentials sent in clear: {head}"
        );
    }
}

/// A registry's error body is printed with its control characters escaped: a terminal escape
/// in it (retitling the window, clearing the screen) is shown, not obeyed.
#[test]
fn terminal_escapes_in_a_registry_answer_are_shown_escaped() {
    let port = serve(10, move |_, mut s| {
        read_head(&mut s);
        let body = "denied \u{1b}]0;pwned\u{7}\u{1b}[2J by policy";
        let text = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(text.as_bytes());
    });
    let (dir, bin) = setup();
    let base = format!("127.0.0.1:{port}/base:1");
    let (code, err, _) = pack_on_base(dir.path(), &bin, &base, Duration::from_secs(60));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("by policy"), "{err}");
    assert!(
        !err.contains('\u{1b}') && !err.contains('\u{7}'),
        "raw escapes: {err:?}"
    );
    assert!(err.contains(r"\u{1b}]0;pwned"), "{err}");
}
