//! The ELF reader: any bytes give a Linkage or an InspectError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = binpack::inspect::inspect_bytes(data, Path::new("fuzz.elf"));
});
