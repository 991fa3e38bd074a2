//! The operator's local test bed, used by the end-to-end tests (tests/), the benchmarks and `cargo xtask
//! cluster|simulator|demo|bench|tools`:
//! - [`tools`]: the pinned third-party tools (Kubernetes, etcd, kwok, OLM, opm, operator-sdk, cargo-deny), built
//!   once per machine into a cache;
//! - [`cluster`]: a real Kubernetes control plane on loopback without a kubelet (processes, PKI, kwok nodes and pod
//!   stages, a fake storage provisioner, pod CIDR claims);
//! - [`gojudge`]: small Go programs of the repository (the Go client's judge), built on demand into the tool cache;
//! - [`pyclient`]: the official Aerospike Python client, installed on demand into a venv in the tool cache;
//! - [`prometheus`]: a real Prometheus (Debian's) on the plane, its HTTP API, file-discovery targets for pods;
//! - [`olm`]: OLM on that plane (its CRDs, the olm and catalog operators as host processes, `opm serve`), the OLM
//!   objects and the waits the tests use.
//!
//! It knows nothing of this repository's packaging: the catalog OLM serves is written by the caller (xtask's
//! `olm::prepare_catalog`).
pub mod cluster;
pub mod gojudge;
pub mod olm;
pub mod prometheus;
pub mod pyclient;
pub mod tools;
pub mod yaml;
