//! OLM on the local control plane: OLM's CRDs, the olm and catalog operators as host processes, and `opm serve`
//! serving our catalog (manifests-only bundles) on a loopback port. See docs/local-olm.md §1 ("OLM without a
//! kubelet") for why this works without pods:
//!
//! - a CatalogSource with `spec.address` makes the catalog operator talk to our `opm serve` directly (no registry
//!   pod), and bundles with `image: ""` carrying their manifests as `olm.bundle.object` properties need no unpack
//!   Job (xtask's `olm::prepare_catalog` writes such a catalog with `cargo xtask catalog --manifests-only`);
//! - the operator Deployment of a CSV runs on kwok's fake nodes, so it becomes Available and the CSV Succeeded; the
//!   operator under test then runs on the host (in-process in tests, the binary in `cargo xtask demo`) with the
//!   WATCH_NAMESPACE OLM computed ([`watch_namespace`]) and the ServiceAccount and RBAC OLM created
//!   ([`service_account_kubeconfig`]).
//!
//! Namespaces, as upstream's install makes them: `olm` (OperatorGroup `olm-operators`) and `operators` (the global
//! OperatorGroup `global-operators`, AllNamespaces). One difference: the catalog operator's global catalog
//! namespace (its `--namespace`) is [`GLOBAL_CATALOG_NAMESPACE`] = `aerospike`, so a CatalogSource `aerospike` in
//! namespace `aerospike` serves Subscriptions in every namespace (upstream's is `olm`).
//!
//! Port 8080: both OLM binaries serve /healthz and /metrics on a hard-coded `:8080` (every interface), and only log
//! a failed bind. In a pod each has the port to itself; on one host the olm and catalog operators already compete
//! for it (one of them logs `address already in use` and works on), and so would a second OLM and any other program
//! wanting :8080 (our operator's default metrics address among them). Nothing here probes :8080: readiness is read
//! from the API (the global OperatorGroup's status, a CatalogSource turning READY). To keep the port's holder
//! predictable and the 2-core machines from running several OLMs at once, only one OLM runs per machine at a time:
//! [`OlmSlot`] is a machine-wide slot (a file in the temp folder naming the holding processes). Tests wait for it
//! (bounded, [`SLOT_WAIT_ENV`]); an OLM left running by `cargo xtask cluster up --olm` or `cargo xtask demo` makes
//! them fail at once, naming the command that stops it. The slot frees itself when its holders exit, however they
//! exit.
//!
//! State folder (the cluster's): `olm-operator.log`, `catalog-operator.log`, `opm-serve.log` (and
//! `opm-serve-<n>.log` for more catalogs), `olm.json` (pids and the catalog address). Detached runs (`cluster up
//! --olm`, `demo`) also add their processes to the cluster's `state.json`, so `cargo xtask cluster down` stops them.
//!
//! Modules: `slot` (the machine-wide slot), `processes` (starting OLM, serving catalogs, detached runs), `objects`
//! (OLM's kinds, apply, builders, status readers), `wait` (polling, WATCH_NAMESPACE, ServiceAccount kubeconfigs,
//! access reviews, descriptions); all re-exported here.
mod objects;
mod processes;
mod slot;
mod wait;

pub use crate::cluster::{crd_established, wait_crd_established};
pub use objects::*;
pub use processes::*;
pub use slot::OlmSlot;
pub use wait::*;

use std::time::Duration;

/// The catalog operator's `--namespace`: CatalogSources here serve Subscriptions of every namespace.
pub const GLOBAL_CATALOG_NAMESPACE: &str = "aerospike";
/// The name of our CatalogSource (in [`GLOBAL_CATALOG_NAMESPACE`]), as the issue and README name it.
pub const CATALOG_SOURCE: &str = "aerospike";
/// OLM's own namespace (the olm operator's `--namespace`).
pub const OLM_NAMESPACE: &str = "olm";
/// Namespace of the global (AllNamespaces) OperatorGroup.
pub const OPERATORS_NAMESPACE: &str = "operators";
pub const GLOBAL_OPERATOR_GROUP: &str = "global-operators";
/// Component names (also log file stems).
pub const OLM_OPERATOR: &str = "olm-operator";
pub const CATALOG_OPERATOR: &str = "catalog-operator";
pub const OPM_SERVE: &str = "opm-serve";
/// Field manager of everything applied from here.
pub const FIELD_MANAGER: &str = "xtask-olm";
/// The annotation OLM puts on the operator's pods (and their template) with the target namespaces.
pub const TARGET_NAMESPACES_ANNOTATION: &str = "olm.targetNamespaces";
/// Seconds to wait for the machine's OLM slot (default [`DEFAULT_SLOT_WAIT`]).
pub const SLOT_WAIT_ENV: &str = "AKO_OLM_SLOT_WAIT_SECS";
const DEFAULT_SLOT_WAIT: Duration = Duration::from_secs(30 * 60);
/// Upper bound of each readiness wait while starting.
const START_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_GRACE: Duration = Duration::from_secs(5);
const OLM_STATE_FILE: &str = "olm.json";
const SELF_CHECK_SOURCE: &str = "olm-self-check";
