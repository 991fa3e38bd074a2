//! The last step of the packaging flow: this repository's OCI images (operator, bundle, catalog, opm base) built
//! from their definitions ([`crate::image::spec`]) with the OCI machinery of [`crate::image`].
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{bundle, validate};
use crate::image::elf;
use crate::image::layer::{Layer, Tree};
use crate::image::oci::{self, Image};
use crate::image::spec::*;
use crate::project::{self, paths};
use ako_testbed::tools::{self, Tool};

fn rfc3339(epoch: u64) -> Result<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch as i64).context("SOURCE_DATE_EPOCH out of range")?;
    Ok(crate::out::rfc3339(t))
}

fn lines(l: &[&str]) -> Vec<u8> {
    l.iter().flat_map(|x| format!("{x}\n").into_bytes()).collect()
}

/// /tmp (1777) and the user files.
fn base_files(tree: &mut Tree) -> Result<()> {
    tree.dir("tmp", 0o1777, (0, 0))?;
    tree.file("etc/passwd", 0o644, (0, 0), lines(PASSWD))?;
    tree.file("etc/group", 0o644, (0, 0), lines(GROUP))?;
    Ok(())
}

fn single_layer(tree: &Tree, spec: &Spec, base: Option<&Image>, what: &str) -> Result<Image> {
    let epoch = source_date_epoch()?;
    let layer = Layer::from_tree(tree, epoch)?;
    oci::build(base, vec![layer], &spec.runtime, &rfc3339(epoch)?, &format!("cargo xtask image {what}"))
}

fn copies(root: &Path, spec: &Spec, tree: &mut Tree) -> Result<()> {
    for c in &spec.copies {
        tree.copy_dir(&root.join(&c.from), &c.to)?;
    }
    Ok(())
}

/// The operator image from an already built binary.
pub fn operator_image(root: &Path, binary: &Path) -> Result<Image> {
    let spec = operator_spec(&project::workspace_version());
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    elf::check_static(&data, &binary.display().to_string())?;
    let license = root.join(LICENSE_FILE);
    let license = std::fs::read(&license)
        .with_context(|| format!("reading {} (the licence the image ships under {LICENSE_DEST})", license.display()))?;
    let mut tree = Tree::default();
    base_files(&mut tree)?;
    tree.file(OPERATOR_BINARY, 0o755, (0, 0), data)?;
    tree.file(LICENSE_DEST, 0o644, (0, 0), license)?;
    single_layer(&tree, &spec, None, "operator")
}

/// The bundle image of bundle/.
pub fn bundle_image(root: &Path) -> Result<(Image, String)> {
    let dir = root.join(paths::BUNDLE);
    let contents = bundle::read_dir(&dir)?;
    let labels = bundle::annotations(&contents.channels, &contents.default_channel);
    if labels != contents.annotations {
        bail!("{}/metadata/annotations.yaml differs from what `cargo xtask bundle` writes; rerun it", paths::BUNDLE);
    }
    let version = contents.csv["spec"]["version"].as_str().unwrap_or_default().to_string();
    let spec = bundle_spec(&labels);
    let mut tree = Tree::default();
    copies(root, &spec, &mut tree)?;
    Ok((single_layer(&tree, &spec, None, "bundle")?, format!("v{version}")))
}

/// The opm base image, from the pinned opm built without cgo.
pub fn opm_base_image() -> Result<Image> {
    let opm = tools::ensure_static(Tool::Opm)?;
    let data = std::fs::read(&opm).with_context(|| format!("reading {}", opm.display()))?;
    elf::check_static(&data, &opm.display().to_string())?;
    let mut tree = Tree::default();
    base_files(&mut tree)?;
    tree.file(OPM_BINARY, 0o755, (0, 0), data)?;
    single_layer(&tree, &opm_base_spec(), None, "opm-base")
}

/// The catalog image: the file-based catalog in `catalog_dir` (the repository's catalog/ for `cargo xtask image
/// catalog`) on `base`, after `opm validate` accepts it (what baking the serving cache used to check).
pub fn catalog_image(catalog_dir: &Path, base: &Image) -> Result<Image> {
    let opm = tools::ensure(Tool::Opm)?;
    validate::opm_validate(&opm, catalog_dir)?;
    let spec = catalog_spec();
    let mut tree = Tree::default();
    tree.copy_dir(catalog_dir, &spec.copies[0].to)?;
    single_layer(&tree, &spec, Some(base), "catalog")
}
