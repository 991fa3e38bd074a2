//! Aerospike info protocol: how the operator asks nodes about cluster state and tells them to
//! quiesce, recluster or change configuration.
//!
//! - [`wire`]: pure byte encoding (shared by client and server, unit-tested without sockets).
//! - [`client`]: the [`InfoClient`] trait the controller holds as `Arc<dyn InfoClient>` (so tests
//!   can substitute a fake) and [`TcpInfoClient`], the real one, bounded by timeouts.
//! - [`ops`]: typed commands on one node ([`AerospikeNode`]), including the `namespace=`/`id=`
//!   switch at server 7.2.
//! - [`safety`]: the checks that gate destructive steps and the quiesce sequence; their error
//!   texts are written for Kubernetes conditions and Events.
//! - [`server`]: a small info server for tests and the simulator.
//! - [`auth`]: the bcrypt credential LOGIN sends to clusters with security enabled.
//! - [`tls`]: the TLS client configuration (CA, node name, client certificate) for clusters served over TLS.
//!
//! The protocol facts this module relies on (framing, commands, LOGIN, credential): docs/protocols.md.

pub mod auth;
pub mod client;
pub mod ops;
pub mod safety;
pub mod server;
pub mod tls;
pub mod wire;

pub use client::{Credentials, InfoClient, InfoError, InfoErrorKind, Stage, TcpInfoClient};
pub use ops::{AerospikeNode, ConfigContext, NamespaceStats, NodeStatistics, Recluster, Roster, ServerVersion};
pub use safety::{
    QuiesceOptions, QuiesceOutcome, SafetyError, StableCluster, check_cluster_stable, check_cluster_stable_command,
    quiesce_batch, quiesce_batch_with, recluster_all, undo_quiesce,
};
pub use server::{InfoHandler, bind_and_spawn, serve};
pub use tls::{TlsClient, TlsMaterial};
pub use wire::WireError;
