//! The CI examples (examples/ci/), run as written: the script lines of the GitHub Actions
//! workflow and of the GitLab CI job, with the binpack under test installed where their
//! install step would put it, against a distribution registry on 127.0.0.1 that wants the
//! credentials the job writes. Each must push two tags and print the digest.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// The `run:` blocks of a workflow's steps: (step name, working directory, script).
fn github_runs(yaml: &str) -> Vec<(String, Option<String>, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut steps = Vec::new();
    let (mut name, mut workdir) = (String::new(), None);
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        if let Some(n) = t
            .strip_prefix("- name: ")
            .or_else(|| t.strip_prefix("- uses: "))
        {
            (name, workdir) = (n.to_string(), None);
        } else if let Some(d) = t.strip_prefix("working-directory: ") {
            workdir = Some(d.to_string());
        } else if t == "run: |" {
            let indent = lines[i].len() - t.len();
            let mut script = String::new();
            while i + 1 < lines.len()
                && lines[i + 1].len() - lines[i + 1].trim_start().len() > indent
            {
                i += 1;
                script.push_str(lines[i].trim_start());
                script.push('\n');
            }
            steps.push((name.clone(), workdir.clone(), script));
        } else if let Some(cmd) = t.strip_prefix("run: ") {
            steps.push((name.clone(), workdir.clone(), format!("{cmd}\n")));
        }
        i += 1;
    }
    steps
}

/// The `script:` items of one GitLab job, as one shell script.
fn gitlab_script(yaml: &str, job: &str) -> String {
    let start = yaml.find(&format!("\n{job}:\n")).expect("the job");
    let body = &yaml[start + job.len() + 3..];
    let script = &body[body.find("  script:\n").expect("a script") + 10..];
    let mut out = String::new();
    for l in script.lines() {
        match l.strip_prefix("    - ") {
            Some(cmd) => out.push_str(&format!("{cmd}\n")),
            None if l.trim_start().starts_with('#') => {}
            None => break,
        }
    }
    out
}

