//! binpack turns a program into the smallest container image that runs it.
//!
//! The pipeline, one module per stage, data flowing one way:
//! `build` -> [`build::Artifact`] -> `inspect` -> [`inspect::Linkage`] -> `choose` ->
//! [`choose::Choice`] -> `layer` -> [`layer::LayerBlob`] -> `image` -> [`image::Image`] -> `emit`.
//! Only `build` runs foreign programs; everything after it is pure Rust over bytes.

pub mod build;
pub mod cache;
pub mod choose;
pub mod cleanup;
pub mod closure;
pub mod emit;
pub mod engine;
pub mod goinfo;
pub mod image;
pub mod inspect;
pub mod layer;
pub mod pack;
pub mod platform;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod sea;
