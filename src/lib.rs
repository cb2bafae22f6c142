//! binpack turns a program into the smallest container image that runs it.
//!
//! The pipeline, one folder per stage, data flowing one way:
//! `build` (a [`build::Builder`] per language) -> [`build::Artifact`] -> `elf` (inspect) ->
//! [`elf::inspect::Linkage`] -> `base` (choose, then resolve: closure or pulled image) ->
//! `image` (the app's files, layers, config, manifest or index) -> `emit` (archive, layout,
//! engine, registry) -> `pack::summary`; `pack` is the script that runs them. `registry` is
//! the OCI distribution client (pull for `base`, push for `emit`), `sbom` what scanners read,
//! `support` what every stage uses, `sea` Node's single executables, `cli` the command line.
//!
//! Foreign programs run in three places only: `build` (toolchains, git, and the container
//! engines that host them), `emit`'s load (`docker load` / `podman load`) and the registry
//! client's credential helpers (`docker-credential-*`, only when a registry asks for
//! credentials). Everything else is Rust over bytes.

pub mod base;
pub mod build;
pub mod elf;
pub mod emit;
pub mod image;
pub mod pack;
pub mod registry;
pub mod sbom;
pub mod sea;
pub mod support;

// The modules' earlier flat paths, for the tests, benches and fuzz targets that name them;
// binpack's own code names the folders.
pub use base::{choose, closure, packages, rootfs, zoneinfo};
pub use elf::{goinfo, inspect, interpreters, read as elf_read};
pub use image::{addfiles, appfiles, compress, layer, layers, runconfig};
pub use pack::summary;
pub use registry::reference;
pub use support::{
    bounded, cache, cache_dir, cleanup, digest, engine, platform, printable, progress,
};
