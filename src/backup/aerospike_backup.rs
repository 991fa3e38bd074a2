//! AerospikeBackup: its cluster and routines run by the service, on-demand backups started once per id, and
//! removed from the service before the object goes.
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tracing::{info, warn};

use super::config::{self, Entries};
use super::{Ctx, Error, condition, set_finalizer, write_status};
use crate::api::FieldError;
use crate::api::v1beta1::{
    AerospikeBackup, AerospikeBackupService, AerospikeBackupStatus, BACKUP_FINALIZER, BackupServicePhase, BackupType,
    parse_duration,
};

/// How soon to look again while the service has not taken the configuration yet.
const CONFIG_POLL: Duration = Duration::from_secs(2);
/// How soon to call a service again after it failed a call.
const SERVICE_RETRY: Duration = Duration::from_secs(5);
/// How often to confirm the service still runs it (e.g. after its pod restarted).
const RECHECK: Duration = Duration::from_secs(60);

/// ABS 3.5 added on-demand incremental backups (`POST /v1/backups/{type}/{routine}`); older ones only schedule.
pub fn supports_typed_backups(image: &str) -> bool {
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
    let mut parts = tag.trim_start_matches('v').split(['.', '-']).map(|p| p.parse::<u64>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= (3, 5),
        // A tag that is not a version (latest, a digest) is taken to be current.
        _ => true,
    }
}

async fn report(
    b: &AerospikeBackup,
    ctx: &Ctx,
    status: AerospikeBackupStatus,
    ok: bool,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    let old = b.status.clone().unwrap_or_default();
    let mut st = status;
    st.observed_generation = b.metadata.generation;
    st.conditions = vec![condition(
        &old.conditions,
        if ok { "Available" } else { "Degraded" },
        true,
        reason,
        message,
        b.metadata.generation,
    )];
    if !ok && st.conditions != old.conditions {
        ctx.event(b, EventType::Warning, reason, message).await;
    }
    write_status(b, serde_json::to_value(&old)?, serde_json::to_value(&st)?, &ctx.client).await
}

