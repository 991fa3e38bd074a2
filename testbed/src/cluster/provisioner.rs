//! A fake storage provisioner: a PersistentVolume for every Pending PersistentVolumeClaim, so storage-backed
//! StatefulSets schedule on a cluster without a real storage driver.
//!
//! What the controller-manager's PV binder needs, and nothing more: a PV pre-bound to the claim (`claimRef` with
//! the claim's uid), with the claim's `storageClassName` (which need not exist as a StorageClass: the binder then
//! treats the claim as immediate-binding), `volumeMode` and `accessModes`, and a capacity equal to the request. The
//! volume is a `hostPath` under the cluster's state folder (no kubelet mounts it, so the folder is never created).
//! Reclaim policy is Retain, and PVs of ours that become Released or Failed are deleted here, because the in-tree
//! hostPath deleter only runs with `--enable-hostpath-provisioner`.
//!
//! It is also the external resizer for its volumes: a bound claim whose request grew (the API server allows that
//! only when its StorageClass has `allowVolumeExpansion`) gets the new capacity on its PV and in its status, as a
//! CSI resizer would report a finished expansion.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};

/// Label on every PV this provisioner creates.
pub const PROVISIONED_BY_LABEL: &str = "local-cluster.aerospike.com/provisioned-by";
const PROVISIONER_NAME: &str = "xtask-fake-provisioner";

/// Runs until the future is dropped. Reconnects by itself (watch errors back off and retry).
pub async fn run(client: Client, volumes_dir: PathBuf) {
    let claims = watch_claims(client.clone(), volumes_dir);
    let volumes = watch_volumes(client);
    futures::join!(claims, volumes);
}

async fn watch_claims(client: Client, volumes_dir: PathBuf) {
    let pvcs: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let client_for_status = client.clone();
    let pvs: Api<PersistentVolume> = Api::all(client);
    let mut events = watcher::watcher(pvcs, watcher::Config::default()).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let claim = match event {
            Ok(Event::Apply(c) | Event::InitApply(c)) => c,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("provisioner: watching PersistentVolumeClaims: {e}");
                continue;
            }
        };
        if let Some(size) = grown(&claim) {
            resize(&pvs, &client_for_status, &claim, size).await;
            continue;
        }
        if let Some(pv) = volume_for(&claim, &volumes_dir) {
            match pvs.create(&PostParams::default(), &pv).await {
                Ok(_) => eprintln!(
                    "provisioner: created PersistentVolume {} for {}/{}",
                    pv.name_any(),
                    claim.namespace().unwrap_or_default(),
                    claim.name_any()
                ),
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => eprintln!("provisioner: creating PersistentVolume {}: {e}", pv.name_any()),
            }
        }
    }
}

async fn watch_volumes(client: Client) {
    let pvs: Api<PersistentVolume> = Api::all(client);
    let config = watcher::Config::default().labels(&format!("{PROVISIONED_BY_LABEL}={PROVISIONER_NAME}"));
    let mut events = watcher::watcher(pvs.clone(), config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let pv = match event {
            Ok(Event::Apply(pv) | Event::InitApply(pv)) => pv,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("provisioner: watching PersistentVolumes: {e}");
                continue;
            }
        };
        let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
        if matches!(phase, "Released" | "Failed") && pv.metadata.deletion_timestamp.is_none() {
            match pvs.delete(&pv.name_any(), &DeleteParams::default()).await {
                Ok(_) => eprintln!("provisioner: deleted {phase} PersistentVolume {}", pv.name_any()),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => eprintln!("provisioner: deleting PersistentVolume {}: {e}", pv.name_any()),
            }
        }
    }
}

/// The request of a bound claim of ours that is larger than its reported capacity.
fn grown(claim: &PersistentVolumeClaim) -> Option<Quantity> {
    // Bound to one of our volumes.
    claim.spec.as_ref()?.volume_name.as_deref().filter(|v| v.starts_with("pvc-"))?;
    let request = claim.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?.get("storage")?.clone();
    let capacity = claim.status.as_ref()?.capacity.as_ref()?.get("storage")?.clone();
    (bytes(&request.0)? > bytes(&capacity.0)?).then_some(request)
}