/// Whether a line that is not a comment installs the unrelated crate called binpack.
fn installs_the_wrong_crate(yaml: &str) -> bool {
    (yaml.lines())
        .filter(|l| !l.trim_start().starts_with('#'))
        .any(|l| l.contains("cargo install binpack"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "node_modules" && e.file_name() != "dist" {
                copy_dir(&e.path(), &dest);
            }
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A directory holding `binpack` (the one under test), as an install step leaves it.
fn install_binpack(bin: &Path) {
    std::fs::create_dir_all(bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_binpack"), bin.join("binpack")).unwrap();
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// A shell for a job: no Docker config, cache or SOURCE_DATE_EPOCH of the caller's.
fn job_shell(shell: &str, script: &str, cwd: &Path, home: &Path) -> Command {
    // Go's build cache stays the caller's: a cold one only makes the test slow.
    let gocache = stdout(&ok(Command::new("go").args(["env", "GOCACHE"])));
    let mut c = Command::new(shell);
    c.env("GOCACHE", gocache.trim())
        .args(["-e", "-c", script])
        .current_dir(cwd)
        .env("HOME", home)
        .env("BINPACK_CACHE", home.join("cache"))
        .env_remove("DOCKER_CONFIG")
        .env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Both tags name the same manifest, whose digest the job printed.
fn assert_pushed(refs: &[String], printed: &str, creds: &str) {
    let mut digests = Vec::new();
    for r in refs {
        let out = ok(Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--creds", creds])
            .arg(format!("docker://{r}")));
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        digests.push(j["Digest"].as_str().unwrap().to_string());
    }
    assert_eq!(digests[0], digests[1], "{refs:?}");
    assert!(
        printed.contains(&digests[0]),
        "{} not in {printed}",
        digests[0]
    );
    for r in refs {
        assert!(
            printed.contains(&format!("{r}@{}", digests[0])),
            "{r} not in {printed}"
        );
    }
}

#[test]
#[ignore = "needs go, docker-registry, htpasswd and skopeo"]
fn the_github_workflow_pushes_two_tags_and_prints_the_digest() {
    need(&["go", "docker-registry", "htpasswd", "skopeo"]);
    let reg = Registry::start(Some(("ci", "s3cret")));
    let yaml = std::fs::read_to_string(repo().join("examples/ci/release.yml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    copy_dir(&repo().join("examples"), &work.join("examples"));
    let bin = dir.path().join("cargo-bin");
    install_binpack(&bin);
    let output_file = dir.path().join("github-output");
    let mut printed = String::new();
    let mut digest = String::new();
    let steps = github_runs(&yaml);
    assert!(steps
        .iter()
        .any(|s| s.0 == "Install binpack" && s.2.contains("cargo install --locked --git")));
    assert!(!installs_the_wrong_crate(&yaml));
    for (name, workdir, script) in steps.iter().filter(|s| s.0 != "Install binpack") {
        let script = script.replace("${{ steps.image.outputs.digest }}", &digest);
        assert!(
            !script.contains("${{"),
            "{name}: an expression the test does not know: {script}"
        );
        let cwd = workdir.as_ref().map_or(work.clone(), |d| work.join(d));
        let out = job_shell("bash", &script, &cwd, dir.path())
            .env("PATH", path_with(&bin))
            .env("REGISTRY", reg.host())
            .env("REGISTRY_USER", "ci")
            .env("REGISTRY_PASSWORD", "s3cret")
            .env("GITHUB_REPOSITORY", "Binpack-Test/Demo")
            .env("GITHUB_REF_NAME", "v1.0.0")
            .env("GITHUB_OUTPUT", &output_file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "step {name} failed:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        printed.push_str(&stdout(&out));
        let outputs = std::fs::read_to_string(&output_file).unwrap_or_default();
        if let Some(d) = outputs.lines().find_map(|l| l.strip_prefix("digest=")) {
            digest = d.to_string();
        }
    }
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert!(printed.contains(&format!("pushed {digest}")), "{printed}");
    let image = format!("{}/binpack-test/demo/hello-http", reg.host());
    assert_pushed(
        &[format!("{image}:v1.0.0"), format!("{image}:latest")],
        &printed,
        "ci:s3cret",
    );
}

#[test]
#[ignore = "needs go, docker-registry, htpasswd and skopeo"]
fn the_gitlab_job_pushes_two_tags_and_prints_the_digest() {
    need(&["go", "docker-registry", "htpasswd", "skopeo"]);
    let reg = Registry::start(Some(("gitlab-ci-token", "t0ken")));
    let yaml = std::fs::read_to_string(repo().join("examples/ci/gitlab-ci.yml")).unwrap();
    assert!(yaml.contains("cargo install --locked --git") && !installs_the_wrong_crate(&yaml));
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    copy_dir(&repo().join("examples"), &work.join("examples"));
    // What the binpack job leaves as its artifact.
    install_binpack(&work.join("tools/bin"));
    let image = format!("{}/group/project", reg.host());
    let out = job_shell(
        "sh",
        &gitlab_script(&yaml, "release-image"),
        &work,
        dir.path(),
    )
    .env("CI_REGISTRY", reg.host())
    .env("CI_REGISTRY_USER", "gitlab-ci-token")
    .env("CI_REGISTRY_PASSWORD", "t0ken")
    .env("CI_REGISTRY_IMAGE", &image)
    .env("CI_COMMIT_TAG", "v1.0.0")
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "the job failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let printed = stdout(&out);
    assert!(printed.contains("digest sha256:"), "{printed}");
    let image = format!("{image}/hello-http");
    assert_pushed(
        &[format!("{image}:v1.0.0"), format!("{image}:latest")],
        &printed,
        "gitlab-ci-token:t0ken",
    );
}
