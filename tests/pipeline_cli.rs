//! binpack in a release pipeline, as a script sees it: several tags and pushes in one run,
//! stdout that holds only the reference with its digest (or one JSON object), ko's `--sbom`
//! spellings, and refusals that come before the build.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

/// binpack with a private cache and Docker config.
fn binpack_in(cache: &Path) -> Command {
    let mut c = binpack();
    c.env("BINPACK_CACHE", cache.join("cache"));
    c.env("DOCKER_CONFIG", cache.join("docker-config"));
    c
}

/// Every file of an archive, by path.
fn tar_files(archive: &Path) -> HashMap<String, Vec<u8>> {
    let mut files = HashMap::new();
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        files.insert(path, bytes);
    }
    files
}

/// The tags (`org.opencontainers.image.ref.name`) of an index.json's entries.
fn ref_names(index: &Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// `NAME@sha256:<64 hex>`: the name.
fn name_of_digest_line(line: &str) -> &str {
    let (name, digest) = line
        .split_once("@sha256:")
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(digest.len(), 64, "{line}");
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
    name
}

#[test]
fn every_tag_names_the_archive_and_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("id.tar");
    let layout = dir.path().join("layout");
    let out = ok(binpack_in(dir.path())
        .args([
            "bin",
            "/usr/bin/id",
            "-t",
            "team/id:1.4",
            "-t",
            "team/id:latest",
        ])
        .arg("-o")
        .arg(&tar)
        .arg("--oci-layout")
        .arg(&layout));
    let files = tar_files(&tar);
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(ref_names(&index), ["1.4", "latest"]);
    let docker: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(
        docker[0]["RepoTags"],
        serde_json::json!(["team/id:1.4", "team/id:latest"])
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(ref_names(&index), ["1.4", "latest"]);
    // stdout: the first name with the digest, nothing else.
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(name_of_digest_line(text.trim()), "team/id:1.4");
}

#[test]
fn stdout_is_the_reference_and_the_summary_goes_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(binpack_in(dir.path()).current_dir(dir.path()).args([
        "bin",
        "/usr/bin/id",
        "-o",
        "id.tar",
    ]));
    let line = stdout(&out);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert_eq!(name_of_digest_line(line.trim()), "id:latest");
    let summary = stderr(&out);
    for want in [
        "base       closure",
        "output     id.tar",
        "platform   linux/",
    ] {
        assert!(summary.contains(want), "{want} not in {summary}");
    }

    // --json: one object, typed fields.
    let s = pack_json(binpack_in(dir.path()).current_dir(dir.path()).args([
        "bin",
        "/usr/bin/id",
        "-o",
        "id.tar",
    ]));
    assert_eq!(s["platforms"], serde_json::json!([s["platform"]]), "{s}");
    assert_eq!(s["pushed"], serde_json::json!([]), "{s}");
    assert!(s["loaded"].is_null(), "{s}");
    assert_eq!(
        format!(
            "{}@{}",
            s["reference"].as_str().unwrap(),
            s["digest"].as_str().unwrap()
        ),
        line.trim()
    );
}

