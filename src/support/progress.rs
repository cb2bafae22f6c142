//! Progress of the long steps, reported by every stage and shown by the CLI.

/// Where stages report what they are doing.
pub trait Progress {
    fn stage(&self, message: &str);
    /// `done` of `total` bytes of the current stage.
    fn bytes(&self, _done: u64, _total: u64) {}
    fn finish_stage(&self) {}
}

/// A progress sink that shows nothing.
pub struct Silent;
impl Progress for Silent {
    fn stage(&self, _: &str) {}
}

/// `bytes` for people: `512 B`, `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
