//! `cargo xtask scorecard`: the scorecard tests' static checks against bundle/ (no cluster needed).
use std::path::Path;

use anyhow::{Result, bail};

use crate::packaging::bundle::{self, scorecard_checks as scorecard};
use crate::project::paths;

pub fn run(root: &Path) -> Result<()> {
    let contents = bundle::read_dir(&root.join(paths::BUNDLE))?;
    let results = scorecard::check(&contents);
    let mut failed = 0;
    for r in &results {
        let state = if r.errors.is_empty() { "pass" } else { "fail" };
        println!("{:<28} {state}", r.test);
        for e in &r.errors {
            println!("    {e}");
        }
        failed += usize::from(!r.errors.is_empty());
    }
    if failed > 0 {
        bail!("scorecard: {failed} of {} tests failed", results.len());
    }
    println!("scorecard: all {} tests pass (static checks of bundle/, no cluster)", results.len());
    Ok(())
}
