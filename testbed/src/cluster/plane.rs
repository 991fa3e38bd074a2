//! The control plane's processes: etcd, the apiserver, the controller manager, the scheduler and kwok, started
//! on free loopback ports, checked, and stopped (the plane of [`super::LocalCluster`] and of `cargo xtask cluster`).
use super::*;

/// Ports of one control plane.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Ports {
    etcd_client: u16,
    etcd_peer: u16,
    apiserver: u16,
    controller_manager: u16,
    scheduler: u16,
    /// kwok's kubelet API (every fake node's `daemonEndpoints.kubeletEndpoint`): pod exec, logs, port-forward.
    kubelet: u16,
}

/// The running processes and everything needed to start them again (owned by [`LocalCluster`], or detached by
/// `cargo xtask cluster up`).
pub struct Plane {
    mode: Mode,
    pub(super) dir: PathBuf,
    pki: Pki,
    pub claim: CidrClaim,
    ports: Ports,
    pub(super) procs: Vec<Proc>,
    pub(super) nodes: usize,
    timeout: Duration,
    bins: Bins,
    /// The Kubernetes release of the binaries.
    pub kubernetes: KubernetesRelease,
    /// The apiserver's NodePort range, when not its default.
    node_ports: Option<(u16, u16)>,
}

pub(super) struct Bins {
    etcd: PathBuf,
    apiserver: PathBuf,
    controller_manager: PathBuf,
    scheduler: PathBuf,
    kwok: PathBuf,
}

impl Bins {
    /// Locates (building on first use) every binary of a plane of `release`. Blocking: may wait for a build.
    pub(super) fn ensure(release: KubernetesRelease) -> Result<Bins> {
        Ok(Bins {
            etcd: tools::ensure_for(Tool::Etcd, release)?,
            apiserver: tools::ensure_for(Tool::KubeApiserver, release)?,
            controller_manager: tools::ensure_for(Tool::KubeControllerManager, release)?,
            scheduler: tools::ensure_for(Tool::KubeScheduler, release)?,
            kwok: tools::ensure(Tool::Kwok)?,
        })
    }
}

pub(super) fn os(s: impl Into<String>) -> OsString {
    OsString::from(s.into())
}

/// What "ready" means for a component.
pub(super) enum Check {
    /// Accepts TCP connections on 127.0.0.1:port.
    Tcp(u16),
    /// The apiserver's /readyz says ok.
    Readyz,
    /// GET https://127.0.0.1:port/healthz says ok (TLS verified against our CA).
    Healthz(u16),
}

impl Plane {
    pub async fn start(opts: &ClusterOptions, mode: Mode, dir: PathBuf) -> Result<Plane> {
        let release = opts.kubernetes;
        let bins = tokio::task::spawn_blocking(move || Bins::ensure(release)).await.context("locating the tools")??;
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = std::path::absolute(&dir)?;
        let claim = CidrClaim::acquire(std::process::id())?;
        let pki = tokio::task::spawn_blocking({
            let pki_dir = dir.join("pki");
            let service_ip = claim.kubernetes_service_ip();
            move || Pki::generate(&pki_dir, service_ip)
        })
        .await??;
        let mut plane = Plane {
            mode,
            dir,
            pki,
            claim,
            ports: Ports::default(),
            procs: Vec::new(),
            nodes: opts.nodes,
            timeout: opts.timeout,
            bins,
            kubernetes: release,
            node_ports: opts.node_ports,
        };
        match plane.boot().await {
            Ok(()) => Ok(plane),
            Err(e) => {
                plane.stop_processes();
                plane.claim.release();
                Err(e)
            }
        }
        // (An owned plane dropped half-way through `boot` stops its processes in Drop.)
    }

