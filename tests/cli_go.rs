//! End to end: `binpack go` / `binpack bin` produce images that real engines and validators
//! accept and run, the same source gives the same digest, and bad input gets a named error.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn example(name: &str) -> String {
    repo()
        .join("examples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Packs an example into `dir`, returning the summary.
fn pack_example(name: &str, dir: &Path, tag: &str, extra: &[&str]) -> serde_json::Value {
    let archive = dir.join(format!("{name}.tar"));
    json_of(
        binpack()
            .args(["go", &example(name), "--json", "--quiet", "-o"])
            .arg(&archive)
            .args(["-t", tag])
            .args(extra),
    )
}

#[test]
#[ignore = "needs go and a Docker engine"]
fn http_server_answers_from_docker() {
    need(&["go"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let tag = "binpack-test/hello-http:it";
    let name = format!("binpack-test-http-{}", std::process::id());
    let _cleanup = DockerCleanup(vec![name.clone(), tag.into()]);
    // Extra ldflags and build flags reach go build.
    let s = pack_example(
        "hello-http",
        dir.path(),
        tag,
        &[
            "--ldflags",
            "-X main.greeting=ldflags-reached",
            "--build-flag=-tags=netgo",
        ],
    );
    assert_eq!(s["base"], "scratch");
    assert_eq!(s["reference"], tag);
    assert!(s["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        s["size"]["compressed"].as_u64().unwrap() < s["size"]["uncompressed"].as_u64().unwrap()
    );

    let port = docker_serve(&dir.path().join("hello-http.tar"), tag, &name);
    let resp = http_get(port, "/ping").unwrap_or_else(|| {
        let logs = Command::new("docker")
            .args(["logs", &name])
            .output()
            .unwrap();
        panic!("no answer on port {port}; logs: {}", stderr(&logs))
    });
    assert!(resp.starts_with("HTTP/1.0 200"), "{resp}");
    // The greeting proves the entrypoint ran, as the unprivileged user, with the path.
    assert!(
        resp.contains("ldflags-reached (uid 65532, path /ping)"),
        "{resp}"
    );
}

#[test]
#[ignore = "needs go and a Docker engine"]
fn cert_pool_has_roots_inside_the_container() {
    need(&["go"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let tag = "binpack-test/certpool:it";
    let _cleanup = DockerCleanup(vec![tag.into()]);
    pack_example("certpool", dir.path(), tag, &[]);
    ok(Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(dir.path().join("certpool.tar")));
    let out = ok(Command::new("docker").args(["run", "--rm", "--network", "none", tag]));
    let text = stdout(&out);
    let n: usize = text
        .trim()
        .strip_prefix("system roots: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {text:?}"));
    assert!(n > 100, "only {n} roots");
}

#[test]
#[ignore = "needs go, skopeo and umoci"]
fn skopeo_and_umoci_accept_the_outputs() {
    need(&["go", "skopeo", "umoci"]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let s = pack_example(
        "hello-http",
        dir.path(),
        "hello-http:v1",
        &[
            "--oci-layout",
            layout.to_str().unwrap(),
            "--env",
            "MODE=prod",
            "--label",
            "team=core",
            "--",
            "serve",
            "--fast",
        ],
    );
    let digest = s["digest"].as_str().unwrap();
    let archive = dir.path().join("hello-http.tar");
    let oci = ok(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", archive.display())));
    let oci: serde_json::Value = serde_json::from_slice(&oci.stdout).unwrap();
    assert_eq!(oci["Digest"], digest, "skopeo sees our manifest");
    assert_eq!(
        oci["Architecture"],
        s["platform"].as_str().unwrap().split('/').nth(1).unwrap()
    );
    // Selecting the image by its tag proves manifest.json's RepoTags.
    let docker = ok(Command::new("skopeo").arg("inspect").arg(format!(
        "docker-archive:{}:hello-http:v1",
        archive.display()
    )));
    let docker: serde_json::Value = serde_json::from_slice(&docker.stdout).unwrap();
    assert_eq!(docker["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(docker["Os"], "linux");

    let layout_ref = format!("oci:{}:v1", layout.display());
    let via_layout = ok(Command::new("skopeo").arg("inspect").arg(&layout_ref));
    let via_layout: serde_json::Value = serde_json::from_slice(&via_layout.stdout).unwrap();
    assert_eq!(via_layout["Digest"], digest);

    // umoci checks every blob digest and diff_id while unpacking.
    let bundle = dir.path().join("bundle");
    ok(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:v1", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("app/hello-http").is_file());
    assert!(rootfs.join("etc/ssl/certs/ca-certificates.crt").is_file());
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532"));
    use std::os::unix::fs::PermissionsExt;
    let tmp_mode = std::fs::metadata(rootfs.join("tmp"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(tmp_mode & 0o7777, 0o1777);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["user"]["uid"], 65532);
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/app/hello-http", "serve", "--fast"])
    );
    let env: Vec<&str> = config["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"MODE=prod"), "{env:?}");
    assert!(
        env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
        "{env:?}"
    );
}

#[test]
#[ignore = "needs go"]
fn same_source_same_digest() {
    need(&["go"]);
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let args = [
        "--env",
        "MODE=prod",
        "--label",
        "team=core",
        "--",
        "--verbose",
    ];
    let first = pack_example("hello-http", &a, "repro:1", &args);
    let second = pack_example("hello-http", &b, "repro:1", &args);
    assert_eq!(first["digest"], second["digest"]);
    let bytes_a = std::fs::read(a.join("hello-http.tar")).unwrap();
    let bytes_b = std::fs::read(b.join("hello-http.tar")).unwrap();
    assert!(bytes_a == bytes_b, "the archives differ byte for byte");

    // SOURCE_DATE_EPOCH reaches the config, and so changes the digest.
    let dated = json_of(
        binpack()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["go", &example("hello-http"), "--json", "-o"])
            .arg(dir.path().join("dated.tar"))
            .args(["-t", "repro:1"])
            .args(args),
    );
    assert_ne!(dated["digest"], first["digest"]);
}

#[test]
#[ignore = "needs a Docker engine"]
fn dynamic_system_binary_runs_on_its_closure() {
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let tag = "binpack-test/id:it";
    let _cleanup = DockerCleanup(vec![tag.into()]);
    let archive = dir.path().join("id.tar");
    let s = pack_json(
        binpack()
            .args(["bin", "/usr/bin/id", "-t", tag, "-o"])
            .arg(&archive),
    );
    assert_eq!(s["base"], "closure");
    let libs: Vec<&str> = s["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(libs.contains(&"libc.so.6"), "{libs:?}");
    ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let out = ok(Command::new("docker").args(["run", "--rm", "--network", "none", tag]));
    // id resolves the uid through /etc/passwd with glibc's NSS, all from the closure.
    assert_eq!(
        stdout(&out).trim(),
        "uid=65532(nonroot) gid=65532(nonroot) groups=65532(nonroot)"
    );
    let out = ok(Command::new("docker").args(["run", "--rm", "--user", "0", tag, "-un"]));
    assert_eq!(stdout(&out).trim(), "root");
}

/// One bad input: the arguments, the words the error must contain, the exit code.
struct Case {
    what: &'static str,
    args: Vec<String>,
    path: Option<String>,
    message: &'static str,
    code: i32,
}

#[test]
#[ignore = "needs go and python3"]
fn bad_input_gets_a_named_error_and_leaves_nothing() {
    need(&["go", "python3"]);
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    // A library package (not main).
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("go.mod"), "module example.com/lib\n\ngo 1.21\n").unwrap();
    std::fs::write(
        lib.join("lib.go"),
        "package lib\n\nfunc Answer() int { return 42 }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a program\n").unwrap();
    // A main package that does not compile: go's own message must reach the user.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("go.mod"),
        "module example.com/broken\n\ngo 1.21\n",
    )
    .unwrap();
    std::fs::write(
        broken.join("main.go"),
        "package main\n\nfunc main() { undefinedThing() }\n",
    )
    .unwrap();
    let mut bsd = std::fs::read("/usr/bin/id").unwrap();
    bsd[7] = 9;
    std::fs::write(dir.path().join("bsd-elf"), bsd).unwrap();
    std::fs::write(dir.path().join("a-file"), "x").unwrap();
    let id = std::fs::read("/usr/bin/id").unwrap();
    let mut sparc = id.clone();
    sparc[18..20].copy_from_slice(&2u16.to_le_bytes()); // e_machine = EM_SPARC
    std::fs::write(dir.path().join("sparc-elf"), sparc).unwrap();
    std::fs::write(dir.path().join("truncated-elf"), &id[..200]).unwrap();
    let out = |name: &str| vec!["-o".to_string(), d(name)];
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let cases = vec![
        Case {
            what: "no such directory",
            args: [s(&["go", &d("missing")]), out("o1.tar")].concat(),
            path: Some(d("o1.tar")),
            message: "no such directory",
            code: 1,
        },
        Case {
            what: "not a main package",
            args: [s(&["go", lib.to_str().unwrap()]), out("o2.tar")].concat(),
            path: Some(d("o2.tar")),
            message: "is package lib, not a main package",
            code: 1,
        },
        Case {
            what: "cgo",
            args: [s(&["go", &example("cgo")]), out("o3.tar")].concat(),
            path: Some(d("o3.tar")),
            message: "example.com/cgo imports \"C\" (cgo), so the program cannot be built with CGO_ENABLED=0",
            code: 1,
        },
        Case {
            what: "compile error",
            args: [s(&["go", broken.to_str().unwrap()]), out("o8.tar")].concat(),
            path: Some(d("o8.tar")),
            message: "undefined: undefinedThing",
            code: 1,
        },
        Case {
            what: "not an ELF",
            args: [s(&["bin", &d("notes.txt")]), out("o4.tar")].concat(),
            path: Some(d("o4.tar")),
            message: "is not an ELF file",
            code: 1,
        },
        Case {
            what: "non-Linux ELF",
            args: [s(&["bin", &d("bsd-elf")]), out("o5.tar")].concat(),
            path: Some(d("o5.tar")),
            message: "is an ELF for FreeBSD, not Linux",
            code: 1,
        },
        Case {
            what: "unsupported ELF",
            args: [s(&["bin", &d("sparc-elf")]), out("o9.tar")].concat(),
            path: Some(d("o9.tar")),
            message: "is an ELF for an unsupported machine (SPARC)",
            code: 1,
        },
        Case {
            what: "truncated ELF",
            args: [s(&["bin", &d("truncated-elf")]), out("o10.tar")].concat(),
            path: Some(d("o10.tar")),
            message: "is a truncated or malformed ELF",
            code: 1,
        },
        Case {
            what: "output under a regular file",
            args: [s(&["bin", "/usr/bin/id"]), out("a-file/x.tar")].concat(),
            path: Some(d("a-file/x.tar")),
            message: "cannot write",
            code: 1,
        },
        Case {
            what: "output in an unwritable place",
            args: s(&["bin", "/usr/bin/id", "-o", "/proc/binpack-test.tar"]),
            path: Some("/proc/binpack-test.tar".into()),
            message: "cannot write /proc/binpack-test.tar: No such file or directory (os error 2)",
            code: 1,
        },
        Case {
            what: "scratch for a dynamic binary",
            args: [s(&["bin", "/usr/bin/id", "--base", "scratch"]), out("o6.tar")].concat(),
            path: Some(d("o6.tar")),
            message: "--base scratch cannot run this binary",
            code: 1,
        },
        Case {
            what: "usage: a base that is neither a name nor a reference",
            args: s(&["bin", "/usr/bin/id", "--base", "No Such Base"]),
            path: None,
            message: "(or one of auto, scratch, closure, alpine)",
            code: 2,
        },
        Case {
            what: "an interpreter that needs its standard library",
            args: [s(&["bin", "/usr/bin/python3"]), out("o11.tar")].concat(),
            path: Some(d("o11.tar")),
            message: "is the Python runtime, not a self-contained program: it needs its standard library (/usr/lib/python3",
            code: 1,
        },
        Case {
            what: "--add of a missing file",
            args: [s(&["bin", "/usr/bin/id", "--add", &d("nope:/etc/nope")]), out("o12.tar")].concat(),
            path: Some(d("o12.tar")),
            message: "nope: No such file or directory",
            code: 1,
        },
        Case {
            what: "--add over a file binpack writes",
            args: [s(&["bin", "/usr/bin/id", "--add", &format!("{}:/etc/passwd", d("notes.txt"))]), out("o13.tar")].concat(),
            path: Some(d("o13.tar")),
            message: "/etc/passwd is a file binpack writes itself",
            code: 1,
        },
        Case {
            what: "usage: --add to a relative path",
            args: s(&["bin", "/usr/bin/id", "--add", "notes.txt:etc/notes.txt"]),
            path: None,
            message: "DEST must be an absolute path in the image",
            code: 2,
        },
        Case {
            what: "usage: bad --env",
            args: s(&["bin", "/usr/bin/id", "--env", "NOEQUALS"]),
            path: None,
            message: "expected KEY=VALUE",
            code: 2,
        },
    ];
    for c in cases {
        let out = binpack()
            .args(&c.args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(c.code), "{}: {err}", c.what);
        assert!(err.contains(c.message), "{}: {err}", c.what);
        if c.code == 1 {
            let last = err.lines().last().unwrap_or("");
            assert!(
                last.starts_with("binpack: error: "),
                "{}: one clear last line: {err}",
                c.what
            );
        }
        if let Some(p) = c.path {
            assert!(!Path::new(&p).exists(), "{}: {p} left behind", c.what);
        }
        assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "{}", c.what);
        assert!(
            !dir.path().join("dist").exists(),
            "{}: dist/ created",
            c.what
        );
    }

    // go not on PATH, nor an engine for a toolchain container: say so, and how to get them.
    let out = binpack()
        .env("PATH", dir.path())
        .args(["go", &example("hello-http"), "-o", &d("o7.tar")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for want in [
        "go is not on PATH and neither docker nor podman is there",
        "install Go 1.21 or later",
        "or docker (apt-get install docker.io) or podman",
    ] {
        assert!(err.contains(want), "{want} not in {err}");
    }
    assert!(!Path::new(&d("o7.tar")).exists());
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    assert!(!dir.path().join("dist").exists());
}

#[test]
#[ignore = "needs go"]
fn default_output_and_inspect_report() {
    need(&["go"]);
    let dir = tempfile::tempdir().unwrap();
    // Default: dist/<name>.tar in the current directory, named <name>:latest.
    let s = pack_json(
        binpack()
            .current_dir(dir.path())
            .args(["go", &example("hello-http")]),
    );
    assert_eq!(s["output"], "dist/hello-http.tar");
    assert_eq!(s["reference"], "hello-http:latest");
    let archive = dir.path().join("dist/hello-http.tar");
    assert!(archive.is_file());
    assert_eq!(leftovers(&dir.path().join("dist")), Vec::<String>::new());

    // Human summary (on stderr) names the digest, base, sizes and output; stdout is the
    // reference with its digest alone, for scripts.
    let out = ok(binpack()
        .current_dir(dir.path())
        .args(["go", &example("hello-http"), "-q"]));
    let line = stdout(&out);
    assert!(
        line.starts_with("hello-http:latest@sha256:") && line.lines().count() == 1,
        "{line}"
    );
    let text = stderr(&out);
    for want in [
        "hello-http:latest  sha256:",
        "base       scratch: static binary",
        " compressed, ",
        " uncompressed (binary ",
        "output     dist/hello-http.tar",
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
    // Without -q, each stage is reported on stderr, and stdout keeps only the summary. The
    // layer was written by the builds above: this one takes it from the cache, and says so.
    let out = ok(binpack()
        .current_dir(dir.path())
        .args(["go", &example("hello-http"), "--json"]));
    let progress = stderr(&out);
    for stage in [
        "binpack: go build",
        "binpack: inspecting",
        "binpack: the layer is known (",
        "binpack: writing dist/hello-http.tar",
    ] {
        assert!(progress.contains(stage), "{stage} not in {progress}");
    }
    serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("stdout is the JSON alone");

    let bin = dir.path().join("hello");
    go_build(&repo().join("examples/hello-http"), &bin, false);
    let out = ok(binpack().arg("inspect").arg(&bin).arg("--json"));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["static"], true);
    assert!(j["interpreter"].is_null());
    assert_eq!(j["needed"], serde_json::json!([]));
    assert!(j["go"]["version"].as_str().unwrap().starts_with("go1."));
    assert_eq!(j["base"], "scratch");
    let out = ok(binpack().args(["inspect", "/usr/bin/id"]));
    let text = stdout(&out);
    assert!(text.contains("dynamic, glibc"), "{text}");
    assert!(text.contains("base: closure"), "{text}");
    assert!(text.contains("libc.so.6 => /"), "{text}");
    let j: serde_json::Value =
        serde_json::from_slice(&ok(binpack().args(["inspect", "/usr/bin/id", "--json"])).stdout)
            .unwrap();
    assert!(j["go"].is_null());
}

#[test]
#[ignore = "needs go and skopeo"]
fn cross_compiled_image_says_its_platform() {
    need(&["go", "skopeo"]);
    let dir = tempfile::tempdir().unwrap();
    let s = pack_example(
        "hello-http",
        dir.path(),
        "hello:arm64",
        &["--platform", "linux/arm64"],
    );
    // arm64 is spelled with its variant, as in every index.
    assert_eq!(s["platform"], "linux/arm64/v8");
    assert_eq!(s["linkage"]["go"]["settings"]["GOARCH"], "arm64");
    let out = ok(Command::new("skopeo").arg("inspect").arg(format!(
        "oci-archive:{}",
        dir.path().join("hello-http.tar").display()
    )));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["Architecture"], "arm64");
    assert_eq!(j["Digest"], s["digest"]);

    // The ELF header cannot tell arm v6 from v7: the image says what was built.
    let s = pack_example(
        "hello-http",
        dir.path(),
        "hello:armv6",
        &["--platform", "linux/arm/v6"],
    );
    assert_eq!(s["platform"], "linux/arm/v6");
    assert_eq!(s["linkage"]["go"]["settings"]["GOARM"], "6");
    // skopeo 1.9's summary has no variant: read the config.
    let out = ok(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!(
            "oci-archive:{}",
            dir.path().join("hello-http.tar").display()
        )));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (c["architecture"].as_str(), c["variant"].as_str()),
        (Some("arm"), Some("v6"))
    );
}

/// What the flags and the source put into the image config: user, env, Cmd, labels, created.
#[test]
#[ignore = "needs go"]
fn config_carries_user_env_cmd_labels_and_created() {
    need(&["go"]);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.tar");
    ok(binpack()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["go", &example("hello-http"), "-q", "--user", "1000:1000"])
        .args(["--env", "MODE=test", "--label", "team=ci", "-o"])
        .arg(&archive)
        .args(["--", "--verbose"]));
    let config = ArchiveFiles::open(&archive).config();
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    let c = &config["config"];
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/app/hello-http"]));
    assert_eq!(c["Cmd"], serde_json::json!(["--verbose"]));
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"MODE=test"), "{env:?}");
    assert!(
        env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
        "{env:?}"
    );
    let labels = &c["Labels"];
    assert_eq!(labels["team"], "ci");
    assert_eq!(labels["org.opencontainers.image.title"], "hello-http");
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    // The examples live in this repository: the revision is its commit, and without git (a
    // source tarball) there is no revision label rather than a wrong one.
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|h| h.status.success());
    match head {
        Some(h) => assert_eq!(
            labels["org.opencontainers.image.revision"],
            stdout(&h).trim()
        ),
        None => assert!(
            labels["org.opencontainers.image.revision"].is_null(),
            "{labels}"
        ),
    }
}

/// A Go program that prints New York's time of a fixed instant, or the error.
const TZ_MAIN: &str = r#"package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC).In(loc).Format("15:04 MST -0700"))
	b, _ := os.ReadFile("/etc/app/app.conf")
	fmt.Print(string(b))
}
"#;

/// (path, mode, uid, gid) of every entry of the archive's last layer.
fn app_layer_modes(archive: &Path) -> Vec<(String, u32, u64, u64)> {
    let files = ArchiveFiles::open(archive);
    let manifest = files.manifest();
    let layer = files.blob(&manifest["layers"].as_array().unwrap().last().unwrap()["digest"]);
    let mut inner = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let entries = inner.entries().unwrap();
    entries
        .map(|e| {
            let h = e.unwrap().header().clone();
            let path = h.path().unwrap().to_string_lossy().into_owned();
            (path, h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap())
        })
        .collect()
}

#[test]
#[ignore = "needs go and a Docker engine"]
fn time_zones_and_added_files_in_a_scratch_image() {
    need(&["go"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tz");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("go.mod"), "module example.com/tz\n\ngo 1.21\n").unwrap();
    std::fs::write(src.join("main.go"), TZ_MAIN).unwrap();
    // What --add ships: a file and a directory, modes as a user's umask left them.
    let conf = dir.path().join("app.conf");
    std::fs::write(&conf, "conf-reached\n").unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("sub/tool"), "#!/bin/sh\n").unwrap();
    std::fs::write(data.join("readme"), "r\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        data.join("sub/tool"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::set_permissions(data.join("readme"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let tag = "binpack-test/tz:it";
    let _cleanup = DockerCleanup(vec![tag.into()]);
    let adds = [
        "--add".to_string(),
        format!("{}:/etc/app/app.conf", conf.display()),
        "--add".to_string(),
        format!("{}:/usr/share/app", data.display()),
    ];
    let pack = |out: &str, extra: &[&str]| {
        json_of(
            binpack()
                .args([
                    "go",
                    src.to_str().unwrap(),
                    "--json",
                    "--quiet",
                    "-t",
                    tag,
                    "-o",
                ])
                .arg(dir.path().join(out))
                .args(&adds)
                .args(extra),
        )
    };
    let first = pack("a.tar", &[]);
    assert_eq!(first["base"], "scratch");
    // The same inputs, every layer compressed again: the same digest.
    let again = pack("b.tar", &["--no-layer-cache"]);
    assert_eq!(first["digest"], again["digest"]);

    let entries = app_layer_modes(&dir.path().join("a.tar"));
    let find = |p: &str| {
        entries
            .iter()
            .find(|e| e.0 == p)
            .unwrap_or_else(|| panic!("{p} not in {entries:?}"))
    };
    assert_eq!(find("etc/app/app.conf").1, 0o644);
    assert_eq!(find("usr/share/app/").1, 0o755);
    assert_eq!(find("usr/share/app/readme").1, 0o644);
    assert_eq!(find("usr/share/app/sub/tool").1, 0o755);
    assert_eq!(find("etc/nsswitch.conf").1, 0o644);
    for (path, _, uid, gid) in &entries {
        if !path.starts_with("home/nonroot") {
            assert_eq!((*uid, *gid), (0, 0), "{path}");
        }
    }

    ok(Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(dir.path().join("a.tar")));
    let run = || {
        Command::new("docker")
            .args(["run", "--rm", "--network", "none", tag])
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "08:00 EDT -0400\nconf-reached\n");

    // --no-tzdata leaves the zone data out: scratch then has none.
    let lean = pack("c.tar", &["--no-tzdata"]);
    assert!(
        lean["size"]["uncompressed"].as_u64().unwrap() + 300_000
            < first["size"]["uncompressed"].as_u64().unwrap(),
        "{lean} vs {first}"
    );
    ok(Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(dir.path().join("c.tar")));
    let out = run();
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("unknown time zone America/New_York"),
        "{}",
        stdout(&out)
    );
}

#[test]
#[ignore = "needs go and Debian's golang-github-mattn-go-sqlite3-dev"]
fn a_cgo_stub_is_refused_naming_the_package_and_cgo() {
    need(&["go"]);
    // A real program on a driver whose `!cgo` stub builds and then fails every call with
    // "... go-sqlite3 requires cgo to work. This is a stub" (Debian's 1.14.16~ds1-1,
    // pinned in scripts/install-deps.sh).
    let package = "github.com/mattn/go-sqlite3/_example/simple";
    assert!(
        Path::new("/usr/share/gocode/src").join(package).is_dir(),
        "{package} is missing: run scripts/install-deps.sh all"
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("simple.tar");
    let out = binpack()
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env_remove("GOFLAGS")
        .args(["go", package, "-o"])
        .arg(&archive)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or("");
    for want in [
        "binpack: error: github.com/mattn/go-sqlite3 (cgo files ",
        "has cgo code that CGO_ENABLED=0 leaves out",
        "`binpack go --cgo`",
        "or use a pure-Go package instead",
    ] {
        assert!(last.contains(want), "{want:?} not in the last line: {err}");
    }
    assert!(!archive.exists(), "{} written", archive.display());
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    assert!(!dir.path().join("dist").exists());
}
