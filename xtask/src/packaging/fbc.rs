//! The file-based catalog (FBC) as typed documents, and reading one from disk: what the bundle plan reads to
//! place a release, what [`super::graph`] checks and what [`super::catalog`] adds a release to.
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
use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::out;
use crate::project::PACKAGE;

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
        let hs = heads(&c.doc.entries);
        (hs.len() == 1).then(|| hs[0].clone())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering a bundle directory the way `opm render` does.

/// The head of a channel: the entry that no other entry replaces or skips (None unless exactly one).
pub fn heads(entries: &[ChannelEntry]) -> Vec<String> {
    let incoming: BTreeSet<&str> =
        entries.iter().flat_map(|e| e.replaces.iter().chain(e.skips.iter()).map(String::as_str)).collect();
    entries.iter().filter(|e| !incoming.contains(e.name.as_str())).map(|e| e.name.clone()).collect()
}
