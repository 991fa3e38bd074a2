//! Leader election under a network partition and on SIGTERM, against a real control plane.
//!
//! A partitioned leader must stop acting before a standby can take the Lease (it fences itself when no renewal
//! succeeded for the lease duration minus a margin); the partition is a TCP proxy between the leader and the API
//! server that the test cuts (a blackhole: connections stay open, nothing passes), so the old leader cannot
//! release the Lease and the standby only gets it by expiry. A leader sent SIGTERM stops its controllers and
//! releases the Lease, so the standby takes over at once instead of after the lease duration.
//!
//! The tests of this binary run one at a time: they compare timings.
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aerospike_kubernetes_operator::leader;
use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// The Lease duration the operator uses (`leader::acquire`).
const LEASE_DURATION: Duration = Duration::from_secs(15);

// -----------------------------------------------------------------------------------------------------------------
// A TCP proxy the test controls.

/// Forwards 127.0.0.1:`addr` to `upstream` until cut; after the cut nothing passes in either direction and new
/// connections are accepted and held without an answer (a partition, not a refusal: requests hang).
struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    /// Bytes forwarded (either way) after the cut: must stay 0.
    leaked: Arc<AtomicU64>,
    _tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = watch::channel(false);
        let leaked = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        let leaked2 = leaked.clone();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((down, _)) = listener.accept().await else { continue };
                let cut_rx = cut_rx.clone();
                let leaked = leaked2.clone();
                conns.spawn(async move {
                    if *cut_rx.borrow() {
                        return hold(down).await; // open and silent
                    }
                    let Ok(up) = TcpStream::connect(upstream).await else { return };
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    let a = pump(dr, uw, cut_rx.clone(), leaked.clone());
                    let b = pump(ur, dw, cut_rx, leaked);
                    tokio::join!(a, b);
                });
            }
        });
        Proxy { addr, cut, leaked, _tasks: tasks }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }
}

