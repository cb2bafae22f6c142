//! A root's `/etc/ld.so.conf` with `include` lines (globs, relative and absolute, files that
//! include each other). The input is split at NUL bytes into ld.so.conf and three included
//! files; the root is made and removed per input.
#![no_main]

use binpack::closure::ld_so_conf_dirs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let root = tempfile::tempdir().expect("a temporary directory");
    let etc = root.path().join("etc");
    std::fs::create_dir_all(etc.join("ld.so.conf.d")).expect("mkdir");
    let names = [
        "ld.so.conf",
        "ld.so.conf.d/a.conf",
        "ld.so.conf.d/b.conf",
        "other.conf",
    ];
    for (name, text) in names.iter().zip(data.split(|b| *b == 0)) {
        std::fs::write(etc.join(name), text).expect("write");
    }
    let _ = ld_so_conf_dirs(root.path());
});
