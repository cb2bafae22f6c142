//! inspect and the closure resolver on real ELF files: a static Go binary built here, a
//! glibc-dynamic binary from the system, and broken inputs made from them.

mod common;

use binpack::choose::{self, Base, BaseRequest};
use binpack::closure;
use binpack::inspect::{inspect_bytes, inspect_file, inspect_shared_object, InspectError};
use binpack::layer::{Node, Tree};
use std::path::Path;
use std::process::Command;

/// A glibc-dynamic executable every Debian machine has.
const DYNAMIC: &str = "/usr/bin/id";

fn static_go_binary(dir: &Path) -> std::path::PathBuf {
    common::need(&["go"]);
    let out = dir.join("hello");
    common::go_build(&common::repo().join("examples/hello-http"), &out, false);
    out
}

#[test]
#[ignore = "needs go"]
fn static_go_binary_is_static_with_build_info() {
    let dir = tempfile::tempdir().unwrap();
    let bin = static_go_binary(dir.path());
    let l = inspect_file(&bin).unwrap();
    assert!(l.is_static);
    assert_eq!(l.interpreter, None);
    assert!(l.needed.is_empty());
    assert_eq!(l.platform, binpack::platform::Platform::host());
    let go = l.go.as_ref().expect("Go build info");
    assert!(go.version.as_deref().unwrap().starts_with("go1."), "{go:?}");
    assert_eq!(go.path.as_deref(), Some("example.com/hello-http"));
    assert_eq!(go.main.as_ref().unwrap().path, "example.com/hello-http");
    assert_eq!(go.settings["CGO_ENABLED"], "0");
    assert_eq!(go.settings["-trimpath"], "true");
    // Without section headers (sstrip): found where Go's debug/buildinfo looks then, at the
    // start of the first writable segment.
    let mut bytes = std::fs::read(&bin).unwrap();
    bytes[40..48].fill(0); // e_shoff
    bytes[60..64].fill(0); // e_shnum, e_shstrndx
    let no_sections = inspect_bytes(&bytes, &bin).unwrap();
    assert_eq!(no_sections.go, l.go);
    let json = serde_json::to_value(&l).unwrap();
    assert_eq!(json["platform"], l.platform.to_string());
    assert_eq!(json["static"], true);
    assert!(json["interpreter"].is_null());
    assert_eq!(
        choose::choose(&l, &BaseRequest::Auto, &choose::default_alpine())
            .unwrap()
            .base,
        Base::Scratch
    );
}

#[test]
fn glibc_dynamic_binary_and_its_closure() {
    let l = inspect_file(Path::new(DYNAMIC)).unwrap();
    assert!(!l.is_static);
    assert_eq!(l.libc(), Some("glibc"));
    assert!(l.interpreter.as_deref().unwrap().contains("ld-linux"));
    assert!(l.needed.iter().any(|n| n == "libc.so.6"), "{:?}", l.needed);
    assert!(l.go.is_none());
    let c = choose::choose(&l, &BaseRequest::Auto, &choose::default_alpine()).unwrap();
    assert_eq!(c.base, Base::Closure);
    let err = choose::choose(&l, &BaseRequest::Scratch, &choose::default_alpine())
        .unwrap_err()
        .to_string();
    assert!(err.contains("libc.so.6"), "{err}");

    let origin = closure::Origin {
        image_path: "/app/id",
        root_path: Some(DYNAMIC),
    };
    let libs = closure::resolve(Path::new("/"), &l, &origin).unwrap();
    let names: Vec<&str> = libs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names[0],
        l.interpreter.as_deref().unwrap(),
        "interpreter first"
    );
    // Every DT_NEEDED, and what they need in turn (recursion), each once.
    for n in &l.needed {
        assert!(names.contains(&n.as_str()), "{n} missing from {names:?}");
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert!(
        !names.contains(&"ld-linux-x86-64.so.2") || !cfg!(target_arch = "x86_64"),
        "libc's need of the loader is the interpreter itself: {names:?}"
    );

    let mut tree = Tree::new();
    closure::add_to_tree(Path::new("/"), &libs, &mut tree).unwrap();
    // The interpreter path resolves inside the tree exactly as on the host.
    let interp = l.interpreter.as_deref().unwrap();
    let host_real = std::fs::canonicalize(interp).unwrap();
    assert!(
        matches!(
            tree.get(host_real.to_str().unwrap()),
            Some(Node::File { .. })
        ),
        "{} not a file in the tree",
        host_real.display()
    );
    assert_eq!(
        follow(&tree, interp, 0).as_deref(),
        host_real.to_str(),
        "the interpreter path must lead to the file through the tree's own symlinks"
    );
    for lib in &libs {
        assert_eq!(
            follow(&tree, &lib.path, 0),
            Some(
                std::fs::canonicalize(&lib.path)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            )
        );
        let real = std::fs::canonicalize(&lib.path).unwrap();
        assert!(
            matches!(tree.get(real.to_str().unwrap()), Some(Node::File { mode, .. }) if mode & 0o444 != 0),
            "{}",
            real.display()
        );
    }
}

