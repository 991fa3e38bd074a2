//! The table printed at the end.
use super::*;

pub(super) fn print_table(r: &Value) {
    let s = &r["scale"];
    let u = &r["unchanged_reconcile"];
    let setup = &r["setup"];
    let row = |k: &str, v: String| println!("  {k:<58} {v}");
    println!(
        "\ncargo xtask bench: {} AerospikeClusters x {} nodes in {} namespaces ({} pods, {} fake nodes), operator {} build",
        setup["clusters"],
        setup["size"],
        setup["namespaces"],
        setup["pods"],
        setup["fake_nodes"],
        r["operator_binary"]["profile"]
    );
    println!("  {:<58} value", "measure");
    row("time to all Completed (s)", format!("{}", s["wall_seconds_to_all_completed"]));
    let p = &s["per_cluster_completed_seconds"];
    row(
        "  per cluster Completed at (s): min / p50 / p90 / max",
        format!("{} / {} / {} / {}", p["min"], p["p50"], p["p90"], p["max"]),
    );
    let q = &s["per_cluster_create_to_completed_seconds"];
    row(
        "  per cluster create -> Completed (s): min / p50 / p90 / max",
        format!("{} / {} / {} / {}", q["min"], q["p50"], q["p90"], q["max"]),
    );
    row(
        "  creating the objects took (s)",
        format!("{} ({} in flight)", s["create_requests_seconds"], s["create_concurrency"]),
    );
    row("operator peak RSS, VmHWM (MiB)", format!("{}", s["operator_peak_rss_mib"]));
    row(
        "  RSS at start of run / max sampled / at end (MiB)",
        format!(
            "{} / {} / {}",
            s["operator_rss_at_start_of_run_mib"], s["operator_max_sampled_rss_mib"], s["operator_rss_at_end_mib"]
        ),
    );
    row("operator CPU seconds over the run (utime+stime)", format!("{}", s["operator_cpu_seconds_run"]));
    row("  operator CPU seconds before the run (startup)", format!("{}", s["operator_cpu_seconds_startup"]));
    row("reconciles during the run / failures", format!("{} / {}", s["reconciles"], s["reconcile_failures"]));
    let l = &s["reconcile_latency_seconds"];
    row("  reconcile latency p50 / p99 (s, histogram, interpolated)", format!("{} / {}", l["p50"], l["p99"]));
    let o = &s["operator_api_requests"];
    row(
        "operator API requests during the run: reads / watches / writes / other",
        format!("{} / {} / {} / {}", o["reads"], o["watches"], o["writes"], o["other"]),
    );
    row("  per reconcile during the run", format!("{}", s["operator_api_requests_per_reconcile"]));
    let o = &s["operator_api_requests_since_it_started"];
    row(
        "  since the operator started (incl. its initial lists and watches)",
        format!("{} / {} / {} / {}", o["reads"], o["watches"], o["writes"], o["other"]),
    );
    if let Some(m) = s["cpu_seconds_by_process"].as_object() {
        for (k, v) in m {
            row(&format!("  CPU s during the run: {k}"), format!("{v}"));
        }
    }
    row(
        "  machine busy CPU s during the run / available",
        format!("{} / {}", s["machine_busy_cpu_seconds"], s["machine_cpu_seconds_available"]),
    );
    println!("  unchanged clusters (every cluster annotated once):");
    row(
        "  reconciles in the window (idle window)",
        format!("{} ({})", u["poke_window"]["reconciles"], u["idle_window"]["reconciles"]),
    );
    row("API reads (get, list) per reconcile", format!("{}", u["reads_per_reconcile"]));
    row("API writes (create, update, patch, delete) per reconcile", format!("{}", u["writes_per_reconcile"]));
    row("  watches / other per reconcile", format!("{} / {}", u["watches_per_reconcile"], u["other_per_reconcile"]));
    let n = &u["operator_requests_net"];
    row("  operator requests in the window, net of idle: reads/writes", format!("{} / {}", n["reads"], n["writes"]));
    let x = &u["cross_check_all_clients_operator_resources"];
    row(
        "  all clients, operator's resources, minus own PATCHes: r/w/watch",
        format!(
            "{} / {} / {} (idle window {} / {} / {})",
            x["poke_window_minus_own"]["reads"],
            x["poke_window_minus_own"]["writes"],
            x["poke_window_minus_own"]["watches"],
            x["idle_window"]["reads"],
            x["idle_window"]["writes"],
            x["idle_window"]["watches"]
        ),
    );
    let rs = &r["restart"];
    if rs.is_object() {
        println!("  restart in place:");
        row(
            "  s until ready / every cluster reconciled / counter reached N",
            format!(
                "{} / {} / {}",
                rs["ready_seconds"],
                rs["seconds_until_every_cluster_reconciled"],
                rs["seconds_until_reconcile_counter_reached_clusters"]
            ),
        );
        let o = &rs["operator_requests"];
        row(
            "  operator requests: reads / watches / writes / other",
            format!("{} / {} / {} / {}", o["reads"], o["watches"], o["writes"], o["other"]),
        );
        row("  writes by verb, all clients", format!("{}", rs["writes_by_verb_all_clients"]));
    }
    let ro = &r["rollout"];
    if ro.is_object() {
        row(
            "rollout: s to every pod on the new image (floor) [ratio]",
            format!(
                "{} ({}) [{}]",
                ro["ours"]["seconds_to_every_pod_on_new_image_and_every_cluster_completed"],
                ro["floor"]["seconds_to_every_pod_recreated_on_new_image"],
                ro["ratio_ours_over_floor"]
            ),
        );
    }
    let l = &r["load"];
    row(
        "load average before build / before create / after",
        format!("{} / {} / {}", l["loadavg_before_build"], l["loadavg_before_create"], l["loadavg_after_completed"]),
    );
    row("  max 1-min load during the run", format!("{}", l["loadavg1_max_during_run"]));
}

