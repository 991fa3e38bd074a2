//! What the watch caches keep of each object: what the reconciler reads, not what the apiserver sends. Every
//! cached object loses its managedFields (the apiserver's bookkeeping of server-side apply, often larger than
//! the object's own fields, and never read here) and kubectl's last-applied annotation; ConfigMaps also lose
//! their data but for the per-pod records the reconciler reads back (volume entries, network facts): otherwise it
//! only compares the desired-hash annotation that `apply` stamps on them (the rendered configuration is rebuilt
//! from the spec on every reconcile, so a cached copy would hold it twice).
use k8s_openapi::api::core::v1::ConfigMap;

use crate::desired::{self, pod_network};

/// ConfigMap keys the reconciler reads back from its cache.
const KEPT_KEYS: [&str; 2] = [desired::CM_VOLUMES_KEY, pod_network::CM_POD_NETWORK_KEY];
use kube::Resource;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops the metadata the reconciler never reads.
pub(super) fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// [`slim`], and the data (see the module docs).
pub(super) fn slim_config_map(cm: &mut ConfigMap) {
    slim(cm);
    if let Some(data) = cm.data.as_mut() {
        data.retain(|k, _| KEPT_KEYS.contains(&k.as_str()));
    }
    cm.data = cm.data.take().filter(|d| !d.is_empty());
    cm.binary_data = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
    use std::collections::BTreeMap;

    fn meta() -> ObjectMeta {
        ObjectMeta {
            name: Some("c".into()),
            annotations: Some(BTreeMap::from([
                (LAST_APPLIED.to_string(), "{}".to_string()),
                ("aerospike.com/desired-hash".to_string(), "h".to_string()),
            ])),
            managed_fields: Some(vec![ManagedFieldsEntry::default()]),
            ..Default::default()
        }
    }

    #[test]
    fn slim_keeps_the_desired_hash_and_drops_bookkeeping() {
        let mut cm = ConfigMap {
            metadata: meta(),
            data: Some(BTreeMap::from([
                ("aerospike.template.conf".to_string(), "x".repeat(1000)),
                (pod_network::CM_POD_NETWORK_KEY.to_string(), "{}".to_string()),
            ])),
            ..Default::default()
        };
        slim_config_map(&mut cm);
        assert_eq!(cm.metadata.managed_fields, None);
        assert_eq!(
            cm.metadata.annotations,
            Some(BTreeMap::from([("aerospike.com/desired-hash".to_string(), "h".to_string())]))
        );
        // Only what the reconciler reads back stays.
        assert_eq!(cm.data, Some(BTreeMap::from([(pod_network::CM_POD_NETWORK_KEY.to_string(), "{}".to_string())])));
        let mut bare =
            ConfigMap { data: Some(BTreeMap::from([("peers".to_string(), "a".to_string())])), ..Default::default() };
        slim_config_map(&mut bare);
        assert_eq!(bare.data, None);
        assert_eq!(cm.metadata.name.as_deref(), Some("c"));
    }
}
