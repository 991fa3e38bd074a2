//! Aerospike Kubernetes Operator: library half of the operator binary.
//!
//! Layout: `api` (the CRD types, one source of truth), `conf` (aerospike.conf rendering, pure),
//! `info` (Aerospike info protocol), `build` (spec in, desired objects out, pure), `plan` (restart and
//! scale batches, pure), `controller` (the thin layer that reads, applies and reports), `podinit` (the
//! pods' init step), and the process parts (`metrics`, `server`, `telemetry`).
pub mod api;
pub mod build;
pub mod cli;
pub mod conf;
pub mod controller;
pub mod info;
pub mod leader;
pub mod metrics;
pub mod plan;
pub mod podinit;
pub mod rbac;
pub mod server;
pub mod telemetry;
pub mod validate;
pub mod webhook;
