//! `cargo xtask validate`: our checks of config/, bundle/ and catalog/, then the ecosystem's own validators
//! (operator-sdk, opm) when they are built (or always, with --real).
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::catalog::{self, Catalog};
use crate::out::{self, Staged};
use crate::project::{self, paths};
use crate::{bundle, examples, graph, manifests, scorecard};
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

/// Everything the generators would write for the current tree, in memory.
pub fn regenerate(root: &Path) -> Result<Staged> {
    let mut staged = Staged::new(root);
    manifests::generate(&mut staged)?;
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
    staged.file(paths::CATALOG_DOCKERFILE, crate::templates::catalog_dockerfile()?);
    staged.file("Dockerfile", crate::templates::operator_dockerfile()?);
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

fn tool(tool: Tool, build: bool) -> Result<Option<PathBuf>> {
    if build { tools::ensure(tool).map(Some) } else { Ok(tools::installed(tool)) }
}

pub fn run(root: &Path, args: &ValidateArgs) -> Result<()> {
    let mut problems = Vec::new();
    let bundle_dir = root.join(paths::BUNDLE);
    let contents = bundle::read_dir(&bundle_dir)?;
    problems.extend(bundle::check(&contents).into_iter().map(|p| format!("bundle/{p}")));
    problems.extend(bundle::check_dockerfile(root, &contents.annotations));
    for r in scorecard::check(&contents) {
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
