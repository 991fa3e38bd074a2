//! Sampling the processes and the machine: RSS, CPU, load; and the bench's polling helper.
use super::*;

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ProcStatus {
    pub(super) rss_kb: u64,
    pub(super) hwm_kb: u64,
    pub(super) threads: u64,
}

pub(super) fn proc_status(pid: u32) -> Option<ProcStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut s = ProcStatus::default();
    for line in text.lines() {
        let field =
            |prefix: &str| -> Option<u64> { line.strip_prefix(prefix)?.split_whitespace().next()?.parse().ok() };
        if let Some(v) = field("VmRSS:") {
            s.rss_kb = v;
        } else if let Some(v) = field("VmHWM:") {
            s.hwm_kb = v;
        } else if let Some(v) = field("Threads:") {
            s.threads = v;
        }
    }
    Some(s)
}

pub(super) fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

pub(super) fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// utime + stime of `pid` in seconds (fields 14 and 15 of /proc/<pid>/stat).
pub(super) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3: field 14 is index 11, field 15 index 12.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

pub(super) fn cpu_of(procs: &[(String, u32)]) -> BTreeMap<String, f64> {
    procs.iter().filter_map(|(n, pid)| Some((n.clone(), cpu_seconds(*pid)?))).collect()
}

/// CPU seconds each process of `after` spent since `before` (a process not in `before` counts from 0).
pub(super) fn cpu_delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after.iter().map(|(n, v)| (n.clone(), v - before.get(n).copied().unwrap_or(0.0))).collect()
}

/// Busy CPU seconds of the whole machine since boot (/proc/stat: all but idle and iowait).
pub(super) fn machine_busy() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else { return 0.0 };
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else { return 0.0 };
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest counted in user)
    let busy: u64 = v.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4 && *i < 8).map(|(_, x)| *x).sum();
    busy as f64 / clock_ticks()
}

pub(super) fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v: Vec<f64> = text.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect();
    [v.first().copied().unwrap_or(0.0), v.get(1).copied().unwrap_or(0.0), v.get(2).copied().unwrap_or(0.0)]
}

#[derive(Clone, Debug, Default)]
pub(super) struct Samples {
    pub(super) count: usize,
    pub(super) first_rss_kb: u64,
    pub(super) max_rss_kb: u64,
    pub(super) max_threads: u64,
    /// Open file descriptors (mostly the apiserver connections of its HTTP/1.1 pool).
    pub(super) max_fds: u64,
    pub(super) max_load1: f64,
}

/// Samples the operator's /proc/<pid>/status (and the load average) every [`SAMPLE_EVERY`] on a thread.
pub(super) struct Sampler {
    pub(super) stop: Arc<std::sync::atomic::AtomicBool>,
    pub(super) samples: Arc<Mutex<Samples>>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub(super) fn start(pid: u32) -> Sampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Samples::default()));
        let thread = std::thread::spawn({
            let (stop, samples) = (stop.clone(), samples.clone());
            move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Some(s) = proc_status(pid) {
                        let mut acc = samples.lock().unwrap_or_else(|e| e.into_inner());
                        if acc.count == 0 {
                            acc.first_rss_kb = s.rss_kb;
                        }
                        acc.count += 1;
                        acc.max_rss_kb = acc.max_rss_kb.max(s.rss_kb);
                        acc.max_threads = acc.max_threads.max(s.threads);
                        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0);
                        acc.max_fds = acc.max_fds.max(fds);
                        acc.max_load1 = acc.max_load1.max(loadavg()[0]);
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            }
        });
        Sampler { stop, samples, thread: Some(thread) }
    }

    pub(super) fn stop(mut self) -> Samples {
        self.halt();
        self.samples.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn halt(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

pub(super) async fn poll<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
