//! OCI images in Rust, without Docker, byte for byte reproducible (fixed times and owners, sorted entries,
//! canonical JSON): layers, image config and manifest, the OCI image layout, registry push and pull, the ELF
//! static check, and the image definitions ([`spec`]) the builder and the Dockerfiles ([`dockerfile`]) share.
//! What goes into this repository's images is [`crate::packaging::images`]; `cargo xtask image` is its command.
pub mod dockerfile;
pub mod elf;
pub mod layer;
pub mod oci;
pub mod registry;
pub mod spec;

pub use spec::*;
