//! `cargo xtask validate`: our checks of config/, bundle/ and catalog/, then the ecosystem's own validators
//! (operator-sdk, opm) when they are built (or always, with --real).
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::packaging::validate::{self, catalog_entry_image_less, operator_sdk_validate, opm_render, opm_validate};
use crate::project::paths;
use ako_testbed::tools::{self, Tool};

#[derive(clap::Args, Debug, Default)]
pub struct ValidateArgs {
    /// Build operator-sdk and opm first if they are not in the tool cache yet (slow the first time).
    #[arg(long)]
    pub real: bool,
    /// Do not run operator-sdk and opm even when they are built.
    #[arg(long, conflicts_with = "real")]
    pub no_real: bool,
}

fn tool(tool: Tool, build: bool) -> Result<Option<PathBuf>> {
    if build { tools::ensure(tool).map(Some) } else { Ok(tools::installed(tool)) }
}

pub fn run(root: &Path, args: &ValidateArgs) -> Result<()> {
    let problems = validate::our_checks(root)?;
    let bundle_dir = root.join(paths::BUNDLE);
    println!("our checks: {}", if problems.is_empty() { "pass" } else { "FAIL" });
    for p in &problems {
        println!("    {p}");
    }

    let mut real_failures = Vec::new();
    if !args.no_real {
        match tool(Tool::OperatorSdk, args.real)? {
            Some(sdk) => match operator_sdk_validate(&sdk, &bundle_dir) {
                Ok(text) => println!(
                    "operator-sdk bundle validate --select-optional suite=operatorframework: pass\n    {}",
                    text.trim()
                ),
                Err(e) => real_failures.push(e.to_string()),
            },
            None => println!("operator-sdk: not built (`cargo xtask tools install operator-sdk`, or --real); skipped"),
        }
        match tool(Tool::Opm, args.real)? {
            Some(opm) => {
                match opm_validate(&opm, &root.join(paths::CATALOG)) {
                    Ok(_) => println!("opm validate catalog: pass"),
                    Err(e) => real_failures.push(e.to_string()),
                }
                let ours = catalog_entry_image_less(root, &bundle_dir);
                match (opm_render(&opm, &bundle_dir), ours) {
                    (Ok(theirs), Ok(ours)) if theirs == ours => {
                        println!("opm render bundle/: equals the catalog's entry")
                    }
                    (Ok(_), Ok(ours)) => {
                        real_failures.push(format!("opm render bundle/ differs from the catalog's {}", ours.name))
                    }
                    (Err(e), _) | (_, Err(e)) => real_failures.push(e.to_string()),
                }
            }
            None => println!("opm: not built (`cargo xtask tools install opm`, or --real); skipped"),
        }
    }
    for f in &real_failures {
        println!("FAIL {f}");
    }
    if !problems.is_empty() || !real_failures.is_empty() {
        bail!(
            "validate: {} problem(s) in our checks, {} real validator failure(s)",
            problems.len(),
            real_failures.len()
        );
    }
    println!("validate: pass");
    Ok(())
}
