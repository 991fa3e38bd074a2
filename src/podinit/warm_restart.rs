//! Warm restart: the Aerospike server process restarts with a freshly rendered aerospike.conf while its pod, IP and
//! volumes stay (the reference's "quick restart").
//!
//! How it works without giving the pods API access:
//! - pod-init, when it prepares the pod, copies the operator binary to [`BINARY`] in the shared config volume and
//!   records what it rendered from (its environment and the network facts it used) in [`SNAPSHOT`].
//! - The operator execs [`command`] in the server container and writes one JSON [`WarmRestartInput`] to its stdin:
//!   the rack ConfigMap's template and peers as the operator wants them now (no wait for the kubelet to refresh the
//!   mounted ConfigMap).
//! - `pod-init warm-restart` renders the new aerospike.conf from the snapshot and that input, writes it, and sends
//!   SIGUSR1 to the container's init process: the Aerospike images run the server under tini with `-r SIGUSR1`,
//!   which restarts its child on that signal. It returns once the old server process has exited.
//!
//! The decisions are pure ([`Snapshot`], [`render`], [`supports_warm_restart`]); [`run`] is the I/O.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::desired::pod_network::PodNetwork;
use crate::desired::{self, CONF_DIR};

/// The operator binary, copied here by pod-init (the config volume is shared with the server container).
pub const BINARY: &str = "/etc/aerospike/ako-pod-init";
/// What pod-init rendered the pod's conf from (JSON [`Snapshot`]).
pub const SNAPSHOT: &str = "/etc/aerospike/.ako-pod-init.json";
/// Environment variable naming another binary to run instead of [`BINARY`]. Nothing sets it in a real pod; the
/// local plane's fake kubelet (kwok), which runs exec commands on its own host, sets it per pod to reach the
/// simulated server of that pod.
pub const BINARY_OVERRIDE_ENV: &str = "AKO_POD_INIT";
/// How long `warm-restart` waits for the old server process to exit.
pub const STOP_WAIT: Duration = Duration::from_secs(60);

/// The exec command the operator runs in the server container for a warm restart.
pub fn command() -> Vec<String> {
    command_for(&["warm-restart"])
}

/// The exec command running [`BINARY`] with `args` in the server container (`sh` so [`BINARY_OVERRIDE_ENV`] can
/// apply; the arguments are passed as they are, never through the shell).
pub fn command_for(args: &[&str]) -> Vec<String> {
    let mut cmd =
        vec!["sh".into(), "-c".into(), format!("exec \"${{{BINARY_OVERRIDE_ENV}:-{BINARY}}}\" \"$@\""), "sh".into()];
    cmd.extend(args.iter().map(|a| a.to_string()));
    cmd
}

/// Whether `path` may be deleted by `delete-files` (pure): an absolute path with no `.` or `..` component and not the
/// root, optionally ending in `/*` (the directory's contents).
pub fn deletable(path: &str) -> Result<(), String> {
    let body = path.strip_suffix("/*").unwrap_or(path);
    if !body.starts_with('/') || body.split('/').any(|c| c == "." || c == "..") || body.trim_matches('/').is_empty() {
        return Err(format!("{path:?}: not an absolute path below the root"));
    }
    Ok(())
}

/// `pod-init delete-files <path>...`: deletes each file (gone already is fine), or with `/*` a directory's contents;
/// the files of a namespace the config no longer names, before the server restarts without it.
pub fn delete_files(paths: &[String]) -> anyhow::Result<()> {
    for path in paths {
        deletable(path).map_err(anyhow::Error::msg)?;
    }
    for path in paths {
        let result = match path.strip_suffix("/*") {
            Some(dir) => match std::fs::read_dir(dir) {
                Ok(entries) => entries.into_iter().try_for_each(|e| {
                    let p = e?.path();
                    if p.is_dir() && !p.is_symlink() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) }
                }),
                Err(e) => Err(e),
            },
            None => std::fs::remove_file(path),
        };
        match result {
            Ok(()) => println!("deleted {path}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("{path}: not there"),
            Err(e) => bail!("deleting {path}: {e}"),
        }
    }
    Ok(())
}

/// What the operator sends on stdin: the pod's rack ConfigMap data it wants the server to run with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmRestartInput {
    /// The conf hash this input renders (the pod is annotated with it afterwards).
    pub conf_hash: String,
    pub template: String,
    pub peers: String,
}

/// What pod-init rendered the pod's conf from: its environment (the Downward API values are fixed for the pod's
/// life) and the network facts of the node it runs on (a warm restart keeps the node).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<PodNetwork>,
}

impl Snapshot {
    /// The pod-init environment variables (every `ENV_*` of [`desired`]) as `get` returns them.
    pub fn capture(get: impl Fn(&str) -> Option<String>, network: Option<PodNetwork>) -> Snapshot {
        let env = desired::POD_INIT_ENV.iter().filter_map(|name| get(name).map(|v| (name.to_string(), v))).collect();
        Snapshot { env, network }
    }
}

