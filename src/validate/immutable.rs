//! Rules on changes: what an update may not change (compared with the object being replaced, or in the
//! reconciler with the applied spec kept in status).
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{FieldError, ns_path};
use crate::aerospike_conf;
use crate::api::{AerospikeCluster, VolumeSpec};
use crate::resolve::{Resolved, ResolvedRack};

const CONNECTIONS: &[&str] = &["service", "heartbeat", "fabric"];
const PORTS: &[&str] = &["port", "access-port", "alternate-access-port"];

pub(super) fn check(new_resolved: &Resolved, old_resolved: &Resolved, out: &mut Vec<FieldError>) {
    let (new, old) = (new_resolved.cluster, old_resolved.cluster);
    let (n, o) = (&new.spec, &old.spec);

    if n.pod_spec().multi_pod_per_host() != o.pod_spec().multi_pod_per_host() {
        out.push(FieldError::new(
            "spec.podSpec.multiPodPerHost",
            format!(
                "cannot change from {} to {}: pods would have to move between nodes and ports",
                o.pod_spec().multi_pod_per_host(),
                n.pod_spec().multi_pod_per_host()
            ),
        ));
    }

    // TLS names and ports, compared on the defaulted global configs (so an object defaulted by the webhook and
    // one that was not compare alike).
    let (ng, og) = (effective_global(new), effective_global(old));
    if let (Some(ng), Some(og)) = (&ng, &og) {
        for conn in CONNECTIONS {
            let (nc, oc) = (ng.pointer(&format!("/network/{conn}")), og.pointer(&format!("/network/{conn}")));
            let (Some(nc), Some(oc)) = (nc, oc) else { continue };
            let base = format!("spec.aerospikeConfig.network.{conn}");
            let set = |v: &Value, k: &str| v.get(k).filter(|x| !x.is_null()).cloned();
            if let (Some(a), Some(b)) = (set(oc, "tls-name"), set(nc, "tls-name"))
                && a != b
            {
                out.push(FieldError::new(format!("{base}.tls-name"), format!("cannot change from {a} to {b}")));
            }
            for port in PORTS {
                let tls = format!("tls-{port}");
                for key in [port.to_string(), tls.clone()] {
                    if let (Some(a), Some(b)) = (set(oc, &key), set(nc, &key))
                        && !same_number(&a, &b)
                    {
                        out.push(FieldError::new(format!("{base}.{key}"), format!("cannot change from {a} to {b}")));
                    }
                }
                let had_both = set(oc, port).is_some() && set(oc, &tls).is_some();
                for key in [port.to_string(), tls] {
                    if set(oc, &key).is_some() && set(nc, &key).is_none() && !had_both {
                        out.push(FieldError::new(
                            format!("{base}.{key}"),
                            "cannot be removed: clients and peers use it (a TLS or plain port can be removed only when \
                             both were set)",
                        ));
                    }
                }
            }
        }
        // Enabling security rolls the pods onto the secured config, then access control applies (as the
        // reference does); disabling it would open the data to anyone who can reach a node.
        let sec = |v: &Value| v.get("security").is_some_and(|s| !s.is_null());
        if sec(og) && !sec(ng) {
            out.push(FieldError::new(
                "spec.aerospikeConfig.security",
                "cannot disable security on an existing cluster",
            ));
        }
    }

    if o.aerospike_access_control.is_some() && n.aerospike_access_control.is_none() {
        out.push(FieldError::new(
            "spec.aerospikeAccessControl",
            "cannot be removed once set (the users and roles it created stay in the cluster)",
        ));
    }

    if let Some(old_lb) = o.seeds_finder_services.as_ref().and_then(|s| s.load_balancer.as_ref()) {
        let new_lb = n.seeds_finder_services.as_ref().and_then(|s| s.load_balancer.as_ref());
        if new_lb != Some(old_lb) {
            out.push(FieldError::new(
                "spec.seedsFinderServices.loadBalancer",
                "cannot change once created (delete and recreate the cluster's LoadBalancer settings together)",
            ));
        }
    }

    // Racks present on both sides (explicit racks: the default rack has no placement).
    let (new_racks, old_racks) = (&new_resolved.racks, &old_resolved.racks);
    for nr in new_racks {
        let Some(i) = nr.index else { continue };
        let Some(or) = old_racks.iter().find(|r| r.index.is_some() && r.id == nr.id) else { continue };
        for (field, a, b) in [
            ("zone", &or.zone, &nr.zone),
            ("region", &or.region, &nr.region),
            ("rackLabel", &or.rack_label, &nr.rack_label),
            ("nodeName", &or.node_name, &nr.node_name),
        ] {
            if a != b {
                out.push(FieldError::new(
                    format!("spec.rackConfig.racks[{i}].{field}"),
                    format!("cannot change from {a:?} to {b:?}: add a rack with a new id instead"),
                ));
            }
        }
    }

    check_replication_factor_changes(new_resolved, old_resolved, out);
    let mut pv_changes: BTreeMap<(String, String), Vec<i32>> = BTreeMap::new();
    let mut method_changes: BTreeMap<(String, String, &str), Vec<i32>> = BTreeMap::new();
    for nr in new_racks {
        let Some(or) = old_racks.iter().find(|r| r.id == nr.id) else { continue };
        check_namespace_changes(new, nr, or, out);
        // A new revision replaces the rack's StatefulSet and with it the claims: its volumes start empty, so
        // their methods may change too.
        if nr.revision == or.revision {
            for (path, what) in pv_diff(nr, or) {
                pv_changes.entry((path, what)).or_default().push(nr.id);
            }
            for change in method_diff(nr, or) {
                method_changes.entry(change).or_default().push(nr.id);
            }
        }
    }
    let with_racks = n.rack_config.as_ref().is_some_and(|rc| !rc.racks.is_empty());
    for ((path, what, keep), ids) in method_changes {
        let racks = ids.iter().map(i32::to_string).collect::<Vec<_>>().join(", ");
        let rack = if with_racks { format!(" in rack {racks}") } else { String::new() };
        let hint = if with_racks {
            ", or give the rack a new revision (spec.rackConfig.racks[].revision), which replaces its volumes"
        } else {
            ""
        };
        out.push(FieldError::new(
            path,
            format!(
                "{what}{rack}: the new method would act on the data already on the volume (at its pod's next restart); keep {keep}, \
                 or add a volume under a new name{hint}"
            ),
        ));
    }
    for ((path, what), ids) in pv_changes {
        let racks = ids.iter().map(i32::to_string).collect::<Vec<_>>().join(", ");
        let hint = if with_racks {
            "change the rack's revision (spec.rackConfig.racks[].revision) in the same update, which replaces its StatefulSet"
        } else {
            "the default rack has no revision: use racks (spec.rackConfig.racks) with a new revision"
        };
        out.push(FieldError::new(path, format!("{what} without a new revision of rack {racks}: {hint}")));
    }
}

