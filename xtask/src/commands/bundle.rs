//! `cargo xtask bundle`: the OLM bundle of a release ([`crate::packaging::bundle`]).
use std::path::Path;

use anyhow::Result;

pub use crate::packaging::bundle::BundleArgs;

pub fn run(root: &Path, args: &BundleArgs) -> Result<()> {
    crate::packaging::bundle::write(root, args)
}