/// The pod's new aerospike.conf: the snapshot's environment with the input's conf hash, its network facts, and the
/// input's template and peers.
pub fn render(snapshot: &Snapshot, input: &WarmRestartInput) -> anyhow::Result<String> {
    let mut env = super::PodEnv::from_lookup(|k| snapshot.env.get(k).cloned())?;
    env.conf_hash = input.conf_hash.clone();
    env.network = snapshot.network.clone();
    if super::pod_network::entry_needed(&env.network_policy) && env.network.is_none() {
        bail!("{SNAPSHOT} has no network facts, which this pod's network policy needs");
    }
    let (text, notes) = super::render_conf(&input.template, &input.peers, &env)?;
    for note in notes {
        tracing::warn!("{note}");
    }
    Ok(text)
}

/// Whether the container's init process (its `/proc/1/cmdline`, NUL-separated) restarts its child on a signal:
/// tini started with `-r`.
pub fn supports_warm_restart(cmdline: &[u8]) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
    let Some(first) = args.first() else { return false };
    let program = first.rsplit(|b| *b == b'/').next().unwrap_or(first);
    program.windows(4).any(|w| w == b"tini") && args.iter().skip(1).any(|a| *a == b"-r" || a.starts_with(b"-r"))
}

/// Records the snapshot beside the conf and copies this binary to [`BINARY`] (pod-init, after rendering). Best
/// effort from the caller's view: without them a warm restart fails and the operator restarts the pod instead.
pub fn prepare(conf_dir: &Path, snapshot: &Snapshot) -> anyhow::Result<()> {
    let text = serde_json::to_string(snapshot).context("serialising the snapshot")?;
    super::write_atomically(&conf_dir.join(file_name(SNAPSHOT)), &text)?;
    let exe = std::env::current_exe().context("locating this binary")?;
    let target = conf_dir.join(file_name(BINARY));
    let tmp = conf_dir.join(format!(".{}.tmp", file_name(BINARY)));
    std::fs::copy(&exe, &tmp).with_context(|| format!("copying {} to {}", exe.display(), tmp.display()))?;
    std::fs::rename(&tmp, &target).with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))?;
    Ok(())
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `pod-init warm-restart`: read the input from stdin, write the new conf, signal tini, wait for the old server.
pub fn run() -> anyhow::Result<()> {
    let cmdline = std::fs::read("/proc/1/cmdline").context("reading /proc/1/cmdline")?;
    if !supports_warm_restart(&cmdline) {
        bail!(
            "warm restart not supported: the container's init process is not tini with -r ({:?})",
            String::from_utf8_lossy(&cmdline).replace('\0', " ").trim()
        );
    }
    let conf_dir = PathBuf::from(CONF_DIR);
    let snapshot_path = conf_dir.join(file_name(SNAPSHOT));
    let snapshot: Snapshot = serde_json::from_slice(
        &std::fs::read(&snapshot_path).with_context(|| format!("reading {}", snapshot_path.display()))?,
    )
    .with_context(|| format!("{} is not a snapshot", snapshot_path.display()))?;
    // One JSON value: the operator need not close stdin.
    let input: WarmRestartInput = serde_json::Deserializer::from_reader(std::io::stdin().lock())
        .into_iter::<WarmRestartInput>()
        .next()
        .context("no input on stdin")?
        .context("the input on stdin is not a warm-restart input")?;
    let text = render(&snapshot, &input)?;
    let server = server_pids();
    if server.is_empty() {
        bail!("no Aerospike server process (asd) is running in this container");
    }
    super::write_atomically(Path::new(desired::CONF_FILE), &text)?;
    // SAFETY: kill(2) with a valid signal number has no memory-safety preconditions.
    if unsafe { libc::kill(1, libc::SIGUSR1) } != 0 {
        bail!("signalling the init process: {}", std::io::Error::last_os_error());
    }
    let deadline = Instant::now() + STOP_WAIT;
    while server.iter().any(|pid| Path::new(&format!("/proc/{pid}")).exists()) {
        if Instant::now() >= deadline {
            bail!("the Aerospike server (pid {server:?}) did not stop within {} s", STOP_WAIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("warm restarted: aerospike.conf rewritten for conf hash {}, server restarting", input.conf_hash);
    Ok(())
}

/// Pids of the processes named `asd` (from `/proc/<pid>/comm`).
fn server_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            let mut comm = String::new();
            std::fs::File::open(format!("/proc/{pid}/comm")).and_then(|mut f| f.read_to_string(&mut comm)).is_ok()
                && comm.trim() == "asd"
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tini_with_restart_flag_supports_it() {
        assert!(supports_warm_restart(b"/usr/bin/as-tini-static\0-r\0SIGUSR1\0-t\0SIGTERM\0--\0/entrypoint.sh\0asd\0"));
        assert!(supports_warm_restart(b"tini\0-rSIGUSR1\0--\0asd\0"));
        assert!(!supports_warm_restart(b"/usr/bin/as-tini-static\0-t\0SIGTERM\0--\0asd\0"), "no -r");
        assert!(!supports_warm_restart(b"/usr/bin/asd\0--foreground\0-r\0"), "not tini");
        assert!(!supports_warm_restart(b""));
    }

    #[test]
    fn the_command_runs_the_copied_binary_unless_overridden() {
        let cmd = command();
        assert_eq!(cmd[..2], ["sh", "-c"]);
        assert_eq!(cmd[2], "exec \"${AKO_POD_INIT:-/etc/aerospike/ako-pod-init}\" \"$@\"");
        assert_eq!(cmd[3..], ["sh", "warm-restart"]);
        // The script really does that in a shell (the arguments after the script are $0 and $@).
        let out = std::process::Command::new(&cmd[0])
            .args(&cmd[1..])
            .env(BINARY_OVERRIDE_ENV, "echo")
            .output()
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "warm-restart\n");
    }

    #[test]
    fn delete_files_takes_only_what_it_is_given() {
        for bad in ["relative/x", "/", "/*", "/a/../etc", "/a/./b", ""] {
            assert!(deletable(bad).is_err(), "{bad:?}");
        }
        let dir = std::env::temp_dir().join(format!("ako-delete-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("idx/sub")).unwrap();
        for f in ["ns.dat", "keep.dat", "idx/a", "idx/sub/b"] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        let arg = |p: &str| format!("{}/{p}", dir.display());
        delete_files(&[arg("ns.dat"), arg("missing.dat"), arg("idx/*")]).unwrap();
        assert!(!dir.join("ns.dat").exists());
        assert!(dir.join("keep.dat").exists(), "only the named files");
        assert!(dir.join("idx").is_dir() && std::fs::read_dir(dir.join("idx")).unwrap().next().is_none(), "contents");
        // One bad path refuses the whole call before anything is deleted.
        assert!(delete_files(&[arg("keep.dat"), "../x".into()]).is_err());
        assert!(dir.join("keep.dat").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn renders_from_the_snapshot_with_the_new_template() {
        let env: BTreeMap<&str, &str> = [
            (desired::ENV_POD_NAME, "aerocluster-0-1"),
            (desired::ENV_POD_NAMESPACE, "aerospike"),
            (desired::ENV_POD_IP, "10.0.0.7"),
            (desired::ENV_CLUSTER_NAME, "aerocluster"),
            (desired::ENV_RACK_ID, "0"),
            (desired::ENV_CONF_HASH, "old-hash"),
            (
                desired::ENV_NETWORK_POLICY,
                r#"{"access":"pod","alternateAccess":"pod","tlsAccess":"pod","tlsAlternateAccess":"pod"}"#,
            ),
            ("UNRELATED", "x"),
        ]
        .into();
        let snapshot = Snapshot::capture(|k| env.get(k).map(|v| v.to_string()), None);
        assert!(!snapshot.env.contains_key("UNRELATED"), "only pod-init's own variables are kept");
        let round: Snapshot = serde_json::from_str(&serde_json::to_string(&snapshot).unwrap()).unwrap();
        assert_eq!(round, snapshot);
        let input = WarmRestartInput {
            conf_hash: "new-hash".into(),
            template: "service {\n    node-id    ENV_NODE_ID\n    proto-fd-max    20000\n}\n".into(),
            peers: "aerocluster-0-0.aerocluster.aerospike\naerocluster-0-1.aerocluster.aerospike".into(),
        };
        let conf = render(&snapshot, &input).unwrap();
        assert!(conf.contains("proto-fd-max    20000"), "{conf}");
        assert!(conf.contains("node-id    0a1"), "the node id comes from the pod's own environment: {conf}");
        // A pod that needs network facts cannot warm restart without them.
        let mut needs = snapshot.clone();
        needs.env.insert(desired::ENV_NETWORK_POLICY.into(), r#"{"access":"hostExternal"}"#.into());
        let err = render(&needs, &input).unwrap_err().to_string();
        assert!(err.contains("no network facts"), "{err}");
    }

    #[test]
    fn prepare_writes_the_snapshot_and_the_binary() {
        let dir = std::env::temp_dir().join(format!("ako-warm-prepare-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let snapshot = Snapshot { env: [("POD_NAME".to_string(), "a-0-0".to_string())].into(), network: None };
        prepare(&dir, &snapshot).unwrap();
        let back: Snapshot = serde_json::from_slice(&std::fs::read(dir.join(".ako-pod-init.json")).unwrap()).unwrap();
        assert_eq!(back, snapshot);
        let copied = std::fs::metadata(dir.join("ako-pod-init")).unwrap();
        assert_eq!(copied.len(), std::fs::metadata(std::env::current_exe().unwrap()).unwrap().len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
