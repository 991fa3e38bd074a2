//! Project tasks, run as `cargo xtask <task>`: the packaging (manifests, CSV, bundle, catalog, examples, images,
//! validation, scorecard, supply chain) and the commands over the test bed: `cluster` and `simulator` (over the
//! `ako-testbed` and `ako-simulator` crates), `demo`, `bench`. `tools` is `ako_testbed::tools`'s command.
//! [`olm`] adds this repository's package to the OLM-on-the-plane of `ako_testbed::olm`.
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