// -----------------------------------------------------------------------------------------------------------------
// --against-floors: one table over every count of clusters.

/// Goals of issue 16: our time to all-Completed over the API-server floor's, our peak RSS over the
/// controller-runtime floor's.
pub(super) const GOAL_TIME_RATIO: f64 = 1.2;
pub(super) const GOAL_RSS_RATIO: f64 = 0.5;
const CRFLOOR_PROCESS: &str = "crfloor (controller-runtime floor)";

/// The `floors` part of one run's report (null without `--against-floors`).
pub(super) fn floors_json(
    wall: f64,
    our_peak_mib: f64,
    api_floor: &Option<(ApiFloor, RequestCounts)>,
    crfloor_peak_mib: Option<f64>,
    crfloor_max_sampled_mib: Option<f64>,
    cpu_run: &BTreeMap<String, f64>,
) -> Value {
    let Some((floor, requests)) = api_floor else { return Value::Null };
    let ratio = |a: f64, b: Option<f64>| b.filter(|b| *b > 0.0).map(|b| round(a / b, 2));
    json!({
        "api_server_floor": {
            "seconds_to_all_ready_and_status_written": round(floor.seconds, 2),
            "objects_created": floor.objects_created,
            "stateful_sets": floor.stateful_sets,
            "status_writes": floor.status_writes,
            "requests_by_verb_all_clients": requests.by_verb_json(),
            "cpu_seconds_by_process": floor.cpu_seconds_by_process.iter()
                .map(|(k, v)| (k.clone(), json!(round(*v, 2)))).collect::<serde_json::Map<_, _>>(),
        },
        "controller_runtime_floor": {
            "peak_rss_mib": crfloor_peak_mib.map(|v| round(v, 1)),
            "max_sampled_rss_mib": crfloor_max_sampled_mib.map(|v| round(v, 1)),
            "cpu_seconds_run": cpu_run.get(CRFLOOR_PROCESS).map(|v| round(*v, 2)),
        },
        "ratios": {
            "time_ours_over_api_server_floor": ratio(wall, Some(floor.seconds)),
            "peak_rss_ours_over_controller_runtime_floor": ratio(our_peak_mib, crfloor_peak_mib),
        },
    })
}

