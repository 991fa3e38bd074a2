//! Which volumes of each pod are initialised or dirty (status.pods[].initializedVolumes / dirtyVolumes), and what
//! pod-init is told about them. pod-init has no API access: the operator writes one entry per pod incarnation into
//! the rack ConfigMap ([`desired::CM_VOLUMES_KEY`]) once it has seen the pod and its claims, and pod-init waits for
//! the entry of its own pod uid. The entry of a uid never changes afterwards, so once that pod has run pod-init the
//! operator knows exactly what was done: it records `<volume>@<claim uid>` as initialised (a replaced claim has a
//! new uid and is initialised again) and takes the wiped volumes off the dirty list.
//!
//! Volumes become dirty as the reference's handleNSOrDeviceRemoval decides: a device a namespace of the applied
//! config used and the new config does not is dirty on every pod that starts while that change rolls out (each
//! starts on the new config). The mark is part of the pod's entry, which is durable in the ConfigMap before pod-init
//! can run, and is copied into the status from there: a failed status write or an operator restart loses nothing.
//! pod-init wipes a dirty volume only once a namespace uses its device again (the reference's init does the same);
//! until then it stays dirty.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use serde_json::Value;

use super::cached_pod::CachedPod;
use crate::api::{PodStatus, StorageSpec};
use crate::desired::{self, PodVolumes};

/// Claim name -> uid, for claims that are not being deleted.
pub(crate) fn claim_uids(claims: &[PersistentVolumeClaim]) -> BTreeMap<String, String> {
    claims
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter_map(|c| Some((c.name_any(), c.metadata.uid.clone()?)))
        .collect()
}

/// The persistent volumes of a storage spec, by name.
pub(crate) fn persistent_volumes(storage: &StorageSpec) -> Vec<String> {
    storage.volumes.iter().filter(|v| v.source.persistent_volume.is_some()).map(|v| v.name.clone()).collect()
}

/// The claim a StatefulSet gives `pod` for the template `volume`.
fn claim_name(volume: &str, pod: &str) -> String {
    format!("{volume}-{pod}")
}

/// Whether `recorded` (status.pods[].initializedVolumes) says `volume` is initialised on the claim with `uid`. A
/// bare name (the reference's older form) counts for any claim, as the reference's init image reads it.
fn recorded_on(recorded: &[String], volume: &str, uid: Option<&String>) -> bool {
    recorded.iter().any(|r| match r.split_once('@') {
        Some((name, u)) => name == volume && Some(&u.to_string()) == uid,
        None => r == volume,
    })
}

/// The pod's uid.
fn uid(pod: &CachedPod) -> Option<String> {
    pod.metadata.uid.clone()
}

/// What one rack's entries are made from: its persistent volumes, and the config new pods start on.
pub(crate) struct RackVolumes<'a> {
    pub(crate) volumes: &'a [String],
    pub(crate) config: &'a Value,
    pub(crate) conf_hash: &'a str,
    pub(crate) storage: &'a StorageSpec,
    /// Volumes the change under way takes from namespaces ([`removed_device_volumes`]): dirty on every pod that
    /// starts before the change is applied.
    pub(crate) gone: &'a [String],
}

/// The ConfigMap entries of one rack (pure): `existing` entries are kept for the pod uid they were written for; a
/// pod seen with a new uid gets a new entry from its status, the change under way and its current claims.
pub(crate) fn entries(
    rack: &RackVolumes,
    pods: &[&CachedPod],
    existing: &BTreeMap<String, PodVolumes>,
    status: &BTreeMap<String, PodStatus>,
    claims: &BTreeMap<String, String>,
) -> BTreeMap<String, PodVolumes> {
    let used = used_device_volumes(rack.config, rack.storage);
    let mut out = BTreeMap::new();
    for pod in pods {
        let (name, Some(uid)) = (pod.name_any(), uid(pod)) else { continue };
        if let Some(e) = existing.get(&name).filter(|e| e.uid == uid) {
            out.insert(name, e.clone());
            continue;
        }
        let old = status.get(&name).cloned().unwrap_or_default();
        let initialized = rack
            .volumes
            .iter()
            .filter(|v| recorded_on(&old.initialized_volumes, v, claims.get(&claim_name(v, &name))))
            .cloned()
            .collect();
        let all_dirty: BTreeSet<&String> = old.dirty_volumes.iter().chain(rack.gone).collect();
        let (dirty, keep_dirty): (Vec<String>, Vec<String>) =
            all_dirty.into_iter().cloned().partition(|v| used.contains(v));
        let conf_hash = (!dirty.is_empty() || !keep_dirty.is_empty()).then(|| rack.conf_hash.to_string());
        out.insert(name, PodVolumes { uid, initialized, dirty, keep_dirty, conf_hash });
    }
    out
}

