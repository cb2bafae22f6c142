//! Time zone files for programs that read them from the system: coreutils' `date` (glibc's
//! localtime) gets the root's /usr/share/zoneinfo in its scratch-closure image, with the
//! tzdata package for scanners; `id`, which reads none, gets none.

mod common;

use common::*;
use std::process::Command;

/// The paths in a gzip layer.
fn entries(blob: &[u8]) -> Vec<String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    let entries = tar.entries().unwrap();
    entries
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
#[ignore = "needs a Docker engine"]
fn date_reads_the_zone_files_binpack_adds_and_id_gets_none() {
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let tag = "binpack-test/date:tz";
    let _cleanup = DockerCleanup(vec![tag.into()]);
    let archive = dir.path().join("date.tar");
    ok(binpack()
        .env("BINPACK_CACHE", dir.path().join("cache"))
        .args(["bin", "/usr/bin/date", "-t", tag, "-o"])
        .arg(&archive));
    ok(Command::new("docker").arg("load").arg("-qi").arg(&archive));
    let run = |tz: &str, args: &[&str]| {
        let out = ok(Command::new("docker")
            .args(["run", "--rm", "-e", &format!("TZ={tz}"), tag])
            .args(args));
        stdout(&out).trim().to_string()
    };
    // Half an hour off UTC, and summer time in Paris: both need the zone files.
    assert_eq!(
        run("Asia/Kolkata", &["-d", "@0", "+%F %R %Z"]),
        "1970-01-01 05:30 IST"
    );
    assert_eq!(
        run("Europe/Paris", &["-d", "@1690000000", "+%R %Z"]),
        "06:26 CEST"
    );

    let names = |archive: &std::path::Path| -> Vec<String> {
        let files = ArchiveFiles::open(archive);
        let layers = files.manifest()["layers"].as_array().unwrap().clone();
        layers
            .iter()
            .flat_map(|l| entries(files.blob(&l["digest"])))
            .collect()
    };
    let date = names(&archive);
    assert!(
        date.iter().any(|n| n == "usr/share/zoneinfo/Asia/Kolkata"),
        "{date:?}"
    );
    assert!(
        date.iter().any(|n| n == "var/lib/dpkg/status.d/tzdata"),
        "{date:?}"
    );
    assert!(
        !date
            .iter()
            .any(|n| n.starts_with("usr/share/zoneinfo/right/")),
        "{date:?}"
    );

    let id = dir.path().join("id.tar");
    ok(binpack()
        .env("BINPACK_CACHE", dir.path().join("cache"))
        .args(["bin", "/usr/bin/id", "-o"])
        .arg(&id));
    assert!(!names(&id).iter().any(|n| n.contains("zoneinfo")));
}