fn same_number(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The global config with the operator-managed defaults (as rack 0), or as written when they cannot apply.
fn effective_global(c: &AerospikeCluster) -> Option<Value> {
    let mut v = c.spec.aerospike_config.clone().filter(Value::is_object)?;
    let ctx = aerospike_conf::DefaultsContext {
        cluster_name: c.metadata.name.clone().unwrap_or_default(),
        rack_id: 0,
        rack_namespaces: c.spec.rack_config.as_ref().map(|rc| rc.namespaces.clone()),
    };
    let mut d = v.clone();
    if aerospike_conf::apply_defaults(&mut d, &ctx).is_ok() {
        v = d;
    }
    Some(v)
}

/// strong-consistency of namespaces present in the rack on both sides is fixed; their replication-factor changes only
/// on AP namespaces (the reference's rules, checked across racks by [`check_replication_factor_changes`]).
fn check_namespace_changes(new: &AerospikeCluster, nr: &ResolvedRack, or: &ResolvedRack, out: &mut Vec<FieldError>) {
    let (Some(nc), Some(oc)) = (nr.config_value(), or.config_value()) else { return };
    let old_ns = aerospike_conf::namespaces(oc);
    for ns in aerospike_conf::namespaces(nc) {
        let Some(prev) = old_ns.iter().find(|o| o.name == ns.name) else { continue };
        if ns.strong_consistency != prev.strong_consistency {
            out.push(FieldError::new(
                ns_path(&new.spec, nr, &ns.name, &["strong-consistency"]),
                format!(
                    "cannot change from {} to {} for namespace {:?}: strong consistency is fixed when the namespace is created",
                    prev.strong_consistency, ns.strong_consistency, ns.name
                ),
            ));
        }
        if ns.replication_factor != prev.replication_factor && (ns.strong_consistency || prev.strong_consistency) {
            out.push(FieldError::new(
                ns_path(&new.spec, nr, &ns.name, &["replication-factor"]),
                format!(
                    "cannot change from {} to {} for the strong-consistency namespace {:?} (its roster and partitions \
                     are laid out for it); only AP namespaces change replication factor",
                    prev.replication_factor, ns.replication_factor, ns.name
                ),
            ));
        }
    }
}

/// The reference's rules for a replication-factor change: one namespace at a time, and nothing else in the same edit
/// (besides `enableDynamicConfigUpdate` and `paused`). The pods then restart one batch at a time with the new value.
pub(super) fn check_replication_factor_changes(new: &Resolved, old: &Resolved, out: &mut Vec<FieldError>) {
    let mut changed: BTreeSet<String> = BTreeSet::new();
    for nr in &new.racks {
        let Some(or) = old.racks.iter().find(|r| r.id == nr.id) else { continue };
        let (Some(nc), Some(oc)) = (nr.config_value(), or.config_value()) else { continue };
        let old_ns = aerospike_conf::namespaces(oc);
        for ns in aerospike_conf::namespaces(nc) {
            if old_ns.iter().any(|o| o.name == ns.name && o.replication_factor != ns.replication_factor) {
                changed.insert(ns.name.clone());
            }
        }
    }
    if changed.is_empty() {
        return;
    }
    let names: Vec<&str> = changed.iter().map(String::as_str).collect();
    if changed.len() > 1 {
        out.push(FieldError::new(
            "spec.aerospikeConfig.namespaces",
            format!("replication-factor changes one namespace at a time; changed: {}", names.join(", ")),
        ));
    }
    // Everything but replication factors, paused and enableDynamicConfigUpdate must be as before (also left out: the
    // fields the status copy does not keep, as the reconciler compares with it).
    let strip = |spec: &crate::api::AerospikeClusterSpec| -> Value {
        let mut v = serde_json::to_value(spec).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            for key in
                ["paused", "enableDynamicConfigUpdate", "operations", "ignoreSidecarFailure", "enableRackIDOverride"]
            {
                o.remove(key);
            }
        }
        strip_replication_factors(&mut v);
        v
    };
    // Compared as the webhook would store them (defaulted), so defaults written on one side only are no change.
    let defaulted = |c: &AerospikeCluster| {
        let mut c = c.clone();
        super::default_cluster(&mut c);
        c
    };
    let (n, o) = (strip(&defaulted(new.cluster).spec), strip(&defaulted(old.cluster).spec));
    let keys: BTreeSet<&String> = n.as_object().into_iter().chain(o.as_object()).flat_map(|m| m.keys()).collect();
    let others: Vec<&str> = keys.into_iter().filter(|k| n.get(k) != o.get(k)).map(|k| k.as_str()).collect();
    if let Some(first) = others.first() {
        out.push(FieldError::new(
            format!("spec.{first}"),
            format!(
                "cannot change together with the replication-factor of namespace {}: a replication-factor change \
                 must be the only change of its edit (changed too: {})",
                names.join(", "),
                others.join(", ")
            ),
        ));
    }
}

