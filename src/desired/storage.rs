//! spec.storage -> pod volumes, volume claim templates, mounts per container, and the volumes pod-init
//! initialises.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, Volume, VolumeDevice, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{BuildError, CONF_VOLUME, INIT_VOLUMES_DIR, InitVolume, TEMPLATE_VOLUME};
use crate::api::{MountOptions, StorageSpec, VolumeMethod, VolumeSpec};

/// Mounts (filesystem) and devices (Block) of one container.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Attachments {
    pub mounts: Vec<VolumeMount>,
    pub devices: Vec<VolumeDevice>,
}

impl Attachments {
    fn attach(&mut self, name: &str, path: &str, block: bool, options: Option<&MountOptions>) {
        if block {
            self.devices.push(VolumeDevice { name: name.to_string(), device_path: path.to_string() });
        } else {
            let o = options.cloned().unwrap_or_default();
            self.mounts.push(VolumeMount {
                name: name.to_string(),
                mount_path: path.to_string(),
                read_only: o.read_only,
                sub_path: o.sub_path,
                sub_path_expr: o.sub_path_expr,
                mount_propagation: o.mount_propagation,
                ..Default::default()
            });
        }
    }
}

/// What the storage spec of a rack turns into.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct StorageParts {
    /// Pod volumes (every source but persistentVolume).
    pub volumes: Vec<Volume>,
    /// StatefulSet volumeClaimTemplates (persistentVolume sources).
    pub claims: Vec<PersistentVolumeClaim>,
    /// The server container's attachments.
    pub server: Attachments,
    /// Attachments of sidecars and user init containers, by container name.
    pub containers: BTreeMap<String, Attachments>,
    /// The operator init container's attachments of the volumes it initialises.
    pub init: Attachments,
    /// The volumes pod-init initialises.
    pub init_volumes: Vec<InitVolume>,
}

fn is_block(v: &VolumeSpec) -> bool {
    v.source.persistent_volume.as_ref().is_some_and(|pv| pv.volume_mode == "Block")
}

/// The pod volume of a non-persistent source; `None` for a persistent volume.
fn pod_volume(v: &VolumeSpec) -> Option<Volume> {
    let s = &v.source;
    if s.persistent_volume.is_some() {
        return None;
    }
    Some(Volume {
        name: v.name.clone(),
        empty_dir: s.empty_dir.clone(),
        secret: s.secret.clone(),
        config_map: s.config_map.clone(),
        host_path: s.host_path.clone(),
        ..Default::default()
    })
}

/// The effective init method of a persistent volume and the spec path it comes from; an error for a method
/// that does not fit the volume mode.
fn init_method(
    v: &VolumeSpec,
    storage: &StorageSpec,
    vol_path: &str,
    storage_path: &str,
) -> Result<VolumeMethod, BuildError> {
    let block = is_block(v);
    let method = v.effective_policy(storage).init_method;
    let path = if v.init_method.is_some() {
        format!("{vol_path}.initMethod")
    } else if block {
        format!("{storage_path}.blockVolumePolicy.initMethod")
    } else {
        format!("{storage_path}.filesystemVolumePolicy.initMethod")
    };
    let fits = match method {
        VolumeMethod::None => true,
        VolumeMethod::DeleteFiles => !block,
        VolumeMethod::Dd
        | VolumeMethod::Blkdiscard
        | VolumeMethod::HeaderCleanup
        | VolumeMethod::BlkdiscardWithHeaderCleanup => block,
    };
    if !fits {
        let mode = if block { "Block" } else { "Filesystem" };
        return Err(BuildError::invalid(
            path,
            format!("{} does not apply to the {mode} volume {:?}", method_name(method), v.name),
        ));
    }
    Ok(method)
}

/// The effective wipe method of a persistent volume, checked against its mode as the reference does (Block: dd or
/// blkdiscard; Filesystem: deleteFiles).
fn wipe_method(
    v: &VolumeSpec,
    storage: &StorageSpec,
    vol_path: &str,
    storage_path: &str,
) -> Result<VolumeMethod, BuildError> {
    let block = is_block(v);
    let method = v.effective_policy(storage).wipe_method;
    let path = if v.wipe_method.is_some() {
        format!("{vol_path}.wipeMethod")
    } else if block {
        format!("{storage_path}.blockVolumePolicy.wipeMethod")
    } else {
        format!("{storage_path}.filesystemVolumePolicy.wipeMethod")
    };
    let fits = match method {
        VolumeMethod::Dd | VolumeMethod::Blkdiscard => block,
        VolumeMethod::DeleteFiles => !block,
        VolumeMethod::None | VolumeMethod::HeaderCleanup | VolumeMethod::BlkdiscardWithHeaderCleanup => false,
    };
    if !fits {
        let (mode, allowed) = if block { ("Block", "dd or blkdiscard") } else { ("Filesystem", "deleteFiles") };
        return Err(BuildError::invalid(
            path,
            format!("{} is no wipe method for the {mode} volume {:?} (use {allowed})", method_name(method), v.name),
        ));
    }
    Ok(method)
}

