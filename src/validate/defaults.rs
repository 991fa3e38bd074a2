//! Defaulting (the mutating webhook): the reference's defaults written into the object, so `kubectl get -o yaml`
//! shows what the operator will use.
//!
//! Every default here is one the build step applies on its own when rendering (or one it ignores), so a
//! defaulted object renders exactly the same objects as the original: defaulting never restarts a pod. Defaulting
//! never fails: a part that cannot be defaulted (a config the build step would refuse) is left as it is, for
//! validation to report with its field path.
//!
//! Not written, on purpose: the reference's default rack `{id: 0}` in `rackConfig.racks` (our schema reserves id 0
//! and the build step derives the default rack itself, so error paths keep pointing at racks the user wrote), and
//! the reference's pod security context `fsGroup: 0` (it would change every pod template and restart pods).
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::aerospike_conf;
use crate::api::{AerospikeCluster, StorageSpec, VolumeMethod, VolumePolicy};

/// Writes the reference's defaults into `cluster` (idempotent):
///
/// - `spec.maxUnavailable: 1` when not set;
/// - storage: `cleanupThreads: 1`, the effective init and wipe methods and cascade delete of the filesystem and
///   block policies and of every volume (`effectiveInitMethod`, `effectiveWipeMethod`, `effectiveCascadeDelete`);
/// - `spec.aerospikeConfig`: the operator-managed values of docs/aerospike-conf.md §6 (`service.node-id`,
///   `service.cluster-name`, the network access placeholders, `network.heartbeat.mode: mesh`, the console log
///   sink, `rack-id` on rack-enabled namespaces);
/// - per rack: `effectiveAerospikeConfig` (the global config merged with the rack's, defaulted for that rack),
///   `effectiveStorage` (the rack's storage or the global one, defaulted) and `effectivePodSpec` (the rack's
///   scheduling or the global one).
pub fn default_cluster(cluster: &mut AerospikeCluster) {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let spec = &mut cluster.spec;
    if spec.max_unavailable.is_none() {
        spec.max_unavailable = Some(IntOrString::Int(1));
    }
    default_storage(spec.storage.get_or_insert_with(StorageSpec::default));

    let rack_namespaces = spec.rack_config.as_ref().map(|rc| rc.namespaces.clone());
    let original = spec.aerospike_config.clone();
    if let Some(global) = spec.aerospike_config.as_mut().filter(|v| v.is_object()) {
        // Rack 0's values in the global config, as the reference writes them; each rack's effective config
        // carries its own rack id (the build step replaces a rack-id 0 it finds there).
        let ctx = aerospike_conf::DefaultsContext {
            cluster_name: name.clone(),
            rack_id: 0,
            rack_namespaces: rack_namespaces.clone(),
        };
        let mut candidate = global.clone();
        if !name.is_empty() && aerospike_conf::apply_defaults(&mut candidate, &ctx).is_ok() {
            *global = candidate;
        }
    }

    let global_storage = spec.storage.clone().unwrap_or_default();
    let global_scheduling = spec.pod_spec.as_ref().map(|p| p.scheduling.clone()).unwrap_or_default();
    if let Some(rc) = spec.rack_config.as_mut() {
        for rack in &mut rc.racks {
            rack.effective_aerospike_config = original.as_ref().filter(|v| v.is_object()).and_then(|global| {
                let own = rack.aerospike_config.as_ref().filter(|v| !v.is_null());
                let mut merged = match own {
                    Some(r) => aerospike_conf::merge_rack_config(global, r),
                    None => global.clone(),
                };
                let ctx = aerospike_conf::DefaultsContext {
                    cluster_name: name.clone(),
                    rack_id: rack.id,
                    rack_namespaces: rack_namespaces.clone(),
                };
                (!name.is_empty() && aerospike_conf::apply_defaults(&mut merged, &ctx).is_ok()).then_some(merged)
            });
            let mut storage = rack.storage.clone().unwrap_or_else(|| global_storage.clone());
            default_storage(&mut storage);
            rack.effective_storage = serde_json::to_value(&storage).ok();
            let scheduling = rack.pod_spec.clone().unwrap_or_else(|| global_scheduling.clone());
            rack.effective_pod_spec =
                serde_json::to_value(&scheduling).ok().filter(|v| v != &Value::Object(Default::default()));
        }
    }
}

/// The reference's storage defaults: one cleanup thread; filesystem volumes init `none`, wipe `deleteFiles`;
/// block volumes init `none`, wipe `dd`; no cascade delete; each volume inherits its class's policy.
pub(crate) fn default_storage(storage: &mut StorageSpec) {
    if storage.cleanup_threads.is_none() {
        storage.cleanup_threads = Some(1);
    }
    for (policy, wipe) in [
        (&mut storage.filesystem_volume_policy, VolumeMethod::DeleteFiles),
        (&mut storage.block_volume_policy, VolumeMethod::Dd),
    ] {
        let p = policy.get_or_insert_with(VolumePolicy::default);
        p.effective_init_method = Some(p.init_method.unwrap_or(VolumeMethod::None));
        p.effective_wipe_method = Some(p.wipe_method.unwrap_or(wipe));
        p.effective_cascade_delete = Some(p.cascade_delete.unwrap_or(false));
    }
    let snapshot = storage.clone();
    for v in &mut storage.volumes {
        let e = v.effective_policy(&snapshot);
        v.effective_init_method = Some(e.init_method);
        v.effective_wipe_method = Some(e.wipe_method);
        v.effective_cascade_delete = Some(e.cascade_delete);
    }
}