/// The `rollout` part of one run's report (null without `--rollout`).
pub(super) fn rollout_json(ours: Option<&Rollout>, floor: Option<&RolloutFloor>) -> Value {
    let Some(o) = ours else { return Value::Null };
    json!({
        "image": ROLLOUT_IMAGE,
        "ours": {
            "seconds_to_every_pod_on_new_image_and_every_cluster_completed": round(o.seconds, 2),
            "seconds_patching_the_clusters": round(o.patch_seconds, 2),
            "pods": o.pods,
            "reconciles": o.reconciles,
            "operator_requests": o.op.json(),
        },
        "floor": floor.map(|f| json!({
            "seconds_to_every_pod_recreated_on_new_image": round(f.seconds, 2),
            "stateful_sets": f.stateful_sets,
            "pods": f.pods,
            "method": "each replayed StatefulSet (OnDelete) patched to the new image, then its pods deleted at once \
                       (deletecollection) once the StatefulSet controller observed it; no migrations, no pod order",
        })),
        "ratio_ours_over_floor": floor.filter(|f| f.seconds > 0.0).map(|f| round(o.seconds / f.seconds, 2)),
    })
}

/// What the install-mode comparison keeps of one run: memory and requests.
pub(super) fn watch_mode_json(r: &Value) -> Value {
    let s = &r["scale"];
    json!({
        "operator_watch_namespaces": r["operator_watch_namespaces"],
        "seconds_to_all_completed": s["wall_seconds_to_all_completed"],
        "peak_rss_mib": s["operator_peak_rss_mib"],
        "cpu_seconds": s["operator_cpu_seconds_run"],
        "operator_api_requests_run": s["operator_api_requests"],
        "operator_api_requests_since_it_started": s["operator_api_requests_since_it_started"],
        "requests_per_unchanged_reconcile": r["unchanged_reconcile"]["requests_per_reconcile"],
    })
}

/// Least-squares line through `points` (x, y): (slope, intercept); None with fewer than two distinct x.
pub(super) fn fit_line(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if points.len() < 2 || sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    Some((slope, my - slope * mx))
}

/// One row of the floors table, from one run's report.
pub(super) fn floors_row(r: &Value) -> Value {
    let s = &r["scale"];
    let f = &r["floors"];
    json!({
        "clusters": r["setup"]["clusters"],
        "pods": r["setup"]["pods"],
        "ours_seconds_to_all_completed": s["wall_seconds_to_all_completed"],
        "api_server_floor_seconds": f["api_server_floor"]["seconds_to_all_ready_and_status_written"],
        "time_ratio": f["ratios"]["time_ours_over_api_server_floor"],
        "ours_peak_rss_mib": s["operator_peak_rss_mib"],
        "controller_runtime_floor_peak_rss_mib": f["controller_runtime_floor"]["peak_rss_mib"],
        "rss_ratio": f["ratios"]["peak_rss_ours_over_controller_runtime_floor"],
        "ours_cpu_seconds": s["operator_cpu_seconds_run"],
        "controller_runtime_floor_cpu_seconds": f["controller_runtime_floor"]["cpu_seconds_run"],
        "ours_api_requests": s["operator_api_requests"],
        "api_server_floor_objects_created": f["api_server_floor"]["objects_created"],
        "api_server_floor_status_writes": f["api_server_floor"]["status_writes"],
        "reconciles": s["reconciles"],
        "ours_reconcile_p50_ms": ms(&s["reconcile_latency_seconds"]["p50"]),
        "ours_reconcile_p99_ms": ms(&s["reconcile_latency_seconds"]["p99"]),
        "restart_seconds_every_cluster_reconciled": r["restart"]["seconds_until_every_cluster_reconciled"],
        "restart_reconciles": r["restart"]["reconciles_until_quiet"],
        "restart_operator_requests": r["restart"]["operator_requests"],
        "restart_writes_by_verb_all_clients": r["restart"]["writes_by_verb_all_clients"],
        "rollout_seconds": r["rollout"]["ours"]["seconds_to_every_pod_on_new_image_and_every_cluster_completed"],
        "rollout_floor_seconds": r["rollout"]["floor"]["seconds_to_every_pod_recreated_on_new_image"],
        "rollout_ratio": r["rollout"]["ratio_ours_over_floor"],
        "watch_modes": r["watch_modes"],
    })
}

/// Seconds as milliseconds, one decimal (null stays null).
fn ms(v: &Value) -> Value {
    v.as_f64().filter(|x| x.is_finite()).map(|x| json!(round(x * 1000.0, 1))).unwrap_or(Value::Null)
}