/// The volumes whose device a namespace of `config` uses (pure): a dirty one among them is wiped when a pod starts.
pub(crate) fn used_device_volumes(config: &Value, storage: &StorageSpec) -> BTreeSet<String> {
    let paths: BTreeSet<String> = devices(config).into_values().flatten().collect();
    storage
        .volumes
        .iter()
        .filter(|v| v.aerospike.as_ref().is_some_and(|a| paths.contains(&a.path)))
        .map(|v| v.name.clone())
        .collect()
}

/// Whether the pod's pod-init has run to the end: its init container terminated successfully, or the pod runs.
pub(super) fn init_done(pod: &CachedPod) -> bool {
    let Some(st) = pod.status.as_ref() else { return false };
    let init_ok = st.init_container_statuses.iter().flatten().any(|c| {
        c.name == desired::INIT_CONTAINER_NAME
            && c.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some_and(|t| t.exit_code == 0)
    });
    init_ok || matches!(st.phase.as_deref(), Some("Running") | Some("Succeeded"))
}

/// Whether the pod's pod-init reads the volume entries (a pod made before this operator version did not: it ran
/// no wipe, so its dirty volumes stay dirty).
fn reads_entries(pod: &CachedPod) -> bool {
    pod.spec.iter().flat_map(|s| s.init_containers.iter().flatten()).any(|c| {
        c.name == desired::INIT_CONTAINER_NAME && c.env.iter().flatten().any(|e| e.name == desired::ENV_POD_UID)
    })
}

/// status.pods[pod].initializedVolumes and dirtyVolumes after this reconcile (pure). `entry`: the pod's ConfigMap
/// entry; its dirty marks are recorded at once, and the wiped ones cleared once pod-init has run.
pub(crate) fn record(
    pod: &CachedPod,
    old: &PodStatus,
    entry: Option<&PodVolumes>,
    volumes: &[String],
    claims: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<String>) {
    let name = pod.name_any();
    let mut initialized: BTreeSet<String> = old.initialized_volumes.iter().cloned().collect();
    let mut dirty: BTreeSet<String> = old.dirty_volumes.iter().cloned().collect();
    let entry = entry.filter(|e| Some(&e.uid) == uid(pod).as_ref());
    if let Some(e) = entry {
        dirty.extend(e.dirty.iter().chain(&e.keep_dirty).cloned());
    }
    if let Some(e) = entry.filter(|_| init_done(pod) && pod.metadata.deletion_timestamp.is_none()) {
        // The pod runs on these claims: each volume is initialised on its current claim (a volume of a running pod
        // that predates this bookkeeping is in use: recording it keeps a later restart from wiping it).
        for v in volumes {
            if let Some(uid) = claims.get(&claim_name(v, &name)) {
                initialized.retain(|r| r.split_once('@').map_or(r.as_str(), |(n, _)| n) != v.as_str());
                initialized.insert(format!("{v}@{uid}"));
            }
        }
        if reads_entries(pod) {
            for v in &e.dirty {
                dirty.remove(v);
            }
        }
    }
    (initialized.into_iter().collect(), dirty.into_iter().collect())
}

/// The device paths of each namespace of a merged aerospikeConfig (`storage-engine.devices`; an entry may name a
/// device and its shadow).
fn devices(config: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ns in config.get("namespaces").and_then(Value::as_array).into_iter().flatten() {
        let name = ns.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let list = ns.get("storage-engine").and_then(|s| s.get("devices")).and_then(Value::as_array);
        let paths = list.into_iter().flatten().filter_map(Value::as_str).flat_map(str::split_whitespace);
        out.entry(name).or_default().extend(paths.map(str::to_string));
    }
    out
}

