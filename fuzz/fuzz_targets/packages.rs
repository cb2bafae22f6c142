//! The package databases of a root: dpkg's `status` with an `info/*.list`, and apk's
//! `installed`, as binpack reads them for the SBOM. The input is split at NUL bytes into the
//! files; each root is made and removed per input.
#![no_main]

use binpack::packages::Db;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let (status, list, installed) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let wanted = ["/usr/bin/app".to_string(), "/lib/libc.so.6".to_string()];
    let dpkg = tempfile::tempdir().expect("a temporary directory");
    let info = dpkg.path().join("var/lib/dpkg/info");
    std::fs::create_dir_all(&info).expect("mkdir");
    std::fs::write(dpkg.path().join("var/lib/dpkg/status"), status).expect("write");
    std::fs::write(info.join("app.list"), list).expect("write");
    std::fs::write(info.join("app:amd64.list"), list).expect("write");
    let db = Db::open(dpkg.path(), &wanted);
    for w in &wanted {
        let _ = db.owner(w);
    }
    let apk = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir_all(apk.path().join("lib/apk/db")).expect("mkdir");
    std::fs::write(apk.path().join("lib/apk/db/installed"), installed).expect("write");
    let db = Db::open(apk.path(), &wanted);
    for w in &wanted {
        let _ = db.owner(w);
    }
});
