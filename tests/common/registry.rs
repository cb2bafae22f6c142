//! A distribution registry (Debian's docker-registry) on 127.0.0.1 for the tests that push.

use super::{free_port, ok};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A distribution registry (Debian's docker-registry) on 127.0.0.1, stopped when dropped.
pub struct Registry {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        Registry::start_with(htpasswd, "")
    }

    /// One that answers with relative Locations (`http.relativeurls`), as a registry behind
    /// a TLS terminator is configured: it cannot know the scheme its clients speak.
    pub fn behind_tls() -> Registry {
        Registry::start_with(None, "  relativeurls: true\n")
    }

    /// `http` is more of the config's `http:` section.
    fn start_with(htpasswd: Option<(&str, &str)>, http: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{http}",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = htpasswd {
            let file = dir.path().join("htpasswd");
            ok(Command::new("htpasswd")
                .args(["-Bbc"])
                .arg(&file)
                .args([user, password]));
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: binpack-test\n    path: {}\n",
                file.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let child = listening(child, port, "docker-registry");
        Registry {
            child,
            port,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/NAME`
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `child` once it listens on 127.0.0.1:`port`; killed, and the test failed, after 5 s.
fn listening(mut child: Child, port: u16, what: &str) -> Child {
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what} did not listen on 127.0.0.1:{port} within 5 s");
}

/// socat serving TLS (OpenSSL's) on 127.0.0.1 with `cert` and `key`, in front of a plain
/// server on `upstream`: a TLS-only server that resets a plain HTTP request instead of
/// answering it, as OpenSSL-based terminators do. Stopped when dropped.
pub struct TlsFront {
    child: Child,
    pub port: u16,
}

impl TlsFront {
    pub fn start(upstream: u16, cert: &Path, key: &Path) -> TlsFront {
        let port = free_port();
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,verify=0,cert={},key={}",
            cert.display(),
            key.display()
        );
        let child = Command::new("socat")
            .arg(listen)
            .arg(format!("TCP:127.0.0.1:{upstream}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        TlsFront {
            child: listening(child, port, "socat"),
            port,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pushed manifest or index as `skopeo inspect --raw` (an independent client) gets it.
pub fn raw_manifest(reference: &str) -> serde_json::Value {
    let out = ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    serde_json::from_slice(&out.stdout).unwrap()
}
