//! The image reference parsers (names and pinned references), and what is made of a parsed one.
#![no_main]

use binpack::reference::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for r in [Reference::parse(s), Reference::parse_pinned(s)]
        .into_iter()
        .flatten()
    {
        let _ = (r.qualified(), r.repository_path());
    }
});
