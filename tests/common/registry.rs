//! A distribution registry (Debian's docker-registry) on 127.0.0.1 for the tests that push.

use super::{free_port, ok};
use std::net::TcpStream;
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
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
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
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut listening = false;
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                listening = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !listening {
            let _ = child.kill();
            let _ = child.wait();
            panic!("docker-registry did not listen on 127.0.0.1:{port} within 5 s");
        }
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