pub(crate) fn method_name(m: VolumeMethod) -> String {
    serde_json::to_value(m).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Builds the storage parts of a rack. `storage_path` names `storage` in error messages; `claim_labels` go on
/// every PVC; `sidecars` and `init_containers` are the user's container names (attachments must name one).
pub(crate) fn storage_parts(
    storage: &StorageSpec,
    storage_path: &str,
    claim_labels: &BTreeMap<String, String>,
    sidecars: &[String],
    init_containers: &[String],
) -> Result<StorageParts, BuildError> {
    let mut parts = StorageParts::default();
    for (i, v) in storage.volumes.iter().enumerate() {
        let vol_path = format!("{storage_path}.volumes[{i}]");
        if v.name == CONF_VOLUME || v.name == TEMPLATE_VOLUME {
            return Err(BuildError::invalid(
                format!("{vol_path}.name"),
                format!("{:?} is reserved for the operator's own volumes", v.name),
            ));
        }
        let s = &v.source;
        let sources = [
            s.empty_dir.is_some(),
            s.secret.is_some(),
            s.config_map.is_some(),
            s.persistent_volume.is_some(),
            s.host_path.is_some(),
        ]
        .into_iter()
        .filter(|x| *x)
        .count();
        if sources != 1 {
            return Err(BuildError::invalid(
                format!("{vol_path}.source"),
                format!("exactly one source must be set, found {sources}"),
            ));
        }
        let block = is_block(v);

        match (pod_volume(v), &s.persistent_volume) {
            (Some(volume), _) => parts.volumes.push(volume),
            (None, Some(pv)) => {
                let meta = pv.metadata.clone().unwrap_or_default();
                let mut labels = meta.labels.clone();
                labels.extend(claim_labels.clone());
                let access_modes = if pv.access_modes.is_empty() {
                    vec!["ReadWriteOnce".to_string()]
                } else {
                    pv.access_modes.clone()
                };
                parts.claims.push(PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some(v.name.clone()),
                        labels: Some(labels),
                        annotations: (!meta.annotations.is_empty()).then(|| meta.annotations.clone()),
                        ..Default::default()
                    },
                    spec: Some(PersistentVolumeClaimSpec {
                        access_modes: Some(access_modes),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(BTreeMap::from([("storage".to_string(), pv.size.clone())])),
                            ..Default::default()
                        }),
                        storage_class_name: (!pv.storage_class.is_empty()).then(|| pv.storage_class.clone()),
                        volume_mode: Some(if block { "Block" } else { "Filesystem" }.to_string()),
                        selector: pv.selector.clone(),
                        ..Default::default()
                    }),
                    status: None,
                });
                let method = init_method(v, storage, &vol_path, storage_path)?;
                let wipe = wipe_method(v, storage, &vol_path, storage_path)?;
                // Only a server device can become dirty (a namespace stops using it): pod-init gets it to wipe.
                let wipe = (block && v.aerospike.is_some()).then_some(wipe);
                if method != VolumeMethod::None || wipe.is_some() {
                    let path = format!("{INIT_VOLUMES_DIR}/{}", v.name);
                    parts.init.attach(&v.name, &path, block, None);
                    parts.init_volumes.push(InitVolume { name: v.name.clone(), path, block, method, wipe });
                }
            }
            (None, None) => unreachable!("one source is set"),
        }

        if let Some(a) = &v.aerospike {
            parts.server.attach(&v.name, &a.path, block, a.mount_options.as_ref());
        }
        for (kind, list, names) in
            [("sidecars", &v.sidecars, sidecars), ("initContainers", &v.init_containers, init_containers)]
        {
            for (j, a) in list.iter().enumerate() {
                if !names.contains(&a.container_name) {
                    return Err(BuildError::invalid(
                        format!("{vol_path}.{kind}[{j}].containerName"),
                        format!("no container {:?} in spec.podSpec.{kind}", a.container_name),
                    ));
                }
                parts.containers.entry(a.container_name.clone()).or_default().attach(
                    &v.name,
                    &a.path,
                    block,
                    a.mount_options.as_ref(),
                );
            }
        }
    }
    Ok(parts)
}
