//! Exec in simulated pods: what a container runtime does for `kubectl exec`, for the commands the operator runs.
//!
//! The local plane's fake kubelet (kwok) serves the kubelet API's exec by running the command on its own host, with
//! the environment of the pod's kwok `Exec` object. For every pod it simulates, the simulator applies one such
//! object (named as the pod) whose environment sets `AKO_POD_INIT` (the operator's exec command runs that instead
//! of the binary a real pod has, see `podinit::warm_restart::command`) to a small shell script, and tells the
//! script where this simulator listens and which pod it stands for. The script sends one line,
//! `<namespace>/<pod> <arguments>`, and prints the answer: `ok <text>` exits 0, anything else exits 1 on stderr.
//!
//! `delete-files <paths>` is recorded (the simulated pod has no files). `warm-restart`: the pod's node leaves its cluster, starts again a moment later in
//! the same pod (same uid and IP) from the rack ConfigMap as it is now (as the real command re-renders
//! aerospike.conf), and joins again. Recorded as [`What::WarmRestarted`].
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::model::{ExecEndpoint, Inner, PodKey, SimulatorOptions, What};

/// How long the simulated server process takes to stop and start again.
const RESTART_PAUSE: Duration = Duration::from_millis(300);

/// The script kwok runs for an exec in a simulated pod (bash: its `/dev/tcp` needs no other tool).
fn script_text() -> &'static str {
    r#"#!/usr/bin/env bash
# Exec in a pod simulated by the Aerospike simulator: forwards the command to it (see simulator/src/exec.rs).
set -u
exec 3<>"/dev/tcp/${AKO_SIM_EXEC%:*}/${AKO_SIM_EXEC##*:}" || { echo "the simulator at $AKO_SIM_EXEC does not answer" >&2; exit 1; }
printf '%s %s\n' "$AKO_SIM_POD" "$*" >&3
IFS= read -r reply <&3 || reply="error: the simulator closed the connection"
case "$reply" in
  ok*) printf '%s\n' "${reply#ok }"; exit 0 ;;
  *) printf '%s\n' "$reply" >&2; exit 1 ;;
esac
"#
}

/// Starts the exec endpoint (a loopback TCP listener) and writes its script.
pub(crate) async fn start(
    inner: Arc<Inner>,
    client: Client,
    opts: SimulatorOptions,
) -> std::io::Result<(ExecEndpoint, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let script = std::env::temp_dir().join(format!("ako-simulator-exec-{}-{}.sh", std::process::id(), addr.port()));
    std::fs::write(&script, script_text())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (inner, client, opts) = (inner.clone(), client.clone(), opts.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.is_err() {
                    return;
                }
                let reply = match handle(&inner, &client, &opts, line.trim()).await {
                    Ok(text) => format!("ok {text}\n"),
                    Err(e) => format!("error: {e}\n"),
                };
                let _ = write.write_all(reply.as_bytes()).await;
            });
        }
    });
    Ok((ExecEndpoint { addr, script }, task))
}

async fn handle(inner: &Arc<Inner>, client: &Client, opts: &SimulatorOptions, line: &str) -> Result<String, String> {
    let (pod, args) = line.split_once(' ').unwrap_or((line, ""));
    let (namespace, name) = pod.split_once('/').ok_or_else(|| format!("{pod:?} is not <namespace>/<pod>"))?;
    let key: PodKey = (namespace.to_string(), name.to_string());
    match args.trim() {
        "warm-restart" => warm_restart(inner, client, opts, key).await,
        // Recorded (as `exec:delete-files <paths>`) rather than done: the simulated pod has no files.
        files if files.starts_with("delete-files ") => {
            let mut state = inner.lock();
            let uid = state.nodes.get(&key).map(|n| n.uid.clone()).unwrap_or_default();
            state.record(&key, &uid, What::Command { command: format!("exec:{files}"), answered: true });
            Ok(format!("deleted (simulated): {}", &files["delete-files ".len()..]))
        }
        other => Err(format!("{other:?}: not a command this simulated pod runs")),
    }
}

/// The server process of the pod restarts in place.
async fn warm_restart(
    inner: &Arc<Inner>,
    client: &Client,
    opts: &SimulatorOptions,
    key: PodKey,
) -> Result<String, String> {
    if inner.fault_of(&key).refuse_warm_restart {
        return Err("warm restart not supported: the container's init process is not tini with -r (simulated)".into());
    }
    let pod = Api::<Pod>::namespaced(client.clone(), &key.0)
        .get(&key.1)
        .await
        .map_err(|e| format!("reading the pod: {e}"))?;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let ip = crate::pods::running_ip(&pod).ok_or("the pod is not running")?;
    let duration = inner.migration_duration();
    {
        let mut state = inner.lock();
        if state.nodes.get(&key).is_none_or(|n| n.uid != uid) {
            return Err("no Aerospike server process (asd) is running in this container".into());
        }
        state.record(&key, &uid, What::WarmRestarted);
        state.leave(&key, duration);
    }
    tokio::time::sleep(RESTART_PAUSE).await;
    crate::pods::rejoin(inner, client, opts, &pod, key, uid, ip).await?;
    Ok("warm restarted (simulated): the server restarted with the rack ConfigMap's current template".into())
}
