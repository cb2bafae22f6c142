//! The few files every binpack image carries, whatever the base: CA certificates, a passwd and
//! group with root and an unprivileged user, nsswitch.conf, a world-writable /tmp.

use crate::image::layer::{Content, LayerError, Tree};

/// Where the CA bundle goes; `SSL_CERT_FILE` points here.
pub const CA_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The unprivileged user images run as by default (the distroless convention).
pub const NONROOT: u32 = 65532;
/// Its home, made writable by it alone; the working directory of binpack's images.
pub const NONROOT_HOME: &str = "/home/nonroot";
/// The CA bundle binpack ships, pinned in `runtimes/` so images are the same on every machine
/// and need no network (Debian's ca-certificates 20230311+deb12u1, Mozilla's roots).
/// Where `--ca-certs` goes on an image base (its own /etc/ssl is left alone).
pub const IMAGE_BASE_CA_PATH: &str = "/app/.ca-certificates.crt";

pub const DEFAULT_CA_BUNDLE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/runtimes/ca-certificates.crt"
));

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnonroot:x:65532:\n";
/// Go's resolver and glibc's read it to order /etc/hosts before DNS; without it glibc falls
/// back to its own default and Go to DNS first. The lines distroless carries.
const NSSWITCH: &str = "passwd:         files\n\
group:          files\n\
shadow:         files\n\
hosts:          files dns\n\
networks:       files\n\
protocols:      files\n\
services:       files\n";

/// Adds the essentials to `tree`; `ca_bundle` is the CA certificate bundle to carry.
pub fn add_essentials(tree: &mut Tree, ca_bundle: Content) -> Result<(), LayerError> {
    tree.file(CA_PATH, ca_bundle, 0o644)?;
    tree.file("/etc/passwd", Content::Bytes(PASSWD.into()), 0o644)?;
    tree.file("/etc/group", Content::Bytes(GROUP.into()), 0o644)?;
    tree.file("/etc/nsswitch.conf", Content::Bytes(NSSWITCH.into()), 0o644)?;
    tree.dir_owned(NONROOT_HOME, 0o700, NONROOT)?;
    tree.dir("/tmp", 0o1777)?;
    Ok(())
}

/// For runtimes that resolve `localhost` through the hosts file (Node does; engines usually
/// mount their own over it, but not every runtime or `docker run --network none` does).
pub fn hosts_file() -> (String, Vec<u8>) {
    (
        "/etc/hosts".into(),
        b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".to_vec(),
    )
}

/// Environment every image gets.
pub fn default_env() -> Vec<String> {
    vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        format!("SSL_CERT_FILE={CA_PATH}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer::Node;

    #[test]
    fn essentials() {
        let mut t = Tree::new();
        add_essentials(&mut t, Content::Bytes(DEFAULT_CA_BUNDLE.to_vec())).unwrap();
        assert!(matches!(t.get("tmp"), Some(Node::Dir { mode: 0o1777, .. })));
        assert!(matches!(
            t.get("home/nonroot"),
            Some(Node::Dir { owner: NONROOT, .. })
        ));
        let Some(Node::File {
            content: Content::Bytes(p),
            ..
        }) = t.get("etc/passwd")
        else {
            panic!("no passwd")
        };
        assert!(String::from_utf8_lossy(p).contains("nonroot:x:65532:65532:"));
        let Some(Node::File {
            content: Content::Bytes(ns),
            ..
        }) = t.get("etc/nsswitch.conf")
        else {
            panic!("no nsswitch.conf")
        };
        assert!(String::from_utf8_lossy(ns).contains("hosts:          files dns\n"));
        assert!(
            String::from_utf8_lossy(DEFAULT_CA_BUNDLE)
                .matches("BEGIN CERTIFICATE")
                .count()
                > 100
        );
    }
}
