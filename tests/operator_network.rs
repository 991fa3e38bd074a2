//! Network access types end to end: what each node advertises (read back by the operator into
//! status.pods[].aerospike.*AccessEndpoints) is computed by the pod's init step from the facts the operator publishes
//! (the simulator runs the operator's own pod-init code on each pod, see simulator/src/podinit.rs):
//! - the default policy: access on the node's InternalIP, alternate access on its ExternalIP;
//! - configuredIP: the node labels `aerospike.com/configured-access-address` / `-alternate-access-address`;
//! - multiPodPerHost: one NodePort Service per pod, its node port advertised and in status.servicePort, deleted on
//!   scale-down;
//! - customInterface: the pod's IPs on the named CNI networks (the network-status annotation, set here as Multus
//!   would set it).
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

const T: Duration = Duration::from_secs(150);

/// Node name -> (InternalIP, ExternalIP, configured access label, configured alternate access label).
async fn nodes(env: &Env) -> BTreeMap<String, [String; 4]> {
    let api: Api<Node> = Api::all(env.client.clone());
    let mut out = BTreeMap::new();
    for n in api.list(&ListParams::default()).await.unwrap().items {
        let addr = |t: &str| {
            n.status
                .as_ref()
                .and_then(|s| s.addresses.as_ref())
                .and_then(|a| a.iter().find(|a| a.type_ == t))
                .map(|a| a.address.clone())
                .unwrap_or_default()
        };
        let label = |k: &str| n.labels().get(k).cloned().unwrap_or_default();
        out.insert(
            n.name_any(),
            [
                addr("InternalIP"),
                addr("ExternalIP"),
                label("aerospike.com/configured-access-address"),
                label("aerospike.com/configured-alternate-access-address"),
            ],
        );
    }
    out
}

fn node_of(p: &Pod) -> String {
    p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default()
}

