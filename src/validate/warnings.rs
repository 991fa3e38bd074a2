//! Fields the operator accepts (so the reference's manifests apply unchanged) but does not act on yet: each one set
//! is named in a warning, which the webhook returns to the client (`kubectl` prints it) and the reconciler
//! publishes as a Warning Event when a new spec arrives. A user must never believe something happened that did not.
//! README's "Known limits" lists the same fields; remove an entry here when the feature lands.
use std::collections::BTreeSet;

use crate::aerospike_conf;
use crate::api::{FieldError, VolumeMethod};
use crate::resolve::Resolved;

/// One warning per field that is set and not acted on.
pub fn warnings(resolved: &Resolved) -> Vec<FieldError> {
    let spec = &resolved.cluster.spec;
    let mut out = Vec::new();
    let mut warn = |path: &str, message: &str| out.push(FieldError::new(path, message));

    if spec.enable_dynamic_config_update == Some(true) {
        warn("spec.enableDynamicConfigUpdate", "not implemented yet: every config change restarts the pods");
    }
    if !spec.operations.is_empty() {
        warn("spec.operations", "not implemented yet: the listed operations are not carried out");
    }
    if !spec.roster_node_block_list.is_empty() {
        warn("spec.rosterNodeBlockList", "not implemented yet: the operator does not manage rosters");
    }
    if spec.pod_service.is_some() {
        warn("spec.podService", "not implemented yet: no per-pod Service is created");
    }
    if spec.validation_policy.is_some() {
        warn("spec.validationPolicy", "not implemented yet: the work-directory and init checks it tunes do not run");
    }
    if spec.ignore_sidecar_failure == Some(true) {
        warn("spec.ignoreSidecarFailure", "not implemented yet: a failing sidecar makes its pod not ready");
    }
    if let Some(rc) = &spec.rack_config {
        if rc.max_ignorable_pods.is_some() {
            warn("spec.rackConfig.maxIgnorablePods", "not implemented yet: an unready pod stops every rollout");
        }
        for (i, rack) in rc.racks.iter().enumerate() {
            if rack.force_block_from_roster == Some(true) {
                warn(
                    &format!("spec.rackConfig.racks[{i}].forceBlockFromRoster"),
                    "not implemented yet: the operator does not manage rosters",
                );
            }
        }
    }

    // Strong consistency: nothing sets the roster, so such a namespace stays unavailable.
    let mut sc = BTreeSet::new();
    for rack in &resolved.racks {
        for ns in rack.config_value().map(aerospike_conf::namespaces).unwrap_or_default() {
            if ns.strong_consistency {
                sc.insert(ns.name);
            }
        }
    }
    for name in sc {
        warn(
            "spec.aerospikeConfig.namespaces",
            &format!(
                "namespace {name:?} is strong-consistency: the operator does not set its roster yet, so it stays \
                 unavailable until a roster is set by hand (roster-set, recluster)"
            ),
        );
    }

    // Storage: init methods pod-init cannot run, wipe methods and cleanup threads nothing uses yet.
    let mut seen = BTreeSet::new();
    for rack in &resolved.racks {
        let storage = &rack.storage;
        if storage.cleanup_threads.is_some() && seen.insert(format!("{}.cleanupThreads", rack.storage_path)) {
            warn(
                &format!("{}.cleanupThreads", rack.storage_path),
                "not implemented yet: volumes are initialised one by one",
            );
        }
        for (j, volume) in storage.volumes.iter().enumerate() {
            if volume.source.persistent_volume.is_none() {
                continue;
            }
            let policy = volume.effective_policy(storage);
            let path = format!("{}.volumes[{j}]", rack.storage_path);
            if !matches!(policy.init_method, VolumeMethod::None | VolumeMethod::DeleteFiles)
                && seen.insert(format!("{path}.initMethod"))
            {
                warn(
                    &format!("{path}.initMethod"),
                    &format!(
                        "init method {} is not implemented yet: volume {:?} is used as it is, not initialised",
                        serde_json::to_value(policy.init_method).unwrap_or_default(),
                        volume.name
                    ),
                );
            }
            let explicit_wipe = volume.wipe_method.is_some()
                || storage.block_volume_policy.as_ref().is_some_and(|p| p.wipe_method.is_some())
                || storage.filesystem_volume_policy.as_ref().is_some_and(|p| p.wipe_method.is_some());
            if explicit_wipe && seen.insert(format!("{path}.wipeMethod")) {
                warn(
                    &format!("{path}.wipeMethod"),
                    "not implemented yet: volumes are not wiped when a namespace or device is removed",
                );
            }
        }
    }
    out
}
