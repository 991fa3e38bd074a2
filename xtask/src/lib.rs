//! Project tasks, run as `cargo xtask <task>`: the [`commands`] over the library modules:
//! - [`packaging`]: manifests, CSV, bundle, catalog, examples, images, validation, scorecard (one-way, see there);
//! - [`image`]: OCI images in Rust (the definitions, the Dockerfiles, layers, registry);
//! - [`olm`]: this repository's package on the OLM-on-the-plane of `ako_testbed::olm`;
//! - [`operator_build`]: the one build of the operator binary; [`deny`]: the supply-chain check;
//! - [`project`] and [`out`]: the names every artifact shares, reading and writing files.
//!
//! `cluster` and `simulator` are commands over the `ako-testbed` and `ako-simulator` crates; `tools` is
//! `ako_testbed::tools`'s command.
pub mod commands;
pub mod deny;
pub mod image;
pub mod olm;
pub mod operator_build;
pub mod out;
pub mod packaging;
pub mod project;
