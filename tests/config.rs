//! binpack.toml: a value from it is used, and a flag on the command line overrides it.

mod common;

use common::fixture;
use common::*;
use std::path::Path;
use std::process::Command;

/// The image config in an OCI layout directory.
fn layout_config(layout: &Path) -> serde_json::Value {
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index = read(&layout.join("index.json"));
    let manifest = read(&blob(index["manifests"][0]["digest"].as_str().unwrap()));
    read(&blob(manifest["config"]["digest"].as_str().unwrap()))
}

#[test]
fn config_values_are_used_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("sub")).unwrap();
    // The project root: binpack.toml is looked for up to here.
    std::fs::create_dir(project.join(".git")).unwrap();
    std::fs::write(
        project.join("binpack.toml"),
        r#"
tag = "from-config:1"
env = ["MODE=config", "KEEP=yes"]
args = ["--from-config"]

[bin]
label = ["team=config"]
oci-layout = "layout"
add = ["conf.txt:/etc/app/conf.txt"]
"#,
    )
    .unwrap();
    // --add from the file: a path relative to where binpack runs, as every path option.
    for d in ["sub", "."] {
        std::fs::write(project.join(d).join("conf.txt"), "from config\n").unwrap();
    }
    // Found from a subdirectory too, as cargo finds Cargo.toml.
    let s = pack_json(
        binpack()
            .current_dir(project.join("sub"))
            .args(["bin", "/usr/bin/id"]),
    );
    assert_eq!(s["reference"], "from-config:1");
    let cfg = layout_config(&project.join("sub/layout"));
    let env: Vec<&str> = cfg["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"MODE=config") && env.contains(&"KEEP=yes"),
        "{env:?}"
    );
    assert_eq!(cfg["config"]["Labels"]["team"], "config");
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["--from-config"]));
    let layout = project.join("sub/layout");
    let index = fixture::json(&layout.join("index.json"));
    let manifest = fixture::json(&fixture::blob(&layout, &index["manifests"][0]["digest"]));
    let layer = fixture::blob(&layout, &manifest["layers"][0]["digest"]);
    let entries = fixture::layer_entries(&layer);
    assert!(
        entries.contains(&("etc/app/conf.txt".into(), 0o644, 0, 'f')),
        "{entries:?}"
    );

    // Flags win: the tag, one env key, the Cmd.
    let s = pack_json(binpack().current_dir(&project).args([
        "bin",
        "/usr/bin/id",
        "-t",
        "from-flag:2",
        "--env",
        "MODE=flag",
        "--oci-layout",
        "layout2",
    ]));
    assert_eq!(s["reference"], "from-flag:2");
    let cfg = layout_config(&project.join("layout2"));
    let env: Vec<&str> = cfg["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"MODE=flag") && !env.contains(&"MODE=config"),
        "{env:?}"
    );
    assert!(env.contains(&"KEEP=yes"), "{env:?}");

    // A key that is not a flag is named, as a usage error.
    std::fs::write(project.join("binpack.toml"), "[bin]\nldflags = \"-s\"\n").unwrap();
    let out = binpack()
        .current_dir(&project)
        .args(["bin", "/usr/bin/id"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown key bin.ldflags"),
        "{}",
        stderr(&out)
    );
}

/// A static fixture ELF named `hello` in `dir`.
fn fixture(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let exe = fixture::write_fixture(dir, "hello", fixture::EM_X86_64);
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    exe
}

/// `binpack bin FIXTURE -o out.tar ARGS` from `cwd`, with a private cache.
fn bin_from(cwd: &Path, exe: &Path, args: &[&str]) -> std::process::Output {
    binpack()
        .current_dir(cwd)
        .env("BINPACK_CACHE", cwd.join(".cache"))
        .arg("bin")
        .arg(exe)
        .args(["-o", "out.tar"])
        .args(args)
        .output()
        .unwrap()
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_config_above_the_project_root_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let exe = fixture(dir.path());
    // Planted in a shared parent: it would add an output of the planter's choosing.
    let planted = dir.path().join("planted");
    let text = format!("oci-layout = \"{}\"\n", planted.display());
    write_mode(&dir.path().join("binpack.toml"), &text, 0o644);
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    std::fs::create_dir_all(project.join("sub")).unwrap();
    // Not in a git work tree: the current directory only.
    let loose = dir.path().join("loose");
    std::fs::create_dir(&loose).unwrap();
    for cwd in [project.join("sub"), loose] {
        let out = bin_from(&cwd, &exe, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stderr(&out).contains("options from"), "{}", stderr(&out));
        assert!(cwd.join("out.tar").is_file());
        assert!(!planted.exists(), "the planted file was read from {cwd:?}");
    }
}

