//! The packaging model, one way from the code to the images: [`manifests`] (the objects of config/) -> [`csv`] (a
//! release's ClusterServiceVersion) -> [`bundle`] (the registry+v1 bundle) -> [`catalog`] (added to the file-based
//! catalog, [`fbc`], checked by [`graph`]) -> [`images`]; [`examples`], [`scorecard`] and [`schema_check`] beside
//! them, and [`validate`] (drift and the ecosystem's validators) over all of it. Each module is a library: the
//! commands that write these files are in [`crate::commands`].
pub mod bundle;
pub mod catalog;
pub mod csv;
pub mod examples;
pub mod fbc;
pub mod graph;
pub mod images;
pub mod manifests;
pub mod monitoring;
pub mod schema_check;
pub mod scorecard;
pub mod validate;
