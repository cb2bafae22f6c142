//! What every stage uses and no stage owns: binpack's cache directory and its entries
//! (`cache`), temporaries cleaned up on exit or signal (`cleanup`), digests, the container
//! engines on PATH (`engine`), platforms, escaping untrusted text for a terminal
//! (`printable`) and the progress interface. Depends on no stage.

pub mod bounded;
pub mod cache;
pub mod cache_dir;
pub mod cleanup;
pub mod config_toml;
pub mod digest;
pub mod engine;
pub mod platform;
pub mod printable;
pub mod progress;
