//! `cargo xtask examples`: the OLM install examples ([`crate::packaging::examples`]).
use std::path::Path;

use anyhow::Result;

pub fn run(root: &Path) -> Result<()> {
    crate::packaging::examples::write(root)
}