#[test]
fn a_config_others_can_write_is_refused_and_the_one_read_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let exe = fixture(dir.path());
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    let config = project.join("binpack.toml");
    for mode in [0o664, 0o646] {
        write_mode(&config, "tag = \"cfg:1\"\n", mode);
        let out = bin_from(&project, &exe, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&config.display().to_string()) && err.contains("others can write"),
            "{err}"
        );
        assert!(!project.join("out.tar").exists(), "nothing written");
    }
    write_mode(&config, "tag = \"cfg:1\"\n", 0o644);
    let out = bin_from(&project, &exe, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = format!("binpack: options from {}: --tag=cfg:1\n", config.display());
    assert!(stderr(&out).starts_with(&line), "{}", stderr(&out));
    // -q: no progress, this line included.
    let out = bin_from(&project, &exe, &["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("options from"), "{}", stderr(&out));
}

#[test]
#[ignore = "needs root (to give the file to another user)"]
fn a_config_another_user_owns_is_refused() {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    assert_eq!(
        uid, 0,
        "this test needs root, to chown a file to another user"
    );
    let dir = tempfile::tempdir().unwrap();
    let exe = fixture(dir.path());
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    let config = project.join("binpack.toml");
    write_mode(&config, "tag = \"cfg:1\"\n", 0o644);
    std::os::unix::fs::chown(&config, Some(65534), None).unwrap();
    let out = bin_from(&project, &exe, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("belongs to another user (uid 65534)"), "{err}");
    assert!(!project.join("out.tar").exists());
}

/// examples/Makefile's image target: one short line, the rest from examples/binpack.toml.
#[test]
#[ignore = "needs make, go and a Docker engine"]
fn examples_makefile_image_target() {
    need(&["make", "go"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    ok(Command::new("make")
        .arg("-C")
        .arg(repo().join("examples"))
        .arg("image")
        .arg(format!("BINPACK={}", env!("CARGO_BIN_EXE_binpack")))
        .arg(format!("DIST={}", dir.path().display()))
        .args(["VERSION=t1", "TOOLCHAIN=host"]));
    let archive = dir.path().join("hello-http.tar");
    let config = ArchiveFiles::open(&archive).config();
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.vendor"],
        "binpack examples"
    );
    assert!(config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "PORT=8080"));
    let (tag, name) = ("hello-http:t1", "binpack-test-make-image");
    let _cleanup = DockerCleanup(vec![name.into(), tag.into()]);
    let port = docker_serve(&archive, tag, name);
    // The ldflags from the [go] table reached the build.
    let resp = http_get(port, "/").expect("the server answers");
    assert!(
        resp.contains("hello-from-make (uid 65532, path /)"),
        "{resp}"
    );
}

/// Runs binpack in `dir`, expecting a usage error (exit 2); returns its stderr.
fn usage_error(dir: &Path, args: &[&str]) -> String {
    let out = binpack().current_dir(dir).args(args).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    err
}

#[test]
fn config_flag_in_both_spellings() {
    let dir = tempfile::tempdir().unwrap();
    // The nearest binpack.toml is what --config replaces.
    std::fs::write(dir.path().join("binpack.toml"), "tag = \"nearest:1\"\n").unwrap();
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "tag = \"explicit:1\"\n").unwrap();
    let other = other.to_str().unwrap();
    let joined = format!("--config={other}");
    for config in [vec!["--config", other], vec![joined.as_str()]] {
        let s = pack_json(
            binpack()
                .current_dir(dir.path())
                .args(&config)
                .args(["bin", "/usr/bin/id"]),
        );
        assert_eq!(s["reference"], "explicit:1", "{config:?}");
    }
}

/// A --config file that is not there is an error naming it and why, in both spellings.
#[test]
fn missing_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_str().unwrap();
    let joined = format!("--config={missing}");
    for config in [vec!["--config", missing], vec![joined.as_str()]] {
        let args = [config, vec!["bin", "/usr/bin/id"]].concat();
        let err = usage_error(dir.path(), &args);
        assert!(
            err.contains(&format!("--config {missing}: No such file or directory")),
            "{err}"
        );
        assert!(!err.contains("os error"), "{err}");
    }
}

