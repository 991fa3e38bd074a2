//! Child processes of a local cluster: how they are started, recorded and stopped.
//!
//! Two modes:
//! - [`Mode::Owned`] (tests, [`super::LocalCluster`]): the processes belong to this process. They are forked by
//!   one long-lived spawner thread with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills them if this process
//!   dies without running destructors (a test binary killed, a `static` cluster never dropped). The death signal
//!   fires when the forking *thread* exits, which is why a dedicated thread that lives as long as the process
//!   forks them, not whichever test thread asked.
//! - [`Mode::Detached`] (`cargo xtask cluster up`): the processes outlive the command; `down` finds them in the
//!   state file.
//!
//! Every process runs in its own process group (so a Ctrl-C in the terminal does not reach it), with stdin from
//! /dev/null and stdout/stderr appended to its log file. A recorded process is identified by pid *and* start time
//! (from /proc), so a stop never signals an unrelated process that reused the pid.
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    Owned,
    Detached,
}

/// What to run: enough to start the same process again (the apiserver restart).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub log: PathBuf,
    pub cwd: PathBuf,
}

/// A started process.
#[derive(Debug)]
pub struct Proc {
    pub spec: Spec,
    pub pid: u32,
    pub start_time: u64,
    /// Present for owned processes: used to reap them.
    child: Option<Child>,
}

/// The state-file form of a started process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    pub pid: u32,
    pub start_time: u64,
    pub log: PathBuf,
}

impl Proc {
    pub fn record(&self) -> Record {
        Record { name: self.spec.name.clone(), pid: self.pid, start_time: self.start_time, log: self.spec.log.clone() }
    }

    /// True while the process runs (a zombie counts as exited).
    pub fn is_running(&mut self) -> bool {
        if let Some(child) = &mut self.child {
            return matches!(child.try_wait(), Ok(None));
        }
        same_process_alive(self.pid, self.start_time)
    }

    /// The exit status text if the process has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        match &mut self.child {
            Some(child) => child.try_wait().ok().flatten().map(|s| s.to_string()),
            None => (!same_process_alive(self.pid, self.start_time)).then(|| "exited".to_string()),
        }
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// The thread that forks owned processes (see the module docs). Its sender lives in a static, so the thread
/// never ends before the process does.
fn spawner() -> &'static mpsc::Sender<SpawnRequest> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("local-cluster-spawner".into())
            .spawn(move || {
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the process-spawner thread");
        tx
    })
}

/// Starts `spec` in `mode`.
pub fn spawn(spec: Spec, mode: Mode) -> Result<Proc> {
    if let Some(parent) = spec.log.parent() {
        fs::create_dir_all(parent)?;
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .with_context(|| format!("opening {}", spec.log.display()))?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let child = match mode {
        Mode::Detached => cmd.spawn(),
        Mode::Owned => {
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let (tx, rx) = mpsc::channel();
            spawner().send((cmd, tx)).map_err(|_| anyhow::anyhow!("the process-spawner thread is gone"))?;
            rx.recv().map_err(|_| anyhow::anyhow!("the process-spawner thread did not answer"))?
        }
    }
    .with_context(|| format!("starting {} ({})", spec.name, spec.program.display()))?;
    let pid = child.id();
    let start_time = start_time(pid).unwrap_or(0);
    let child = match mode {
        Mode::Owned => Some(child),
        // Dropping a Child neither kills nor waits; the detached process is reaped by init once we exit.
        Mode::Detached => None,
    };
    Ok(Proc { spec, pid, start_time, child })
}

/// The start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), `None` if it is gone.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); field 22 is index 19 here.
    fields.get(19)?.parse().ok()
}

fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// True if `pid` runs and is the process that started at `start_time` (0: not checked). Zombies count as gone.
pub fn same_process_alive(pid: u32, start_time: u64) -> bool {
    match (self::start_time(pid), process_state(pid)) {
        (Some(t), Some(state)) => state != 'Z' && (start_time == 0 || t == start_time),
        _ => false,
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // The process leads its own group (process_group(0)): signal the group so helpers it forked go too.
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        if libc::kill(-(pid as libc::pid_t), sig) != 0 {
            libc::kill(pid as libc::pid_t, sig);
        }
    }
}

/// Stops processes: SIGTERM to all, up to `grace` for them to exit, then SIGKILL. Owned processes are reaped.
pub fn stop_all(procs: &mut [Proc], grace: Duration) {
    for p in procs.iter_mut() {
        if p.is_running() {
            signal(p.pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && procs.iter_mut().any(|p| p.is_running()) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in procs.iter_mut() {
        if p.is_running() {
            signal(p.pid, libc::SIGKILL);
        }
        if let Some(child) = &mut p.child {
            let _ = child.wait();
        }
    }
}

/// Stops recorded (detached) processes, with the same identity check and escalation as [`stop_all`]. Returns the
/// names of the processes that were still running.
pub fn stop_records(records: &[Record], grace: Duration) -> Vec<String> {
    let alive: Vec<&Record> = records.iter().filter(|r| same_process_alive(r.pid, r.start_time)).collect();
    for r in &alive {
        signal(r.pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && alive.iter().any(|r| same_process_alive(r.pid, r.start_time)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for r in &alive {
        if same_process_alive(r.pid, r.start_time) {
            signal(r.pid, libc::SIGKILL);
        }
    }
    alive.iter().map(|r| r.name.clone()).collect()
}

/// The last `n` lines of a log file, for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return format!("(cannot read {}: {e})", path.display()),
    };
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// True if `pid` exists at all (any process, any state but zombie).
pub fn pid_alive(pid: u32) -> bool {
    same_process_alive(pid, 0)
}
