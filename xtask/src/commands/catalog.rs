//! `cargo xtask catalog`: bundle/ added to the file-based catalog ([`crate::packaging::catalog`]).
use std::path::Path;

use anyhow::Result;

use crate::packaging::catalog::{self, CatalogArgs};

/// `cargo xtask catalog`'s flags: [`CatalogArgs`] and the bundle image of the release.
#[derive(clap::Args, Debug, Default)]
pub struct CatalogCommand {
    #[command(flatten)]
    pub args: CatalogArgs,
    /// The pushed bundle image of this release by digest (`REPOSITORY@sha256:...`, as `cargo xtask image bundle
    /// --push` prints it): what a production catalog serves. Default: the image the catalog already names for this
    /// release, else the tag `<bundle repository>:v<version>`.
    #[arg(long, value_name = "REF@sha256:DIGEST", conflicts_with = "manifests_only")]
    pub bundle_image: Option<String>,
}

pub fn run(root: &Path, command: &CatalogCommand) -> Result<()> {
    catalog::write(root, &command.args, command.bundle_image.as_deref())
}
