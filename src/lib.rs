//! Aerospike Kubernetes Operator: library half of the operator binary.
//!
//! Layout: `api` (the CRD types, one source of truth), `aerospike_conf` (aerospike.conf keys and rendering, pure),
//! `resolve` (a cluster read once into racks), `validate` (the admission rules on a resolved cluster),
//! `asinfo` (Aerospike's info protocol: wire format, client, safety checks), `desired` (spec in, desired objects
//! out, pure), `plan` (the rollout decision, pure), `operations` (on-demand operations' progress, pure), `controller` (the thin layer that reads, applies and reports),
//! `podinit` (the pods' init step), `cli` (the binary's contract with its manifests), and the process parts
//! (`metrics`, `server`, `telemetry`, `leader`).
pub mod access;
pub mod aerospike_conf;
pub mod api;
pub mod asinfo;
pub mod backup;
pub mod cli;
pub mod controller;
pub mod desired;
pub mod leader;
pub mod metrics;
pub mod operations;
pub mod plan;
pub mod podinit;
pub mod rbac;
pub mod resolve;
pub mod roster;
pub mod server;
pub(crate) mod suggest;
pub mod telemetry;
pub mod validate;
pub mod webhook;
