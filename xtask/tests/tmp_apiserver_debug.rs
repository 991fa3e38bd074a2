//! TEMPORARY diagnostics for the apiserver-restart test (to be removed).
mod common;

use std::time::Duration;

use common::*;
use kube::ResourceExt;
use serde_json::json;

const T: Duration = Duration::from_secs(120);

async fn dump(env: &Env, tag: &str) {
    let ps = pods(&env.client, &env.ns, "aero").await;
    for p in &ps {
        let st = p.status.as_ref();
        eprintln!(
            "DUMP {tag} pod {} uid={} ip={:?} phase={:?} ready={} del={} sim={:?}",
            p.name_any(),
            p.uid().unwrap_or_default(),
            st.and_then(|s| s.pod_ip.clone()),
            st.and_then(|s| s.phase.clone()),
            ready(p),
            p.metadata.deletion_timestamp.is_some(),
            env.sim.node_addr(&env.ns, &p.name_any()),
        );
    }
    eprintln!("DUMP {tag} sim members {:?}", env.sim.members(&env.ns, "aero"));
    if let Ok(c) = api(&env.client, &env.ns).get("aero").await {
        eprintln!("DUMP {tag} status pods {:?}", c.status.as_ref().map(|s| s.pods.iter().map(|(k, v)| (k.clone(), v.pod_ip.clone())).collect::<Vec<_>>()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_api_server_restart_during_a_rollout() {
    let env = env("apiserver").await;
    eprintln!("DUMP state dir {}", cluster().await.state_dir().display());
    let op = start_operator(&env.client, ns_scope(&env.ns));
    create(&env.client, &env.ns, &cluster_manifest("aero", &env.ns, 3)).await;
    wait_completed(&env.client, &env.ns, "aero", T).await;
    dump(&env, "before").await;
    let mut watch = RolloutObserver::new();
    watch.observe(&env.client, &env.ns, "aero", 3).await;
    patch_spec(&env.client, &env.ns, "aero", json!({"image": IMAGE_NEW})).await;
    eprintln!("DUMP restarting apiserver");
    cluster().await.restart_apiserver_after(Duration::from_secs(3)).await.expect("apiserver restarts");
    eprintln!("DUMP apiserver back");
    let env = Env { client: cluster().await.client().await, ns: env.ns.clone(), sim: env.sim };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        dump(&env, "after").await;
        let c = api(&env.client, &env.ns).get("aero").await.unwrap();
        let st = c.status.clone().unwrap_or_default();
        eprintln!("DUMP conditions {:?}", st.conditions.iter().map(|c| (c.type_.clone(), c.message.clone())).collect::<Vec<_>>());
        if st.phase == Some(aerospike_kubernetes_operator::api::Phase::Completed) && st.observed_generation == c.metadata.generation {
            eprintln!("DUMP completed");
            break;
        }
        if std::time::Instant::now() > deadline {
            eprintln!("DUMP not completed");
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    watch.observe(&env.client, &env.ns, "aero", 3).await;
    eprintln!("DUMP uids {:?}", watch.uids);
    std::mem::forget(op);
}