/// Resolves `path` through the symlinks stored in `tree`, as the kernel would in the image.
fn follow(tree: &Tree, path: &str, depth: usize) -> Option<String> {
    assert!(depth < 40, "symlink loop at {path}");
    let mut real = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            real.truncate(real.rfind('/').unwrap_or(0));
            continue;
        }
        let candidate = format!("{real}/{comp}");
        match tree.get(&candidate)? {
            Node::Symlink { target } if target.starts_with('/') => {
                real = follow(tree, target, depth + 1)?
            }
            Node::Symlink { target } => {
                real = follow(tree, &format!("{real}/{target}"), depth + 1)?
            }
            _ => real = candidate,
        }
    }
    Some(real)
}

/// inspect reads an ELF by ranges (headers, PT_INTERP, PT_DYNAMIC and the strings it names);
/// what it finds must be what goblin finds parsing the whole file.
fn assert_reads_as_goblin(path: &Path, shared_object: bool) {
    let bytes = std::fs::read(path).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    let l = if shared_object {
        inspect_shared_object(path)
    } else {
        inspect_file(path)
    }
    .unwrap_or_else(|e| panic!("{e}"));
    let p = path.display();
    assert_eq!(l.interpreter.as_deref(), elf.interpreter, "{p}");
    assert_eq!(l.needed, elf.libraries, "{p}");
    let split = |v: &[&str]| -> Vec<String> {
        v.iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(l.runpath, split(&elf.runpaths), "{p}");
    assert_eq!(l.rpath, split(&elf.rpaths), "{p}");
    assert_eq!(
        l.is_static,
        elf.interpreter.is_none() && elf.libraries.is_empty()
    );
    if !shared_object {
        assert_eq!(Some(&l), inspect_bytes(&bytes, path).ok().as_ref(), "{p}");
    }
}

#[test]
fn ranges_read_give_what_the_whole_file_gives() {
    assert_reads_as_goblin(Path::new(DYNAMIC), false);
    assert_reads_as_goblin(&std::env::current_exe().unwrap(), false);
    let libc = std::fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6")
        .or_else(|_| std::fs::canonicalize("/lib/aarch64-linux-gnu/libc.so.6"))
        .unwrap();
    assert_reads_as_goblin(&libc, true);
}

/// The node executable (~100 MB, with ~5 MB of dynamic strings) is read by ranges too.
#[test]
#[ignore = "needs node"]
fn node_reads_as_goblin_reads_it() {
    common::need(&["node"]);
    let node = std::fs::canonicalize(common::which("node").unwrap()).unwrap();
    assert_reads_as_goblin(&node, false);
    let l = inspect_file(&node).unwrap();
    assert!(
        l.needed.iter().any(|n| n == "libstdc++.so.6"),
        "{:?}",
        l.needed
    );
    assert!(l.go.is_none());
}

#[test]
fn broken_and_foreign_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(DYNAMIC).unwrap();
    let p = |n: &str| dir.path().join(n);

    let text = p("script.sh");
    std::fs::write(&text, "#!/bin/sh\necho hi\n").unwrap();
    let e = inspect_file(&text).unwrap_err();
    assert!(matches!(e, InspectError::NotElf { .. }));
    assert!(e.to_string().contains("not an ELF file"), "{e}");

    for cut in [40, 64 + 56, real.len() / 2] {
        let e = inspect_bytes(&real[..cut], &p("cut")).unwrap_err();
        assert!(
            matches!(e, InspectError::Malformed { .. }),
            "cut at {cut}: {e:?}"
        );
        assert!(e.to_string().contains("truncated or malformed"), "{e}");
    }

    let mut freebsd = real.clone();
    freebsd[7] = 9; // EI_OSABI = FreeBSD
    let e = inspect_bytes(&freebsd, &p("bsd")).unwrap_err();
    assert!(e.to_string().contains("FreeBSD, not Linux"), "{e}");

    let mut mips = real.clone();
    mips[18..20].copy_from_slice(&8u16.to_le_bytes()); // e_machine = MIPS
    let e = inspect_bytes(&mips, &p("mips")).unwrap_err();
    assert!(
        matches!(e, InspectError::UnsupportedMachine { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("unsupported machine"), "{e}");

    let mut object = real.clone();
    object[16..18].copy_from_slice(&1u16.to_le_bytes()); // e_type = ET_REL
    let e = inspect_bytes(&object, &p("o")).unwrap_err();
    assert!(e.to_string().contains("relocatable object"), "{e}");
}

#[test]
#[ignore = "needs gcc and a Docker engine"]
fn origin_relative_libraries_are_found_and_placed_where_the_loader_looks() {
    common::need(&["gcc"]);
    common::need_docker();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(d.join("bin")).unwrap();
    std::fs::create_dir_all(d.join("lib")).unwrap();
    std::fs::write(
        d.join("foo.c"),
        "const char *foo(void) { return \"foo via $ORIGIN\"; }\n",
    )
    .unwrap();
    std::fs::write(
        d.join("app.c"),
        "#include <stdio.h>\nconst char *foo(void);\nint main(void) { puts(foo()); return 0; }\n",
    )
    .unwrap();
    common::ok(Command::new("gcc").current_dir(&d).args([
        "-shared",
        "-fPIC",
        "-o",
        "lib/libfoo.so",
        "foo.c",
    ]));
    common::ok(Command::new("gcc").current_dir(&d).args([
        "-o",
        "bin/app",
        "app.c",
        "-Llib",
        "-lfoo",
        "-Wl,-rpath,$ORIGIN/../lib",
    ]));
    let l = inspect_file(&d.join("bin/app")).unwrap();
    let in_root = d.join("bin/app").to_string_lossy().into_owned();
    let origin = closure::Origin {
        image_path: "/app/app",
        root_path: Some(&in_root),
    };
    let libs = closure::resolve(Path::new("/"), &l, &origin).unwrap();
    let foo = libs
        .iter()
        .find(|r| r.name == "libfoo.so")
        .expect("libfoo resolved");
    assert_eq!(foo.image_path.as_deref(), Some("/lib/libfoo.so"), "{foo:?}");
    let mut tree = Tree::new();
    closure::add_to_tree(Path::new("/"), &libs, &mut tree).unwrap();
    let real = follow(&tree, "/lib/libfoo.so", 0).expect("reachable at /lib/libfoo.so");
    assert!(matches!(tree.get(&real), Some(Node::File { .. })), "{real}");

    let tag = "binpack-test/origin:it";
    let _cleanup = common::DockerCleanup(vec![tag.into()]);
    let archive = d.join("app.tar");
    common::ok(
        common::binpack()
            .arg("bin")
            .arg(d.join("bin/app"))
            .args(["-q", "-t", tag, "-o"])
            .arg(&archive),
    );
    common::ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let out = common::ok(Command::new("docker").args(["run", "--rm", "--network", "none", tag]));
    assert_eq!(common::stdout(&out).trim(), "foo via $ORIGIN");
}