/// The summary of `--against-floors` over every run: rows, and the per-cluster memory slope across them.
pub(super) fn floors_summary(reports: &[Value], wall_seconds: f64) -> Value {
    let rows: Vec<Value> = reports.iter().map(floors_row).collect();
    let points = |key: &str| -> Vec<(f64, f64)> {
        rows.iter().filter_map(|r| Some((r["clusters"].as_f64()?, r[key].as_f64()?))).collect()
    };
    let slope = |key: &str| fit_line(&points(key)).map(|(m, _)| round(m, 4));
    json!({
        "command": reports.first().map(|r| r["command"].clone()).unwrap_or_default(),
        "size": reports.first().map(|r| r["setup"]["size"].clone()).unwrap_or_default(),
        "namespaces": reports.first().map(|r| r["setup"]["namespaces"].clone()).unwrap_or_default(),
        "profile": reports.first().map(|r| r["operator_binary"]["profile"].clone()).unwrap_or_default(),
        "goals": {"time_ratio_at_most": GOAL_TIME_RATIO, "rss_ratio_at_most": GOAL_RSS_RATIO},
        "rows": rows,
        "memory_slope_mib_per_cluster": {
            "ours": slope("ours_peak_rss_mib"),
            "controller_runtime_floor": slope("controller_runtime_floor_peak_rss_mib"),
        },
        "bench_wall_seconds": round(wall_seconds, 1),
    })
}

