//! `storage.deleteLocalStorageOnRestart` with `storage.localStorageClasses`: a pod restarted by the rollout loses its
//! node-local volumes (their PVCs are deleted with it), so the StatefulSet recreates it with new claims and the
//! scheduler may place it on any node; Aerospike refills it by migration. As in the reference, the configured
//! `migrate-fill-delay` is set to 0 on the other nodes after such a restart (the refill starts at once) and set back
//! before the next batch and when the rollout is done. Data goes only where the user's policy says so.
use std::net::SocketAddr;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, DeleteParams};
use serde_json::Value;

use crate::api::StorageSpec;
use crate::asinfo::{AerospikeNode, ConfigContext, InfoClient, InfoError};

/// The PVCs of `pod` deleted with its restart: `<volume>-<pod>` for each persistent volume of a local storage class,
/// when `deleteLocalStorageOnRestart` is true or the pod is `leaving_node` (blocked or drained: its local claims would
/// hold it to that node).
pub(crate) fn claims_deleted_on_restart(storage: &StorageSpec, pod: &str, leaving_node: bool) -> Vec<String> {
    if storage.delete_local_storage_on_restart != Some(true) && !leaving_node {
        return Vec::new();
    }
    storage
        .volumes
        .iter()
        .filter(|v| {
            v.source
                .persistent_volume
                .as_ref()
                .is_some_and(|pv| storage.local_storage_classes.contains(&pv.storage_class))
        })
        .map(|v| format!("{}-{pod}", v.name))
        .collect()
}

/// The PVCs of failed `pod` deleted when it is replaced (`deleteLocalStorageOnPodRecovery`, as the reference): its
/// local claims would hold the replacement to a node where it may not fit or run.
pub(crate) fn claims_deleted_on_recovery(storage: &StorageSpec, pod: &str) -> Vec<String> {
    if storage.delete_local_storage_on_pod_recovery != Some(true) {
        return Vec::new();
    }
    claims_deleted_on_restart(storage, pod, true)
}

/// Whether the storage has a persistent volume of a local storage class (claims a restart may delete).
pub(crate) fn has_local_volumes(storage: &StorageSpec) -> bool {
    !claims_deleted_on_restart(storage, "", true).is_empty()
}

/// Delete the claims (already gone is fine); the names deleted.
pub(crate) async fn delete_claims(api: &Api<PersistentVolumeClaim>, names: &[String]) -> kube::Result<Vec<String>> {
    let mut deleted = Vec::new();
    for name in names {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => deleted.push(name.clone()),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// `service.migrate-fill-delay` of a rack config when set above 0 (otherwise the reference leaves it alone).
pub(crate) fn configured_fill_delay(config: &Value) -> Option<u64> {
    let v = config.get("service")?.get("migrate-fill-delay")?;
    let n = v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))?;
    (n > 0).then_some(n)
}

/// `set-config:context=service;migrate-fill-delay=<value>` on every node.
pub(crate) async fn set_fill_delay(info: &dyn InfoClient, nodes: &[SocketAddr], value: u64) -> Result<(), InfoError> {
    for addr in nodes {
        let node = AerospikeNode::new(info, *addr);
        let version = node.build().await?;
        node.set_config(ConfigContext::Service, "migrate-fill-delay", &value.to_string(), &version).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(delete: Option<bool>) -> StorageSpec {
        serde_json::from_value(serde_json::json!({
            "localStorageClasses": ["local-nvme"],
            "deleteLocalStorageOnRestart": delete,
            "volumes": [
                {"name": "data", "aerospike": {"path": "/dev/nvme"},
                 "source": {"persistentVolume": {"storageClass": "local-nvme", "volumeMode": "Block", "size": "1Gi"}}},
                {"name": "workdir", "aerospike": {"path": "/opt/aerospike"},
                 "source": {"persistentVolume": {"storageClass": "ssd", "volumeMode": "Filesystem", "size": "1Gi"}}},
                {"name": "conf", "aerospike": {"path": "/etc/x"}, "source": {"secret": {"secretName": "s"}}}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn only_local_claims_and_only_when_the_policy_says_so() {
        assert_eq!(
            claims_deleted_on_restart(&storage(Some(true)), "aero-1-0", false),
            vec!["data-aero-1-0".to_string()]
        );
        assert!(claims_deleted_on_restart(&storage(Some(false)), "aero-1-0", false).is_empty());
        assert!(claims_deleted_on_restart(&storage(None), "aero-1-0", false).is_empty());
        // A pod leaving its node (k8sNodeBlockList, a drain) releases its local claims whatever the policy; the
        // others stay.
        assert_eq!(
            claims_deleted_on_restart(&storage(Some(false)), "aero-1-0", true),
            vec!["data-aero-1-0".to_string()]
        );
        assert_eq!(claims_deleted_on_restart(&storage(None), "aero-1-0", true), vec!["data-aero-1-0".to_string()]);
    }

    #[test]
    fn a_failed_pod_loses_its_local_claims_only_with_delete_local_storage_on_pod_recovery() {
        let mut s = storage(Some(true));
        assert!(claims_deleted_on_recovery(&s, "aero-1-0").is_empty(), "deleteLocalStorageOnRestart is another policy");
        s.delete_local_storage_on_pod_recovery = Some(true);
        assert_eq!(claims_deleted_on_recovery(&s, "aero-1-0"), vec!["data-aero-1-0".to_string()]);
        s.delete_local_storage_on_pod_recovery = Some(false);
        assert!(claims_deleted_on_recovery(&s, "aero-1-0").is_empty());
    }

    #[test]
    fn fill_delay_only_when_configured_above_zero() {
        use serde_json::json;
        assert_eq!(configured_fill_delay(&json!({"service": {"migrate-fill-delay": 600}})), Some(600));
        assert_eq!(configured_fill_delay(&json!({"service": {"migrate-fill-delay": 0}})), None);
        assert_eq!(configured_fill_delay(&json!({"service": {}})), None);
    }
}
