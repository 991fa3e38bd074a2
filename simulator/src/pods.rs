//! The pod watcher: pods of AerospikeClusters joining and leaving the simulated clusters.
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aerospike_kubernetes_operator::asinfo::ServerVersion;
use aerospike_kubernetes_operator::desired as ako_desired;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::model::{
    ClusterSpec, ClusterState, ExecEndpoint, Inner, NamespaceInfo, Node, PodKey, SimulatorOptions, State, What,
};
use crate::server::node_task;

// -----------------------------------------------------------------------------------------------------------------
// Watching pods.

/// Label selecting the operator's Aerospike pods.
pub const POD_SELECTOR: &str = "app=aerospike-cluster";

pub(crate) async fn watch_pods(
    inner: Arc<Inner>,
    client: Client,
    opts: SimulatorOptions,
    synced: tokio::sync::oneshot::Sender<()>,
) {
    let pods: Api<Pod> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut synced = Some(synced);
    let mut seen: Option<HashSet<PodKey>> = None;
    let mut events = watcher::watcher(pods, watcher::Config::default().labels(POD_SELECTOR)).default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => seen = Some(HashSet::new()),
            Ok(Event::InitApply(pod)) => {
                if let Some(seen) = &mut seen {
                    seen.insert(pod_key(&pod));
                }
                on_pod(&inner, &client, &opts, &pod).await;
            }
            Ok(Event::InitDone) => {
                // After a re-list (e.g. the apiserver restarted), pods that disappeared meanwhile leave.
                if let Some(seen) = seen.take() {
                    let duration = inner.migration_duration();
                    let mut state = inner.lock();
                    let gone: Vec<PodKey> = state.nodes.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                    for key in gone {
                        state.leave(&key, duration);
                    }
                }
                if let Some(tx) = synced.take() {
                    let _ = tx.send(());
                }
            }
            Ok(Event::Apply(pod)) => on_pod(&inner, &client, &opts, &pod).await,
            Ok(Event::Delete(pod)) => {
                let duration = inner.migration_duration();
                let mut state = inner.lock();
                let key = pod_key(&pod);
                if state.pending.get(&key) == pod.metadata.uid.as_ref() {
                    state.pending.remove(&key);
                }
                if state.nodes.get(&key).is_some_and(|n| Some(&n.uid) == pod.metadata.uid.as_ref()) {
                    state.leave(&key, duration);
                }
            }
            Err(e) => eprintln!("simulator: watching pods: {e}"),
        }
    }
}

/// Keeps [`Inner::config_maps`] (every ConfigMap of the scope) and signals each change. A waiting init step is
/// woken by the change instead of reading its ConfigMap four times a second: with hundreds of pods waiting at once
/// that polling was a load on the API server that a real kubelet, which watches, does not make.
pub(crate) async fn watch_config_maps(
    inner: Arc<Inner>,
    client: Client,
    namespace: Option<String>,
    writer: kube::runtime::reflector::store::Writer<ConfigMap>,
) {
    let api: Api<ConfigMap> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut events =
        kube::runtime::reflector(writer, watcher::watcher(api, watcher::Config::default())).default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init | Event::InitApply(_)) => {}
            Ok(_) => inner.config_maps_changed.send_modify(|v| *v += 1),
            Err(e) => eprintln!("simulator: watching ConfigMaps: {e}"),
        }
    }
}

pub(crate) fn pod_key(pod: &Pod) -> PodKey {
    (pod.namespace().unwrap_or_default(), pod.name_any())
}

/// The pod's IP if it should be a cluster member now.
pub(crate) fn running_ip(pod: &Pod) -> Option<IpAddr> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    // A crash-looping server container is no cluster member, though the pod keeps its IP (a sidecar's is no matter).
    let crash_looping = status.container_statuses.iter().flatten().any(|c| {
        c.name == aerospike_kubernetes_operator::desired::SERVER_CONTAINER_NAME
            && c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref())
                == Some("CrashLoopBackOff")
    });
    if crash_looping {
        return None;
    }
    status.pod_ip.as_deref()?.parse().ok()
}

