//! What each image holds and runs (`Spec`: files, labels, entrypoint, cmd, user), described once: the builder
//! ([`crate::packaging::images`]) and the Dockerfiles ([`super::dockerfile`]) are both made from these.
use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::oci::Runtime;
use crate::project::{PACKAGE, paths};
use ako_testbed::tools::Tool;

/// Where the operator binary is in its image (its ENTRYPOINT).
pub const OPERATOR_BINARY: &str = "/usr/local/bin/aerospike-kubernetes-operator";
/// Numeric non-root user and group (distroless' "nonroot"): Kubernetes can check `runAsNonRoot` only for numbers.
pub const NONROOT: &str = "65532:65532";
/// The licence inside the operator image.
pub const LICENSE_DEST: &str = "/licenses/LICENSE";
/// The licence in the repository (what the Dockerfile copies).
pub const LICENSE_FILE: &str = "LICENSE";
/// opm in the opm base image and the catalog image.
pub const OPM_BINARY: &str = "/bin/opm";
/// The catalog inside the catalog image.
pub const CATALOG_CONFIGS: &str = "/configs";
pub const INDEX_LABEL: &str = "operators.operatorframework.io.index.configs.v1";
/// The Rust image of the Dockerfile's builder stage.
pub const RUST_BUILDER_IMAGE: &str = "docker.io/library/rust:1.95-bookworm";

/// A `COPY from to`: a folder of the repository into a folder of the image.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CopyDir {
    pub from: String,
    pub to: String,
}

/// What an image holds and runs, shared by the builder and the Dockerfile templates.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub runtime: Runtime,
    pub copies: Vec<CopyDir>,
}

fn copy(from: &str, to: &str) -> CopyDir {
    CopyDir { from: from.to_string(), to: to.to_string() }
}

/// The operator package's `description` (root Cargo.toml, read at compile time: xtask is another package).
fn operator_description() -> String {
    let manifest = include_str!("../../../Cargo.toml");
    let package = manifest.split("\n[package]").nth(1).unwrap_or_default();
    package
        .lines()
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| l.strip_prefix("description = "))
        .and_then(|v| serde_json::from_str::<String>(v.trim()).ok())
        .unwrap_or_else(|| PACKAGE.to_string())
}

/// The operator image: the static binary as entrypoint, non-root, the licence, OCI labels.
pub fn operator_spec(version: &semver::Version) -> Spec {
    let labels = BTreeMap::from([
        ("org.opencontainers.image.title".to_string(), PACKAGE.to_string()),
        ("org.opencontainers.image.description".to_string(), operator_description()),
        ("org.opencontainers.image.version".to_string(), version.to_string()),
        ("org.opencontainers.image.source".to_string(), env!("CARGO_PKG_REPOSITORY").to_string()),
        ("org.opencontainers.image.licenses".to_string(), env!("CARGO_PKG_LICENSE").to_string()),
    ]);
    Spec {
        runtime: Runtime {
            entrypoint: vec![OPERATOR_BINARY.to_string()],
            user: Some(NONROOT.to_string()),
            labels,
            ..Default::default()
        },
        copies: vec![],
    }
}

/// The bundle image: bundle/ with the bundle annotations as labels (bundle.rs's list, the one annotations.yaml
/// and bundle.Dockerfile are written from).
pub fn bundle_spec(labels: &BTreeMap<String, String>) -> Spec {
    Spec {
        runtime: Runtime { labels: labels.clone(), ..Default::default() },
        copies: vec![
            copy("bundle/manifests", "/manifests/"),
            copy("bundle/metadata", "/metadata/"),
            copy("bundle/tests/scorecard", "/tests/scorecard/"),
        ],
    }
}

/// The catalog image, on an opm base image. No serving cache is baked in: opm's pogreb cache differs from build
/// to build (hash seeds), which would make the image unreproducible; opm builds it at start (a second here).
pub fn catalog_spec() -> Spec {
    Spec {
        runtime: Runtime {
            entrypoint: vec![OPM_BINARY.to_string()],
            cmd: ["serve", CATALOG_CONFIGS, "--cache-dir=/tmp/cache", "--cache-enforce-integrity=false"]
                .map(String::from)
                .to_vec(),
            labels: BTreeMap::from([(INDEX_LABEL.to_string(), CATALOG_CONFIGS.to_string())]),
            ..Default::default()
        },
        copies: vec![copy(paths::CATALOG, CATALOG_CONFIGS)],
    }
}

/// The opm base image: a static opm, /tmp, non-root.
pub fn opm_base_spec() -> Spec {
    Spec {
        runtime: Runtime {
            entrypoint: vec![OPM_BINARY.to_string()],
            user: Some(NONROOT.to_string()),
            labels: BTreeMap::from([
                ("org.opencontainers.image.title".to_string(), "opm".to_string()),
                ("org.opencontainers.image.version".to_string(), Tool::Opm.version().to_string()),
                (
                    "org.opencontainers.image.source".to_string(),
                    "https://github.com/operator-framework/operator-registry".to_string(),
                ),
            ]),
            ..Default::default()
        },
        copies: vec![],
    }
}

/// The fixed time of every file and of the config: $SOURCE_DATE_EPOCH, else 0 (1970-01-01).
pub fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.trim().is_empty() => {
            s.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH `{s}` is not a number of seconds"))
        }
        _ => Ok(0),
    }
}

/// /etc/passwd and /etc/group lines naming root and the non-root user, for programs that look users up.
pub const PASSWD: &[&str] = &["root:x:0:0:root:/:/sbin/nologin", "nonroot:x:65532:65532:nonroot:/:/sbin/nologin"];
pub const GROUP: &[&str] = &["root:x:0:", "nonroot:x:65532:"];

/// The Rust target the operator is built for: this machine's, with glibc linked statically.
pub fn host_target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// The rustc flags of the operator's release build (here and in the Dockerfile): static glibc, and the paths of
/// the dependency sources and of the checkout mapped to fixed names, so the binary (and the image digest) does not
/// depend on where the repository or the cargo home are.
pub fn operator_rustflags(cargo_home: &str, checkout: &str) -> Vec<String> {
    vec![
        "-C".into(),
        "target-feature=+crt-static".into(),
        format!("--remap-path-prefix={cargo_home}=/cargo"),
        format!("--remap-path-prefix={checkout}=/src"),
    ]
}
