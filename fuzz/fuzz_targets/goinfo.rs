//! The Go build-info decoder, both ways in: as the `.go.buildinfo` section's bytes and as a
//! whole stripped file scanned for the magic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = binpack::goinfo::decode(Some(data), data);
    let _ = binpack::goinfo::decode(None, data);
});