fn strip_replication_factors(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.contains_key("name") {
                o.remove("replication-factor");
            }
            o.values_mut().for_each(strip_replication_factors);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_replication_factors),
        _ => {}
    }
}

fn pv(v: &VolumeSpec) -> Option<&crate::api::PersistentVolumeSpec> {
    v.source.persistent_volume.as_ref()
}

/// Persistent volumes added, removed or changed between the old and new storage of one rack: (path, what).
fn pv_diff(nr: &ResolvedRack, or: &ResolvedRack) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (j, v) in nr.storage.volumes.iter().enumerate() {
        let prev = or.storage.volumes.iter().find(|o| o.name == v.name);
        match (pv(v), prev.and_then(pv)) {
            // A persistent volume may be added: the operator recreates the rack's StatefulSet with its claim template
            // (pods kept) and then restarts the rack's pods onto it, one batch at a time.
            (Some(_), None) if prev.is_none() => {}
            (Some(_), None) => found.push((
                format!("{}.volumes[{j}].source", nr.storage_path),
                format!("volume {:?} becomes a persistent volume", v.name),
            )),
            (None, Some(_)) => found.push((
                format!("{}.volumes[{j}].source", nr.storage_path),
                format!("volume {:?} stops being a persistent volume", v.name),
            )),
            (Some(a), Some(b)) if a != b => {
                // A size alone may grow: the operator expands the claims in place (no new revision, no restart).
                let same_but_size = crate::api::PersistentVolumeSpec { size: b.size.clone(), ..a.clone() } == *b;
                let (new_size, old_size) = (super::quantity::parse(&a.size.0), super::quantity::parse(&b.size.0));
                match (same_but_size, new_size, old_size) {
                    (true, Some(n), Some(o)) if n >= o => {}
                    (true, Some(_), Some(_)) => found.push((
                        format!("{}.volumes[{j}].source.persistentVolume.size", nr.storage_path),
                        format!("persistent volume {:?} shrinks from {} to {}", v.name, b.size.0, a.size.0),
                    )),
                    _ => found.push((
                        format!("{}.volumes[{j}].source.persistentVolume", nr.storage_path),
                        format!("persistent volume {:?} is changed", v.name),
                    )),
                }
            }
            _ => {}
        }
    }
    for v in &or.storage.volumes {
        if pv(v).is_some() && !nr.storage.volumes.iter().any(|n| n.name == v.name) {
            found.push((format!("{}.volumes", nr.storage_path), format!("persistent volume {:?} is removed", v.name)));
        }
    }
    found
}

