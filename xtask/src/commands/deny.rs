//! `cargo xtask deny`: [`crate::deny`]'s check of the dependency tree, reported.
use std::path::Path;

use anyhow::Result;

use crate::deny::{Advisories, check};

/// Entry point of `cargo xtask deny`.
pub fn run(root: &Path) -> Result<()> {
    let report = check(root)?;
    let warnings = report.tree.lines().filter(|l| l.starts_with("warning[")).count();
    println!("deny: licences, bans and sources pass ({warnings} warnings: duplicate versions)");
    match report.advisories {
        Advisories::Checked(_) => println!("deny: advisories pass"),
        Advisories::Skipped(why) => println!("deny: advisories SKIPPED: {why}"),
    }
    Ok(())
}