    pub(super) async fn boot(&mut self) -> Result<()> {
        let started = Instant::now();
        self.start_component(ETCD, |p| {
            p.ports.etcd_client = net::free_port()?;
            p.ports.etcd_peer = net::free_port()?;
            Ok((p.etcd_spec(), Check::Tcp(p.ports.etcd_client)))
        })
        .await?;
        self.start_component(APISERVER, |p| {
            p.ports.apiserver = net::free_port()?;
            p.write_kubeconfigs()?;
            Ok((p.apiserver_spec(), Check::Readyz))
        })
        .await?;
        eprintln!(
            "cluster: apiserver (Kubernetes {}) ready at {} ({:.1}s)",
            self.kubernetes.version(),
            self.apiserver_url(),
            started.elapsed().as_secs_f64()
        );

        // kwok first, so it is watching when the nodes appear; its Exec kind first, so it watches that too.
        let client = self.client().await?;
        install_kwok_exec_crd(&client).await?;
        self.ports.kubelet = net::free_port()?;
        let kwok = self.kwok_spec();
        self.spawn(kwok)?;
        if self.mode == Mode::Detached {
            let pid = self.procs.last().expect("kwok").pid;
            self.claim.set_owner(pid)?;
        }
        let api: Api<Node> = Api::all(client.clone());
        for i in 0..self.nodes {
            match api.create(&PostParams::default(), &nodes::node_object(i, self.claim.node_ip(i))).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e).with_context(|| format!("creating node {}", node_name(i))),
            }
        }
        self.start_component(CONTROLLER_MANAGER, |p| {
            p.ports.controller_manager = net::free_port()?;
            Ok((p.controller_manager_spec(), Check::Healthz(p.ports.controller_manager)))
        })
        .await?;
        self.start_component(SCHEDULER, |p| {
            p.ports.scheduler = net::free_port()?;
            Ok((p.scheduler_spec(), Check::Healthz(p.ports.scheduler)))
        })
        .await?;
        self.wait_nodes_ready(&client).await?;
        self.wait_default_service_account(&client).await?;
        warm_up_ip_pool(&client).await?;
        eprintln!(
            "cluster: {} nodes Ready, pod CIDR {} ({:.1}s)",
            self.nodes,
            self.claim.cidr(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    pub(super) fn apiserver_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.apiserver)
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    pub(super) fn admin_kubeconfig(&self) -> String {
        pki::kubeconfig(&self.apiserver_url(), &self.pki.ca.cert_pem, &self.pki.admin, "admin")
    }

    pub(super) fn write_kubeconfigs(&self) -> Result<()> {
        let url = self.apiserver_url();
        let ca = &self.pki.ca.cert_pem;
        pki::write_private(&self.kubeconfig_path(), &self.admin_kubeconfig())?;
        for (name, pair) in [
            (CONTROLLER_MANAGER, &self.pki.controller_manager),
            (SCHEDULER, &self.pki.scheduler),
            (KWOK, &self.pki.kwok),
        ] {
            pki::write_private(&self.dir.join(format!("{name}.kubeconfig")), &pki::kubeconfig(&url, ca, pair, name))?;
        }
        Ok(())
    }

    pub(super) async fn client(&self) -> Result<Client> {
        client_from_yaml(&self.admin_kubeconfig()).await
    }

    pub(super) fn spec(&self, name: &str, program: &Path, args: Vec<OsString>) -> Spec {
        Spec {
            name: name.to_string(),
            program: program.to_path_buf(),
            args,
            env: Vec::new(),
            log: self.dir.join(format!("{name}.log")),
            cwd: self.dir.clone(),
        }
    }

    pub(super) fn pki_arg(&self, flag: &str, file: &str) -> OsString {
        os(format!("--{flag}={}", self.pki.path(file).display()))
    }

    pub(super) fn etcd_spec(&self) -> Spec {
        let client = format!("http://127.0.0.1:{}", self.ports.etcd_client);
        let peer = format!("http://127.0.0.1:{}", self.ports.etcd_peer);
        let args = vec![
            os("--name=local"),
            os(format!("--data-dir={}", self.dir.join("etcd-data").display())),
            os(format!("--listen-client-urls={client}")),
            os(format!("--advertise-client-urls={client}")),
            os(format!("--listen-peer-urls={peer}")),
            os(format!("--initial-advertise-peer-urls={peer}")),
            os(format!("--initial-cluster=local={peer}")),
            os("--initial-cluster-state=new"),
            // Test data: durability is not worth the fsync cost on a shared 2-core machine.
            os("--unsafe-no-fsync=true"),
            os("--quota-backend-bytes=4294967296"),
            os("--log-level=warn"),
        ];
        self.spec(ETCD, &self.bins.etcd, args)
    }

    pub(super) fn apiserver_spec(&self) -> Spec {
        let mut args = vec![
            os(format!("--etcd-servers=http://127.0.0.1:{}", self.ports.etcd_client)),
            os("--bind-address=127.0.0.1"),
            os("--advertise-address=127.0.0.1"),
            os(format!("--secure-port={}", self.ports.apiserver)),
            self.pki_arg("tls-cert-file", "apiserver.crt"),
            self.pki_arg("tls-private-key-file", "apiserver.key"),
            self.pki_arg("client-ca-file", "ca.crt"),
            os(format!("--cert-dir={}", self.dir.join("apiserver-certs").display())),
            os("--service-account-issuer=https://kubernetes.default.svc.cluster.local"),
            self.pki_arg("service-account-key-file", "sa.pub"),
            self.pki_arg("service-account-signing-key-file", "sa.key"),
            os(format!("--service-cluster-ip-range={}", self.claim.service_cidr())),
            os("--authorization-mode=RBAC"),
            os("--allow-privileged=true"),
            // The apiserver would publish 127.0.0.1 as the `kubernetes` Service endpoint, which validation refuses
            // (loopback); nothing here needs that endpoint.
            os("--endpoint-reconciler-type=none"),
            self.pki_arg("requestheader-client-ca-file", "ca.crt"),
            os(format!("--requestheader-allowed-names={}", pki::FRONT_PROXY_NAME)),
            os("--requestheader-username-headers=X-Remote-User"),
            os("--requestheader-group-headers=X-Remote-Group"),
            os("--requestheader-extra-headers-prefix=X-Remote-Extra-"),
            self.pki_arg("proxy-client-cert-file", "front-proxy.crt"),
            self.pki_arg("proxy-client-key-file", "front-proxy.key"),
            // `AKO_APISERVER_PROFILING=1` serves /debug/pprof (for a CPU profile of the apiserver under the bench).
            os(format!("--profiling={}", std::env::var_os("AKO_APISERVER_PROFILING").is_some_and(|v| v == "1"))),
            // Pod exec and logs go to the node's kubelet API: kwok serves it on every fake node's InternalIP (the
            // default order would try the Hostname first, which nothing resolves).
            os("--kubelet-preferred-address-types=InternalIP"),
        ];
        if let Some((first, last)) = self.node_ports {
            args.push(os(format!("--service-node-port-range={first}-{last}")));
        }
        self.spec(APISERVER, &self.bins.apiserver, args)
    }

    pub(super) fn component_kubeconfig_args(&self, name: &str) -> Vec<OsString> {
        let kc = self.dir.join(format!("{name}.kubeconfig")).display().to_string();
        vec![
            os(format!("--kubeconfig={kc}")),
            os(format!("--authentication-kubeconfig={kc}")),
            os(format!("--authorization-kubeconfig={kc}")),
        ]
    }

    pub(super) fn controller_manager_spec(&self) -> Spec {
        let mut args = self.component_kubeconfig_args(CONTROLLER_MANAGER);
        args.extend([
            os("--bind-address=127.0.0.1"),
            os(format!("--secure-port={}", self.ports.controller_manager)),
            self.pki_arg("tls-cert-file", "serving.crt"),
            self.pki_arg("tls-private-key-file", "serving.key"),
            // One instance: leader election would only make it exit when the apiserver restarts.
            os("--leader-elect=false"),
            // Every default controller except the three that publish pod IPs as Service endpoints: validation
            // refuses loopback addresses there, so with loopback pod IPs they could only fail and retry forever.
            os("--controllers=*,-endpoint,-endpointslice,-endpointslicemirroring"),
            os("--use-service-account-credentials=false"),
            self.pki_arg("service-account-private-key-file", "sa.key"),
            self.pki_arg("root-ca-file", "ca.crt"),
            self.pki_arg("cluster-signing-cert-file", "ca.crt"),
            self.pki_arg("cluster-signing-key-file", "ca.key"),
            os(format!("--service-cluster-ip-range={}", self.claim.service_cidr())),
            os("--kube-api-qps=200"),
            os("--kube-api-burst=400"),
            os("--profiling=false"),
        ]);
        self.spec(CONTROLLER_MANAGER, &self.bins.controller_manager, args)
    }

    pub(super) fn scheduler_spec(&self) -> Spec {
        let mut args = self.component_kubeconfig_args(SCHEDULER);
        args.extend([
            os("--bind-address=127.0.0.1"),
            os(format!("--secure-port={}", self.ports.scheduler)),
            self.pki_arg("tls-cert-file", "serving.crt"),
            self.pki_arg("tls-private-key-file", "serving.key"),
            os("--leader-elect=false"),
            os("--profiling=false"),
        ]);
        self.spec(SCHEDULER, &self.bins.scheduler, args)
    }

    pub(super) fn kwok_spec(&self) -> Spec {
        let home = self.dir.join("kwok-home");
        let _ = fs::create_dir_all(&home);
        let stages = self.dir.join("kwok-pod-stages.yaml");
        let _ = fs::write(&stages, KWOK_POD_STAGES);
        let args = vec![
            os(format!("--kubeconfig={}", self.dir.join(format!("{KWOK}.kubeconfig")).display())),
            os(format!("--config={}", stages.display())),
            os("--manage-all-nodes=false"),
            os(format!(
                "--manage-nodes-with-annotation-selector={}={}",
                nodes::KWOK_ANNOTATION.0,
                nodes::KWOK_ANNOTATION.1
            )),
            os(format!("--cidr={}", self.claim.cidr())),
            os(format!("--node-ip={}", self.claim.node_ip(254))),
            os("--node-lease-duration-seconds=40"),
            // The kubelet API (exec, logs) on all addresses, so on every fake node's loopback InternalIP; it
            // answers exec from `Exec` objects (one per pod, made by whoever simulates the pod's runtime).
            os(format!("--node-port={}", self.ports.kubelet)),
            os("--enable-crds=Exec"),
        ];
        let mut spec = self.spec(KWOK, &self.bins.kwok, args);
        // kwok also loads ~/.kwok/kwok.yaml when it exists: give it a HOME of its own so a user's file cannot
        // change its stages.
        spec.env.push((os("HOME"), home.into_os_string()));
        spec
    }

    pub fn spawn(&mut self, spec: Spec) -> Result<()> {
        let p = proc::spawn(spec, self.mode)?;
        self.procs.push(p);
        self.write_state()
    }

    pub(super) fn write_state(&self) -> Result<()> {
        StateFile {
            mode: self.mode,
            owner_pid: std::process::id(),
            kubeconfig: self.kubeconfig_path(),
            apiserver: self.apiserver_url(),
            pod_cidr: self.claim.cidr(),
            cidr_octet: self.claim.octet,
            nodes: self.nodes,
            kubernetes: self.kubernetes,
            processes: self.procs.iter().map(Proc::record).collect(),
        }
        .write(&self.dir)
    }

    pub(super) fn index_of(&self, name: &str) -> Option<usize> {
        self.procs.iter().position(|p| p.spec.name == name)
    }

    /// Starts a component and waits for it; if it fails because a port was taken meanwhile, starts it again on
    /// new ports (`make` picks them).
    pub(super) async fn start_component<F>(&mut self, name: &str, make: F) -> Result<()>
    where
        F: Fn(&mut Plane) -> Result<(Spec, Check)>,
    {
        for attempt in 1..=PORT_ATTEMPTS {
            let (spec, check) = make(self)?;
            let log = spec.log.clone();
            self.spawn(spec)?;
            match self.wait_ready(name, &check).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let tail = proc::log_tail(&log, 30);
                    let idx = self.index_of(name).expect("just spawned");
                    let mut failed = self.procs.remove(idx);
                    proc::stop_all(std::slice::from_mut(&mut failed), STOP_GRACE);
                    self.write_state()?;
                    if attempt < PORT_ATTEMPTS && tail.contains("address already in use") {
                        eprintln!("cluster: {name} lost a port race, starting it again on other ports");
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Waits for `check`, failing early if the process exits. Errors name the component and its log.
    pub(super) async fn wait_ready(&mut self, name: &str, check: &Check) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        let probe_client = match check {
            Check::Readyz => Some(self.client().await?),
            Check::Healthz(port) => Some(healthz_client(*port, &self.pki)?),
            Check::Tcp(_) => None,
        };
        loop {
            let idx = self.index_of(name).ok_or_else(|| anyhow!("{name} is not running"))?;
            if let Some(status) = self.procs[idx].exit_status() {
                let log = self.procs[idx].spec.log.clone();
                bail!(
                    "{name} exited ({status}) while starting; see its log {}\n--- last lines ---\n{}",
                    log.display(),
                    proc::log_tail(&log, 25)
                );
            }
            let probe = async {
                match (check, &probe_client) {
                    (Check::Tcp(port), _) => tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, *port))
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string()),
                    (Check::Readyz, Some(c)) => get_ok(c, "/readyz").await,
                    (Check::Healthz(_), Some(c)) => get_ok(c, "/healthz").await,
                    _ => unreachable!(),
                }
            };
            let last = match tokio::time::timeout(Duration::from_secs(5), probe).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => "probe timed out after 5s".to_string(),
            };
            if Instant::now() >= deadline {
                let log = self.procs[idx].spec.log.clone();
                bail!(
                    "{name} did not become ready within {:?} (last probe: {last}); see its log {}\n--- last lines ---\n{}",
                    self.timeout,
                    log.display(),
                    proc::log_tail(&log, 25)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Fails naming `name` and its log if the process has exited.
    pub fn ensure_running(&mut self, name: &str) -> Result<()> {
        if let Some(i) = self.index_of(name)
            && let Some(status) = self.procs[i].exit_status()
        {
            let log = self.procs[i].spec.log.clone();
            bail!(
                "{name} exited ({status}); see its log {}\n--- last lines ---\n{}",
                log.display(),
                proc::log_tail(&log, 25)
            );
        }
        Ok(())
    }

    pub fn log_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    pub(super) async fn wait_nodes_ready(&mut self, client: &Client) -> Result<()> {
        let api: Api<Node> = Api::all(client.clone());
        let deadline = Instant::now() + self.timeout;
        loop {
            self.ensure_running(KWOK)?;
            self.ensure_running(CONTROLLER_MANAGER)?;
            let list = api.list(&ListParams::default()).await;
            let pending: Vec<String> = match &list {
                Ok(list) => {
                    let mut pending: Vec<String> = list
                        .items
                        .iter()
                        .filter_map(|n| {
                            nodes::not_ready_reason(n)
                                .map(|r| format!("{}: {r}", n.metadata.name.clone().unwrap_or_default()))
                        })
                        .collect();
                    if list.items.len() < self.nodes {
                        pending.push(format!("only {} of {} nodes exist", list.items.len(), self.nodes));
                    }
                    pending
                }
                Err(e) => vec![format!("listing nodes: {e}")],
            };
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                // Not Ready is kwok's job; Ready but still tainted is the controller-manager's.
                let culprit =
                    if pending.iter().any(|p| p.contains("condition Ready")) { KWOK } else { CONTROLLER_MANAGER };
                let log = self.log_of(culprit);
                bail!(
                    "nodes not ready within {:?} ({}); {culprit} is responsible, see its log {}\n--- last lines ---\n{}",
                    self.timeout,
                    pending.join("; "),
                    log.display(),
                    proc::log_tail(&log, 25)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The controller-manager creates the `default` ServiceAccount of every namespace; pods cannot be created in a
    /// namespace before it exists (ServiceAccount admission), so wait for it in `default`.
    pub(super) async fn wait_default_service_account(&mut self, client: &Client) -> Result<()> {
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        let deadline = Instant::now() + self.timeout;
        loop {
            self.ensure_running(CONTROLLER_MANAGER)?;
            if api.get_opt("default").await.ok().flatten().is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let log = self.log_of(CONTROLLER_MANAGER);
                bail!(
                    "{CONTROLLER_MANAGER} did not create the default ServiceAccount within {:?}; see its log {}\n--- last lines ---\n{}",
                    self.timeout,
                    log.display(),
                    proc::log_tail(&log, 25)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn stop_processes(&mut self) {
        // Reverse start order: clients of the apiserver first, etcd last.
        self.procs.reverse();
        proc::stop_all(&mut self.procs, STOP_GRACE);
        self.procs.clear();
        let _ = self.write_state();
    }

    pub(super) async fn restart_apiserver(plane: &Mutex<Option<Plane>>, downtime: Duration) -> Result<()> {
        let old = {
            let mut guard = plane.lock().unwrap_or_else(|e| e.into_inner());
            let p = guard.as_mut().ok_or_else(|| anyhow!("the cluster is stopped"))?;
            let idx = p.index_of(APISERVER).ok_or_else(|| anyhow!("{APISERVER} is not running"))?;
            p.procs.remove(idx)
        };
        let spec = old.spec.clone();
        tokio::task::spawn_blocking(move || {
            let mut old = old;
            proc::stop_all(std::slice::from_mut(&mut old), STOP_GRACE);
        })
        .await?;
        tokio::time::sleep(downtime).await;
        // The plane cannot be held across awaits (std mutex); take it out for the wait.
        let mut p = plane
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| anyhow!("the cluster was stopped during the restart"))?;
        let result = async {
            p.spawn(spec)?;
            p.wait_ready(APISERVER, &Check::Readyz).await
        }
        .await;
        *plane.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        result
    }
}

impl Drop for Plane {
    /// Owned processes never outlive their plane (also when a future holding it is dropped half-way); detached
    /// ones are left running on purpose.
    fn drop(&mut self) {
        if self.mode == Mode::Owned {
            self.stop_processes();
            self.claim.release();
        }
    }
}

/// A client from an in-memory kubeconfig.
pub(crate) async fn client_from_yaml(yaml: &str) -> Result<Client> {
    let kubeconfig = Kubeconfig::from_yaml(yaml).context("parsing the kubeconfig")?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("loading the kubeconfig")?;
    Ok(Client::try_from(config)?)
}

pub(super) fn healthz_client(port: u16, pki: &Pki) -> Result<Client> {
    let mut config = Config::new(format!("https://127.0.0.1:{port}").parse()?);
    config.root_cert = Some(vec![pki.ca_der()?]);
    config.connect_timeout = Some(Duration::from_secs(2));
    Ok(Client::try_from(config)?)
}

pub(super) async fn get_ok(client: &Client, path: &str) -> std::result::Result<(), String> {
    let request = http::Request::get(path).body(Vec::new()).map_err(|e| e.to_string())?;
    match client.request_text(request).await {
        Ok(body) if body.trim() == "ok" => Ok(()),
        Ok(body) => Err(format!("{path} answered {:?}", body.chars().take(300).collect::<String>())),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// Makes kwok create its pod IP pool before tests create pods concurrently. kwok v0.7 creates the pool of a CIDR on
/// first use with a load-then-store that is not atomic (`PodController.ipPool`): two pods given IPs at the same
/// instant on a fresh plane can get two pools, both counting from the first address, so two live pods share an IP
/// (seen as a simulated node answering for another test's pod). One pod given an IP first avoids that.
async fn warm_up_ip_pool(client: &kube::Client) -> Result<()> {
    use k8s_openapi::api::core::v1::Pod;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let name = "kwok-ip-pool-warm-up";
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node_name(0), "automountServiceAccountToken": false,
                 "containers": [{"name": "c", "image": "warm-up"}]}
    }))?;
    match pods.create(&PostParams::default(), &pod).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e).context("creating the IP pool warm-up pod"),
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let ip = pods.get_opt(name).await?.and_then(|p| p.status.and_then(|s| s.pod_ip));
        if ip.is_some_and(|ip| !ip.is_empty()) {
            break;
        }
        if std::time::Instant::now() >= deadline {
            anyhow::bail!("kwok gave the warm-up pod no IP within 60 s");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let dp = kube::api::DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
    let _ = pods.delete(name, &dp).await;
    Ok(())
}

/// Applies kwok's `Exec` CRD (from the pinned kwok module) and waits until it is Established, so kwok, started with
/// `--enable-crds=Exec`, serves pod exec from `Exec` objects.
async fn install_kwok_exec_crd(client: &kube::Client) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    let path = tokio::task::spawn_blocking(tools::kwok_exec_crd).await??;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for doc in crate::yaml::read_yaml_stream(&path)? {
        let name = doc["metadata"]["name"].as_str().context("kwok's Exec CRD has no name")?.to_string();
        api.patch(&name, &PatchParams::apply("ako-testbed").force(), &Patch::Apply(&doc))
            .await
            .with_context(|| format!("applying {}", path.display()))?;
        wait_crd_established(client, &name, Duration::from_secs(60)).await?;
    }
    Ok(())
}
