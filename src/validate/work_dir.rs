//! `validationPolicy.skipWorkDirValidate`: the reference refuses a rack whose Aerospike work directory (the
//! `service.work-directory` key, else `/opt/aerospike`) is not on a persistent Filesystem volume, because the
//! server keeps its system metadata (SMD: roster, users, indexes, UDFs) there and would lose it with the pod.
//! With the check skipped, a work directory set explicitly must still be on some volume of the rack.
//!
//! Beyond the reference: a cluster that already ran with its work directory off persistent storage (stored by an
//! operator without this check) is not refused on update, only warned about ([`crate::validate::warnings`]), so
//! upgrading the operator never stops a running cluster from being reconciled.

use std::path::Path;

use serde_json::Value;

use crate::api::FieldError;
use crate::resolve::{Resolved, ResolvedRack};

/// The server's default work directory.
pub const DEFAULT_WORK_DIR: &str = "/opt/aerospike";

/// Refusals for `resolved`, except for racks that failed the same way in `old` (see the module docs).
pub fn check(resolved: &Resolved, old: Option<&Resolved>, out: &mut Vec<FieldError>) {
    let skip = skipped(resolved);
    for rack in &resolved.racks {
        let Some(refusal) = problem(rack, skip) else { continue };
        let grandfathered = old.is_some_and(|o| {
            let old_skip = skipped(o);
            o.racks.iter().any(|r| r.id == rack.id && problem(r, old_skip).is_some())
        });
        if !grandfathered {
            out.push(refusal);
        }
    }
}

/// The racks that keep their work directory off persistent storage, as warnings (only reached when nothing is
/// refused, i.e. for clusters the grandfathering in [`check`] let through).
pub fn warnings(resolved: &Resolved, out: &mut Vec<FieldError>) {
    let skip = skipped(resolved);
    for rack in &resolved.racks {
        if let Some(p) = problem(rack, skip) {
            out.push(FieldError::new(
                p.path,
                format!("{}; kept because the cluster already ran this way, not refused", p.message),
            ));
        }
    }
}

fn skipped(resolved: &Resolved) -> bool {
    resolved.cluster.spec.validation_policy.as_ref().is_some_and(|p| p.skip_work_dir_validate)
}

/// Why `rack`'s work directory is not where it must be, naming the field to change.
fn problem(rack: &ResolvedRack, skip: bool) -> Option<FieldError> {
    let config = rack.config_value()?;
    let configured = config.pointer("/service/work-directory").and_then(Value::as_str);
    if skip && configured.is_none() {
        return None;
    }
    let dir = configured.unwrap_or(DEFAULT_WORK_DIR);
    let field = match configured {
        Some(_) if rack.own_config.is_some_and(|c| c.pointer("/service/work-directory").is_some()) => {
            format!("{}.aerospikeConfig.service.work-directory", rack.path().unwrap_or_default())
        }
        Some(_) => "spec.aerospikeConfig.service.work-directory".to_string(),
        None => format!("{}.volumes", rack.storage_path),
    };
    if !dir.starts_with('/') {
        return Some(FieldError::new(field, format!("work directory {dir:?} is not an absolute path")));
    }
    let on_volume = |persistent_only: bool| {
        rack.storage.volumes.iter().any(|v| {
            let Some(a) = &v.aerospike else { return false };
            let kind_ok = match &v.source.persistent_volume {
                Some(pv) => pv.volume_mode != "Block",
                None => !persistent_only,
            };
            kind_ok && Path::new(dir).starts_with(Path::new(&a.path))
        })
    };
    if skip {
        return (!on_volume(false)).then(|| {
            FieldError::new(
                field,
                format!("work directory {dir} is not on any volume of the rack: add one with aerospike.path {dir} or a parent"),
            )
        });
    }
    (!on_volume(true)).then(|| {
        FieldError::new(
            field,
            format!(
                "the Aerospike work directory {dir} is not on a persistent Filesystem volume, so its system \
                 metadata would be lost with the pod: add one with aerospike.path {dir} (or a parent), or set \
                 spec.validationPolicy.skipWorkDirValidate: true"
            ),
        )
    })
}