#[test]
fn an_error_with_json_is_an_error_object_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-program");
    let out = binpack_in(dir.path())
        .arg("bin")
        .arg(&missing)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let j: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(&out)));
    let message = j["error"].as_str().unwrap_or_else(|| panic!("{j}"));
    assert!(message.contains("no-such-program"), "{message}");
    assert!(
        stderr(&out).contains("binpack: error: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kos_sbom_spellings_are_formats_not_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let run = |sbom: &str| {
        pack_json(binpack_in(dir.path()).current_dir(dir.path()).args([
            "bin",
            "/usr/bin/id",
            "-o",
            "id.tar",
            sbom,
        ]))
    };
    let none = run("--sbom=none");
    assert!(none["sbom"].is_null(), "--sbom none is --no-sbom: {none}");
    for spelling in ["--sbom=spdx", "--sbom=spdx-json"] {
        let s = run(spelling);
        assert!(s["sbom"].as_str().unwrap().ends_with(".spdx.json"), "{s}");
    }
    for name in ["none", "spdx", "spdx-json"] {
        assert!(
            !dir.path().join(name).exists(),
            "a file named {name} was written"
        );
    }
    let out = binpack_in(dir.path())
        .current_dir(dir.path())
        .args(["bin", "/usr/bin/id", "-o", "id.tar", "--sbom", "cyclonedx"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("--sbom cyclonedx") && err.contains("SPDX"),
        "{err}"
    );
    assert!(!dir.path().join("cyclonedx").exists());
    // A file of such a name is still possible, spelt as a path.
    let s = run("--sbom=./spdx");
    assert!(s["sbom"].is_string(), "{s}");
    assert!(dir.path().join("spdx").is_file());
}

#[test]
#[ignore = "needs docker-registry and skopeo"]
fn several_pushes_send_each_blob_once_and_print_each_reference() {
    need(&["docker-registry", "skopeo"]);
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    let targets = [
        format!("{}/team/id:1.4", reg.host()),
        format!("{}/team/id:latest", reg.host()),
    ];
    let out = ok(binpack_in(dir.path()).args(["bin", "/usr/bin/id"]).args([
        "--push",
        &targets[0],
        "--push",
        &targets[1],
    ]));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, target) in lines.iter().zip(&targets) {
        assert_eq!(name_of_digest_line(line), target);
        let inspect = ok(Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{target}")));
        let j: Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert!(line.ends_with(j["Digest"].as_str().unwrap()), "{line} {j}");
    }
    // Blobs once: the second tag of the repository uploads nothing. Each blob is named on
    // its progress line.
    let summary = stderr(&out);
    let blob_lines = summary
        .lines()
        .filter(|l| l.contains("binpack: pushing blob sha256:"));
    assert_eq!(blob_lines.count(), 2, "the layer and the config: {summary}");
    assert!(
        summary.contains("4 blobs uploaded, 0 mounted"),
        "layer, config, SBOM and its config, once: {summary}"
    );
}

/// A static program real users pack: Go's own gofmt, as the Go toolchain ships it.
fn gofmt() -> std::path::PathBuf {
    need(&["go"]);
    let go = which("go").unwrap().canonicalize().unwrap();
    go.parent().unwrap().join("gofmt")
}

/// The error a refused run printed; fails unless it exited 1.
fn refused(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    stderr(&out)
}

#[test]
fn a_user_name_the_image_does_not_have_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pack = |user: &str| {
        let mut c = binpack_in(dir.path());
        c.args(["bin", "/usr/bin/id", "-q", "--user", user, "-o"])
            .arg(dir.path().join("id.tar"));
        c
    };
    let err = refused(&mut pack("nobody"));
    assert!(
        err.contains("--user nobody") && err.contains("/etc/passwd has no user \"nobody\""),
        "{err}"
    );
    assert!(
        err.contains("root, nonroot"),
        "names the users it has: {err}"
    );
    let err = refused(&mut pack("nonroot:staff"));
    assert!(err.contains("/etc/group has no group \"staff\""), "{err}");
    assert!(!dir.path().join("id.tar").exists());
    for fine in ["nonroot", "root:nonroot", "1000", "1000:1000"] {
        ok(&mut pack(fine));
    }
}

