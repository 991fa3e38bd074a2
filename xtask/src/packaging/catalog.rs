//! Adding a release to the file-based catalog (`cargo xtask catalog`): bundle/ rendered as an olm.bundle the way
//! `opm render` does, placed in its channels, checked against the upgrade graph, and written one file per document
//! (the layout is in [`super::fbc`]; catalog.Dockerfile serves catalog/ with opm).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde_json::{Value, json};

pub use super::fbc::*;
use super::{bundle, graph};
use crate::image::dockerfile;
use crate::out::{self, Staged};
use crate::project::{self, PACKAGE, paths};

// ---------------------------------------------------------------------------------------------------------------
// Rendering a bundle directory the way `opm render` does.

fn gvk_property(group: &str, kind: &str, version: &str) -> Property {
    Property { type_: "olm.gvk".into(), value: json!({"group": group, "kind": kind, "version": version}) }
}

/// The olm.bundle of the bundle directory `dir` (bundle/), with `image` as its bundle image ("" for none).
pub fn render_bundle_dir(dir: &Path, image: &str) -> Result<Bundle> {
    let contents = bundle::read_dir(dir)?;
    let csv = &contents.csv;
    let name = csv["metadata"]["name"].as_str().context("bundle CSV without metadata.name")?.to_string();
    let version = csv["spec"]["version"].as_str().context("bundle CSV without spec.version")?;
    let mut props = vec![Property {
        type_: "olm.package".into(),
        value: json!({"packageName": contents.package, "version": version}),
    }];
    for crd in &contents.crds {
        let group = crd["spec"]["group"].as_str().unwrap_or_default();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or_default();
        for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
            let p = gvk_property(group, kind, v["name"].as_str().unwrap_or_default());
            if !props.contains(&p) {
                props.push(p);
            }
        }
    }
    let key = |p: &Property| (p.type_.clone(), out::go_json(&p.value));
    props.sort_by_key(key);
    // Manifests last, sorted by their encoded form, as opm orders them.
    let mut objects: Vec<Property> = contents
        .objects
        .iter()
        .map(|o| Property {
            type_: "olm.bundle.object".into(),
            value: json!({"data": base64::engine::general_purpose::STANDARD.encode(out::go_json(o))}),
        })
        .collect();
    objects.sort_by_key(key);
    props.extend(objects);

    let mut related: Vec<RelatedImage> = Vec::new();
    for ri in csv["spec"]["relatedImages"].as_array().into_iter().flatten() {
        related.push(RelatedImage {
            image: ri["image"].as_str().unwrap_or_default().to_string(),
            name: ri["name"].as_str().unwrap_or_default().to_string(),
        });
    }
    let mut extra: Vec<String> = Vec::new();
    if !image.is_empty() {
        extra.push(image.to_string());
    }
    for d in csv["spec"]["install"]["spec"]["deployments"].as_array().into_iter().flatten() {
        let pod = &d["spec"]["template"]["spec"];
        for c in pod["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(pod["initContainers"].as_array().into_iter().flatten())
        {
            extra.push(c["image"].as_str().unwrap_or_default().to_string());
        }
    }
    for img in extra {
        if !related.iter().any(|r| r.image == img) {
            related.push(RelatedImage { image: img, name: String::new() });
        }
    }
    related.sort_by(|a, b| a.image.cmp(&b.image));
    Ok(Bundle {
        schema: SCHEMA_BUNDLE.into(),
        name,
        package: contents.package,
        image: image.to_string(),
        properties: props,
        related_images: related,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Adding a release.

#[derive(clap::Args, Debug, Default)]
pub struct CatalogArgs {
    /// Write a copy of the catalog whose bundles have `image: ""` (manifests only, for `opm serve` where no
    /// bundle image can be pulled) to --out instead of updating catalog/.
    #[arg(long)]
    pub manifests_only: bool,
    /// Output folder of --manifests-only (a file-based catalog root).
    #[arg(long, value_name = "DIR", default_value = "target/catalog-manifests-only", requires = "manifests_only")]
    pub out: PathBuf,
}

fn bundle_file(name: &str) -> String {
    format!("{}/bundles/{name}.yaml", paths::CATALOG_PACKAGE)
}

/// Checks that `image` names an image by sha256 digest.
pub fn check_digest_reference(image: &str) -> Result<()> {
    let digest = image.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    let repo = image.rsplit_once('@').map(|(r, _)| r).unwrap_or_default();
    if repo.is_empty() || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        bail!("--bundle-image `{image}`: name the bundle image by digest, REPOSITORY@sha256:<64 hex digits>");
    }
    crate::image::registry::parse_reference(image).map_err(|e| anyhow::anyhow!("--bundle-image: {e}"))?;
    Ok(())
}

/// The catalog with bundle/ added as a release (or updated, while it is the unreleased head).
pub fn with_release(root: &Path) -> Result<(Catalog, Bundle)> {
    with_release_image(root, None)
}

/// [`with_release`], naming the release's bundle image `bundle_image` (`cargo xtask catalog --bundle-image`).
pub fn with_release_image(root: &Path, bundle_image: Option<&str>) -> Result<(Catalog, Bundle)> {
    if let Some(image) = bundle_image {
        check_digest_reference(image)?;
    }
    let bundle_dir = root.join(paths::BUNDLE);
    if !bundle_dir.join("manifests").is_dir() {
        bail!("{}/manifests: missing (run `cargo xtask bundle` first)", paths::BUNDLE);
    }
    let contents = bundle::read_dir(&bundle_dir)?;
    let version = semver::Version::parse(contents.csv["spec"]["version"].as_str().unwrap_or_default())
        .with_context(|| format!("{}/manifests: CSV spec.version is not a semantic version", paths::BUNDLE))?;
    let mut catalog = Catalog::load(root, paths::CATALOG)?;
    let name = contents.csv["metadata"]["name"].as_str().unwrap_or_default();
    // Keep the image a release already has (a pinned digest stays pinned when the catalog is regenerated).
    let image = match bundle_image {
        Some(i) => i.to_string(),
        None => match catalog.bundle(name).map(|b| b.doc.image.clone()).filter(|i| !i.is_empty()) {
            Some(i) => i,
            None => project::bundle_image(&version),
        },
    };
    let rendered = render_bundle_dir(&bundle_dir, &image)?;

    // The bundle document.
    let file = bundle_file(&rendered.name);
    match catalog.bundles.iter().position(|b| b.doc.name == rendered.name) {
        Some(i) if catalog.bundles[i].doc == rendered => {}
        Some(i) => {
            let heads: Vec<String> = contents.channels.iter().filter_map(|c| catalog.head(c)).collect();
            if !heads.iter().all(|h| *h == rendered.name) || heads.is_empty() {
                bail!(
                    "{}: {} is already released and differs from {}/; released bundles are immutable (bump \
                     --version of `cargo xtask bundle`)",
                    catalog.bundles[i].file,
                    rendered.name,
                    paths::BUNDLE
                );
            }
            eprintln!("catalog: updating the channel head {} (not superseded yet)", rendered.name);
            catalog.bundles[i] = Located { file, doc: rendered.clone(), raw: None };
        }
        None => catalog.bundles.push(Located { file, doc: rendered.clone(), raw: None }),
    }

    // Channel entries.
    let entry = ChannelEntry {
        name: rendered.name.clone(),
        replaces: contents.csv["spec"]["replaces"].as_str().map(str::to_string),
        skips: contents.csv["spec"]["skips"]
            .as_array()
            .map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        skip_range: contents.csv["metadata"]["annotations"]["olm.skipRange"].as_str().map(str::to_string),
    };
    let versions: BTreeMap<String, Option<semver::Version>> =
        catalog.bundles.iter().map(|b| (b.doc.name.clone(), b.doc.version())).collect();
    for channel in &contents.channels {
        let i = match catalog.channels.iter().position(|c| c.doc.package == PACKAGE && c.doc.name == *channel) {
            Some(i) => i,
            None => {
                catalog.channels.push(Located {
                    file: format!("{}/channels.yaml", paths::CATALOG_PACKAGE),
                    doc: Channel {
                        schema: SCHEMA_CHANNEL.into(),
                        package: PACKAGE.into(),
                        name: channel.clone(),
                        entries: vec![],
                    },
                    raw: None,
                });
                catalog.channels.len() - 1
            }
        };
        let c = &mut catalog.channels[i];
        let before = c.doc.clone();
        c.doc.entries.retain(|e| e.name != entry.name);
        c.doc.entries.push(entry.clone());
        c.doc.entries.sort_by(|a, b| versions.get(&a.name).cmp(&versions.get(&b.name)).then(a.name.cmp(&b.name)));
        if c.doc != before {
            c.raw = None;
        }
    }

    // The package.
    let icon = contents.csv["spec"]["icon"][0].clone();
    let package = Package {
        schema: SCHEMA_PACKAGE.into(),
        name: PACKAGE.into(),
        default_channel: contents.default_channel.clone(),
        icon: icon.is_object().then(|| PackageIcon {
            base64data: icon["base64data"].as_str().unwrap_or_default().to_string(),
            mediatype: icon["mediatype"].as_str().unwrap_or_default().to_string(),
        }),
        description: contents.csv["spec"]["description"].as_str().map(str::to_string),
    };
    match catalog.packages.iter_mut().find(|p| p.doc.name == PACKAGE) {
        Some(p) if p.doc == package => {}
        Some(p) => *p = Located { file: p.file.clone(), doc: package, raw: None },
        None => catalog.packages.push(Located {
            file: format!("{}/package.yaml", paths::CATALOG_PACKAGE),
            doc: package,
            raw: None,
        }),
    }

    let errors = graph::check(&catalog);
    if !errors.is_empty() {
        bail!("adding {} would break the upgrade graph:\n  {}", rendered.name, errors.join("\n  "));
    }
    Ok((catalog, rendered))
}

/// Writes `catalog` into `staged` under `dir` (relative), one file per document kind as in the module docs.
/// Documents whose file is unchanged are written back byte for byte.
pub fn stage(catalog: &Catalog, staged: &mut Staged, dir: &str, image_less: bool) -> Result<()> {
    let pkg_dir = format!("{dir}/{PACKAGE}");
    staged.own_dir(&pkg_dir);
    let packages: Vec<&Located<Package>> = catalog.packages.iter().filter(|p| p.doc.name == PACKAGE).collect();
    let [package] = packages[..] else { bail!("{}: expected exactly one olm.package {PACKAGE}", paths::CATALOG) };
    let package_file = format!("{pkg_dir}/package.yaml");
    match (&package.raw, image_less) {
        (Some(raw), false) if package.file == package_file => staged.yaml("catalog", &package_file, raw.clone()),
        _ => staged.yaml("catalog", &package_file, out::to_yaml(&package.doc)?),
    }
    let mut channels: Vec<&Channel> =
        catalog.channels.iter().filter(|c| c.doc.package == PACKAGE).map(|c| &c.doc).collect();
    channels.sort_by(|a, b| a.name.cmp(&b.name));
    let values: Vec<Value> = channels.iter().map(|c| out::value(*c)).collect();
    let text = if values.len() == 1 { out::to_yaml(&values[0])? } else { out::to_yaml_stream(&values)? };
    staged.yaml("catalog", format!("{pkg_dir}/channels.yaml"), text);
    for b in catalog.bundles.iter().filter(|b| b.doc.package == PACKAGE) {
        let file = format!("{pkg_dir}/bundles/{}.yaml", b.doc.name);
        match (&b.raw, image_less) {
            (Some(raw), false) if b.file == file => staged.yaml("catalog", &file, raw.clone()),
            (_, false) => staged.yaml("catalog", &file, out::to_yaml(&b.doc)?),
            (_, true) => staged.yaml("catalog", &file, out::to_yaml(&b.doc.without_image())?),
        }
    }
    Ok(())
}

/// Adds bundle/ to the catalog and writes it (catalog/, catalog.Dockerfile), or with `--manifests-only` writes the
/// manifests-only copy to `args.out`; `bundle_image` as in [`with_release_image`].
pub fn write(root: &Path, args: &CatalogArgs, bundle_image: Option<&str>) -> Result<()> {
    let (catalog, added) = with_release_image(root, bundle_image)?;
    let mut staged = Staged::new(root);
    if args.manifests_only {
        let out_dir = if args.out.is_absolute() { args.out.clone() } else { root.join(&args.out) };
        let mut staged = Staged::new(&out_dir);
        stage(&catalog, &mut staged, ".", true)?;
        staged.commit()?;
        eprintln!("catalog: wrote the manifests-only catalog (image: \"\") to {}", out_dir.display());
        return Ok(());
    }
    stage(&catalog, &mut staged, paths::CATALOG, false)?;
    staged.file(paths::CATALOG_DOCKERFILE, dockerfile::catalog_dockerfile()?);
    staged.commit()?;
    let head = catalog.head(
        &catalog
            .packages
            .iter()
            .find(|p| p.doc.name == PACKAGE)
            .map(|p| p.doc.default_channel.clone())
            .unwrap_or_default(),
    );
    eprintln!(
        "catalog: {} bundles in {}/{PACKAGE}; added {}; default channel head {}",
        catalog.bundles.len(),
        paths::CATALOG,
        added.name,
        head.unwrap_or_default()
    );
    Ok(())
}
