//! The registry+v1 bundle of one release (`cargo xtask bundle`): bundle/ (the CSV, the CRDs, the extra objects,
//! metadata/annotations.yaml, the scorecard configuration) and bundle.Dockerfile; reading one back, and its checks.
mod check;
pub mod scorecard_checks;

pub use check::{check, check_dockerfile};
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::csv::{self, Release};
use super::fbc::Catalog;
use super::{graph, manifests, scorecard};
use crate::image::dockerfile;
use crate::out::{self, Staged};
use crate::project::{self, DEFAULT_CHANNEL, PACKAGE, paths};

pub const MEDIATYPE_KEY: &str = "operators.operatorframework.io.bundle.mediatype.v1";
pub const MANIFESTS_KEY: &str = "operators.operatorframework.io.bundle.manifests.v1";
pub const METADATA_KEY: &str = "operators.operatorframework.io.bundle.metadata.v1";
pub const PACKAGE_KEY: &str = "operators.operatorframework.io.bundle.package.v1";
pub const CHANNELS_KEY: &str = "operators.operatorframework.io.bundle.channels.v1";
pub const DEFAULT_CHANNEL_KEY: &str = "operators.operatorframework.io.bundle.channel.default.v1";
pub const TEST_MEDIATYPE_KEY: &str = "operators.operatorframework.io.test.mediatype.v1";
pub const TEST_CONFIG_KEY: &str = "operators.operatorframework.io.test.config.v1";

pub const CSV_FILE: &str = "aerospike-kubernetes-operator.clusterserviceversion.yaml";

#[derive(clap::Args, Debug, Default, Clone)]
pub struct BundleArgs {
    /// Release version (semantic version); defaults to the workspace version.
    #[arg(long)]
    pub version: Option<String>,
    /// The release this one replaces (a version or a CSV name; `none` for no replaces). Defaults to the current
    /// head of the default channel in catalog/; must be in the catalog.
    #[arg(long, value_name = "PREVIOUS")]
    pub replaces: Option<String>,
    /// `olm.skipRange` of the CSV, e.g. ">=0.1.0 <0.3.0".
    #[arg(long, value_name = "RANGE")]
    pub skip_range: Option<String>,
    /// Channels of the bundle, comma separated.
    #[arg(long, default_value = DEFAULT_CHANNEL)]
    pub channels: String,
    /// Default channel of the package; defaults to `stable` when listed, else the first channel.
    #[arg(long)]
    pub default_channel: Option<String>,
    /// Set the CSV's createdAt annotation (RFC 3339; `now` when no value). Off by default: output must be
    /// reproducible.
    #[arg(long, value_name = "TIMESTAMP", num_args = 0..=1, default_missing_value = "now")]
    pub created_at: Option<String>,
}

/// What a bundle directory holds, parsed.
#[derive(Clone, Debug)]
pub struct Contents {
    pub annotations: BTreeMap<String, String>,
    pub package: String,
    pub channels: Vec<String>,
    pub default_channel: String,
    pub csv: Value,
    pub crds: Vec<Value>,
    /// Every manifest (CSV and CRDs included), each with the file it came from.
    pub objects: Vec<Value>,
    pub files: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct AnnotationsFile {
    annotations: BTreeMap<String, String>,
}

/// Parses bundle/metadata/annotations.yaml and bundle/manifests/.
pub fn read_dir(dir: &Path) -> Result<Contents> {
    let ann_path = dir.join("metadata/annotations.yaml");
    let AnnotationsFile { annotations } = out::read_yaml(&ann_path)?;
    let get = |k: &str| {
        annotations.get(k).cloned().with_context(|| format!("{}: annotations.{k} is missing", ann_path.display()))
    };
    let package = get(PACKAGE_KEY)?;
    let channels: Vec<String> = get(CHANNELS_KEY)?.split(',').map(|c| c.trim().to_string()).collect();
    let default_channel = annotations.get(DEFAULT_CHANNEL_KEY).cloned().unwrap_or_else(|| channels[0].clone());
    let mut objects = Vec::new();
    let mut files = Vec::new();
    for path in out::manifest_files(&dir.join("manifests"))? {
        for doc in out::read_yaml_stream(&path)? {
            objects.push(doc);
            files.push(path.file_name().unwrap().to_string_lossy().to_string());
        }
    }
    let csvs: Vec<&Value> = objects.iter().filter(|o| o["kind"] == csv::KIND).collect();
    let [csv] = csvs[..] else {
        bail!("{}/manifests: expected exactly one ClusterServiceVersion, found {}", dir.display(), csvs.len());
    };
    let csv = csv.clone();
    let crds = objects.iter().filter(|o| o["kind"] == "CustomResourceDefinition").cloned().collect();
    Ok(Contents { annotations, package, channels, default_channel, csv, crds, objects, files })
}

fn parse_version(flag: &str, s: &str) -> Result<semver::Version> {
    semver::Version::parse(s.strip_prefix('v').unwrap_or(s))
        .map_err(|e| anyhow::anyhow!("{flag} `{s}`: not a semantic version MAJOR.MINOR.PATCH ({e})"))
}

fn check_channel_name(flag: &str, c: &str) -> Result<()> {
    if c.is_empty() || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '.' | '_')) {
        bail!("{flag} `{c}`: a channel name is letters, digits, '-', '.' and '_'");
    }
    Ok(())
}

