//! Project tasks, run as `cargo xtask <task>`.
pub mod tools;

pub mod bench;
pub mod bundle;
pub mod catalog;
pub mod cluster;
pub mod csv;
pub mod demo;
pub mod deny;
pub mod examples;
pub mod graph;
pub mod image;
pub mod manifests;
pub mod olm;
pub mod out;
pub mod project;
pub mod schema_check;
pub mod scorecard;
pub mod simulator;
pub mod templates;
pub mod validate;
