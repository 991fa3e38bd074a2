//! The `cargo xtask` commands, one module each: flags, the calls into the library modules, what is printed. A
//! command names no other command (`xtask/tests/layering.rs` checks it); what two commands share is a library.
pub mod bench;
pub mod bundle;
pub mod catalog;
pub mod cluster;
pub mod demo;
pub mod deny;
pub mod examples;
pub mod image;
pub mod manifests;
pub mod prometheus;
pub mod scorecard;
pub mod simulator;
pub mod validate;
