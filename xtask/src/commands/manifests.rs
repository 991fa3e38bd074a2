//! `cargo xtask manifests`: config/ and scorecard/ ([`crate::packaging::manifests`]), and the editable CSV base
//! (config/manifests/csv-base.yaml), written once and then kept as edited.
use std::path::Path;

use anyhow::Result;

use crate::out::{self, Staged};
use crate::packaging::{csv, manifests, monitoring};
use crate::project::paths;

#[derive(clap::Args, Debug, Default)]
pub struct ManifestsArgs {
    /// Rewrite config/manifests/csv-base.yaml from the built-in defaults (it is otherwise kept as edited).
    #[arg(long)]
    pub reset_csv_base: bool,
}

pub fn run(root: &Path, args: &ManifestsArgs) -> Result<()> {
    let mut staged = Staged::new(root);
    manifests::generate(&mut staged)?;
    monitoring::generate(&mut staged)?;
    let base = root.join(paths::CSV_BASE);
    if args.reset_csv_base || !base.exists() {
        staged.file(paths::CSV_BASE, out::to_yaml(&csv::default_base())?);
    } else {
        // An edited base must still parse: fail here rather than at `bundle` time.
        csv::read_base(root)?;
    }
    let count = staged.files().len();
    staged.commit()?;
    eprintln!("manifests: wrote {count} files under config/");
    Ok(())
}
