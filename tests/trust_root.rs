//! `--root`: what binpack reads from a root is a file of that root, also while the root
//! changes under it (issue 23, item 4). A directory of the root swapped for a symlink to a
//! host directory must never put the host's file into the image.

use binpack::closure::{self, read_file_in_root, Resolved};
use binpack::layer::{Content, Node, Tree};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const SECRET: &[u8] = b"root:$y$host-only-secret:19000:0:99999:7:::\n";
const LIB: &str = "/usr/lib/x86_64-linux-gnu/libz.so.1";

/// A root with a real library at `usr/lib/libz.so.1`, and outside it a host directory with
/// a secret under the same name.
fn root_and_host(d: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (root, host) = (d.join("root"), d.join("host"));
    std::fs::create_dir_all(root.join("usr/lib")).unwrap();
    std::fs::create_dir_all(&host).unwrap();
    std::fs::copy(LIB, root.join("usr/lib/libz.so.1")).unwrap();
    std::fs::write(host.join("libz.so.1"), SECRET).unwrap();
    (root, host)
}

#[test]
fn an_absolute_symlink_to_a_host_file_reads_inside_the_root() {
    let d = tempfile::tempdir().unwrap();
    let (root, host) = root_and_host(d.path());
    std::fs::create_dir_all(root.join("etc")).unwrap();
    symlink(host.join("libz.so.1"), root.join("etc/os-release")).unwrap();
    symlink(&host, root.join("usr/host")).unwrap();
    assert_eq!(read_file_in_root(&root, "/etc/os-release", 1 << 20), None);
    assert_eq!(
        read_file_in_root(&root, "/usr/host/libz.so.1", 1 << 20),
        None
    );
    // `..` stops at the root, as `/..` does.
    let up = format!("/../../../..{}", host.join("libz.so.1").display());
    assert_eq!(read_file_in_root(&root, &up, 1 << 20), None);
}

/// Swaps `usr/lib` of the root between its real directory and a symlink to the host
/// directory until `stop`.
fn swapper(root: &Path, host: &Path, stop: &AtomicBool, swaps: &AtomicUsize) {
    let (lib, real, link) = (
        root.join("usr/lib"),
        root.join("usr/lib.real"),
        root.join("usr/lib.link"),
    );
    symlink(host, &link).unwrap();
    while !stop.load(Ordering::Relaxed) {
        let _ = std::fs::rename(&lib, &real);
        let _ = std::fs::rename(&link, &lib);
        let _ = std::fs::rename(&lib, &link);
        let _ = std::fs::rename(&real, &lib);
        swaps.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the image gets for `path`: the tree's bytes, or the host file read when the layer
/// is written (now, while the root still changes).
fn shipped(tree: &Tree, path: &str) -> Option<Vec<u8>> {
    match tree
        .get(path.trim_start_matches('/'))
        .or_else(|| tree.get(path))?
    {
        Node::File { content, .. } => match content {
            Content::Bytes(b) => Some(b.clone()),
            Content::Host(p) => std::fs::read(p).ok(),
        },
        _ => None,
    }
}

#[test]
fn a_directory_swapped_for_a_host_symlink_while_reading_never_yields_the_host_file() {
    let d = tempfile::tempdir().unwrap();
    let (root, host) = root_and_host(d.path());
    let inside = std::fs::read(LIB).unwrap();
    let (stop, swaps) = (AtomicBool::new(false), AtomicUsize::new(0));
    let (mut reads, mut shipped_ok, mut host_files) = (0, 0, 0);
    std::thread::scope(|s| {
        s.spawn(|| swapper(&root, &host, &stop, &swaps));
        while swaps.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        for _ in 0..20_000 {
            if let Some(bytes) = read_file_in_root(&root, "/usr/lib/libz.so.1", 1 << 20) {
                reads += 1;
                host_files += (bytes != inside) as u32;
            }
            let lib = Resolved {
                name: "libz.so.1".into(),
                path: "/usr/lib/libz.so.1".into(),
                image_path: None,
                needed_by: "/app".into(),
                package: None,
            };
            let mut tree = Tree::new();
            if closure::add_to_tree(&root, &[lib], &mut tree).is_ok() {
                let got = shipped(&tree, "/usr/lib/libz.so.1");
                host_files += (got.as_deref() == Some(SECRET)) as u32;
                shipped_ok += got.is_some() as u32;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(host_files, 0, "a host file was read through the root");
    // The race was run: some reads landed on the real directory.
    assert!(
        reads > 0 && shipped_ok > 0,
        "{reads} reads, {shipped_ok} trees"
    );
}