pub(crate) async fn on_pod(inner: &Arc<Inner>, client: &Client, opts: &SimulatorOptions, pod: &Pod) {
    let key = pod_key(pod);
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let ip = running_ip(pod);
    let duration = inner.migration_duration();
    {
        let mut state = inner.lock();
        let current = state.nodes.get(&key).map(|n| (n.uid.clone(), n.ip));
        match (current, ip) {
            (Some((u, i)), Some(ip)) if u == uid && i == ip => return, // no change
            (Some(_), _) => {
                state.leave(&key, duration);
            }
            (None, None) => return,
            (None, Some(_)) => {}
        }
        if ip.is_none() {
            return;
        }
    }
    let ip = ip.expect("checked");
    // The server starts once its pod's init step has written aerospike.conf: run that step's code now, and if it
    // would still wait (the operator has not published where the pod landed yet), keep trying in the background
    // so other pods are not held up.
    // A pod the operator did not make (no init step, e.g. the simulator's own tests) advertises its pod address.
    if !crate::podinit::has_init_step(pod) {
        let data = rack_config_map(client, pod).await.unwrap_or_default();
        inner.lock().pending.remove(&key);
        join(inner, client, opts, pod, key, uid, ip, data, Default::default()).await;
        return;
    }
    if inner.lock().pending.get(&key) == Some(&uid) {
        return; // already waiting: woken by its ConfigMap's changes
    }
    let data = match cached_rack_config_map(inner, pod) {
        Some(cm) => Some(cm.data.clone().unwrap_or_default()),
        None => rack_config_map(client, pod).await,
    };
    if let Some(Ok(advertised)) = data.as_ref().map(|d| crate::podinit::advertised(pod, d)) {
        inner.lock().pending.remove(&key);
        join(inner, client, opts, pod, key, uid, ip, data.unwrap_or_default(), advertised).await;
        return;
    }
    {
        let mut state = inner.lock();
        if state.pending.get(&key) == Some(&uid) {
            return; // already waiting
        }
        state.pending.insert(key.clone(), uid.clone());
    }
    let (inner, client, opts, pod) = (inner.clone(), client.clone(), opts.clone(), pod.clone());
    let mut changed = inner.config_maps_changed.subscribe();
    tokio::spawn(async move {
        // pod-init waits this long (its default --conf-wait-seconds) and then fails; the kubelet runs it again after
        // a back-off, and so on until it succeeds or the pod goes. Here it keeps trying: on each ConfigMap change,
        // and every 5 s in case a change came between the first try and the subscription.
        let patient = Instant::now() + Duration::from_secs(120);
        let mut said = false;
        let mut tried: Option<String> = None; // the resourceVersion last tried
        let mut why = String::from("no rack ConfigMap");
        loop {
            if inner.lock().pending.get(&key) != Some(&uid) {
                return; // deleted or replaced meanwhile
            }
            if let Some(cm) = cached_rack_config_map(&inner, &pod).filter(|cm| cm.metadata.resource_version != tried) {
                tried = cm.metadata.resource_version.clone();
                let data = cm.data.clone().unwrap_or_default();
                match crate::podinit::advertised(&pod, &data) {
                    Ok(advertised) => {
                        if inner.lock().pending.remove(&key).as_ref() == Some(&uid) {
                            join(&inner, &client, &opts, &pod, key, uid, ip, data, advertised).await;
                        }
                        return;
                    }
                    Err(e) => why = e,
                }
            }
            if !said && Instant::now() >= patient {
                said = true;
                eprintln!(
                    "simulator: {}/{}: the pod's init step would have failed ({why}) and been restarted by the \
                     kubelet: still waiting",
                    key.0, key.1
                );
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), changed.changed()).await;
        }
    });
}

