//! The documents a registry sends for a base image (index, manifest, config), as a pull reads
//! them: a refusal, never a panic.
#![no_main]

use binpack::platform::Platform;
use binpack::registry::pull::read_document;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let platform = Platform::parse("linux/arm/v7").expect("a platform");
    let _ = read_document(data, &platform);
});