/// No subcommand, or --config with no file: clap's usage errors, not a crash.
#[test]
fn misplaced_config_flag_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "tag = \"explicit:1\"\n").unwrap();
    let other = other.to_str().unwrap();
    let err = usage_error(dir.path(), &["--config", other]);
    assert!(err.contains("subcommand"), "{err}");
    usage_error(dir.path(), &["--config"]);
}

/// `--config` after the subcommand works as before it, as `-q` does.
#[test]
fn config_flag_after_the_subcommand_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "tag = \"explicit:1\"\n").unwrap();
    let s = pack_json(binpack().current_dir(dir.path()).args([
        "bin",
        "/usr/bin/id",
        "--config",
        other.to_str().unwrap(),
        "--oci-layout",
        "layout",
    ]));
    assert_eq!(s["reference"], "explicit:1");
}

/// A top-level key no command has is a typo: named with the file and the nearest key.
#[test]
fn top_level_typo_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("binpack.toml");
    std::fs::write(&file, "tagg = \"x:1\"\n").unwrap();
    let err = usage_error(dir.path(), &["bin", "/usr/bin/id"]);
    assert!(err.contains("unknown key tagg"), "{err}");
    assert!(err.contains(file.to_str().unwrap()), "{err}");
    assert!(err.contains("did you mean tag?"), "{err}");

    // A key only go has is for go: bin skips it.
    std::fs::write(&file, "ldflags = \"-s\"\ntag = \"top:1\"\n").unwrap();
    let s = pack_json(
        binpack()
            .current_dir(dir.path())
            .args(["bin", "/usr/bin/id"]),
    );
    assert_eq!(s["reference"], "top:1");
}

