//! `cargo xtask catalog`: the file-based catalog under catalog/aerospike-kubernetes-operator/.
//!
//! Layout (one file per release, so adding a release leaves the earlier ones byte for byte as they were):
//!
//! ```text
//! catalog/aerospike-kubernetes-operator/package.yaml        olm.package (default channel, icon, description)
//! catalog/aerospike-kubernetes-operator/channels.yaml       olm.channel documents with the replaces chain
//! catalog/aerospike-kubernetes-operator/bundles/<name>.yaml one olm.bundle per release
//! catalog.Dockerfile                                        serves catalog/ with opm
//! ```
//!
//! Each olm.bundle is what `opm render <bundle dir>` makes of bundle/: olm.gvk and olm.package properties, the
//! manifests as olm.bundle.object properties, the related images, plus the bundle image.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::out::{self, Staged};
use crate::project::{self, PACKAGE, paths};
use crate::{bundle, graph, templates};

pub const SCHEMA_PACKAGE: &str = "olm.package";
pub const SCHEMA_CHANNEL: &str = "olm.channel";
pub const SCHEMA_BUNDLE: &str = "olm.bundle";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub schema: String,
    pub name: String,
    pub default_channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<PackageIcon>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PackageIcon {
    pub base64data: String,
    pub mediatype: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Channel {
    pub schema: String,
    pub package: String,
    pub name: String,
    pub entries: Vec<ChannelEntry>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_range: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub schema: String,
    pub name: String,
    pub package: String,
    pub image: String,
    #[serde(default)]
    pub properties: Vec<Property>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_images: Vec<RelatedImage>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Property {
    #[serde(rename = "type")]
    pub type_: String,
    pub value: Value,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RelatedImage {
    pub image: String,
    pub name: String,
}

impl Bundle {
    /// The version from the olm.package property.
    pub fn version(&self) -> Option<semver::Version> {
        let p = self.properties.iter().find(|p| p.type_ == "olm.package")?;
        semver::Version::parse(p.value["version"].as_str()?).ok()
    }

    /// The manifests carried as olm.bundle.object properties, decoded.
    pub fn objects(&self) -> Result<Vec<Value>> {
        self.properties
            .iter()
            .filter(|p| p.type_ == "olm.bundle.object")
            .map(|p| {
                let data = p.value["data"].as_str().context("olm.bundle.object without data")?;
                let bytes = base64::engine::general_purpose::STANDARD.decode(data)?;
                Ok(serde_json::from_slice(&bytes)?)
            })
            .collect()
    }

    /// The same bundle served without an image (`image: ""`): OLM then takes the manifests from the catalog.
    pub fn without_image(&self) -> Bundle {
        let mut b = self.clone();
        let image = std::mem::take(&mut b.image);
        b.related_images.retain(|r| !(r.name.is_empty() && r.image == image));
        b
    }
}

/// A document of the catalog and the file it came from (relative to the repository root).
#[derive(Clone, Debug)]
pub struct Located<T> {
    pub file: String,
    pub doc: T,
    /// The file's bytes, when the file holds only this document (kept to rewrite it unchanged).
    pub raw: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub packages: Vec<Located<Package>>,
    pub channels: Vec<Located<Channel>>,
    pub bundles: Vec<Located<Bundle>>,
}

fn from_doc<T: serde::de::DeserializeOwned>(file: &str, i: usize, doc: &Value) -> Result<T> {
    serde_json::from_value(doc.clone()).map_err(|e| {
        anyhow::anyhow!(
            "{file}: document {} ({} {}): {e}",
            i + 1,
            doc["schema"].as_str().unwrap_or("?"),
            doc["name"].as_str().unwrap_or("?")
        )
    })
}

impl Catalog {
    /// Reads every YAML/JSON document under `dir` (relative to `root`); a missing folder is an empty catalog.
    pub fn load(root: &Path, dir: &str) -> Result<Catalog> {
        let mut catalog = Catalog::default();
        let base = root.join(dir);
        for rel in out::walk(&base)? {
            let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "yaml" | "yml" | "json") {
                continue;
            }
            let path = base.join(&rel);
            let file = format!("{dir}/{}", rel.display());
            let raw = std::fs::read(&path).with_context(|| format!("{file}: cannot read"))?;
            let docs = out::read_yaml_stream(&path)
                .map_err(|e| anyhow::anyhow!("{}", e.to_string().replace(&path.display().to_string(), &file)))?;
            let single = docs.len() == 1;
            for (i, doc) in docs.iter().enumerate() {
                let raw = single.then(|| raw.clone());
                match doc["schema"].as_str() {
                    Some(SCHEMA_PACKAGE) => {
                        catalog.packages.push(Located { file: file.clone(), doc: from_doc(&file, i, doc)?, raw })
                    }
                    Some(SCHEMA_CHANNEL) => {
                        catalog.channels.push(Located { file: file.clone(), doc: from_doc(&file, i, doc)?, raw })
                    }
                    Some(SCHEMA_BUNDLE) => {
                        catalog.bundles.push(Located { file: file.clone(), doc: from_doc(&file, i, doc)?, raw })
                    }
                    Some(other) => bail!("{file}: document {}: schema {other} is not one this catalog uses", i + 1),
                    None => bail!("{file}: document {}: no `schema` field", i + 1),
                }
            }
        }
        Ok(catalog)
    }

    pub fn bundle(&self, name: &str) -> Option<&Located<Bundle>> {
        self.bundles.iter().find(|b| b.doc.name == name)
    }

    pub fn channel(&self, name: &str) -> Option<&Located<Channel>> {
        self.channels.iter().find(|c| c.doc.package == PACKAGE && c.doc.name == name)
    }

    /// The head of `channel` (None if the channel does not exist or has no single head).
    pub fn head(&self, channel: &str) -> Option<String> {
        let c = self.channel(channel)?;
        let hs = graph::heads(&c.doc.entries);
        (hs.len() == 1).then(|| hs[0].clone())
    }
}

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

/// [`with_release`], naming the release's bundle image `bundle_image` (see [`CatalogCommand::bundle_image`]).
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
        (Some(raw), false) if package.file == package_file => staged.file(&package_file, raw.clone()),
        _ => staged.file(&package_file, out::to_yaml(&package.doc)?),
    }
    let mut channels: Vec<&Channel> =
        catalog.channels.iter().filter(|c| c.doc.package == PACKAGE).map(|c| &c.doc).collect();
    channels.sort_by(|a, b| a.name.cmp(&b.name));
    let values: Vec<Value> = channels.iter().map(|c| out::value(*c)).collect();
    let text = if values.len() == 1 { out::to_yaml(&values[0])? } else { out::to_yaml_stream(&values)? };
    staged.file(format!("{pkg_dir}/channels.yaml"), text);
    for b in catalog.bundles.iter().filter(|b| b.doc.package == PACKAGE) {
        let file = format!("{pkg_dir}/bundles/{}.yaml", b.doc.name);
        match (&b.raw, image_less) {
            (Some(raw), false) if b.file == file => staged.file(&file, raw.clone()),
            (_, false) => staged.file(&file, out::to_yaml(&b.doc)?),
            (_, true) => staged.file(&file, out::to_yaml(&b.doc.without_image())?),
        }
    }
    Ok(())
}

pub fn run(root: &Path, args: &CatalogArgs) -> Result<()> {
    run_command(
        root,
        &CatalogCommand {
            args: CatalogArgs { manifests_only: args.manifests_only, out: args.out.clone() },
            bundle_image: None,
        },
    )
}

pub fn run_command(root: &Path, command: &CatalogCommand) -> Result<()> {
    let args = &command.args;
    let (catalog, added) = with_release_image(root, command.bundle_image.as_deref())?;
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
    staged.file(paths::CATALOG_DOCKERFILE, templates::catalog_dockerfile()?);
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