/// The volumes whose devices a namespace of the old config used and the same namespace of the new config does not
/// (pure): a removed namespace, or a device taken off one (also when another namespace now uses it: it must not
/// read the old one's data). A device path maps to the volume attached at that path in `storage`.
pub(crate) fn removed_device_volumes(old: &Value, new: &Value, storage: &StorageSpec) -> Vec<String> {
    let now = &devices(new);
    let mut out: Vec<String> = devices(old)
        .iter()
        .flat_map(|(ns, paths)| paths.iter().filter(move |p| !now.get(ns).is_some_and(|n| n.contains(*p))))
        .filter_map(|path| {
            storage
                .volumes
                .iter()
                .find(|v| v.aerospike.as_ref().is_some_and(|a| &a.path == path))
                .map(|v| v.name.clone())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Files a namespace of the old config stored on and the new config no longer names (pure), as the reference deletes
/// them before a restart: `storage-engine.files` taken off a namespace, every file of a removed namespace, and the
/// contents (`<mount>/*`) of the index-type mounts of a namespace that loses one of them or is removed.
pub(crate) fn removed_files(old: &Value, new: &Value) -> Vec<String> {
    let words = |v: Option<&Value>| -> Vec<String> {
        let list = v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
        list.flat_map(str::split_whitespace).map(str::to_string).collect()
    };
    let files = |ns: &Value| words(ns.get("storage-engine").and_then(|s| s.get("files")));
    let mounts = |ns: &Value| words(ns.get("index-type").and_then(|s| s.get("mounts")));
    let namespaces =
        |c: &Value| -> Vec<Value> { c.get("namespaces").and_then(Value::as_array).cloned().unwrap_or_default() };
    let now = namespaces(new);
    let mut out = Vec::new();
    for old_ns in namespaces(old) {
        let name = old_ns.get("name");
        match now.iter().find(|n| n.get("name") == name) {
            Some(new_ns) => {
                let keep = files(new_ns);
                out.extend(files(&old_ns).into_iter().filter(|f| !keep.contains(f)));
                let keep = mounts(new_ns);
                let was = mounts(&old_ns);
                if was.iter().any(|m| !keep.contains(m)) {
                    out.extend(was.iter().map(|m| format!("{m}/*")));
                }
            }
            None => {
                out.extend(files(&old_ns));
                out.extend(mounts(&old_ns).iter().map(|m| format!("{m}/*")));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What a rack's config change takes away, by rack id: the volumes whose devices leave namespaces (pod-init must wipe
/// them, so pods restart rather than servers), and files to delete before each pod restarts.
#[derive(Debug, Default)]
pub(crate) struct Removed {
    pub(crate) devices: BTreeMap<i32, Vec<String>>,
    pub(crate) files: BTreeMap<i32, Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn pod(name: &str, uid: &str, phase: &str, reads: bool) -> CachedPod {
        let env = if reads { json!([{"name": desired::ENV_POD_UID, "value": "x"}]) } else { json!([]) };
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": uid},
            "spec": {"containers": [], "initContainers": [{"name": desired::INIT_CONTAINER_NAME, "env": env}]},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    fn status(init: &[&str], dirty: &[&str]) -> PodStatus {
        PodStatus {
            initialized_volumes: init.iter().map(|s| s.to_string()).collect(),
            dirty_volumes: dirty.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn entry(dirty: &[&str], keep: &[&str]) -> PodVolumes {
        let conf_hash = (!dirty.is_empty() || !keep.is_empty()).then(|| "h1".to_string());
        PodVolumes { uid: "u2".into(), initialized: s(&["data"]), dirty: s(dirty), keep_dirty: s(keep), conf_hash }
    }

    /// Block volume `ns` at /dev/ns and `x` at /dev/x, filesystem volume `data`.
    fn storage() -> StorageSpec {
        serde_json::from_value(json!({"volumes": [
            {"name": "data", "aerospike": {"path": "/opt/aerospike"}, "source": {"persistentVolume": {"size": "1Gi", "volumeMode": "Filesystem"}}},
            {"name": "ns", "aerospike": {"path": "/dev/ns"}, "source": {"persistentVolume": {"size": "1Gi", "volumeMode": "Block"}}},
            {"name": "x", "aerospike": {"path": "/dev/x"}, "source": {"persistentVolume": {"size": "1Gi", "volumeMode": "Block"}}},
        ]}))
        .unwrap()
    }

    fn config(devices: &[&str]) -> Value {
        json!({"namespaces": [{"name": "test", "storage-engine": {"type": "device", "devices": devices}}]})
    }

    #[test]
    fn a_new_pod_is_told_what_its_current_claims_hold() {
        let vols = s(&["data", "ns"]);
        let (storage, config) = (storage(), config(&["/dev/ns"]));
        let rack = RackVolumes { volumes: &vols, config: &config, conf_hash: "h1", storage: &storage, gone: &[] };
        let claims = BTreeMap::from([
            ("data-a-0-0".to_string(), "c1".to_string()),
            ("ns-a-0-0".to_string(), "c9".to_string()), // replaced claim: status knows c2
        ]);
        let st = BTreeMap::from([("a-0-0".to_string(), status(&["data@c1", "ns@c2"], &["ns"]))]);
        let p = pod("a-0-0", "u2", "Pending", true);
        let got = entries(&rack, &[&p], &BTreeMap::new(), &st, &claims);
        assert_eq!(got["a-0-0"], entry(&["ns"], &[]), "the replaced claim is initialised again");
        // The entry of a uid is kept as written even when the status moves on; a new uid gets a new entry.
        let st2 = BTreeMap::from([("a-0-0".to_string(), status(&["data@c1", "ns@c9"], &[]))]);
        assert_eq!(entries(&rack, &[&p], &got, &st2, &claims), got);
        let p3 = pod("a-0-0", "u3", "Pending", true);
        let e3 = &entries(&rack, &[&p3], &got, &st2, &claims)["a-0-0"];
        assert_eq!((&e3.initialized, &e3.conf_hash), (&s(&["data", "ns"]), &None));
        // The reference's bare names count as initialised.
        let st4 = BTreeMap::from([("a-0-0".to_string(), status(&["data"], &[]))]);
        assert_eq!(entries(&rack, &[&p3], &BTreeMap::new(), &st4, &claims)["a-0-0"].initialized, s(&["data"]));
    }

    /// The reference's init wipes a dirty volume only once a namespace uses its device again; until then it stays
    /// dirty. A pod that starts while a change takes devices from namespaces gets them as dirty in its entry, which
    /// is durable before pod-init runs (no status write needed).
    #[test]
    fn dirty_volumes_are_wiped_when_a_namespace_uses_them_again_and_kept_dirty_until_then() {
        let vols = s(&["data", "ns", "x"]);
        let storage = storage();
        let st = BTreeMap::from([("a-0-0".to_string(), status(&["data@c1"], &["x"]))]);
        let p = pod("a-0-0", "u2", "Pending", true);
        // x is dirty and no namespace uses it: kept dirty, not wiped.
        let uses_ns = config(&["/dev/ns"]);
        let rack = RackVolumes { volumes: &vols, config: &uses_ns, conf_hash: "h1", storage: &storage, gone: &[] };
        let e = &entries(&rack, &[&p], &BTreeMap::new(), &st, &BTreeMap::new())["a-0-0"];
        assert_eq!((&e.dirty, &e.keep_dirty, &e.conf_hash), (&s(&[]), &s(&["x"]), &Some("h1".to_string())));
        // A namespace uses x again: wiped.
        let uses_x = config(&["/dev/ns", "/dev/x"]);
        let rack = RackVolumes { config: &uses_x, ..rack };
        let e = &entries(&rack, &[&p], &BTreeMap::new(), &st, &BTreeMap::new())["a-0-0"];
        assert_eq!((&e.dirty, &e.keep_dirty), (&s(&["x"]), &s(&[])));
        // A change under way moves the namespace from ns to x: the new pod's ns is dirty (and unused: kept).
        let rack = RackVolumes { config: &config(&["/dev/x"]), gone: &["ns".to_string()], ..rack };
        let e = &entries(&rack, &[&p], &BTreeMap::new(), &BTreeMap::new(), &BTreeMap::new())["a-0-0"];
        assert_eq!((&e.dirty, &e.keep_dirty), (&s(&[]), &s(&["ns"])));
        // Without dirty volumes the entry names no config.
        let rack = RackVolumes { gone: &[], ..rack };
        let e = &entries(&rack, &[&p], &BTreeMap::new(), &BTreeMap::new(), &BTreeMap::new())["a-0-0"];
        assert_eq!(e.conf_hash, None);
    }

    #[test]
    fn a_pod_that_ran_its_init_records_its_claims_and_clears_what_it_wiped() {
        let vols = s(&["data", "ns"]);
        let claims =
            BTreeMap::from([("data-a-0-0".to_string(), "c1".to_string()), ("ns-a-0-0".to_string(), "c9".to_string())]);
        let entry = entry(&["ns"], &["x"]);
        let old = status(&["data@c1", "ns@c2"], &["other"]);
        // Still initialising: the entry's marks are in the status at once (it may never be written again before the
        // pod runs), nothing else changes.
        let pending = pod("a-0-0", "u2", "Pending", true);
        assert_eq!(
            record(&pending, &old, Some(&entry), &vols, &claims),
            (s(&["data@c1", "ns@c2"]), s(&["ns", "other", "x"]))
        );
        // Running: the current claims are recorded, the wiped volume is clean, the kept and other dirty ones stay.
        let running = pod("a-0-0", "u2", "Running", true);
        assert_eq!(
            record(&running, &old, Some(&entry), &vols, &claims),
            (s(&["data@c1", "ns@c9"]), s(&["other", "x"]))
        );
        // An entry for another incarnation says nothing about this one.
        let other = pod("a-0-0", "u3", "Running", true);
        assert_eq!(record(&other, &old, Some(&entry), &vols, &claims).1, s(&["other"]));
        // A pod made before this bookkeeping ran no wipe: its volumes are recorded (in use), dirty ones stay.
        let legacy = pod("a-0-0", "u2", "Running", false);
        assert_eq!(
            record(&legacy, &old, Some(&entry), &vols, &claims),
            (s(&["data@c1", "ns@c9"]), s(&["ns", "other", "x"]))
        );
    }

    #[test]
    fn files_and_index_mounts_of_removed_namespaces_are_deleted() {
        let old = json!({"namespaces": [
            {"name": "keep", "storage-engine": {"type": "device", "files": ["/d/a.dat", "/d/b.dat"]},
             "index-type": {"type": "flash", "mounts": ["/idx/1", "/idx/2"]}},
            {"name": "gone", "storage-engine": {"type": "device", "files": ["/d/gone.dat"]},
             "index-type": {"type": "flash", "mounts": ["/idx/g"]}},
            {"name": "mem", "storage-engine": {"type": "memory"}}
        ]});
        let same = old.clone();
        assert_eq!(removed_files(&old, &same), Vec::<String>::new(), "nothing removed, nothing deleted");
        let new = json!({"namespaces": [
            {"name": "keep", "storage-engine": {"type": "device", "files": ["/d/a.dat"]},
             "index-type": {"type": "flash", "mounts": ["/idx/1"]}},
            {"name": "mem", "storage-engine": {"type": "memory"}}
        ]});
        assert_eq!(
            removed_files(&old, &new),
            ["/d/b.dat", "/d/gone.dat", "/idx/1/*", "/idx/2/*", "/idx/g/*"],
            "a file taken off, a removed namespace's files and mounts, every mount of a namespace that lost one"
        );
    }

    #[test]
    fn removed_namespaces_and_devices_make_their_volumes_dirty() {
        let storage: StorageSpec = serde_json::from_value(json!({"volumes": [
            {"name": "d1", "aerospike": {"path": "/dev/d1"}, "source": {"persistentVolume": {"size": "1Gi", "volumeMode": "Block"}}},
            {"name": "d2", "aerospike": {"path": "/dev/d2"}, "source": {"persistentVolume": {"size": "1Gi", "volumeMode": "Block"}}},
            {"name": "d3", "aerospike": {"path": "/dev/d3"}, "source": {"persistentVolume": {"size": "1Gi", "volumeMode": "Block"}}},
        ]}))
        .unwrap();
        let ns =
            |name: &str, devs: &[&str]| json!({"name": name, "storage-engine": {"type": "device", "devices": devs}});
        let old = json!({"namespaces": [ns("a", &["/dev/d1 /dev/d3"]), ns("b", &["/dev/d2"])]});
        assert_eq!(removed_device_volumes(&old, &old, &storage), Vec::<String>::new());
        // Namespace b removed, and the shadow device d3 taken off a.
        let new = json!({"namespaces": [ns("a", &["/dev/d1"])]});
        assert_eq!(removed_device_volumes(&old, &new, &storage), s(&["d2", "d3"]));
        // A device moved to another namespace must not hand it the old one's data.
        let moved = json!({"namespaces": [ns("a", &["/dev/d1 /dev/d3"]), ns("c", &["/dev/d2"])]});
        assert_eq!(removed_device_volumes(&old, &moved, &storage), s(&["d2"]));
        // Reordered devices are no change.
        let reordered = json!({"namespaces": [ns("b", &["/dev/d2"]), ns("a", &["/dev/d3", "/dev/d1"])]});
        assert_eq!(removed_device_volumes(&old, &reordered, &storage), Vec::<String>::new());
    }
}