/// Init and wipe methods of the persistent volumes present in the old and new storage of one rack (same name,
/// persistent on both sides) whose effective value changed: (path of the setting that decides it, what, the old
/// method). The
/// effective value counts, so the same method written on the volume or inherited from its class's policy is no
/// change, and a class policy changed under a volume is.
fn method_diff(nr: &ResolvedRack, or: &ResolvedRack) -> Vec<(String, String, &'static str)> {
    let mut found = Vec::new();
    for (j, v) in nr.storage.volumes.iter().enumerate() {
        let Some(new_pv) = pv(v) else { continue };
        let Some(prev) = or.storage.volumes.iter().find(|o| o.name == v.name && pv(o).is_some()) else { continue };
        let (a, b) = (prev.effective_policy(&or.storage), v.effective_policy(&nr.storage));
        let class = if new_pv.volume_mode == "Block" { "blockVolumePolicy" } else { "filesystemVolumePolicy" };
        let class_policy = if new_pv.volume_mode == "Block" {
            nr.storage.block_volume_policy.as_ref()
        } else {
            nr.storage.filesystem_volume_policy.as_ref()
        };
        for (what, field, old_m, new_m, own, inherited) in [
            (
                "init",
                "initMethod",
                a.init_method,
                b.init_method,
                v.init_method.is_some(),
                class_policy.is_some_and(|p| p.init_method.is_some()),
            ),
            (
                "wipe",
                "wipeMethod",
                a.wipe_method,
                b.wipe_method,
                v.wipe_method.is_some(),
                class_policy.is_some_and(|p| p.wipe_method.is_some()),
            ),
        ] {
            if old_m == new_m {
                continue;
            }
            // The setting in force: the volume's own, else its class policy's, else the volume (where a setting
            // would restore the old value).
            let path = if !own && inherited {
                format!("{}.{class}.{field}", nr.storage_path)
            } else {
                format!("{}.volumes[{j}].{field}", nr.storage_path)
            };
            found.push((
                path,
                format!(
                    "{what} method of persistent volume {:?} cannot change from {} to {}",
                    v.name,
                    old_m.as_str(),
                    new_m.as_str()
                ),
                old_m.as_str(),
            ));
        }
    }
    found
}
