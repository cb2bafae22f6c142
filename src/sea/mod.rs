//! Node single executable applications (SEA), natively: the preparation blob ([`blob`]) and
//! its append-only injection into a copy of the node binary ([`inject`]), with no postject,
//! no LIEF and no node process.

pub mod blob;
pub mod inject;