/// Copies `from` to `to` until either closes or the proxy is cut; after the cut, holds both ends open forever.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
    leaked: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
            _ = cut.wait_for(|c| *c) => break,
        };
        if *cut.borrow() {
            break; // read just as the cut came: dropped
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if *cut.borrow() {
            leaked.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
    if *cut.borrow() {
        return hold((from, to)).await; // blackhole: both ends stay open, nothing passes
    }
    let _ = to.shutdown().await;
}

/// Keeps `held` (open sockets) until the proxy is dropped.
async fn hold<T>(held: T) {
    let _held = held;
    std::future::pending::<()>().await
}

/// The admin kubeconfig with its server pointed at `proxy`, written to a file (for a process) and as a client.
async fn proxied(proxy: SocketAddr, name: &str) -> (PathBuf, Client) {
    let c = cluster().await;
    let yaml = std::fs::read_to_string(c.kubeconfig_path()).expect("read the kubeconfig");
    assert!(yaml.contains(c.apiserver_url()), "the kubeconfig names {}", c.apiserver_url());
    let yaml = yaml.replace(c.apiserver_url(), &format!("https://{proxy}"));
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kubeconfig-{name}"));
    std::fs::write(&path, &yaml).expect("write the proxied kubeconfig");
    let kc = Kubeconfig::from_yaml(&yaml).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.unwrap();
    (path, Client::try_from(config).unwrap())
}

async fn upstream() -> SocketAddr {
    let url = cluster().await.apiserver_url();
    url.trim_start_matches("https://").parse().expect("apiserver at https://IP:PORT")
}

// -----------------------------------------------------------------------------------------------------------------
// Watching the Lease.

/// Every change of (holder, transitions) of the Lease, as seen by polling every 50 ms, with when it was seen.
#[derive(Clone, Default)]
struct LeaseHistory(Arc<std::sync::Mutex<Vec<Seen>>>);

/// When a (holder, transitions) was first seen.
type Seen = (Instant, Option<String>, i32);

impl LeaseHistory {
    fn watch(client: Client, ns: &str) -> (LeaseHistory, tokio::task::JoinHandle<()>) {
        let history = LeaseHistory::default();
        let h = history.clone();
        let leases: Api<Lease> = Api::namespaced(client, ns);
        let task = tokio::spawn(async move {
            loop {
                if let Ok(Some(lease)) = leases.get_opt(leader::LEASE_NAME).await {
                    let spec = lease.spec.unwrap_or_default();
                    let holder = spec.holder_identity.filter(|h| !h.is_empty());
                    let transitions = spec.lease_transitions.unwrap_or(0);
                    let mut v = h.0.lock().unwrap();
                    if v.last().is_none_or(|(_, lh, lt)| *lh != holder || *lt != transitions) {
                        v.push((Instant::now(), holder, transitions));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        (history, task)
    }

    fn entries(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    /// Until the watcher has seen `id` hold the Lease.
    async fn wait_holder(&self, id: &str) {
        wait_for(&format!("the Lease watcher to see {id}"), Duration::from_secs(10), || async {
            self.entries().last().is_some_and(|e| e.1.as_deref() == Some(id)).then_some(())
        })
        .await;
    }

    fn describe(&self, origin: Instant) -> String {
        self.entries()
            .iter()
            .map(|(t, h, n)| format!("+{:.2}s holder {h:?} transitions {n}", secs(t.saturating_duration_since(origin))))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

async fn holder(client: &Client, ns: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    leases.get_opt(leader::LEASE_NAME).await.ok()??.spec?.holder_identity
}

/// A standby in this process, with a direct connection: resolves to the instant it took the Lease.
fn standby(client: Client, ns: &str, id: &'static str) -> tokio::task::JoinHandle<(Instant, leader::Leadership)> {
    let ns = ns.to_string();
    tokio::spawn(async move {
        let leadership = leader::acquire(client, &ns, id).await.expect("election");
        (Instant::now(), leadership)
    })
}

// -----------------------------------------------------------------------------------------------------------------
// The operator binary.

/// The operator binary as leader candidate `id` in `ns`, through `kubeconfig`; its output goes to a log file.
fn spawn_operator(kubeconfig: &Path, ns: &str, id: &str) -> (tokio::process::Child, PathBuf) {
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("operator-{ns}-{id}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let port = || ako_testbed::cluster::net::free_port().unwrap();
    let child = tokio::process::Command::new(operator_binary())
        .arg("run")
        .args(["--leader-elect", "--no-webhook", "--watch-namespaces", ns])
        .args(["--health-addr", &format!("127.0.0.1:{}", port())])
        .args(["--metrics-addr", &format!("127.0.0.1:{}", port())])
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", id)
        .env("POD_NAMESPACE", ns)
        .env("RUST_LOG", "info")
        .env_remove("LEADER_ELECT")
        .env_remove("WATCH_NAMESPACE")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .expect("start the operator");
    (child, log)
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

// -----------------------------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_stops_acting_before_the_standby_takes_the_lease() {
    let _serial = SERIAL.lock().await;
    let ns = "fence-inproc";
    let client = cluster().await.client().await;
    create_namespace(&client, ns).await;
    let proxy = Proxy::start(upstream().await).await;
    let (_, leader_client) = proxied(proxy.addr, ns).await;
    let (history, watcher) = LeaseHistory::watch(client.clone(), ns);

    let origin = Instant::now();
    let mut leadership = leader::acquire(leader_client, ns, "replica-1").await.expect("the first replica leads");
    // The leader acts until its Leadership says it is lost; it records when it stopped.
    let acting = Arc::new(AtomicBool::new(true));
    let flag = acting.clone();
    let leader_task = tokio::spawn(async move {
        leadership.lost().await;
        flag.store(false, Ordering::SeqCst);
        Instant::now()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let standby = standby(client.clone(), ns, "replica-2");
    // Several renewals go through the proxy while the standby waits.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(!standby.is_finished(), "the standby waits while the leader renews: {}", history.describe(origin));
    assert!(acting.load(Ordering::SeqCst), "the leader acts while it can renew");
    assert_eq!(holder(&client, ns).await.as_deref(), Some("replica-1"));
    let transitions_before = history.entries().last().map(|e| e.2).unwrap();

    proxy.cut();
    let cut_at = Instant::now();
    let (standby_at, _standby_leadership) = tokio::time::timeout(LEASE_DURATION * 4, standby)
        .await
        .unwrap_or_else(|_| panic!("the standby never took the Lease: {}", history.describe(origin)))
        .unwrap();
    let took_over = secs(standby_at - cut_at);
    assert!(
        leader_task.is_finished() && !acting.load(Ordering::SeqCst),
        "the standby took the Lease {took_over:.2}s after the cut while the partitioned leader was still acting; \
         Lease history: {}",
        history.describe(origin)
    );
    let stopped_at = leader_task.await.unwrap();
    let stopped = secs(stopped_at.saturating_duration_since(cut_at));
    eprintln!(
        "partition: the leader stopped acting {stopped:.2}s after the cut, the standby took the Lease {took_over:.2}s \
         after the cut ({:.2}s later)",
        took_over - stopped
    );
    assert!(
        stopped_at < standby_at,
        "the leader stopped ({stopped:.2}s) before the standby took over ({took_over:.2}s)"
    );
    assert!(standby_at - cut_at >= LEASE_DURATION - Duration::from_secs(2), "the standby waited for expiry");

    // The old leader never released the Lease (it could not: nothing passed the proxy after the cut), and the
    // standby took it by expiry in one step: replica-1 straight to replica-2, one transition more.
    assert_eq!(proxy.leaked.load(Ordering::SeqCst), 0, "nothing passed the proxy after the cut");
    history.wait_holder("replica-2").await;
    watcher.abort();
    let after_cut: Vec<_> = history.entries().into_iter().filter(|(t, _, _)| *t >= cut_at).collect();
    let holders: Vec<_> = after_cut.iter().map(|(_, h, _)| h.clone()).collect();
    assert_eq!(
        holders,
        vec![Some("replica-2".to_string())],
        "after the cut the Lease went from replica-1 straight to replica-2 (never released): {}",
        history.describe(origin)
    );
    assert_eq!(after_cut[0].2, transitions_before + 1, "one transition: {}", history.describe(origin));
    let _ = delete_namespace(&client, ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_operator_process_exits_non_zero_before_the_standby_takes_the_lease() {
    let _serial = SERIAL.lock().await;
    let ns = "fence-process";
    let client = cluster().await.client().await;
    create_namespace(&client, ns).await;
    let proxy = Proxy::start(upstream().await).await;
    let (kubeconfig, _) = proxied(proxy.addr, ns).await;
    let (history, watcher) = LeaseHistory::watch(client.clone(), ns);
    let origin = Instant::now();

    let (mut child, log) = spawn_operator(&kubeconfig, ns, "operator-1");
    wait_for("the operator to take the Lease", Duration::from_secs(60), || {
        let client = client.clone();
        async move { (holder(&client, ns).await.as_deref() == Some("operator-1")).then_some(()) }
    })
    .await;
    let standby = standby(client.clone(), ns, "replica-2");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(!standby.is_finished(), "the standby waits while the operator renews: {}", history.describe(origin));
    assert!(child.try_wait().unwrap().is_none(), "the operator runs:\n{}", log_of(&log));

    proxy.cut();
    let cut_at = Instant::now();
    let exited = tokio::spawn(async move {
        let status = child.wait().await.unwrap();
        (Instant::now(), status)
    });
    let (standby_at, _standby_leadership) = tokio::time::timeout(LEASE_DURATION * 4, standby)
        .await
        .unwrap_or_else(|_| panic!("the standby never took the Lease: {}", history.describe(origin)))
        .unwrap();
    let took_over = secs(standby_at - cut_at);
    assert!(
        exited.is_finished(),
        "the standby took the Lease {took_over:.2}s after the cut while the partitioned operator still ran; \
         Lease history: {}\noperator log:\n{}",
        history.describe(origin),
        log_of(&log)
    );
    let (exited_at, status) = exited.await.unwrap();
    let stopped = secs(exited_at.saturating_duration_since(cut_at));
    eprintln!(
        "partition (process): the operator exited ({status}) {stopped:.2}s after the cut, the standby took the Lease \
         {took_over:.2}s after the cut"
    );
    assert!(exited_at < standby_at, "the operator exited before the standby took over");
    assert!(!status.success(), "a fenced operator exits non-zero (the Deployment restarts it): {status}");
    assert_eq!(proxy.leaked.load(Ordering::SeqCst), 0, "nothing passed the proxy after the cut");
    history.wait_holder("replica-2").await;
    watcher.abort();
    let holders: Vec<_> = history.entries().into_iter().filter(|(t, _, _)| *t >= cut_at).map(|e| e.1).collect();
    assert_eq!(holders, vec![Some("replica-2".to_string())], "never released: {}", history.describe(origin));
    let _ = delete_namespace(&client, ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_operator_and_releases_the_lease_so_the_standby_takes_over_at_once() {
    let _serial = SERIAL.lock().await;
    let ns = "fence-sigterm";
    let c = cluster().await;
    let client = c.client().await;
    create_namespace(&client, ns).await;
    let (history, watcher) = LeaseHistory::watch(client.clone(), ns);
    let origin = Instant::now();

    let (mut child, log) = spawn_operator(c.kubeconfig_path(), ns, "operator-1");
    wait_for("the operator to take the Lease", Duration::from_secs(60), || {
        let client = client.clone();
        async move { (holder(&client, ns).await.as_deref() == Some("operator-1")).then_some(()) }
    })
    .await;
    let standby = standby(client.clone(), ns, "replica-2");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!standby.is_finished(), "the standby waits while the operator leads: {}", history.describe(origin));

    let pid = child.id().expect("running") as libc::pid_t;
    // SAFETY: signals our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let term_at = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap_or_else(|_| panic!("the operator did not stop within 30 s of SIGTERM:\n{}", log_of(&log)))
        .unwrap();
    let exited = secs(term_at.elapsed());
    let (standby_at, _standby_leadership) = tokio::time::timeout(LEASE_DURATION * 4, standby)
        .await
        .unwrap_or_else(|_| panic!("the standby never took the Lease: {}", history.describe(origin)))
        .unwrap();
    let took_over = secs(standby_at - term_at);
    eprintln!(
        "SIGTERM: the operator exited ({status}) after {exited:.2}s, the standby took the Lease after {took_over:.2}s"
    );
    assert!(status.success(), "SIGTERM is a clean stop (exit 0): {status}\n{}", log_of(&log));
    assert!(
        took_over < 5.0,
        "the standby took over {took_over:.2}s after SIGTERM: the Lease was not released (it expires after \
         {LEASE_DURATION:?}); history: {}\noperator log:\n{}",
        history.describe(origin),
        log_of(&log)
    );
    watcher.abort();
    let _ = delete_namespace(&client, ns).await;
}

async fn delete_namespace(client: &Client, ns: &str) -> kube::Result<()> {
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    nss.delete(ns, &Default::default()).await.map(|_| ())
}