/// The node of a pod whose init step has finished joins its cluster.
#[allow(clippy::too_many_arguments)]
async fn join(
    inner: &Arc<Inner>,
    client: &Client,
    opts: &SimulatorOptions,
    pod: &Pod,
    key: PodKey,
    uid: String,
    ip: IpAddr,
    data: BTreeMap<String, String>,
    advertised: crate::podinit::Advertised,
) {
    if let Some(endpoint) = inner.exec.get() {
        ensure_exec_object(inner, client, endpoint, pod).await;
    }
    let duration = inner.migration_duration();
    let cr = pod.labels().get(ako_desired::LABEL_CR).cloned().unwrap_or_else(|| "unknown".into());
    let cluster_key = (key.0.clone(), cr.clone());
    let spec = cluster_spec(client, &key.0, &cr, opts).await;

    let rack_id: i32 = pod.labels().get(ako_desired::LABEL_RACK).and_then(|r| r.parse().ok()).unwrap_or(0);
    let node_id = ako_desired::pod_node_id(pod)
        .unwrap_or_else(|| {
            let ordinal = key.1.rsplit_once('-').map_or("0", |(_, o)| o);
            format!("{rack_id}a{ordinal}")
        })
        .to_ascii_uppercase();
    let build = server_version(pod).unwrap_or_else(|| opts.default_build.clone());
    // The configuration the node starts with: the template of its rack ConfigMap, as pod-init hands it on.
    let config = data.get(ako_desired::CM_TEMPLATE_KEY).map(|conf| crate::config::parse(conf)).unwrap_or_default();
    let mut listeners = Vec::new();
    if spec.plain {
        listeners.push((SocketAddr::new(ip, spec.port), None));
    }
    if let Some(tls) = &spec.tls {
        listeners.push((SocketAddr::new(ip, tls.port), Some(tls.clone())));
    }

    // No init step (not an operator pod): the listening addresses, as a server without access-address lines.
    let mut advertised = advertised;
    if advertised == crate::podinit::Advertised::default() {
        if spec.plain {
            advertised.clear_std = vec![format!("{ip}:{}", spec.port)];
            advertised.clear_alt = advertised.clear_std.clone();
        }
        if let Some(tls) = &spec.tls {
            advertised.tls_std = vec![format!("{ip}:{}", tls.port)];
            advertised.tls_alt = advertised.tls_std.clone();
        }
    }

    let mut state = inner.lock();
    // A pod event may have raced us while the spec was fetched.
    if state.nodes.contains_key(&key) {
        return;
    }
    // Another pod may still hold this address (kwok recycles IPs): it is gone, so it leaves now.
    let holder: Option<PodKey> =
        state.nodes.iter().find(|(_, n)| n.ip == ip && n.port == spec.port).map(|(k, _)| k.clone());
    if let Some(holder) = holder {
        // Usually the holder's deletion is still on its way; said aloud because two live pods with one address (a
        // fake-kubelet allocation race) make one of them silently stop being a node.
        eprintln!(
            "simulator: {}/{} takes {ip}, held by {}/{} until now: that node leaves",
            key.0, key.1, holder.0, holder.1
        );
        state.leave(&holder, duration);
    }
    let node = node_task(inner.clone(), key.clone(), uid.clone(), listeners, spec.security, opts.log_commands);
    // The exporter sidecar lives and dies with the node's task (a deleted pod takes both).
    let exporter = crate::exporter::exporter_spec(pod)
        .map(|e| crate::exporter::serve(inner.clone(), key.clone(), uid.clone(), ip, e));
    let task = tokio::spawn(async move {
        match exporter {
            Some(exporter) => {
                tokio::join!(node, exporter);
            }
            None => node.await,
        }
    });
    state.nodes.insert(
        key.clone(),
        Node {
            uid: uid.clone(),
            ip,
            port: spec.port,
            plain: spec.plain,
            tls: spec.tls.as_ref().map(|t| (t.port, t.name.clone())),
            cluster: cluster_key.clone(),
            node_id: node_id.clone(),
            rack_id,
            build,
            quiesce_pending: false,
            quiesce_effective: false,
            config,
            advertised,
            task,
        },
    );
    let now = Instant::now();
    let cluster = state.clusters.entry(cluster_key).or_insert_with(|| ClusterState {
        key: String::new(),
        migrate_from: now,
        migrate_until: now,
        members: BTreeSet::new(),
        spec: spec.clone(),
        rosters: BTreeMap::new(),
        generation: 0,
    });
    cluster.spec = spec;
    cluster.members.insert(key.clone());
    State::rebalance(cluster, duration);
    state.record(&key, &uid, What::Joined { ip, node_id });
}

/// The node of a pod whose server restarted in place (module `exec`) joins again: same pod incarnation and IP, the
/// rack ConfigMap as it is now.
pub(crate) async fn rejoin(
    inner: &Arc<Inner>,
    client: &Client,
    opts: &SimulatorOptions,
    pod: &Pod,
    key: PodKey,
    uid: String,
    ip: IpAddr,
) -> Result<(), String> {
    let data = rack_config_map(client, pod).await.ok_or("the rack ConfigMap cannot be read")?;
    let advertised =
        if crate::podinit::has_init_step(pod) { crate::podinit::advertised(pod, &data)? } else { Default::default() };
    join(inner, client, opts, pod, key, uid, ip, data, advertised).await;
    Ok(())
}

/// The data of the pod's rack ConfigMap (named as its StatefulSet) from the watch, if it has seen it.
fn cached_rack_config_map(inner: &Inner, pod: &Pod) -> Option<Arc<ConfigMap>> {
    let namespace = pod.metadata.namespace.as_deref()?;
    inner.config_maps.get(&kube::runtime::reflector::ObjectRef::new(rack_of(pod)?).within(namespace))
}

/// The name of the pod's rack StatefulSet, which its rack ConfigMap shares (`<rack>-<ordinal>`).
fn rack_of(pod: &Pod) -> Option<&str> {
    Some(pod.metadata.name.as_deref()?.rsplit_once('-')?.0)
}