/// Bytes of a storage quantity (binary and decimal suffixes).
fn bytes(q: &str) -> Option<u128> {
    let end = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let n: u128 = q[..end].parse().ok()?;
    let factor: u128 = match &q[end..] {
        "" => 1,
        "k" => 1000,
        "M" => 1000u128.pow(2),
        "G" => 1000u128.pow(3),
        "T" => 1000u128.pow(4),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Grow the PV, then report the capacity in the claim's status.
async fn resize(pvs: &Api<PersistentVolume>, client: &Client, claim: &PersistentVolumeClaim, size: Quantity) {
    let (Some(ns), Some(volume)) = (claim.namespace(), claim.spec.as_ref().and_then(|s| s.volume_name.clone())) else {
        return;
    };
    let pv_patch = serde_json::json!({"spec": {"capacity": {"storage": size}}});
    if let Err(e) = pvs.patch(&volume, &PatchParams::default(), &Patch::Merge(&pv_patch)).await {
        eprintln!("provisioner: growing PersistentVolume {volume}: {e}");
        return;
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let status = serde_json::json!({"status": {"capacity": {"storage": size}}});
    match claims.patch_status(&claim.name_any(), &PatchParams::default(), &Patch::Merge(&status)).await {
        Ok(_) => eprintln!("provisioner: resized {ns}/{} to {}", claim.name_any(), size.0),
        Err(e) => eprintln!("provisioner: reporting the size of {ns}/{}: {e}", claim.name_any()),
    }
}

/// The PV for `claim`, or `None` if the claim needs none (bound, being deleted, or without a request).
pub fn volume_for(claim: &PersistentVolumeClaim, volumes_dir: &Path) -> Option<PersistentVolume> {
    if claim.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let spec = claim.spec.as_ref()?;
    if spec.volume_name.as_deref().is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    if phase != "Pending" {
        return None;
    }
    let uid = claim.metadata.uid.clone()?;
    let namespace = claim.namespace()?;
    let request: Quantity = spec.resources.as_ref()?.requests.as_ref()?.get("storage")?.clone();
    let name = format!("pvc-{uid}");
    let mut labels: BTreeMap<String, String> =
        spec.selector.as_ref().and_then(|s| s.match_labels.clone()).unwrap_or_default();
    labels.insert(PROVISIONED_BY_LABEL.into(), PROVISIONER_NAME.into());
    Some(PersistentVolume {
        metadata: ObjectMeta { name: Some(name.clone()), labels: Some(labels), ..Default::default() },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([("storage".to_string(), request)])),
            access_modes: Some(
                spec.access_modes.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
            ),
            volume_mode: Some(spec.volume_mode.clone().unwrap_or_else(|| "Filesystem".into())),
            storage_class_name: spec.storage_class_name.clone(),
            persistent_volume_reclaim_policy: Some("Retain".into()),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                namespace: Some(namespace),
                name: Some(claim.name_any()),
                uid: Some(uid),
                ..Default::default()
            }),
            host_path: Some(HostPathVolumeSource {
                path: volumes_dir.join(&name).display().to_string(),
                type_: Some(String::new()),
            }),
            ..Default::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};

    fn claim() -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data-c-0-0".into()),
                namespace: Some("ns".into()),
                uid: Some("1234".into()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                storage_class_name: Some("ssd".into()),
                volume_mode: Some("Block".into()),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".into(), Quantity("1Gi".into()))])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn pending_claim_gets_a_matching_prebound_volume() {
        let pv = volume_for(&claim(), Path::new("/state/volumes")).unwrap();
        let spec = pv.spec.unwrap();
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-1234"));
        assert_eq!(spec.storage_class_name.as_deref(), Some("ssd"));
        assert_eq!(spec.volume_mode.as_deref(), Some("Block"));
        assert_eq!(spec.capacity.unwrap()["storage"], Quantity("1Gi".into()));
        let claim_ref = spec.claim_ref.unwrap();
        assert_eq!((claim_ref.namespace.as_deref(), claim_ref.uid.as_deref()), (Some("ns"), Some("1234")));
        assert_eq!(spec.host_path.unwrap().path, "/state/volumes/pvc-1234");
    }

    #[test]
    fn bound_or_deleted_claims_get_nothing() {
        let mut bound = claim();
        bound.spec.as_mut().unwrap().volume_name = Some("pv".into());
        assert!(volume_for(&bound, Path::new("/v")).is_none());
        let mut deleted = claim();
        deleted.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(volume_for(&deleted, Path::new("/v")).is_none());
    }

    #[test]
    fn a_bound_claim_asking_for_more_than_its_capacity_is_resized() {
        let mut c = claim();
        c.spec.as_mut().unwrap().volume_name = Some("pvc-1".into());
        c.spec.as_mut().unwrap().resources.as_mut().unwrap().requests =
            Some(BTreeMap::from([("storage".to_string(), Quantity("2Gi".into()))]));
        c.status = Some(k8s_openapi::api::core::v1::PersistentVolumeClaimStatus {
            capacity: Some(BTreeMap::from([("storage".to_string(), Quantity("1Gi".into()))])),
            ..Default::default()
        });
        assert_eq!(grown(&c), Some(Quantity("2Gi".into())));
        c.status.as_mut().unwrap().capacity =
            Some(BTreeMap::from([("storage".to_string(), Quantity("2048Mi".into()))]));
        assert_eq!(grown(&c), None, "same size written differently");
        c.spec.as_mut().unwrap().volume_name = Some("someone-elses".into());
        c.status.as_mut().unwrap().capacity = Some(BTreeMap::from([("storage".to_string(), Quantity("1Gi".into()))]));
        assert_eq!(grown(&c), None, "not one of our volumes");
    }
}
