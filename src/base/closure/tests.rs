use super::*;
use std::fs;
use std::os::unix::fs::symlink;

#[test]
fn walk_reports_every_symlink_and_stays_in_root() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("usr/lib/x86_64-linux-gnu")).unwrap();
    fs::create_dir_all(r.join("usr/lib64")).unwrap();
    fs::write(r.join("usr/lib/x86_64-linux-gnu/ld-2.so"), b"x").unwrap();
    symlink("usr/lib64", r.join("lib64")).unwrap();
    symlink(
        "../lib/x86_64-linux-gnu/ld-2.so",
        r.join("usr/lib64/ld-linux.so.2"),
    )
    .unwrap();
    // An absolute target resolves inside the root, never on the host.
    symlink("/usr/lib64/ld-linux.so.2", r.join("abs")).unwrap();
    let mut links = Vec::new();
    let real = walk(r, "/abs", &mut |l, t| {
        links.push((l.to_string(), t.to_string()))
    })
    .unwrap();
    assert_eq!(real, "/usr/lib/x86_64-linux-gnu/ld-2.so");
    assert_eq!(
        links,
        [
            ("/abs".to_string(), "/usr/lib64/ld-linux.so.2".to_string()),
            (
                "/usr/lib64/ld-linux.so.2".to_string(),
                "../lib/x86_64-linux-gnu/ld-2.so".to_string()
            ),
        ]
    );
    let libs = vec![Resolved {
        name: "/lib64/ld-linux.so.2".into(),
        path: "/lib64/ld-linux.so.2".into(),
        image_path: None,
        needed_by: "/app/x".into(),
        package: None,
    }];
    let mut tree = Tree::new();
    add_to_tree(r, &libs, &mut tree).unwrap();
    assert!(
        matches!(tree.get("lib64"), Some(crate::image::layer::Node::Symlink { target }) if target == "usr/lib64")
    );
    assert!(matches!(
        tree.get("usr/lib/x86_64-linux-gnu/ld-2.so"),
        Some(crate::image::layer::Node::File { .. })
    ));

    symlink("loop2", r.join("loop1")).unwrap();
    symlink("loop1", r.join("loop2")).unwrap();
    assert!(matches!(
        walk(r, "/loop1", &mut |_, _| {}),
        Err(RootError::SymlinkLoop { .. })
    ));
}

#[test]
fn ld_so_conf_includes_are_followed_in_order() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("etc/ld.so.conf.d")).unwrap();
    fs::write(
        r.join("etc/ld.so.conf"),
        "# comment\n/opt/first\ninclude /etc/ld.so.conf.d/*.conf\n",
    )
    .unwrap();
    fs::write(r.join("etc/ld.so.conf.d/b.conf"), "/opt/b\n").unwrap();
    fs::write(r.join("etc/ld.so.conf.d/a.conf"), "/opt/a # trailing\n").unwrap();
    let mut dirs = Vec::new();
    read_ld_so_conf(r, "/etc/ld.so.conf", &mut dirs, &mut HashSet::new(), 0);
    assert_eq!(dirs, ["/opt/first", "/opt/a", "/opt/b"]);
}

#[test]
fn ld_so_conf_files_that_include_each_other_are_read_once() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("etc/ld.so.conf.d")).unwrap();
    fs::write(r.join("etc/ld.so.conf"), "include ld.so.conf.d/*.conf\n").unwrap();
    for i in 0..3 {
        let text = format!("/opt/{i}\ninclude /etc/ld.so.conf.d/*.conf\ninclude /etc/ld.so.conf\n");
        fs::write(r.join(format!("etc/ld.so.conf.d/{i}.conf")), text).unwrap();
    }
    let mut dirs = Vec::new();
    read_ld_so_conf(r, "/etc/ld.so.conf", &mut dirs, &mut HashSet::new(), 0);
    assert_eq!(dirs, ["/opt/0", "/opt/1", "/opt/2"]);
}

#[test]
fn search_order_follows_glibc() {
    let l = Linkage {
        platform: crate::support::platform::Platform::linux("amd64"),
        is_static: false,
        interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
        needed: vec![],
        runpath: vec![],
        rpath: vec![],
        go: None,
    };
    let d = |s: &str| Dir {
        host: s.into(),
        image: s.into(),
    };
    let system = vec![d("/lib")];
    // $ORIGIN of the executable: searched on the host where it is, seen as /app in the image.
    let exe = Dir {
        host: "/opt/app/bin".into(),
        image: "/app".into(),
    };
    let e = expand("$ORIGIN/../lib", &exe, &l);
    assert_eq!(
        (e.host.as_str(), e.image.as_str()),
        ("/opt/app/bin/../lib", "/app/../lib")
    );
    assert_eq!(expand("/r/$LIB", &exe, &l).host, "/r/lib64");
    assert_eq!(lexical("/app/../lib/libfoo.so"), "/lib/libfoo.so");
    let with_rpath = Object {
        name: "/app/x".into(),
        needed: vec![],
        runpath: vec![],
        rpath_chain: vec![d("/own"), d("/exe")],
    };
    let hosts = |v: Vec<Dir>| v.into_iter().map(|d| d.host).collect::<Vec<_>>();
    assert_eq!(
        hosts(search_order(&with_rpath, &system)),
        ["/own", "/exe", "/lib"]
    );
    let with_runpath = Object {
        runpath: vec![d("/run")],
        ..with_rpath
    };
    assert_eq!(
        hosts(search_order(&with_runpath, &system)),
        ["/run", "/lib"],
        "RPATHs are ignored when RUNPATH is present"
    );
}

#[test]
fn a_library_found_only_through_ld_so_conf_names_its_directory() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    fs::create_dir_all(r.join("etc/ld.so.conf.d")).unwrap();
    fs::write(
        r.join("etc/ld.so.conf"),
        "include /etc/ld.so.conf.d/*.conf\n",
    )
    .unwrap();
    let conf = "/usr/local/lib\n/usr/lib/x86_64-linux-gnu\n";
    fs::write(r.join("etc/ld.so.conf.d/libc.conf"), conf).unwrap();
    let lib = |path: &str, image_path: Option<&str>| Resolved {
        name: path.rsplit('/').next().unwrap().into(),
        path: path.into(),
        image_path: image_path.map(String::from),
        needed_by: "/usr/local/bin/python3.11".into(),
        package: None,
    };
    let libs = [
        lib("/usr/local/lib/libpython3.11.so.1.0", None),
        lib("/usr/lib/x86_64-linux-gnu/libc.so.6", None),
        lib("/usr/local/lib/libz.so.1", None),
        // Through $ORIGIN: the loader finds it without help.
        lib("/opt/app/lib/libfoo.so", Some("/app/lib/libfoo.so")),
        // In a directory no ld.so.conf lists (an RPATH's): not the loader's default search.
        lib("/opt/vendor/libbar.so", None),
    ];
    assert_eq!(conf_only_dirs(r, &libs), vec!["/usr/local/lib".to_string()]);
}