/// A cloned repository's binpack.toml may not run a program, read a host file into the image
/// or write outside the project: each is refused before any work, naming the file and key.
#[test]
fn a_config_may_not_run_programs_or_reach_outside_the_project() {
    let dir = tempfile::tempdir().unwrap();
    let exe = fixture(dir.path());
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    std::fs::write(project.join("main.go"), "package main\nfunc main() {}\n").unwrap();
    std::fs::write(project.join("go.mod"), "module example.com/m\ngo 1.21\n").unwrap();
    let mark = dir.path().join("ran");
    let config = project.join("binpack.toml");
    let cases = [
        (
            "go",
            format!(
                "[go]\nbuild-flag = [\"-toolexec=/usr/bin/touch {}\"]\n",
                mark.display()
            ),
            "-toolexec",
        ),
        (
            "go",
            format!(
                "[go]\nbuild-flag = [\"-toolexec\", \"/usr/bin/touch {}\"]\n",
                mark.display()
            ),
            "-toolexec",
        ),
        (
            "go",
            "[go]\nbuild-flag = [\"-overlay=/tmp/o.json\"]\n".into(),
            "-overlay",
        ),
        (
            "go",
            "[go]\nldflags = \"-linkmode=external -extld=/tmp/cc\"\n".into(),
            "-linkmode",
        ),
        (
            "cargo",
            "[cargo]\ncargo-flag = [\"--config=build.rustc-wrapper='/tmp/w'\"]\n".into(),
            "--config",
        ),
        (
            "bin",
            "add = [\"/etc/hostname:/etc/stolen\"]\n".into(),
            "outside the project",
        ),
        (
            "bin",
            "[bin]\noutput = \"../elsewhere.tar\"\n".into(),
            "outside the project",
        ),
        (
            "bin",
            "ca-certs = \"/etc/passwd\"\n".into(),
            "no PEM certificate",
        ),
    ];
    for (command, text, word) in cases {
        write_mode(&config, &text, 0o644);
        let mut c = binpack();
        c.current_dir(&project)
            .env("BINPACK_CACHE", project.join(".cache"))
            .arg(command);
        if command == "bin" {
            c.arg(&exe).args(["-o", "out.tar"]);
        }
        let out = c.output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(
            err.contains(&config.display().to_string()) && err.contains(word),
            "{text}: {err}"
        );
        assert!(!mark.exists(), "{text}: the config ran a program");
        assert!(!project.join("out.tar").exists() && !dir.path().join("elsewhere.tar").exists());
    }
    // The same from inside the project is used, and the line on stderr says what came from it.
    std::fs::create_dir(project.join("conf")).unwrap();
    std::fs::write(project.join("conf/app.conf"), "x\n").unwrap();
    write_mode(&config, "add = [\"conf/app.conf:/etc/app.conf\"]\n", 0o644);
    let out = bin_from(&project, &exe, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = format!(
        "binpack: options from {}: --add=conf/app.conf:/etc/app.conf\n",
        config.display()
    );
    assert!(stderr(&out).starts_with(&line), "{}", stderr(&out));
}

/// `[goo]` suggests `[go]`; `no-tzdata = "yes"` names the file, the key and the type wanted.
#[test]
fn config_mistakes_name_the_file_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let exe = fixture(dir.path());
    let config = dir.path().join("binpack.toml");
    let cases = [
        (
            "[goo]\nldflags = \"-s\"\n",
            "unknown table [goo]",
            "did you mean [go]?",
        ),
        (
            "[go]\nno-tzdata = \"yes\"\n",
            "go.no-tzdata: expected true or false",
            "got the string \"yes\"",
        ),
    ];
    for (text, a, b) in cases {
        write_mode(&config, text, 0o644);
        let out = bin_from(dir.path(), &exe, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        for w in [config.display().to_string().as_str(), a, b] {
            assert!(err.contains(w), "{w:?} not in {err}");
        }
    }
}

/// A FIFO or a device named as a file to read is refused at once, not read forever.
#[test]
fn a_fifo_or_a_device_is_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let exe = fixture(dir.path());
    let fifo = dir.path().join("fifo");
    ok(Command::new("mkfifo").arg(&fifo));
    for special in [fifo.as_path(), Path::new("/dev/zero")] {
        for flag in ["--config", "--registry-ca", "--ca-certs"] {
            let mut c = binpack();
            c.current_dir(dir.path())
                .env("BINPACK_CACHE", dir.path().join("cache"));
            if flag == "--config" {
                c.arg(flag).arg(special).arg("bin").arg(&exe);
            } else {
                c.arg("bin").arg(&exe).arg(flag).arg(special);
            }
            let mut child = c
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            // Bounded: a hang is a failure, not a stuck test run.
            let mut status = None;
            for _ in 0..600 {
                if let Some(s) = child.try_wait().unwrap() {
                    status = Some(s);
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if status.is_none() {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("{flag} {}: still reading after a minute", special.display());
            }
            let out = child.wait_with_output().unwrap();
            let err = stderr(&out);
            assert!(!out.status.success(), "{flag} {}", special.display());
            assert!(
                err.contains(&special.display().to_string())
                    && (err.contains("not a regular file") || err.contains("not a file")),
                "{flag} {}: {err}",
                special.display()
            );
        }
    }
}

/// The owner check and the read are one descriptor: a file swapped between a good one and one
/// another user owns is either refused or read as the good one, never read as the other's.
#[test]
#[ignore = "needs root (to give the file to another user)"]
fn a_config_swapped_during_the_check_is_never_read() {
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    assert_eq!(
        std::fs::metadata("/proc/self").unwrap().uid(),
        0,
        "needs root"
    );
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    let good = dir.path().join("good.toml");
    let planted = dir.path().join("planted.toml");
    write_mode(&good, "tag = \"good:1\"\n", 0o644);
    write_mode(&planted, "[bin]\nplanted-key = 1\n", 0o644);
    std::os::unix::fs::chown(&planted, Some(65534), None).unwrap();
    let config = project.join("binpack.toml");
    std::fs::hard_link(&good, &config).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, config, dir) = (stop.clone(), config.clone(), dir.path().to_path_buf());
        std::thread::spawn(move || {
            let tmp = dir.join("next.toml");
            while !stop.load(Ordering::Relaxed) {
                for src in [&good, &planted] {
                    let _ = std::fs::remove_file(&tmp);
                    std::fs::hard_link(src, &tmp).unwrap();
                    std::fs::rename(&tmp, &config).unwrap();
                }
            }
        })
    };
    let mut read_planted = 0;
    for _ in 0..100 {
        // A missing program: the run ends right after the config is taken.
        let out = binpack()
            .current_dir(&project)
            .args(["bin", "/nonexistent/program"])
            .output()
            .unwrap();
        read_planted += usize::from(stderr(&out).contains("planted-key"));
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(read_planted, 0, "the planted file was read");
}
