//! Leader election on a Lease, so that of several replicas only one reconciles.
//!
//! `acquire` waits until this instance holds the Lease; `Leadership::lost` resolves when it no longer does.
//! The process then stops acting (main exits and the Deployment restarts it as a standby), which is simpler
//! and safer than trying to pause controllers in place.
use anyhow::Context;
use kube::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

pub const LEASE_NAME: &str = "aerospike-kubernetes-operator";

pub struct Leadership {
    rx: watch::Receiver<bool>,
    _task: JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
}

/// Wait until `identity` holds the Lease in `namespace`. Lease duration 15 s, grace 5 s: a crashed leader is
/// replaced within about 20 s.
pub async fn acquire(client: Client, namespace: &str, identity: &str) -> anyhow::Result<Leadership> {
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .context("leader election setup")?;
    let (mut rx, task) = manager.watch().await;
    info!(identity, namespace, "waiting for leadership");
    while !*rx.borrow_and_update() {
        rx.changed().await.context("leader election stopped")?;
    }
    info!(identity, "leading");
    Ok(Leadership { rx, _task: task })
}

impl Leadership {
    /// Resolves when the Lease is lost (or the election task ends).
    pub async fn lost(&mut self) {
        while self.rx.changed().await.is_ok() {
            if !*self.rx.borrow() {
                return;
            }
        }
    }
}