/// Pure: the one table of `--against-floors` (Markdown, so README can hold it as printed).
pub(super) fn floors_table(summary: &Value) -> String {
    let num = |v: &Value| match v.as_f64() {
        Some(x) => format!("{x}"),
        None => "-".to_string(),
    };
    let mut out = format!(
        "cargo xtask bench --against-floors: clusters x {} nodes in {} namespaces, operator {} build\n\n",
        summary["size"],
        summary["namespaces"],
        summary["profile"].as_str().unwrap_or("?")
    );
    out.push_str(&format!(
        "| clusters | ours: s to all Completed | API-server floor: s | ratio (goal <= {GOAL_TIME_RATIO}) \
         | ours: peak RSS MiB | controller-runtime floor: peak RSS MiB | ratio (goal <= {GOAL_RSS_RATIO}) \
         | ours: CPU s | controller-runtime floor: CPU s | ours: reconcile p50 / p99 ms | floors: reconcile p50 / p99 |\n"
    ));
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let rows: Vec<&Value> = summary["rows"].as_array().into_iter().flatten().collect();
    for r in &rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | n/a |\n",
            num(&r["clusters"]),
            num(&r["ours_seconds_to_all_completed"]),
            num(&r["api_server_floor_seconds"]),
            num(&r["time_ratio"]),
            num(&r["ours_peak_rss_mib"]),
            num(&r["controller_runtime_floor_peak_rss_mib"]),
            num(&r["rss_ratio"]),
            num(&r["ours_cpu_seconds"]),
            num(&r["controller_runtime_floor_cpu_seconds"]),
            num(&r["ours_reconcile_p50_ms"]),
            num(&r["ours_reconcile_p99_ms"]),
        ));
    }
    out.push_str(
        "\nreconcile latency: controller_runtime_reconcile_time_seconds over the creates, quantiles interpolated \
         within buckets as Prometheus' histogram_quantile; the floors do no reconciles (n/a)\n",
    );
    if rows.iter().any(|r| r["restart_seconds_every_cluster_reconciled"].is_number()) {
        out.push_str(
            "\nrestart in place (all Completed, operator stopped and started again):\n\n\
             | clusters | s until every cluster reconciled | reconciles | operator reads / watches / writes / other \
             | writes by verb (all clients) |\n|---:|---:|---:|---:|---|\n",
        );
        for r in &rows {
            let o = &r["restart_operator_requests"];
            let writes: Vec<String> = r["restart_writes_by_verb_all_clients"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}: {}", num(v)))
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} | {} / {} / {} / {} | {} |\n",
                num(&r["clusters"]),
                num(&r["restart_seconds_every_cluster_reconciled"]),
                num(&r["restart_reconciles"]),
                num(&o["reads"]),
                num(&o["watches"]),
                num(&o["writes"]),
                num(&o["other"]),
                if writes.is_empty() { "none".to_string() } else { writes.join(", ") },
            ));
        }
    }
    if rows.iter().any(|r| r["rollout_seconds"].is_number()) {
        out.push_str(
            "\nrollout (every cluster's image changed at once; floor: the replayed StatefulSets patched and their pods \
             deleted directly):\n\n| clusters | pods | ours: s to every pod on the new image, all Completed \
             | floor: s | ratio |\n|---:|---:|---:|---:|---:|\n",
        );
        for r in &rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                num(&r["clusters"]),
                num(&r["pods"]),
                num(&r["rollout_seconds"]),
                num(&r["rollout_floor_seconds"]),
                num(&r["rollout_ratio"]),
            ));
        }
    }
    if rows.iter().any(|r| r["watch_modes"]["list"].is_object()) {
        out.push_str(
            "\ninstall mode (same clusters; all namespaces vs the list of the bench's namespaces, a run each):\n\n\
             | clusters | watching | s to all Completed | peak RSS MiB | CPU s | operator requests during the creates: \
             reads / watches / writes / other | since it started: reads / watches |\n|---:|---|---:|---:|---:|---:|---:|\n",
        );
        for r in &rows {
            for mode in ["all", "list"] {
                let m = &r["watch_modes"][mode];
                if !m.is_object() {
                    continue;
                }
                let o = &m["operator_api_requests_run"];
                let st = &m["operator_api_requests_since_it_started"];
                out.push_str(&format!(
                    "| {} | {mode} | {} | {} | {} | {} / {} / {} / {} | {} / {} |\n",
                    num(&r["clusters"]),
                    num(&m["seconds_to_all_completed"]),
                    num(&m["peak_rss_mib"]),
                    num(&m["cpu_seconds"]),
                    num(&o["reads"]),
                    num(&o["watches"]),
                    num(&o["writes"]),
                    num(&o["other"]),
                    num(&st["reads"]),
                    num(&st["watches"]),
                ));
            }
        }
    }
    let s = &summary["memory_slope_mib_per_cluster"];
    out.push_str(&format!(
        "\nper-cluster memory slope across the counts (least squares of peak RSS, MiB per cluster): ours {}, \
         controller-runtime floor {}\n",
        num(&s["ours"]),
        num(&s["controller_runtime_floor"])
    ));
    out.push_str(&format!("bench wall time (after the build): {} s\n", num(&summary["bench_wall_seconds"])));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_line_recovers_a_line_and_refuses_a_single_x() {
        let (m, b) = fit_line(&[(100.0, 60.0), (300.0, 150.0), (1000.0, 465.0)]).unwrap();
        assert!((m - 0.45).abs() < 1e-9 && (b - 15.0).abs() < 1e-9, "{m} {b}");
        assert_eq!(fit_line(&[(100.0, 60.0)]), None);
        assert_eq!(fit_line(&[(100.0, 60.0), (100.0, 70.0)]), None);
        assert_eq!(fit_line(&[]), None);
    }

    fn report(n: u64, ours_s: f64, floor_s: f64, ours_mib: f64, cr_mib: f64) -> Value {
        json!({
            "command": "xtask bench --against-floors",
            "operator_binary": {"profile": "release"},
            "setup": {"clusters": n, "pods": n * 3, "size": 3, "namespaces": 10},
            "scale": {"wall_seconds_to_all_completed": ours_s, "operator_peak_rss_mib": ours_mib, "operator_cpu_seconds_run": 2.5,
                      "operator_api_requests": {}, "reconciles": 10,
                      "reconcile_latency_seconds": {"p50": 0.00625, "p99": 0.025}},
            "restart": {"seconds_until_every_cluster_reconciled": 4.5, "reconciles_until_quiet": n,
                        "operator_requests": {"reads": 300, "watches": 0, "writes": 0, "other": 0},
                        "writes_by_verb_all_clients": {}},
            "floors": {
                "api_server_floor": {"seconds_to_all_ready_and_status_written": floor_s, "objects_created": 5, "status_writes": 2},
                "controller_runtime_floor": {"peak_rss_mib": cr_mib, "cpu_seconds_run": 1.0},
                "ratios": {"time_ours_over_api_server_floor": round(ours_s / floor_s, 2),
                           "peak_rss_ours_over_controller_runtime_floor": round(ours_mib / cr_mib, 2)},
            }
        })
    }

    #[test]
    fn floors_table_has_one_row_per_count_and_the_slopes() {
        let summary =
            floors_summary(&[report(100, 24.0, 20.0, 60.0, 80.0), report(300, 60.0, 50.0, 150.0, 140.0)], 321.0);
        assert_eq!(summary["memory_slope_mib_per_cluster"]["ours"], json!(0.45));
        assert_eq!(summary["memory_slope_mib_per_cluster"]["controller_runtime_floor"], json!(0.3));
        let table = floors_table(&summary);
        assert!(table.contains("| 100 | 24 | 20 | 1.2 | 60 | 80 | 0.75 | 2.5 | 1 | 6.3 / 25 | n/a |"), "{table}");
        assert!(table.contains("| 300 | 60 | 50 | 1.2 | 150 | 140 | 1.07 | 2.5 | 1 | 6.3 / 25 | n/a |"), "{table}");
        assert!(table.contains("| 100 | 4.5 | 100 | 300 / 0 / 0 / 0 | none |"), "{table}");
        assert!(table.contains("| 300 | 4.5 | 300 | 300 / 0 / 0 / 0 | none |"), "{table}");
        assert!(!table.contains("rollout (") && !table.contains("install mode"), "{table}");
        assert!(table.contains("ours 0.45, controller-runtime floor 0.3"), "{table}");
        assert!(table.contains("321 s"), "{table}");
    }

    #[test]
    fn floors_table_has_rollout_restart_writes_and_install_mode_rows() {
        let mut r = report(100, 24.0, 20.0, 60.0, 80.0);
        r["restart"]["writes_by_verb_all_clients"] = json!({"APPLY aerospikeclusters.asdb.aerospike.com/status": 2});
        r["rollout"] = json!({"ours": {"seconds_to_every_pod_on_new_image_and_every_cluster_completed": 30.0},
                              "floor": {"seconds_to_every_pod_recreated_on_new_image": 10.0},
                              "ratio_ours_over_floor": 3.0});
        r["watch_modes"] = json!({
            "all": {"seconds_to_all_completed": 24.0, "peak_rss_mib": 60.0, "cpu_seconds": 2.5,
                    "operator_api_requests_run": {"reads": 1, "watches": 2, "writes": 3, "other": 4},
                    "operator_api_requests_since_it_started": {"reads": 5, "watches": 6}},
            "list": {"seconds_to_all_completed": 25.0, "peak_rss_mib": 70.0, "cpu_seconds": 2.7,
                     "operator_api_requests_run": {"reads": 1, "watches": 20, "writes": 3, "other": 4},
                     "operator_api_requests_since_it_started": {"reads": 50, "watches": 60}},
        });
        let table = floors_table(&floors_summary(&[r], 1.0));
        assert!(
            table.contains(
                "| 100 | 4.5 | 100 | 300 / 0 / 0 / 0 | APPLY aerospikeclusters.asdb.aerospike.com/status: 2 |"
            ),
            "{table}"
        );
        assert!(table.contains("| 100 | 300 | 30 | 10 | 3 |"), "{table}");
        assert!(table.contains("| 100 | all | 24 | 60 | 2.5 | 1 / 2 / 3 / 4 | 5 / 6 |"), "{table}");
        assert!(table.contains("| 100 | list | 25 | 70 | 2.7 | 1 / 20 / 3 / 4 | 50 / 60 |"), "{table}");
    }

    #[test]
    fn floors_table_shows_a_missing_value_as_a_dash() {
        let mut r = report(100, 24.0, 20.0, 60.0, 80.0);
        r["floors"] = Value::Null;
        let table = floors_table(&floors_summary(&[r], 1.0));
        assert!(table.contains("| 100 | 24 | - | - | 60 | - | - | 2.5 | - | 6.3 / 25 | n/a |"), "{table}");
        assert!(table.contains("ours -, controller-runtime floor -"), "{table}");
    }
}
