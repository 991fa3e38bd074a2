//! OCI images in memory: config, manifest and blobs with their digests; written to and read from an OCI image
//! layout folder. JSON is written with sorted keys and no spaces, so equal images have equal digests.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use oci_spec::image::{
    ConfigBuilder, DescriptorBuilder, Digest, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, RootFsBuilder,
};
use serde_json::Value;

use super::layer::{Layer, sha256};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The tag a layout's index.json names its image by (`oci:DIR:TAG`).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// A blob with its media type and digest.
#[derive(Clone)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, data: Vec<u8>) -> Blob {
        Blob { media_type: media_type.to_string(), digest: sha256(&data), data }
    }
}

/// A single-platform image: its manifest, config and layer blobs.
#[derive(Clone)]
pub struct Image {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
}

/// What the image runs and how it is labelled (the Dockerfile's ENTRYPOINT, CMD, USER, ENV, LABEL).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Runtime {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: Option<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Rewrites a JSON value with object keys sorted (whatever map type serde_json was built with).
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Canonical JSON bytes of `value`: sorted keys, no whitespace.
pub fn canonical_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&sorted(serde_json::to_value(value)?))?)
}

/// The OCI architecture name of this machine (images run where they are built).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn digest(s: &str) -> Result<Digest> {
    s.parse().with_context(|| format!("`{s}` is not a digest"))
}

/// Builds an image from `base` (None: FROM scratch) plus `layers`, with the runtime settings of `runtime`
/// (settings it leaves empty are inherited from the base, labels are merged). `created` is a fixed RFC 3339 time.
pub fn build(
    base: Option<&Image>,
    layers: Vec<Layer>,
    runtime: &Runtime,
    created: &str,
    created_by: &str,
) -> Result<Image> {
    let base_config: Option<ImageConfiguration> = match base {
        Some(b) => Some(serde_json::from_slice(&b.config.data).context("parsing the base image config")?),
        None => None,
    };
    let inherited = base_config.as_ref().and_then(|c| c.config().clone()).unwrap_or_default();
    let pick = |mine: &Vec<String>, theirs: &Option<Vec<String>>| {
        if mine.is_empty() { theirs.clone() } else { Some(mine.clone()) }
    };
    let mut labels: BTreeMap<String, String> = inherited.labels().clone().unwrap_or_default().into_iter().collect();
    labels.extend(runtime.labels.clone());
    let mut env = inherited.env().clone().unwrap_or_default();
    env.extend(runtime.env.iter().cloned());
    let mut config = ConfigBuilder::default();
    if let Some(e) = pick(&runtime.entrypoint, inherited.entrypoint()) {
        config = config.entrypoint(e);
    }
    // Like Docker: a new ENTRYPOINT resets an inherited CMD.
    let cmd = if !runtime.cmd.is_empty() {
        Some(runtime.cmd.clone())
    } else if runtime.entrypoint.is_empty() {
        inherited.cmd().clone()
    } else {
        None
    };
    if let Some(c) = cmd {
        config = config.cmd(c);
    }
    if let Some(u) = runtime.user.clone().or_else(|| inherited.user().clone()) {
        config = config.user(u);
    }
    if let Some(w) = runtime.working_dir.clone().or_else(|| inherited.working_dir().clone()) {
        config = config.working_dir(w);
    }
    if !env.is_empty() {
        config = config.env(env);
    }
    if !labels.is_empty() {
        config = config.labels(labels.into_iter().collect::<std::collections::HashMap<_, _>>());
    }

    let mut diff_ids: Vec<String> = base_config.as_ref().map(|c| c.rootfs().diff_ids().clone()).unwrap_or_default();
    let mut history = base_config.as_ref().and_then(|c| c.history().clone()).unwrap_or_default();
    let mut blobs: Vec<Blob> = base.map(|b| b.layers.clone()).unwrap_or_default();
    for layer in layers {
        diff_ids.push(layer.diff_id.clone());
        history
            .push(HistoryBuilder::default().created(created.to_string()).created_by(created_by.to_string()).build()?);
        blobs.push(Blob::new(LAYER_MEDIA_TYPE, layer.blob));
    }
    let image_config = ImageConfigurationBuilder::default()
        .created(created.to_string())
        .architecture(host_architecture())
        .os("linux")
        .config(config.build()?)
        .rootfs(RootFsBuilder::default().typ("layers").diff_ids(diff_ids).build()?)
        .history(history)
        .build()?;
    let config_blob = Blob::new(CONFIG_MEDIA_TYPE, canonical_json(&image_config)?);
    let descriptor = |b: &Blob| -> Result<_> {
        Ok(DescriptorBuilder::default()
            .media_type(MediaType::from(b.media_type.as_str()))
            .digest(digest(&b.digest)?)
            .size(b.data.len() as u64)
            .build()?)
    };
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(&config_blob)?)
        .layers(blobs.iter().map(descriptor).collect::<Result<Vec<_>>>()?)
        .build()?;
    Ok(Image {
        manifest: Blob::new(MANIFEST_MEDIA_TYPE, canonical_json(&manifest)?),
        config: config_blob,
        layers: blobs,
    })
}

