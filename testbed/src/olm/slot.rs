//! The machine-wide OLM slot: one OLM per machine at a time (see the module docs of [`super`]).
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::cluster::net;
use crate::cluster::proc::{self, Proc};

use super::{DEFAULT_SLOT_WAIT, SLOT_WAIT_ENV};

/// The machine's one OLM slot (see the module docs). Held while an [`Olm`] of this process runs; handed over to the
/// OLM processes themselves when they outlive the command that started them.
pub struct OlmSlot {
    token: u64,
    released: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SlotHolder {
    /// (pid, start time): the slot is held while any of them runs.
    processes: Vec<(u32, u64)>,
    token: u64,
    /// True when held by OLM processes that outlive their command (`cluster up --olm`, `demo`).
    detached: bool,
    /// What holds it (a command line), for messages.
    what: String,
    state_dir: PathBuf,
}

/// Tokens of the slots this process holds (a holder naming this process is alive only while its guard is).
static HELD_TOKENS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn slot_path() -> PathBuf {
    std::env::temp_dir().join("ako-olm-slot.json")
}

/// Runs `f` with the slot file's lock held (an flock on a sibling file, so reads and writes are atomic).
fn with_slot_lock<T>(f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    use std::os::fd::AsRawFd;
    let path = slot_path();
    let lock_path = path.with_extension("lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    // SAFETY: flock on a valid descriptor; the lock goes with the file when it is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("locking {}", lock_path.display()));
    }
    let result = f(&path);
    drop(lock);
    result
}

fn read_holder(path: &Path) -> Option<SlotHolder> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

fn holder_alive(h: &SlotHolder) -> bool {
    h.processes.iter().any(|&(pid, start)| {
        if pid == std::process::id() {
            !h.detached && HELD_TOKENS.lock().unwrap_or_else(|e| e.into_inner()).contains(&h.token)
        } else {
            proc::same_process_alive(pid, start)
        }
    })
}

fn describe_holder(h: &SlotHolder) -> String {
    let pids: Vec<String> = h.processes.iter().map(|(p, _)| p.to_string()).collect();
    format!("{} (pid {}, state folder {})", h.what, pids.join(","), h.state_dir.display())
}

pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

impl OlmSlot {
    /// Takes the slot, waiting up to `wait` while another test process holds it. Fails at once when OLM processes
    /// of a detached run hold it (they do not stop by themselves).
    pub async fn acquire(what: &str, state_dir: &Path, wait: Duration) -> Result<OlmSlot> {
        let deadline = Instant::now() + wait;
        let mut told = false;
        loop {
            let token = net::random_u64();
            let taken = with_slot_lock(|path| {
                if let Some(h) = read_holder(path)
                    && holder_alive(&h)
                {
                    return Ok(Err(h));
                }
                let me = std::process::id();
                let holder = SlotHolder {
                    processes: vec![(me, proc::start_time(me).unwrap_or(0))],
                    token,
                    detached: false,
                    what: what.to_string(),
                    state_dir: state_dir.to_path_buf(),
                };
                HELD_TOKENS.lock().unwrap_or_else(|e| e.into_inner()).push(token);
                write_atomic(path, serde_json::to_string_pretty(&holder)?.as_bytes())?;
                Ok(Ok(()))
            })?;
            let holder = match taken {
                Ok(()) => return Ok(OlmSlot { token, released: false }),
                Err(h) => h,
            };
            if holder.detached {
                bail!(
                    "another OLM runs on this machine: {}. Only one OLM runs per machine (OLM binds :8080); stop it \
                     with `cargo xtask demo down` or `cargo xtask cluster down --state-dir {}`",
                    describe_holder(&holder),
                    holder.state_dir.display()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "the machine's OLM slot was not free within {wait:?}: held by {} (set {SLOT_WAIT_ENV} to wait longer)",
                    describe_holder(&holder)
                );
            }
            if !told {
                eprintln!("olm: waiting for the machine's OLM slot, held by {}", describe_holder(&holder));
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// How long tests wait for the slot: `$AKO_OLM_SLOT_WAIT_SECS`, else 30 minutes.
    pub fn default_wait() -> Duration {
        std::env::var(SLOT_WAIT_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_SLOT_WAIT)
    }

    /// Hands the slot to `processes` (detached OLM processes): it stays taken while any of them runs.
    pub(super) fn hand_over(mut self, processes: &[&Proc], what: &str) -> Result<()> {
        let token = self.token;
        let result = with_slot_lock(|path| {
            let mut h =
                read_holder(path).filter(|h| h.token == token).ok_or_else(|| anyhow!("the OLM slot was lost"))?;
            h.processes = processes.iter().map(|p| (p.pid, p.start_time)).collect();
            h.detached = true;
            h.what = what.to_string();
            write_atomic(path, serde_json::to_string_pretty(&h)?.as_bytes())
        });
        HELD_TOKENS.lock().unwrap_or_else(|e| e.into_inner()).retain(|t| *t != token);
        self.released = true;
        result
    }

    pub(super) fn release(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        let token = self.token;
        let _ = with_slot_lock(|path| {
            if read_holder(path).is_some_and(|h| h.token == token) {
                let _ = fs::remove_file(path);
            }
            Ok(())
        });
        HELD_TOKENS.lock().unwrap_or_else(|e| e.into_inner()).retain(|t| *t != token);
    }
}

impl Drop for OlmSlot {
    fn drop(&mut self) {
        self.release();
    }
}
