//! Names shared by every generated artifact: package, images, namespaces and file locations.
use std::path::{Path, PathBuf};

/// The OLM package, the CSV name prefix and the name of the operator's Deployment and ServiceAccount.
pub const PACKAGE: &str = "aerospike-kubernetes-operator";
/// Operator image repository; the tag is the release version (the binary's own contract, src/cli.rs).
pub const IMAGE_REPOSITORY: &str = aerospike_kubernetes_operator::cli::IMAGE_REPOSITORY;
/// Bundle image repository (`bundle.Dockerfile`); the tag is `v<version>`.
pub const BUNDLE_IMAGE_REPOSITORY: &str = "ghcr.io/aerospike-rs/aerospike-kubernetes-operator-bundle";
/// Catalog image (`catalog.Dockerfile`).
pub const CATALOG_IMAGE: &str = "ghcr.io/aerospike-rs/aerospike-kubernetes-operator-catalog:latest";
/// Namespace of the plain (non-OLM) install in config/, and the namespace OLM suggests.
pub const OPERATOR_NAMESPACE: &str = "aerospike-operator";
/// The oldest Kubernetes we test against (the control plane `cargo xtask tools` builds is 1.33).
pub const MIN_KUBE_VERSION: &str = "1.33.0";
/// Channel a bundle goes to unless told otherwise.
pub const DEFAULT_CHANNEL: &str = "stable";
/// Name of the operator container (the name OLM's tooling recognises as the manager).
pub const CONTAINER: &str = "manager";
/// Metrics and health ports of the operator binary (`--metrics-addr`, `--health-addr` defaults), from the binary's
/// own contract (src/cli.rs), as Kubernetes port numbers.
pub const METRICS_PORT: i32 = aerospike_kubernetes_operator::cli::METRICS_PORT as i32;
pub const HEALTH_PORT: i32 = aerospike_kubernetes_operator::cli::HEALTH_PORT as i32;
/// Port of the admission webhook server (`--webhook-addr` default), also the port of the Services in front of it
/// (ours in config/webhook, OLM's from webhookdefinitions): no privileged port anywhere.
pub const WEBHOOK_PORT: i32 = aerospike_kubernetes_operator::cli::WEBHOOK_PORT as i32;
/// The webhook Service of the plain install (under OLM, OLM creates `<deployment>-service` itself).
pub const WEBHOOK_SERVICE: &str = "aerospike-kubernetes-operator-webhook";
/// Operating systems and architectures the operator image is built for.
pub const ARCHITECTURES: &[&str] = &["amd64", "arm64"];
pub const OPERATING_SYSTEMS: &[&str] = &["linux"];
/// Version of the scorecard test image named in the scorecard configuration (matches the pinned operator-sdk).
pub const SCORECARD_IMAGE: &str = "quay.io/operator-framework/scorecard-test:v1.42.2";

/// The release this checkout describes (the workspace version).
pub fn workspace_version() -> semver::Version {
    semver::Version::parse(env!("CARGO_PKG_VERSION")).expect("the workspace version is semver")
}

/// `ghcr.io/...:<version>`: the operator image of a release.
pub fn operator_image(version: &semver::Version) -> String {
    format!("{IMAGE_REPOSITORY}:{version}")
}

/// The bundle image of a release.
pub fn bundle_image(version: &semver::Version) -> String {
    format!("{BUNDLE_IMAGE_REPOSITORY}:v{version}")
}

/// `aerospike-kubernetes-operator.v<version>`: the CSV and bundle name of a release.
pub fn csv_name(version: &semver::Version) -> String {
    format!("{PACKAGE}.v{version}")
}

/// The repository root (the workspace that holds xtask/).
pub fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Paths of inputs and outputs, relative to the repository root.
pub mod paths {
    pub const CONFIG_CRD: &str = "config/crd";
    pub const CONFIG_RBAC: &str = "config/rbac";
    pub const CONFIG_MANAGER: &str = "config/manager";
    pub const CONFIG_WEBHOOK: &str = "config/webhook";
    pub const CONFIG_SAMPLES: &str = "config/samples";
    /// The scorecard configuration (a copy ships in the bundle, bundle/tests/scorecard).
    pub const SCORECARD: &str = "scorecard";
    pub const CONFIG_EXAMPLES: &str = "config/examples";
    pub const CSV_BASE: &str = "config/manifests/csv-base.yaml";
    pub const BUNDLE: &str = "bundle";
    pub const BUNDLE_DOCKERFILE: &str = "bundle.Dockerfile";
    pub const CATALOG: &str = "catalog";
    pub const CATALOG_PACKAGE: &str = "catalog/aerospike-kubernetes-operator";
    pub const CATALOG_DOCKERFILE: &str = "catalog.Dockerfile";
}
