//! binpack turns a program into the smallest container image that runs it.
//!
//! The pipeline, one module per stage, data flowing one way:
//! `build` -> [`build::Artifact`] -> `inspect` -> [`inspect::Linkage`] -> `choose` ->
//! [`choose::Choice`] -> `base` -> [`base::ResolvedBase`] -> `appfiles` ->
//! [`appfiles::AppFiles`] -> `layers` -> [`layer::LayerStats`] -> `runconfig` ->
//! [`runconfig::RunConfig`] -> `image` -> [`image::Packed`] -> `emit` -> `summary`;
//! `pack` is the script that runs them.
//!
//! Foreign programs run in three places only: `build` (toolchains, git, and the container
//! engines that host them), `emit`'s load (`docker load` / `podman load`) and the registry
//! client's credential helpers (`docker-credential-*`, only when a registry asks for
//! credentials). Everything else is Rust over bytes.

pub mod addfiles;
pub mod appfiles;
pub mod base;
pub mod bounded;
pub mod build;
pub mod cache;
pub mod cache_dir;
pub mod choose;
pub mod cleanup;
pub mod closure;
pub mod compress;
pub mod digest;
pub mod elf_read;
pub mod emit;
pub mod engine;
pub mod goinfo;
pub mod image;
pub mod inspect;
pub mod interpreters;
pub mod layer;
pub mod layers;
pub mod pack;
pub mod packages;
pub mod platform;
pub mod printable;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod runconfig;
pub mod sbom;
pub mod sea;
pub mod summary;
pub mod zoneinfo;
