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
    let l = &r["load"];
    row(
        "load average before build / before create / after",
        format!("{} / {} / {}", l["loadavg_before_build"], l["loadavg_before_create"], l["loadavg_after_completed"]),
    );
    row("  max 1-min load during the run", format!("{}", l["loadavg1_max_during_run"]));
}