#[test]
#[ignore = "needs go (its static gofmt) and docker-registry"]
fn a_dynamic_program_on_a_base_without_its_libraries_is_refused() {
    need(&["docker-registry"]);
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    // A scratch-like base (gofmt and binpack's passwd), and one that has id's closure.
    let bare = format!("{}/bases/bare:1", reg.host());
    let glibc = format!("{}/bases/glibc:1", reg.host());
    ok(binpack_in(dir.path())
        .arg("bin")
        .arg(gofmt())
        .args(["-q", "--push", &bare]));
    ok(binpack_in(dir.path()).args(["bin", "/usr/bin/id", "-q", "--push", &glibc]));
    let out = dir.path().join("id.tar");
    let err = refused(
        binpack_in(dir.path())
            .args(["bin", "/usr/bin/id", "--base", &bare, "-o"])
            .arg(&out),
    );
    for want in [
        "the base",
        "cannot run /app/id",
        "glibc dynamic program",
        "loader /lib64/ld-linux-x86-64.so.2",
        "libc.so.6",
        "--base closure",
    ] {
        assert!(err.contains(want), "{want} not in {err}");
    }
    assert!(!out.exists());
    // A base that has them is taken, and its passwd decides --user.
    ok(binpack_in(dir.path())
        .args([
            "bin",
            "/usr/bin/id",
            "-q",
            "--user",
            "nonroot",
            "--base",
            &glibc,
            "-o",
        ])
        .arg(&out));
    let err = refused(
        binpack_in(dir.path())
            .arg("bin")
            .arg(gofmt())
            .args(["--user", "nobody", "--base", &bare, "-o"])
            .arg(&out),
    );
    assert!(err.contains("/etc/passwd has no user \"nobody\""), "{err}");
}

#[test]
fn load_is_checked_before_the_build() {
    let dir = tempfile::tempdir().unwrap();
    // No engine on PATH at all: refused before anything is packed.
    let empty = dir.path().join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let err = refused(
        binpack_in(dir.path())
            .current_dir(dir.path())
            .env("PATH", &empty)
            .args(["bin", "/usr/bin/id", "--load"]),
    );
    assert!(err.contains("--load: neither docker nor podman"), "{err}");
    assert!(
        !err.contains("inspecting"),
        "refused before the build: {err}"
    );
    assert!(!dir.path().join("dist").exists());
}

#[test]
#[ignore = "needs a Docker engine before 23 (Debian's 20.10) and podman"]
fn load_falls_back_to_podman_and_refuses_zstd_for_old_docker_before_the_build() {
    need(&["podman"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    // docker's engine down (as seen by its client): podman answers, and gets the image.
    let tag = "binpack-test/load-fallback:1";
    let out = ok(binpack_in(dir.path())
        .env(
            "DOCKER_HOST",
            format!("unix://{}/no-docker.sock", dir.path().display()),
        )
        .args(["bin", "/usr/bin/id", "-t", tag, "--load", "--json"]));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["loaded"]["engine"], "podman", "{s}");
    let _ = Command::new("podman").args(["rmi", tag]).output();
    // zstd layers into docker 20.10: refused before the build, naming the way out.
    let err = refused(binpack_in(dir.path()).current_dir(dir.path()).args([
        "bin",
        "/usr/bin/id",
        "--compression",
        "zstd",
        "--load=docker",
    ]));
    assert!(
        err.contains("zstd") && err.contains("--load=podman"),
        "{err}"
    );
    assert!(
        !err.contains("inspecting"),
        "refused before the build: {err}"
    );
}

#[test]
fn an_output_that_is_a_stream_is_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("image.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // The reader: the archive through the FIFO, counted.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let sbom = dir.path().join("sbom.fifo");
    assert!(Command::new("mkfifo")
        .arg(&sbom)
        .status()
        .unwrap()
        .success());
    let sbom_reader = {
        let sbom = sbom.clone();
        std::thread::spawn(move || std::fs::read(sbom).unwrap())
    };
    ok(binpack_in(dir.path())
        .args(["bin", "/usr/bin/id", "-q", "-o"])
        .arg(&fifo)
        .arg("--sbom")
        .arg(&sbom));
    let archive = reader.join().unwrap();
    assert_eq!(&archive[257..262], b"ustar", "a tar came through the FIFO");
    let doc: Value = serde_json::from_slice(&sbom_reader.join().unwrap()).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    for f in [&fifo, &sbom] {
        let kind = std::fs::symlink_metadata(f).unwrap().file_type();
        assert!(
            std::os::unix::fs::FileTypeExt::is_fifo(&kind),
            "{f:?} was replaced"
        );
    }
    // /dev/null: written, not replaced (binpack runs as whoever runs the tests).
    ok(binpack_in(dir.path()).args(["bin", "/usr/bin/id", "-q", "-o", "/dev/null"]));
    let null = std::fs::metadata("/dev/null").unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&null));
    assert!(leftovers(dir.path()).is_empty());
}