impl Image {
    /// The image config, parsed.
    pub fn configuration(&self) -> Result<ImageConfiguration> {
        serde_json::from_slice(&self.config.data).context("parsing the image config")
    }

    /// Labels of the image config.
    pub fn labels(&self) -> Result<BTreeMap<String, String>> {
        let c = self.configuration()?;
        Ok(c.config().as_ref().and_then(|c| c.labels().clone()).unwrap_or_default().into_iter().collect())
    }

    /// Total size of the compressed layers.
    pub fn layers_size(&self) -> u64 {
        self.layers.iter().map(|l| l.data.len() as u64).sum()
    }

    /// Writes the image as an OCI image layout in `dir`, tagged `tag`. `dir` must be absent, empty or an earlier
    /// OCI layout (which is replaced): never a folder that holds something else, e.g. `--layout .`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> Result<()> {
        if dir.exists() {
            let empty = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.next().is_none();
            if !empty && !dir.join("oci-layout").is_file() {
                anyhow::bail!(
                    "{} exists and is not an OCI image layout (no oci-layout file): refusing to replace it; name a new \
                     or empty folder",
                    dir.display()
                );
            }
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
        for b in self.layers.iter().chain([&self.config, &self.manifest]) {
            let hex = b.digest.trim_start_matches("sha256:");
            std::fs::write(blobs.join(hex), &b.data).with_context(|| format!("writing blob {}", b.digest))?;
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": self.manifest.digest,
                "size": self.manifest.data.len(),
                "annotations": { REF_NAME_ANNOTATION: tag },
            }],
        });
        std::fs::write(dir.join("index.json"), canonical_json(&index)?)?;
        Ok(())
    }

    /// Reads the image named `tag` (or the only image) from the OCI image layout `dir`, checking every digest.
    pub fn read_layout(dir: &Path, tag: Option<&str>) -> Result<Image> {
        let index_path = dir.join("index.json");
        let index: Value = serde_json::from_slice(
            &std::fs::read(&index_path)
                .with_context(|| format!("reading {} (not an OCI image layout?)", index_path.display()))?,
        )
        .with_context(|| format!("parsing {}", index_path.display()))?;
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        let chosen = match tag {
            Some(t) => manifests.iter().find(|m| m["annotations"][REF_NAME_ANNOTATION] == t),
            None if manifests.len() == 1 => manifests.first(),
            None => bail!("{}: {} images; name one by tag", dir.display(), manifests.len()),
        };
        let Some(desc) = chosen else { bail!("{}: no image tagged {}", dir.display(), tag.unwrap_or("")) };
        let read_blob = |d: &str, media_type: &str| -> Result<Blob> {
            let hex = d.strip_prefix("sha256:").with_context(|| format!("{d}: only sha256 digests are supported"))?;
            let path = dir.join("blobs/sha256").join(hex);
            let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let blob = Blob::new(media_type, data);
            if blob.digest != d {
                bail!("{}: content does not match its digest", path.display());
            }
            Ok(blob)
        };
        let manifest = read_blob(
            desc["digest"].as_str().context("index.json: manifest without a digest")?,
            desc["mediaType"].as_str().unwrap_or(MANIFEST_MEDIA_TYPE),
        )?;
        Image::from_manifest(manifest, |d, m| read_blob(d, m))
    }

    /// Assembles an image from its manifest blob, fetching the config and layers with `fetch(digest, mediaType)`.
    pub fn from_manifest(manifest: Blob, mut fetch: impl FnMut(&str, &str) -> Result<Blob>) -> Result<Image> {
        let m: Value = serde_json::from_slice(&manifest.data).context("parsing an image manifest")?;
        if m["manifests"].is_array() {
            bail!("an image index (multi-platform image) is not supported here; name one platform's manifest");
        }
        let desc = |d: &Value| -> Result<(String, String)> {
            Ok((
                d["digest"].as_str().context("manifest: descriptor without a digest")?.to_string(),
                d["mediaType"].as_str().unwrap_or_default().to_string(),
            ))
        };
        let (cd, cm) = desc(&m["config"])?;
        let config = fetch(&cd, &cm)?;
        let mut layers = Vec::new();
        for l in m["layers"].as_array().context("manifest: no layers")? {
            let (ld, lm) = desc(l)?;
            layers.push(fetch(&ld, &lm)?);
        }
        Ok(Image { manifest, config, layers })
    }
}
