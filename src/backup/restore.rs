//! AerospikeRestore: one job started, its id recorded, its status read every pollingPeriod (by requeue), the job
//! cancelled when the restore is deleted while it runs.
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tracing::warn;

use super::config;
use super::{Ctx, Error, condition, set_finalizer, write_status};
use crate::api::v1beta1::{
    AerospikeRestore, AerospikeRestoreStatus, BackupServicePhase, RESTORE_FINALIZER, RestorePhase,
};

async fn report(
    r: &AerospikeRestore,
    ctx: &Ctx,
    mut st: AerospikeRestoreStatus,
    ok: bool,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    let old = r.status.clone().unwrap_or_default();
    st.observed_generation = r.metadata.generation;
    st.conditions = vec![condition(
        &old.conditions,
        if ok { "Available" } else { "Degraded" },
        true,
        reason,
        message,
        r.metadata.generation,
    )];
    if st.conditions != old.conditions || st.phase != old.phase {
        let type_ = if ok { EventType::Normal } else { EventType::Warning };
        ctx.event(r, type_, reason, message).await;
    }
    write_status(r, serde_json::to_value(&old)?, serde_json::to_value(&st)?, &ctx.client).await
}

/// A service that cannot be reached or answers 5xx is reported in the `Degraded` condition (the call and its HTTP
/// status), and the reconcile is retried; the phase stays.
pub(super) async fn reconcile(r: Arc<AerospikeRestore>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    match reconcile_inner(r.clone(), ctx.clone()).await {
        Err(Error::Abs(e)) if r.metadata.deletion_timestamp.is_none() => {
            let st = r.status.clone().unwrap_or_default();
            report(&r, &ctx, st, false, "BackupServiceUnavailable", &e.to_string()).await?;
            Ok(Action::requeue(Duration::from_secs(5)))
        }
        other => other,
    }
}

async fn reconcile_inner(r: Arc<AerospikeRestore>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let st = r.status.clone().unwrap_or_default();
    if r.metadata.deletion_timestamp.is_some() {
        return cancel(&r, &ctx, &st).await;
    }
    if matches!(st.phase, RestorePhase::Completed | RestorePhase::Failed) && r.status.is_some() {
        set_finalizer(&*r, RESTORE_FINALIZER, false, &ctx.client).await?;
        return Ok(Action::await_change());
    }
    set_finalizer(&*r, RESTORE_FINALIZER, true, &ctx.client).await?;
    let service_ref = &r.spec.backup_service;
    let Some(svc) = ctx.service(service_ref).await? else {
        let message = format!("spec.backupService: AerospikeBackupService {service_ref} not found");
        report(&r, &ctx, st, false, "BackupServiceNotFound", &message).await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    if svc.status.as_ref().map(|s| s.phase) != Some(BackupServicePhase::Completed) {
        report(&r, &ctx, st, false, "BackupServiceNotReady", &format!("waiting for backup service {service_ref}"))
            .await?;
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    let abs = ctx.abs(&svc).await?;
    let period = r.spec.polling_period();
    let Some(job) = st.job_id else {
        return match abs.start_restore(r.spec.type_, &r.spec.config).await {
            Ok(job) => {
                let st = AerospikeRestoreStatus { job_id: Some(job), phase: RestorePhase::InProgress, ..st };
                report(&r, &ctx, st, true, "RestoreStarted", &format!("restore job {job} started")).await?;
                Ok(Action::requeue(period))
            }
            // The service refused the request itself: retrying the same spec cannot succeed.
            Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
                let st = AerospikeRestoreStatus { phase: RestorePhase::Failed, ..st };
                report(&r, &ctx, st, false, "RestoreRefused", &e.to_string()).await?;
                Ok(Action::await_change())
            }
            Err(e) => Err(e.into()),
        };
    };
    let result = abs.restore_status(job).await?;
    let phase = config::restore_phase(result["status"].as_str().unwrap_or_default());
    let st = AerospikeRestoreStatus { phase, restore_result: Some(result.clone()), ..st };
    match phase {
        RestorePhase::InProgress => {
            report(&r, &ctx, st, true, "RestoreRunning", &format!("restore job {job} running")).await?;
            Ok(Action::requeue(period))
        }
        RestorePhase::Completed => {
            report(&r, &ctx, st, true, "RestoreCompleted", &format!("restore job {job} done")).await?;
            Ok(Action::await_change())
        }
        RestorePhase::Failed => {
            report(&r, &ctx, st, false, "RestoreFailed", &config::restore_failure(&result)).await?;
            Ok(Action::await_change())
        }
    }
}

/// Deletion: a job still running is cancelled (a job the service no longer knows is gone already).
async fn cancel(r: &AerospikeRestore, ctx: &Ctx, st: &AerospikeRestoreStatus) -> Result<Action, Error> {
    if !r.finalizers().iter().any(|f| f == RESTORE_FINALIZER) {
        return Ok(Action::await_change());
    }
    if let (Some(job), RestorePhase::InProgress) = (st.job_id, st.phase)
        && let Some(svc) = ctx.service(&r.spec.backup_service).await?
    {
        match ctx.abs(&svc).await?.cancel_restore(job).await {
            Ok(()) => {
                ctx.event(r, EventType::Normal, "RestoreCancelled", &format!("restore job {job} cancelled")).await
            }
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    set_finalizer(r, RESTORE_FINALIZER, false, &ctx.client).await?;
    Ok(Action::await_change())
}

pub(super) fn error_policy(r: Arc<AerospikeRestore>, error: &Error, _ctx: Arc<Ctx>) -> Action {
    warn!(restore = %r.name_any(), error = %error, "restore reconcile error");
    Action::requeue(Duration::from_secs(3))
}
