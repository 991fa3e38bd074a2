//! The test API: [`LocalCluster`], a plane in a temporary folder for one test, removed when dropped.
use super::*;

/// A control plane owned by the current process (see the module docs). Dropping it stops every process and
/// removes its temporary state folder (set `AKO_KEEP_CLUSTER_STATE=1` to keep it).
pub struct LocalCluster {
    plane: Mutex<Option<Plane>>,
    dir: PathBuf,
    kubeconfig_path: PathBuf,
    kubeconfig_yaml: String,
    pod_cidr: String,
    service_cidr: String,
    apiserver_url: String,
    nodes: usize,
    kubernetes: KubernetesRelease,
    remove_dir: bool,
    provisioner: Mutex<Option<BackgroundThread>>,
}

impl LocalCluster {
    /// Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with `opts.nodes` Ready fake
    /// nodes, and (with `opts.provisioner`) the fake storage provisioner. Builds the tools first if needed.
    pub async fn start(opts: ClusterOptions) -> Result<LocalCluster> {
        cleanup_stale_temp_dirs();
        let (dir, remove_dir) = match &opts.state_dir {
            Some(d) => (d.clone(), false),
            None => (new_temp_dir()?, std::env::var_os(KEEP_STATE_ENV).is_none()),
        };
        let plane = match Plane::start(&opts, Mode::Owned, dir.clone()).await {
            Ok(p) => p,
            Err(e) => {
                // Keep the folder: the error points at its logs. Stale folders are removed by later starts.
                return Err(e.context(format!("starting the local cluster in {}", dir.display())));
            }
        };
        let kubeconfig_yaml = plane.admin_kubeconfig();
        let provisioner =
            opts.provisioner.then(|| BackgroundThread::provisioner(kubeconfig_yaml.clone(), plane.dir.join("volumes")));
        Ok(LocalCluster {
            dir: plane.dir.clone(),
            kubeconfig_path: plane.kubeconfig_path(),
            pod_cidr: plane.claim.cidr(),
            service_cidr: plane.claim.service_cidr(),
            apiserver_url: plane.apiserver_url(),
            nodes: plane.nodes,
            kubernetes: plane.kubernetes,
            kubeconfig_yaml,
            plane: Mutex::new(Some(plane)),
            remove_dir,
            provisioner: Mutex::new(provisioner),
        })
    }

    /// One cluster for the whole process, with default options, started by the first caller: for test binaries
    /// whose tests can share a control plane (each in its own namespace). It is stopped when the process exits
    /// (an `atexit` handler; the kernel's parent-death signal covers abnormal ends). A failed start is reported to
    /// every caller without retrying.
    pub async fn shared() -> Result<&'static LocalCluster> {
        static SHARED: tokio::sync::OnceCell<std::result::Result<LocalCluster, String>> =
            tokio::sync::OnceCell::const_new();
        extern "C" fn stop_shared() {
            if let Some(Ok(cluster)) = SHARED.get() {
                cluster.stop();
            }
        }
        let result = SHARED
            .get_or_init(|| async {
                let started = LocalCluster::start(ClusterOptions::default()).await.map_err(|e| format!("{e:#}"));
                if started.is_ok() {
                    // SAFETY: registers a plain extern "C" function.
                    unsafe {
                        libc::atexit(stop_shared);
                    }
                }
                started
            })
            .await;
        result.as_ref().map_err(|e| anyhow!("the shared local cluster did not start: {e}"))
    }

    /// The admin kubeconfig (`system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// A new client with admin rights.
    pub async fn client(&self) -> Client {
        client_from_yaml(&self.kubeconfig_yaml).await.expect("a client from the generated kubeconfig")
    }

    /// The state folder (logs: `<component>.log`).
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// The log file of a component ([`APISERVER`], [`KWOK`], ...).
    pub fn log_path(&self, component: &str) -> PathBuf {
        self.dir.join(format!("{component}.log"))
    }

    /// The pod CIDR (`127.<n>.0.0/16`): every pod IP of this cluster is in it.
    pub fn pod_cidr(&self) -> &str {
        &self.pod_cidr
    }

    /// The Service CIDR (`127.<n>.192.0/19`): every ClusterIP of this cluster is in it.
    pub fn service_cidr(&self) -> &str {
        &self.service_cidr
    }

    pub fn apiserver_url(&self) -> &str {
        &self.apiserver_url
    }

    /// The Kubernetes release the plane runs.
    pub fn kubernetes(&self) -> KubernetesRelease {
        self.kubernetes
    }

    /// Names of the fake nodes.
    pub fn node_names(&self) -> Vec<String> {
        (0..self.nodes).map(node_name).collect()
    }

    /// Stops the kube-apiserver (SIGTERM), starts it again on the same port with the same data, and waits for
    /// /readyz. The other components keep running and reconnect by themselves.
    pub async fn restart_apiserver(&self) -> Result<()> {
        Plane::restart_apiserver(&self.plane, Duration::ZERO).await
    }

    /// [`Self::restart_apiserver`] with the apiserver down for `downtime` in between.
    pub async fn restart_apiserver_after(&self, downtime: Duration) -> Result<()> {
        Plane::restart_apiserver(&self.plane, downtime).await
    }

    /// Pids of the running processes by component (for tests checking nothing leaks).
    pub fn pids(&self) -> Vec<(String, u32)> {
        let guard = self.plane.lock().unwrap_or_else(|e| e.into_inner());
        guard.iter().flat_map(|p| p.procs.iter().map(|q| (q.spec.name.clone(), q.pid))).collect()
    }

    /// Stops everything (idempotent; also done on drop).
    pub fn stop(&self) {
        if let Some(t) = self.provisioner.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.stop();
        }
        let plane = self.plane.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(plane) = plane {
            let dir = plane.dir.clone();
            drop(plane); // stops the processes and releases the pod CIDR
            if self.remove_dir {
                let _ = fs::remove_dir_all(&dir);
            }
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(super) const TEMP_PREFIX: &str = "ako-cluster-";

pub(super) fn new_temp_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    for _ in 0..10 {
        let dir = base.join(format!("{TEMP_PREFIX}{}-{:08x}", std::process::id(), net::random_u64() as u32));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!("could not create a temporary folder in {}", base.display())
}

/// Removes temporary state folders of test processes that are gone (killed before their destructors ran), and
/// releases their pod CIDR claims.
pub(super) fn cleanup_stale_temp_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) =
            name.strip_prefix(TEMP_PREFIX).and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || proc::pid_alive(pid) {
            continue;
        }
        if let Ok(Some(state)) = StateFile::read(&entry.path()) {
            if !state.alive().is_empty() {
                continue;
            }
            CidrClaim::release_octet(state.cidr_octet);
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}

/// A tokio runtime on a thread of its own, running one background task until stopped. Used for the provisioner of
/// a [`LocalCluster`], so it does not depend on the runtime of the test that started the cluster.
pub(super) struct BackgroundThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundThread {
    pub(super) fn provisioner(kubeconfig_yaml: String, volumes_dir: PathBuf) -> BackgroundThread {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-provisioner".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => return eprintln!("provisioner: no runtime: {e}"),
                };
                rt.block_on(async move {
                    let client = match client_from_yaml(&kubeconfig_yaml).await {
                        Ok(c) => c,
                        Err(e) => return eprintln!("provisioner: {e:#}"),
                    };
                    tokio::select! {
                        _ = provisioner::run(client, volumes_dir) => {}
                        _ = rx => {}
                    }
                });
            })
            .expect("spawning the provisioner thread");
        BackgroundThread { stop: Some(tx), thread: Some(thread) }
    }

    pub(super) fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