/// The resolved inputs of a bundle.
pub struct Plan {
    pub release: Release,
    pub channels: Vec<String>,
    pub default_channel: String,
}

/// Checks the flags against each other and the catalog; picks the default replaces.
pub fn plan(root: &Path, args: &BundleArgs) -> Result<Plan> {
    let version = match &args.version {
        Some(v) => parse_version("--version", v)?,
        None => project::workspace_version(),
    };
    let channels: Vec<String> = args.channels.split(',').map(|c| c.trim().to_string()).collect();
    for c in &channels {
        check_channel_name("--channels", c)?;
    }
    let default_channel = match &args.default_channel {
        Some(d) => {
            check_channel_name("--default-channel", d)?;
            if !channels.contains(d) {
                bail!("--default-channel `{d}` is not one of --channels {}", channels.join(","));
            }
            d.clone()
        }
        None if channels.iter().any(|c| c == DEFAULT_CHANNEL) => DEFAULT_CHANNEL.to_string(),
        None => channels[0].clone(),
    };
    if let Some(range) = &args.skip_range {
        graph::parse_skip_range(range).map_err(|e| anyhow::anyhow!("--skip-range {e}"))?;
    }
    let name = project::csv_name(&version);
    let catalog = Catalog::load(root, paths::CATALOG)?;
    let released: Vec<String> = catalog.bundles.iter().map(|b| b.doc.name.clone()).collect();
    let replaces = match args.replaces.as_deref() {
        Some("none") | Some("") => None,
        Some(r) => {
            let target = match r.strip_prefix(&format!("{PACKAGE}.")) {
                Some(v) => project::csv_name(&parse_version("--replaces", v)?),
                None => project::csv_name(&parse_version("--replaces", r)?),
            };
            let Some(b) = catalog.bundle(&target) else {
                bail!(
                    "--replaces `{r}`: {target} is not in {} (it has: {})",
                    paths::CATALOG_PACKAGE,
                    if released.is_empty() { "nothing".to_string() } else { released.join(", ") }
                );
            };
            if let Some(v) = b.doc.version()
                && v >= version
            {
                bail!("--replaces `{r}`: {target} (version {v}) is not older than --version {version}");
            }
            Some(target)
        }
        None => {
            let existing =
                catalog.channel(&default_channel).and_then(|c| c.doc.entries.iter().find(|e| e.name == name));
            match existing {
                // Re-bundling a release the catalog already has keeps its place in the graph.
                Some(e) => e.replaces.clone(),
                None => match catalog.head(&default_channel) {
                    Some(head) => {
                        let head_version = catalog.bundle(&head).and_then(|b| b.doc.version());
                        if head_version.as_ref().is_some_and(|h| *h >= version) {
                            bail!(
                                "--version {version} is not newer than {head}, the head of channel {default_channel} in {}",
                                paths::CATALOG_PACKAGE
                            );
                        }
                        Some(head)
                    }
                    None => None,
                },
            }
        }
    };
    let created_at = args
        .created_at
        .as_deref()
        .map(|c| if c == "now" { out::rfc3339(time::OffsetDateTime::now_utc()) } else { c.to_string() });
    Ok(Plan {
        release: Release { version, replaces, skip_range: args.skip_range.clone(), created_at },
        channels,
        default_channel,
    })
}