/// `git -C dir ARGS`, which must succeed.
fn git(dir: &Path, args: &[&str]) -> String {
    stdout(&ok(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)))
}

#[test]
#[ignore = "needs go and git"]
fn a_dirty_work_tree_is_said_and_labelled_and_a_clean_one_is_unchanged() {
    need(&["go", "git"]);
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("hello-http");
    std::fs::create_dir(&project).unwrap();
    for f in ["go.mod", "main.go"] {
        std::fs::copy(repo().join("examples/hello-http").join(f), project.join(f)).unwrap();
    }
    git(&project, &["init", "-q"]);
    git(&project, &["add", "."]);
    git(&project, &["commit", "-q", "-m", "first"]);
    let head = git(&project, &["rev-parse", "HEAD"]).trim().to_string();
    let build = || {
        let out = ok(binpack_in(dir.path()).current_dir(&project).args([
            "go",
            ".",
            "--json",
            "-o",
            "../hello.tar",
        ]));
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        let config = tar_config(&dir.path().join("hello.tar"));
        let label = config["config"]["Labels"]["org.opencontainers.image.revision"].clone();
        (
            s["digest"].as_str().unwrap().to_string(),
            label,
            stderr(&out),
        )
    };
    let (clean, label, err) = build();
    assert_eq!(label, head.as_str());
    assert!(!err.contains("uncommitted"), "{err}");
    // binpack's own output in the tree (untracked) does not make it dirty.
    std::fs::create_dir(project.join("dist")).unwrap();
    std::fs::write(project.join("dist/x.tar"), b"").unwrap();
    assert_eq!(build().0, clean, "a clean tree: the same digest");

    let main = project.join("main.go");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{text}\n// changed\n")).unwrap();
    let (_, label, err) = build();
    assert_eq!(label, format!("{head}-dirty").as_str());
    assert!(
        err.contains("binpack: warning: the work tree")
            && err.contains("uncommitted changes (main.go)")
            && err.contains(&format!("{head}-dirty")),
        "{err}"
    );
    std::fs::write(&main, text).unwrap();
    assert_eq!(build().0, clean, "clean again: the same digest again");
}

/// The image config inside a binpack archive.
fn tar_config(archive: &Path) -> Value {
    let files = tar_files(archive);
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let blob = |d: &Value| {
        let hex = d.as_str().unwrap().trim_start_matches("sha256:");
        serde_json::from_slice::<Value>(&files[&format!("blobs/sha256/{hex}")]).unwrap()
    };
    let manifest = blob(&index["manifests"][0]["digest"]);
    blob(&manifest["config"]["digest"])
}

#[test]
fn progress_lines_without_a_terminal_are_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(binpack_in(dir.path())
        .current_dir(dir.path())
        .args(["bin", "/usr/bin/id"]));
    let err = stderr(&out);
    let stamped = |l: &str| {
        let (stamp, rest) = l.split_once("s] binpack: ")?;
        let secs = stamp.strip_prefix('[')?.trim().parse::<f64>().ok()?;
        Some((secs, rest.to_string()))
    };
    let stages: Vec<(f64, String)> = err.lines().filter_map(stamped).collect();
    for want in [
        "inspecting /usr/bin/id",
        "resolving shared libraries",
        "writing dist/id.tar",
    ] {
        assert!(
            stages.iter().any(|(_, s)| s.starts_with(want)),
            "{want} not in {err}"
        );
    }
    assert!(stages.windows(2).all(|w| w[0].0 <= w[1].0), "{err}");
    // -q: none of them.
    let out = ok(binpack_in(dir.path())
        .current_dir(dir.path())
        .args(["bin", "/usr/bin/id", "-q"]));
    assert!(
        stderr(&out).lines().all(|l| stamped(l).is_none()),
        "{}",
        stderr(&out)
    );
}