/// The data of the pod's rack ConfigMap (named as its StatefulSet), or None if it cannot be read within 3 s.
async fn rack_config_map(client: &Client, pod: &Pod) -> Option<BTreeMap<String, String>> {
    let rack = rack_of(pod)?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    match tokio::time::timeout(Duration::from_secs(3), api.get_opt(rack)).await {
        Ok(Ok(Some(cm))) => Some(cm.data.unwrap_or_default()),
        _ => None,
    }
}

/// The server version from the image tag (`...:8.0.0.5` or `...:8.0.0.5_1`).
pub(crate) fn server_version(pod: &Pod) -> Option<String> {
    let containers = &pod.spec.as_ref()?.containers;
    let c = containers.iter().find(|c| c.name == ako_desired::SERVER_CONTAINER_NAME).or(containers.first())?;
    let image = c.image.as_deref()?;
    let last = image.rsplit('/').next()?;
    let tag = last.split_once(':')?.1;
    let v = ServerVersion::parse(tag)?;
    (v.major >= 4).then(|| format!("{}.{}.{}.{}", v.major, v.minor, v.patch, v.build))
}

/// Namespaces and service port from the AerospikeCluster's `spec.aerospikeConfig`; defaults (`test`, the default
/// port) if it cannot be read within 3 s.
pub(crate) async fn cluster_spec(client: &Client, namespace: &str, name: &str, opts: &SimulatorOptions) -> ClusterSpec {
    let default = ClusterSpec {
        namespaces: vec![NamespaceInfo { name: "test".into(), strong_consistency: false, replication_factor: 2 }],
        port: opts.default_port,
        plain: true,
        tls: None,
        security: false,
        quotas: false,
    };
    let gvk = GroupVersionKind::gvk("asdb.aerospike.com", "v1", "AerospikeCluster");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "aerospikeclusters");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let object = match tokio::time::timeout(Duration::from_secs(3), api.get_opt(name)).await {
        Ok(Ok(Some(o))) => o,
        _ => return default,
    };
    let config = &object.data["spec"]["aerospikeConfig"];
    let namespaces: Vec<NamespaceInfo> = config["namespaces"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|ns| {
                    Some(NamespaceInfo {
                        name: ns["name"].as_str()?.to_string(),
                        strong_consistency: ns["strong-consistency"].as_bool().unwrap_or(false),
                        replication_factor: ns["replication-factor"].as_u64().unwrap_or(2),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let tls = match crate::tls::service_tls(client, namespace, &object.data["spec"]).await {
        Ok(t) => t.map(Arc::new),
        Err(e) => {
            eprintln!("simulator: {namespace}/{name}: no TLS service: {e:#}");
            None
        }
    };
    let plain_port = config["network"]["service"]["port"].as_u64().and_then(|p| u16::try_from(p).ok());
    let tls_only = plain_port.is_none() && !config["network"]["service"]["tls-port"].is_null();
    ClusterSpec {
        namespaces: if namespaces.is_empty() { default.namespaces } else { namespaces },
        port: match (plain_port, &tls) {
            (Some(p), _) => p,
            (None, Some(t)) if tls_only => t.port,
            _ => opts.default_port,
        },
        plain: !tls_only,
        tls,
        security: !config["security"].is_null(),
        quotas: config["security"]["enable-quotas"].as_bool().unwrap_or(false),
    }
}

fn exec_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", "Exec"), "execs")
}

/// Applies the pod's kwok `Exec` object (once per pod name per simulator): exec in its server container runs the
/// script, as this pod. Best effort: without kwok's Exec kind there is simply no exec.
pub(crate) async fn ensure_exec_object(inner: &Arc<Inner>, client: &Client, endpoint: &ExecEndpoint, pod: &Pod) {
    let key = pod_key(pod);
    if !inner.lock().exec_objects.insert(key.clone()) {
        return;
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &key.0, &exec_resource());
    let object = json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Exec",
        "metadata": {"name": key.1, "namespace": key.0},
        "spec": {"execs": [{
            "containers": [aerospike_kubernetes_operator::desired::SERVER_CONTAINER_NAME],
            "local": {"envs": [
                {"name": aerospike_kubernetes_operator::podinit::warm_restart::BINARY_OVERRIDE_ENV,
                 "value": endpoint.script.display().to_string()},
                {"name": "AKO_SIM_EXEC", "value": endpoint.addr.to_string()},
                {"name": "AKO_SIM_POD", "value": format!("{}/{}", key.0, key.1)},
            ]},
        }]},
    });
    if let Err(e) = api.patch(&key.1, &PatchParams::apply("ako-simulator").force(), &Patch::Apply(&object)).await {
        inner.lock().exec_objects.remove(&key);
        eprintln!("simulator: {}/{}: no exec for this pod (kwok's Exec object: {e})", key.0, key.1);
    }
}