/// The bundle annotations (also the LABELs of bundle.Dockerfile).
pub fn annotations(channels: &[String], default_channel: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MEDIATYPE_KEY.to_string(), "registry+v1".to_string()),
        (MANIFESTS_KEY.to_string(), "manifests/".to_string()),
        (METADATA_KEY.to_string(), "metadata/".to_string()),
        (PACKAGE_KEY.to_string(), PACKAGE.to_string()),
        (CHANNELS_KEY.to_string(), channels.join(",")),
        (DEFAULT_CHANNEL_KEY.to_string(), default_channel.to_string()),
        (TEST_MEDIATYPE_KEY.to_string(), "scorecard+v1".to_string()),
        (TEST_CONFIG_KEY.to_string(), "tests/scorecard/".to_string()),
    ])
}

/// The file name operator-sdk gives a CRD in a bundle: `<group>_<plural>.yaml`.
pub fn crd_file(crd: &Value) -> String {
    format!(
        "{}_{}.yaml",
        crd["spec"]["group"].as_str().unwrap_or_default(),
        crd["spec"]["names"]["plural"].as_str().unwrap_or_default()
    )
}

/// Stages bundle/ and bundle.Dockerfile for `args`, after checking the result.
pub fn generate(root: &Path, args: &BundleArgs) -> Result<(Staged, Plan)> {
    let plan = plan(root, args)?;
    let base = csv::read_base(root)?;
    let samples = manifests::read_samples(root)?;
    let csv = csv::build(&base, &plan.release, &samples)?;
    let crds = manifests::crd_values();
    let mut service = out::value(&manifests::metrics_service(None));
    service["apiVersion"] = "v1".into();
    service["kind"] = "Service".into();
    let mut pdb = out::value(&manifests::operator_pdb(None));
    pdb["apiVersion"] = "policy/v1".into();
    pdb["kind"] = "PodDisruptionBudget".into();
    let annotations = annotations(&plan.channels, &plan.default_channel);

    let csv_value = out::value(&csv);
    let mut objects = vec![csv_value.clone()];
    objects.extend(crds.iter().cloned());
    objects.push(service.clone());
    objects.push(pdb.clone());
    let contents = Contents {
        annotations: annotations.clone(),
        package: PACKAGE.to_string(),
        channels: plan.channels.clone(),
        default_channel: plan.default_channel.clone(),
        csv: csv_value.clone(),
        crds: crds.clone(),
        objects,
        files: vec![],
    };
    let problems = check(&contents);
    if !problems.is_empty() {
        bail!("the generated bundle would be invalid:\n  {}", problems.join("\n  "));
    }

    let mut staged = Staged::new(root);
    staged.own_dir(paths::BUNDLE);
    let m = format!("{}/manifests", paths::BUNDLE);
    staged.yaml("bundle", format!("{m}/{CSV_FILE}"), out::to_yaml(&csv_value)?);
    for crd in &crds {
        staged.yaml("bundle", format!("{m}/{}", crd_file(crd)), out::to_yaml(crd)?);
    }
    staged.yaml("bundle", format!("{m}/{PACKAGE}-metrics_v1_service.yaml"), out::to_yaml(&service)?);
    staged.yaml("bundle", format!("{m}/{PACKAGE}_policy_v1_poddisruptionbudget.yaml"), out::to_yaml(&pdb)?);
    staged.yaml(
        "bundle",
        format!("{}/metadata/annotations.yaml", paths::BUNDLE),
        out::to_yaml(&AnnotationsFile { annotations: annotations.clone() })?,
    );
    staged.yaml(
        "bundle",
        format!("{}/tests/scorecard/config.yaml", paths::BUNDLE),
        out::to_yaml(&scorecard::config())?,
    );
    staged.file(paths::BUNDLE_DOCKERFILE, dockerfile::bundle_dockerfile(&annotations, &plan.release.version)?);
    Ok((staged, plan))
}

/// Writes the bundle of `args` (`cargo xtask bundle`).
pub fn write(root: &Path, args: &BundleArgs) -> Result<()> {
    let (staged, plan) = generate(root, args)?;
    let count = staged.files().len();
    staged.commit()?;
    let r = &plan.release;
    eprintln!(
        "bundle: {} ({} files) in {}/ and {}; channels {} (default {}); replaces {}",
        project::csv_name(&r.version),
        count,
        paths::BUNDLE,
        paths::BUNDLE_DOCKERFILE,
        plan.channels.join(","),
        plan.default_channel,
        r.replaces.as_deref().unwrap_or("nothing")
    );
    Ok(())
}
