//! Warm restarts (the I/O): exec `pod-init warm-restart` in a pod's server container with the rack's current
//! template on stdin (see `podinit::warm_restart`), and record the outcome on the pod.
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cached_pod::CachedPod;
use super::pods::{
    ANNOTATION_FAILED, ANNOTATION_RESTARTS_AT_UPDATE, ANNOTATION_WARM_FAILED, ANNOTATION_WARM_REQUESTED,
};
use crate::desired::{self, Desired};
use crate::podinit::warm_restart::{self, WarmRestartInput};

/// How long a warm restart may take in all: the server stopping (bounded in the pod) plus the exec's own round trips.
const EXEC_TIMEOUT: Duration = Duration::from_secs(warm_restart::STOP_WAIT.as_secs() + 30);

/// What the pod is sent: its rack ConfigMap's template and peers as the operator builds them now.
pub(super) fn input(desired: &Desired, rack_id: i32) -> Option<WarmRestartInput> {
    let rack = desired.racks.iter().find(|r| r.id == rack_id)?;
    let cm = desired.config_maps.iter().find(|c| c.metadata.name.as_deref() == Some(rack.name.as_str()))?;
    let data = cm.data.as_ref()?;
    Some(WarmRestartInput {
        conf_hash: rack.conf_hash.clone(),
        template: data.get(desired::CM_TEMPLATE_KEY)?.clone(),
        peers: data.get(desired::CM_PEERS_KEY).cloned().unwrap_or_default(),
    })
}

/// Exec the warm restart in `pod`'s server container: Ok with what it printed, Err with why it failed (the exec
/// refused, the command failed, or no answer in time).
pub(super) async fn exec(client: &Client, ns: &str, pod: &str, input: &WarmRestartInput) -> Result<String, String> {
    let payload = serde_json::to_vec(input).map_err(|e| e.to_string())?;
    exec_command(client, ns, pod, &["warm-restart"], Some(&payload)).await
}

/// Exec `pod-init <args>` (see `podinit::warm_restart::command_for`) in `pod`'s server container, with `stdin` if
/// given: Ok with what it printed, Err with why it failed.
pub(super) async fn exec_command(
    client: &Client,
    ns: &str,
    pod: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<String, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let params = AttachParams::default()
        .container(desired::SERVER_CONTAINER_NAME)
        .stdin(stdin.is_some())
        .stdout(true)
        .stderr(true);
    let run = async {
        let mut process =
            api.exec(pod, warm_restart::command_for(args), &params).await.map_err(|e| format!("exec: {e}"))?;
        let status = process.take_status().ok_or("exec: no status channel")?;
        let mut input = process.stdin();
        if let (Some(writer), Some(payload)) = (input.as_mut(), stdin) {
            writer.write_all(payload).await.map_err(|e| format!("exec: writing stdin: {e}"))?;
            writer.flush().await.map_err(|e| format!("exec: writing stdin: {e}"))?;
        }
        let mut stdout = process.stdout().ok_or("exec: no stdout")?;
        let mut stderr = process.stderr().ok_or("exec: no stderr")?;
        let (mut out, mut err) = (String::new(), String::new());
        let (_, _, status) = tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err), status);
        drop(input);
        let _ = process.join().await;
        match status {
            Some(s) if s.status.as_deref() == Some("Success") => Ok(out.trim().to_string()),
            Some(s) => Err(format!(
                "{}{}",
                s.message.unwrap_or_else(|| s.reason.unwrap_or_else(|| "failed".into())),
                last_line(&err).map(|l| format!(": {l}")).unwrap_or_default()
            )),
            None => Err(format!(
                "exec ended without a status{}",
                last_line(&err).map(|l| format!(": {l}")).unwrap_or_default()
            )),
        }
    };
    match tokio::time::timeout(EXEC_TIMEOUT, run).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", EXEC_TIMEOUT.as_secs())),
    }
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// After a warm restart: the server runs `conf_hash` from a rewritten file (a later container restart reads it too).
pub(super) async fn record_done(api: &Api<Pod>, pod: &CachedPod, conf_hash: &str) -> kube::Result<()> {
    let annotations = json!({
        desired::ANNOTATION_CONF_HASH: conf_hash,
        ANNOTATION_RESTARTS_AT_UPDATE: null,
        ANNOTATION_FAILED: null,
        ANNOTATION_WARM_FAILED: null,
        ANNOTATION_WARM_REQUESTED: null,
    });
    patch(api, pod, annotations).await
}

/// A warm restart towards `target` failed: the rollout restarts the pod instead.
pub(super) async fn record_failed(api: &Api<Pod>, pod: &CachedPod, target: &str) -> kube::Result<()> {
    patch(api, pod, json!({ ANNOTATION_WARM_FAILED: target })).await
}

async fn patch(api: &Api<Pod>, pod: &CachedPod, annotations: serde_json::Value) -> kube::Result<()> {
    let patch = json!({"metadata": {"annotations": annotations}});
    api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
}

/// Marks pod `name` for a warm restart (a missing pod needs none: a new one starts with everything new).
pub(crate) async fn request(api: &Api<Pod>, name: &str, why: &str) -> kube::Result<()> {
    let patch = json!({"metadata": {"annotations": { ANNOTATION_WARM_REQUESTED: why }}});
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
