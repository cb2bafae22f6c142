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