/// Status endpoints of every pod: (access, alternate access).
async fn endpoints(env: &Env, name: &str) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let c = api(&env.client, &env.ns).get(name).await.unwrap();
    c.status
        .unwrap()
        .pods
        .into_iter()
        .map(|(pod, s)| (pod, (s.aerospike.access_endpoints, s.aerospike.alternate_access_endpoints)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_access_type_advertises_what_the_reference_advertises() {
    let env = env("e2e-network").await;
    let op = start_operator(&env.client, ns_scope(&env.ns));
    let nodes = nodes(&env).await;

    // 1. Defaults: hostInternal access, hostExternal alternate access.
    let name = "net-default";
    create(&env.client, &env.ns, &cluster_manifest(name, &env.ns, 2)).await;
    let c = wait_completed(&env.client, &env.ns, name, T).await;
    let status = c.status.unwrap();
    let eps = endpoints(&env, name).await;
    for p in pods(&env.client, &env.ns, name).await {
        let [internal, external, _, _] = &nodes[&node_of(&p)];
        assert_eq!(
            eps[&p.name_any()].0,
            vec![format!("{internal}:3000")],
            "{}: access on the node's InternalIP",
            p.name_any()
        );
        assert_eq!(
            eps[&p.name_any()].1,
            vec![format!("{external}:3000")],
            "{}: alternate on its ExternalIP",
            p.name_any()
        );
        assert_eq!(&status.pods[&p.name_any()].host_external_ip, external);
        assert_eq!(status.pods[&p.name_any()].service_port, 3000);
    }

    // 2. configuredIP for both: the node labels (a pod restart rolls the new policy out).
    let name = "net-configured";
    let mut m = cluster_manifest(name, &env.ns, 2);
    m["spec"]["aerospikeNetworkPolicy"] = json!({"access": "configuredIP", "alternateAccess": "configuredIP"});
    create(&env.client, &env.ns, &m).await;
    wait_completed(&env.client, &env.ns, name, T).await;
    let eps = endpoints(&env, name).await;
    for p in pods(&env.client, &env.ns, name).await {
        let [_, _, access, alternate] = &nodes[&node_of(&p)];
        assert_eq!(eps[&p.name_any()], (vec![format!("{access}:3000")], vec![format!("{alternate}:3000")]));
    }

    // 3. multiPodPerHost: a NodePort Service per pod, its port advertised on the node's address.
    let name = "net-shared";
    let mut m = cluster_manifest(name, &env.ns, 3);
    m["spec"]["podSpec"] = json!({"multiPodPerHost": true});
    m["spec"]["aerospikeNetworkPolicy"] = json!({"alternateAccess": "pod"});
    m["spec"]["podService"] = json!({"metadata": {"labels": {"team": "db"}}});
    create(&env.client, &env.ns, &m).await;
    let c = wait_completed(&env.client, &env.ns, name, T).await;
    let status = c.status.unwrap();
    let svc_api: Api<Service> = Api::namespaced(env.client.clone(), &env.ns);
    let eps = endpoints(&env, name).await;
    for p in pods(&env.client, &env.ns, name).await {
        let svc = svc_api.get(&p.name_any()).await.expect("a Service per pod");
        assert_eq!(svc.labels().get("team").map(String::as_str), Some("db"), "podService metadata");
        let spec = svc.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        let node_port = spec.ports.unwrap()[0].node_port.unwrap();
        let [internal, _, _, _] = &nodes[&node_of(&p)];
        let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap();
        assert_eq!(eps[&p.name_any()], (vec![format!("{internal}:{node_port}")], vec![format!("{ip}:3000")]));
        assert_eq!(status.pods[&p.name_any()].service_port, node_port);
    }
    // Scale down: the removed pod's Service goes with it.
    patch_spec(&env.client, &env.ns, name, json!({"size": 2})).await;
    wait_completed(&env.client, &env.ns, name, T).await;
    wait_for("the Service of the removed pod to be deleted", T, || {
        let svc_api = svc_api.clone();
        async move { svc_api.get_opt(&format!("{name}-0-2")).await.unwrap().is_none().then_some(()) }
    })
    .await;
    assert!(svc_api.get_opt(&format!("{name}-0-1")).await.unwrap().is_some(), "the remaining pods keep theirs");

    // 4. customInterface: the pods' IPs on the named networks, from the CNI's network-status annotation.
    let name = "net-custom";
    let mut m = cluster_manifest(name, &env.ns, 2);
    m["spec"]["podSpec"] = json!({"metadata": {"annotations": {"k8s.v1.cni.cncf.io/networks": "aerospike-net"}}});
    m["spec"]["aerospikeNetworkPolicy"] = json!({
        "access": "customInterface", "customAccessNetworkNames": ["aerospike-net"],
        "alternateAccess": "pod"
    });
    create(&env.client, &env.ns, &m).await;
    // Multus writes the network status once the pod's sandbox is set up.
    let pod_api: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let mut custom_ips = BTreeMap::new();
    for i in 0..2 {
        let pod = format!("{name}-0-{i}");
        let ip = format!("192.168.77.{}", 10 + i);
        wait_for(&format!("pod {pod}"), T, || {
            let pod_api = pod_api.clone();
            let pod = pod.clone();
            async move { pod_api.get_opt(&pod).await.unwrap() }
        })
        .await;
        let status = json!([
            {"name": "kindnet", "interface": "eth0", "ips": ["10.0.0.1"], "default": true},
            {"name": format!("{}/aerospike-net", env.ns), "interface": "net1", "ips": [ip]}
        ]);
        let patch = json!({"metadata": {"annotations": {"k8s.v1.cni.cncf.io/network-status": status.to_string()}}});
        pod_api.patch(&pod, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        custom_ips.insert(pod, ip);
    }
    wait_completed(&env.client, &env.ns, name, T).await;
    let eps = endpoints(&env, name).await;
    for (pod, ip) in &custom_ips {
        assert_eq!(eps[pod].0, vec![format!("{ip}:3000")], "{pod}: its IP on aerospike-net");
    }

    // Bad input: a custom network the pods do not join is refused, naming the field.
    let mut bad = cluster_manifest("net-bad", &env.ns, 1);
    bad["spec"]["aerospikeNetworkPolicy"] =
        json!({"access": "customInterface", "customAccessNetworkNames": ["elsewhere"]});
    create(&env.client, &env.ns, &bad).await;
    let c = wait_for("net-bad to be refused", T, || {
        let api = api(&env.client, &env.ns);
        async move {
            let c = api.get("net-bad").await.ok()?;
            condition(&c, "Degraded").filter(|d| d.0 == "True").map(|d| d.2)
        }
    })
    .await;
    assert!(c.contains("spec.aerospikeNetworkPolicy.customAccessNetworkNames[0]"), "{c}");
    finish(&env, op).await;
}