fn joined(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// A service that cannot be reached or refuses a call is reported in the `Degraded` condition (the call and its
/// HTTP status), and the reconcile is retried.
pub(super) async fn reconcile(b: Arc<AerospikeBackup>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    match reconcile_inner(b.clone(), ctx.clone()).await {
        Err(Error::Abs(e)) if b.metadata.deletion_timestamp.is_none() => {
            let old = b.status.clone().unwrap_or_default();
            let st = AerospikeBackupStatus {
                backup_service: b.spec.backup_service.clone(),
                config: b.spec.config.clone(),
                on_demand_backups: old.on_demand_backups,
                ..Default::default()
            };
            report(&b, &ctx, st, false, "BackupServiceUnavailable", &e.to_string()).await?;
            Ok(Action::requeue(SERVICE_RETRY))
        }
        other => other,
    }
}

async fn reconcile_inner(b: Arc<AerospikeBackup>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let service_ref = b.spec.backup_service.clone();
    if b.metadata.deletion_timestamp.is_some() {
        return remove(&b, &ctx).await;
    }
    set_finalizer(&*b, BACKUP_FINALIZER, true, &ctx.client).await?;
    let old = b.status.clone().unwrap_or_default();
    let mut st = AerospikeBackupStatus {
        backup_service: service_ref.clone(),
        config: b.spec.config.clone(),
        on_demand_backups: old.on_demand_backups.clone(),
        ..Default::default()
    };
    let Some(svc) = ctx.service(&service_ref).await? else {
        let message = format!("spec.backupService: AerospikeBackupService {service_ref} not found");
        report(&b, &ctx, st, false, "BackupServiceNotFound", &message).await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    let entries = match config::entries(&b) {
        Ok(e) => e,
        Err(errors) => {
            report(&b, &ctx, st, false, "InvalidSpec", &joined(&errors)).await?;
            return Ok(Action::await_change());
        }
    };
    let errors = config::check_against_service(&entries, &svc.spec.config);
    if !errors.is_empty() {
        report(&b, &ctx, st, false, "InvalidSpec", &joined(&errors)).await?;
        // The service's configuration may gain the storage or policy.
        return Ok(Action::requeue(RECHECK));
    }
    if svc.status.as_ref().map(|s| s.phase) != Some(BackupServicePhase::Completed) {
        report(&b, &ctx, st, false, "BackupServiceNotReady", &format!("waiting for backup service {service_ref}"))
            .await?;
        return Ok(Action::requeue(CONFIG_POLL));
    }
    let abs = ctx.abs(&svc).await?;
    let mut live = abs.config().await?;
    if !config::applied(&entries, &live) {
        // The service re-reads its file; the ConfigMap may not carry the entries yet (the service controller
        // writes it) or the mounted file may lag: read back and requeue until the service runs them.
        abs.apply_config().await?;
        live = abs.config().await?;
        if !config::applied(&entries, &live) {
            report(&b, &ctx, st, false, "ConfigNotApplied", "waiting for the backup service to run this configuration")
                .await?;
            return Ok(Action::requeue(CONFIG_POLL));
        }
        ctx.event(&*b, EventType::Normal, "ConfigApplied", "the backup service runs this backup's routines").await;
    }
    if let Some(od) = b.spec.on_demand_backups.first()
        && old.on_demand_backups.first().map(|o| &o.id) != Some(&od.id)
    {
        let delay = od.delay.as_deref().map(parse_duration).transpose().map_err(Error::Other)?.unwrap_or_default();
        let kind = od.type_.unwrap_or_default();
        if supports_typed_backups(&svc.spec.image) {
            abs.start_backup(&od.routine_name, kind, delay).await?;
        } else if kind == BackupType::Full {
            abs.schedule_backup(&od.routine_name, delay).await?;
        } else {
            let message = format!(
                "spec.onDemandBackups[0].type: Incremental needs backup service 3.5 or later ({})",
                svc.spec.image
            );
            report(&b, &ctx, st, false, "InvalidSpec", &message).await?;
            return Ok(Action::await_change());
        }
        info!(backup = %b.name_any(), id = %od.id, routine = %od.routine_name, "on-demand backup started");
        // Recorded at once: a later failure of this reconcile must not start it a second time.
        st.on_demand_backups = vec![od.clone()];
        report(&b, &ctx, st.clone(), true, "OnDemandBackupStarted", &format!("on-demand backup {} started", od.id))
            .await?;
        ctx.event(
            &*b,
            EventType::Normal,
            "OnDemandBackupStarted",
            &format!("on-demand backup {} of {}", od.id, od.routine_name),
        )
        .await;
        return Ok(Action::requeue(RECHECK));
    }
    report(&b, &ctx, st, true, "ConfigApplied", "the backup service runs this backup's routines").await?;
    Ok(Action::requeue(RECHECK))
}

/// Deletion: the service must stop running the entries before the finalizer goes.
async fn remove(b: &AerospikeBackup, ctx: &Ctx) -> Result<Action, Error> {
    if !b.finalizers().iter().any(|f| f == BACKUP_FINALIZER) {
        return Ok(Action::await_change());
    }
    let svc: Option<AerospikeBackupService> = ctx.service(&b.spec.backup_service).await?;
    let entries: Option<Entries> = config::entries(b).ok();
    if let (Some(svc), Some(entries)) = (svc, entries) {
        let abs = ctx.abs(&svc).await?;
        let mut live = abs.config().await?;
        if !config::removed(&entries, &live) {
            abs.apply_config().await?;
            live = abs.config().await?;
            if !config::removed(&entries, &live) {
                return Ok(Action::requeue(CONFIG_POLL));
            }
        }
        ctx.event(b, EventType::Normal, "Removed", "the backup service no longer runs this backup's routines").await;
    }
    set_finalizer(b, BACKUP_FINALIZER, false, &ctx.client).await?;
    Ok(Action::await_change())
}

pub(super) fn error_policy(b: Arc<AerospikeBackup>, error: &Error, _ctx: Arc<Ctx>) -> Action {
    warn!(backup = %b.name_any(), error = %error, "backup reconcile error");
    Action::requeue(Duration::from_secs(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_on_demand_backups_from_3_5() {
        assert!(supports_typed_backups("aerospike/aerospike-backup-service:3.5.0"));
        assert!(supports_typed_backups("aerospike/aerospike-backup-service:v4.0.1"));
        assert!(!supports_typed_backups("aerospike/aerospike-backup-service:3.1.0"));
        assert!(supports_typed_backups("aerospike/aerospike-backup-service:latest"));
    }
}
