//! Aerospike Kubernetes Operator: library half of the operator binary.
//!
//! Layout: `api` (the CRD types, one source of truth), `conf` (aerospike.conf rendering, pure),
//! `info` (Aerospike info protocol), `build` (spec in, desired objects out, pure), `plan` (restart and
//! scale batches, pure), `controller` (the thin layer that reads, applies and reports).
pub mod api;
pub mod conf;
pub mod info;
pub mod rbac;
