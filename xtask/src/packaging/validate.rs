//! The packaging's validators: what the generators would write now and its drift from the committed files, our
//! checks of config/, bundle/ and catalog/, and the ecosystem's own validators (operator-sdk, opm) as functions.
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::catalog::{self, Catalog};
use super::{bundle, examples, graph, manifests};
use crate::image::dockerfile;
use crate::out::{self, Staged};
use crate::project::{self, paths};

/// Everything the generators would write for the current tree, in memory.
pub fn regenerate(root: &Path) -> Result<Staged> {
    let mut staged = Staged::new(root);
    manifests::generate(&mut staged)?;
    super::monitoring::generate(&mut staged)?;
    examples::generate(&mut staged)?;
    let (bundle, _) = bundle::generate(
        root,
        &bundle::BundleArgs { channels: project::DEFAULT_CHANNEL.into(), ..Default::default() },
    )?;
    for (path, contents) in bundle.files() {
        staged.file(path, contents.clone());
    }
    staged.own_dir(paths::BUNDLE);
    Ok(staged)
}

/// Generated files that differ from what the code generates now (missing, changed, or left over in a
/// generated folder). The catalog is compared after adding bundle/ to it, as `cargo xtask catalog` would.
pub fn drift(root: &Path) -> Result<Vec<String>> {
    let mut staged = regenerate(root)?;
    let (cat, _) = catalog::with_release(root)?;
    catalog::stage(&cat, &mut staged, paths::CATALOG, false)?;
    staged.file(paths::CATALOG_DOCKERFILE, dockerfile::catalog_dockerfile()?);
    staged.file("Dockerfile", dockerfile::operator_dockerfile()?);
    let mut problems = Vec::new();
    for (rel, want) in staged.files() {
        match std::fs::read(root.join(rel)) {
            Ok(have) if have == *want => {}
            Ok(_) => problems.push(format!("{}: differs from what the code generates", rel.display())),
            Err(_) => problems.push(format!("{}: missing", rel.display())),
        }
    }
    // The folders the generators own, from their own claims: every file in them must be generated.
    let mut dirs = staged.owned_dirs().to_vec();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        for rel in out::walk(&root.join(dir))? {
            let rel = dir.join(rel);
            if !staged.files().contains_key(&rel) {
                problems.push(format!("{}: not generated any more (stale)", rel.display()));
            }
        }
    }
    Ok(problems)
}

/// `operator-sdk bundle validate DIR -b none --select-optional suite=operatorframework`: its output, or an error
/// when it fails or prints any warning or error.
pub fn operator_sdk_validate(sdk: &Path, bundle_dir: &Path) -> Result<String> {
    let output = Command::new(sdk)
        .args(["bundle", "validate"])
        .arg(bundle_dir)
        .args(["-b", "none", "--select-optional", "suite=operatorframework"])
        .output()
        .with_context(|| format!("running {}", sdk.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let noisy = text
        .lines()
        .any(|l| l.contains("WARN") || l.contains("ERRO") || l.contains("level=warning") || l.contains("level=error"));
    if !output.status.success() || noisy {
        bail!("operator-sdk bundle validate {}: {}\n{text}", bundle_dir.display(), output.status);
    }
    Ok(text)
}

/// `opm validate DIR`.
pub fn opm_validate(opm: &Path, catalog_dir: &Path) -> Result<String> {
    let output = Command::new(opm)
        .arg("validate")
        .arg(catalog_dir)
        .output()
        .with_context(|| format!("running {}", opm.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("opm validate {}: {}\n{text}", catalog_dir.display(), output.status);
    }
    Ok(text)
}

/// `opm render DIR -o json`: the olm.bundle opm makes of a bundle directory.
pub fn opm_render(opm: &Path, bundle_dir: &Path) -> Result<catalog::Bundle> {
    let output = Command::new(opm)
        .arg("render")
        .arg(bundle_dir)
        .args(["-o", "json"])
        .output()
        .with_context(|| format!("running {}", opm.display()))?;
    if !output.status.success() {
        bail!("opm render {}: {}\n{}", bundle_dir.display(), output.status, String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).context("parsing the output of opm render")
}

/// The catalog's entry for the bundle in `bundle_dir`, as served without an image (what `opm render` of the
/// directory yields).
pub fn catalog_entry_image_less(root: &Path, bundle_dir: &Path) -> Result<catalog::Bundle> {
    let contents = bundle::read_dir(bundle_dir)?;
    let name = contents.csv["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let catalog = Catalog::load(root, paths::CATALOG)?;
    let entry = catalog.bundle(&name).with_context(|| format!("{name} is not in {}", paths::CATALOG_PACKAGE))?;
    Ok(entry.doc.without_image())
}

/// Our checks of config/, bundle/ and catalog/: the bundle's own, bundle.Dockerfile, the scorecard tests' static
/// checks, the upgrade graph, the catalog's entry for bundle/, and drift from the generators.
pub fn our_checks(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let bundle_dir = root.join(paths::BUNDLE);
    let contents = bundle::read_dir(&bundle_dir)?;
    problems.extend(bundle::check(&contents).into_iter().map(|p| format!("bundle/{p}")));
    problems.extend(bundle::check_dockerfile(root, &contents.annotations));
    for r in bundle::scorecard_checks::check(&contents) {
        problems.extend(r.errors.iter().map(|e| format!("scorecard {}: {e}", r.test)));
    }
    let cat = Catalog::load(root, paths::CATALOG)?;
    problems.extend(graph::check(&cat));
    let version = semver::Version::parse(contents.csv["spec"]["version"].as_str().unwrap_or_default()).ok();
    if let Some(v) = version {
        let rendered = catalog::render_bundle_dir(&bundle_dir, &project::bundle_image(&v))?;
        match cat.bundle(&rendered.name) {
            None => problems.push(format!(
                "{}: {} is not in the catalog (run `cargo xtask catalog`)",
                paths::CATALOG_PACKAGE,
                rendered.name
            )),
            Some(b) if b.doc != rendered => {
                problems.push(format!("{}: differs from bundle/ (run `cargo xtask catalog`)", b.file))
            }
            Some(_) => {}
        }
    }
    problems.extend(drift(root)?);
    Ok(problems)
}
