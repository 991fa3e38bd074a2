//! config/monitoring judged by Prometheus' own promtool (Debian's package, unpacked into the tool cache on demand
//! through `ako_testbed::tools::ensure_prometheus`, never skipped): every rule file and the plain Prometheus
//! config check clean, every alert fires on its series and stays silent on a healthy one; and the dashboards
//! read only metrics the operator serves (the exporter's are checked against a live scrape in
//! tests/operator_monitoring.rs).
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use aerospike_kubernetes_operator::metrics::Metrics;
use xtask::packaging::monitoring::{self, dashboards, rules};
use xtask::project;

fn dir() -> PathBuf {
    project::default_root().join(monitoring::DIR)
}

fn promtool() -> PathBuf {
    ako_testbed::tools::ensure_prometheus().expect("Debian's prometheus package (promtool)").join("promtool")
}

/// promtool's exit status and output.
fn run(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(promtool()).args(args).current_dir(cwd).output().expect("running promtool");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn rule_files() -> Vec<String> {
    rules::groups().iter().map(|g| format!("rules/{}", g.file)).collect()
}

fn test_files() -> Vec<String> {
    rules::groups().iter().map(|g| g.file.replace(".rules.yml", ".test.yml")).collect()
}

#[test]
fn promtool_checks_the_rules_and_the_prometheus_config() {
    let files = rule_files();
    let mut args = vec!["check", "rules"];
    args.extend(files.iter().map(String::as_str));
    let (ok, out) = run(&args, &dir());
    assert!(ok, "{out}");
    let alerts: usize = rules::groups().iter().map(|g| g.alerts.len()).sum();
    let found: usize = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("SUCCESS: "))
        .map(|l| l.split_whitespace().next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(found, alerts, "{out}");
    // The plain config, beside the rule files it names relatively, as users deploy it. Debian's promtool knows no
    // Kubernetes discovery (see `with_file_sd`): the rest of the config is checked.
    let committed: serde_json::Value =
        serde_saphyr::from_str(&fs::read_to_string(dir().join(monitoring::PROMETHEUS_CONFIG)).unwrap()).unwrap();
    assert_eq!(committed, monitoring::prometheus_config());
    // A scratch folder with the rule files where the config expects them (never a file in the generated folder:
    // the drift tests would see it).
    let scratch = std::env::temp_dir().join(format!("ako-prometheus-config-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(scratch.join("rules")).unwrap();
    for f in &files {
        fs::copy(dir().join(f), scratch.join(f)).unwrap();
    }
    let checked = monitoring::with_file_sd(committed, &scratch);
    fs::write(scratch.join("prometheus.yml"), serde_json::to_string(&checked).unwrap()).unwrap();
    let (ok, out) = run(&["check", "config", "prometheus.yml"], &scratch);
    fs::remove_dir_all(&scratch).unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 2 rule files found"), "{out}");
}

#[test]
fn every_alert_fires_on_its_series_and_stays_silent_on_a_healthy_one() {
    for g in rules::groups() {
        let text =
            fs::read_to_string(dir().join("rules/tests").join(g.file.replace(".rules.yml", ".test.yml"))).unwrap();
        for a in &g.alerts {
            for case in ["fires", "stays silent"] {
                assert!(text.contains(&format!("name: {} {case}\n", a.name)), "{}: no `{case}` test", a.name);
            }
        }
    }
    let files = test_files();
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let (ok, out) = run(&args, &dir().join("rules/tests"));
    assert!(ok, "{out}");
    assert_eq!(out.matches("SUCCESS").count(), files.len(), "{out}");
}

/// The unit tests can fail: a rule that no longer fires on its series, and one that fires on healthy series,
/// are both caught.
#[test]
fn promtool_catches_a_rule_that_does_not_fire_or_fires_wrongly() {
    let scratch = std::env::temp_dir().join(format!("ako-rules-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(scratch.join("rules/tests")).unwrap();
    let original = fs::read_to_string(dir().join("rules/aerospike.rules.yml")).unwrap();
    fs::copy(dir().join("rules/tests/aerospike.test.yml"), scratch.join("rules/tests/aerospike.test.yml")).unwrap();
    let node_down = r#"aerospike_node_up{job="aerospike"} == 0"#;
    assert!(original.contains(node_down));
    for (broken, should_fail) in [("== 2", "AerospikeNodeDown fires"), (">= 0", "AerospikeNodeDown stays silent")] {
        let text = original.replace(node_down, &format!(r#"aerospike_node_up{{job="aerospike"}} {broken}"#));
        fs::write(scratch.join("rules/aerospike.rules.yml"), text).unwrap();
        let (ok, out) = run(&["test", "rules", "aerospike.test.yml"], &scratch.join("rules/tests"));
        assert!(!ok, "a broken rule passed its tests:\n{out}");
        assert!(out.contains(should_fail), "`{should_fail}` not reported:\n{out}");
    }
    fs::remove_dir_all(scratch).unwrap();
}

/// Every operator metric a dashboard or rule names is one /metrics serves.
#[test]
fn dashboards_and_rules_name_only_metrics_the_operator_serves() {
    let m = Metrics::default();
    m.set_phase("a", "b", "Completed");
    m.set_rollout("a", "b", 1, 1);
    m.pod_restarted("a", "b");
    m.safety_refusal("a", "b", "PodMissing");
    m.failure("kube");
    m.set_leader(true);
    m.reconcile_timer().finish(true);
    aerospike_kubernetes_operator::metrics::webhook_admission("mutating", "allowed");
    let served: BTreeSet<String> = m
        .encode()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect();
    let mut queries: Vec<String> = dashboards::dashboards().iter().flat_map(|(_, d)| dashboards::queries(d)).collect();
    queries.extend(rules::groups().iter().flat_map(|g| g.alerts.iter().map(|a| a.expr.to_string())));
    let mut checked = 0;
    for q in &queries {
        for name in dashboards::metric_names(q) {
            let ours =
                ["aerospike_ako_", "controller_runtime_", "leader_election_"].iter().any(|p| name.starts_with(p));
            if ours {
                assert!(served.contains(&name), "`{name}` (in `{q}`) is not served; served: {served:?}");
                checked += 1;
            } else {
                assert!(
                    name == "up" || name.starts_with("aerospike_node_") || name.starts_with("aerospike_namespace_"),
                    "`{name}` (in `{q}`) is neither the operator's nor the exporter's"
                );
            }
        }
    }
    assert!(checked >= 12, "only {checked} operator metric references found");
}

#[test]
fn dashboards_are_well_formed() {
    for (file, d) in dashboards::dashboards() {
        let panels = d["panels"].as_array().unwrap();
        assert!(!panels.is_empty(), "{file}");
        let mut ids = BTreeSet::new();
        for p in panels {
            assert!(ids.insert(p["id"].as_u64().unwrap()), "{file}: duplicate panel id");
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{file}: {} has no query", p["title"]);
            let refs: BTreeSet<&str> = targets.iter().map(|t| t["refId"].as_str().unwrap()).collect();
            assert_eq!(refs.len(), targets.len(), "{file}: duplicate refId");
            assert_eq!(p["datasource"]["uid"], "${datasource}");
        }
        let committed: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir().join("dashboards").join(file)).unwrap()).unwrap();
        assert_eq!(committed, d, "{file}: run `cargo xtask manifests`");
    }
}

/// The PrometheusRule carries exactly the groups of the plain rule files (one source, two spellings).
#[test]
fn the_prometheus_rule_object_and_the_rule_files_hold_the_same_groups() {
    let read = |rel: &str| -> serde_json::Value {
        serde_saphyr::from_str(&fs::read_to_string(dir().join(rel)).unwrap()).unwrap()
    };
    let object = read("prometheusrule.yaml");
    assert_eq!(object["kind"], "PrometheusRule");
    let mut from_files = Vec::new();
    for f in rule_files() {
        from_files.extend(read(&f)["groups"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(object["spec"]["groups"].as_array().unwrap(), &from_files);
    let alerts: Vec<&str> =
        from_files.iter().flat_map(|g| g["rules"].as_array().unwrap()).filter_map(|r| r["alert"].as_str()).collect();
    for a in &alerts {
        assert_eq!(alerts.iter().filter(|x| *x == a).count(), 1, "alert {a} defined twice");
    }
    for g in &from_files {
        for r in g["rules"].as_array().unwrap() {
            for key in ["summary", "description"] {
                assert!(!r["annotations"][key].as_str().unwrap_or_default().is_empty(), "{}: no {key}", r["alert"]);
            }
            assert!(["warning", "critical"].contains(&r["labels"]["severity"].as_str().unwrap()), "{}", r["alert"]);
        }
    }
}
