//! The plot of `--against-floors`: peak RSS, time to all-Completed, reconcile latency, restart and rollout time
//! against the number of clusters, ours and the floors, as a self-contained SVG (no plotting library: panels of
//! lines and points, two a row).
use super::*;

/// One line of a panel: its label, colour and points (clusters, value).
pub(super) struct Series {
    pub(super) label: String,
    pub(super) colour: &'static str,
    pub(super) points: Vec<(f64, f64)>,
}

const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 280.0;
const MARGIN: f64 = 50.0;

/// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`.
pub(super) fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|v| *v >= max).unwrap_or(10.0 * p)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One panel at offset (`x0`, `y0`).
fn panel(out: &mut String, x0: f64, y0: f64, title: &str, y_label: &str, series: &[Series]) {
    // A series without points (the rollout's, in a run without `--rollout`) gets no legend entry either.
    let series: Vec<&Series> = series.iter().filter(|s| !s.points.is_empty()).collect();
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let xmax = nice_ceiling(all.iter().map(|p| p.0).fold(0.0, f64::max));
    let ymax = nice_ceiling(all.iter().map(|p| p.1).fold(0.0, f64::max));
    let (left, top) = (x0 + MARGIN, y0 + MARGIN);
    let (w, h) = (PANEL_W - MARGIN - 10.0, PANEL_H - 2.0 * MARGIN);
    let px = |x: f64| left + x / xmax * w;
    let py = |y: f64| top + h - y / ymax * h;
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\">{}</text>\n",
        left + w / 2.0,
        y0 + 20.0,
        esc(title)
    ));
    out.push_str(&format!(
        "<rect x=\"{left:.1}\" y=\"{top:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"none\" stroke=\"#999\"/>\n"
    ));
    for i in 0..=4 {
        let (fx, fy) = (xmax * i as f64 / 4.0, ymax * i as f64 / 4.0);
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\n",
            px(fx),
            top + h + 14.0,
            fx
        ));
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>\n",
            left - 4.0,
            py(fy) + 3.0,
            fy
        ));
    }
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">clusters (3 nodes each)</text>\n",
        left + w / 2.0,
        top + h + 30.0
    ));
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 {:.1} {:.1})\">{}</text>\n",
        x0 + 12.0,
        top + h / 2.0,
        x0 + 12.0,
        top + h / 2.0,
        esc(y_label)
    ));
    for (i, s) in series.iter().enumerate() {
        let mut pts = s.points.clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = pts.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
        if path.len() > 1 {
            out.push_str(&format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n",
                path.join(" "),
                s.colour
            ));
        }
        for (x, y) in &pts {
            out.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{}: {} at {}</title></circle>\n",
                px(*x),
                py(*y),
                s.colour,
                esc(&s.label),
                y,
                x
            ));
        }
        let ly = top + 12.0 + 14.0 * i as f64;
        out.push_str(&format!(
            "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{}\" stroke-width=\"2\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>\n",
            left + 8.0,
            left + 24.0,
            s.colour,
            left + 28.0,
            ly + 3.0,
            esc(&s.label)
        ));
    }
}

/// A panel: title, y-axis label, series.
pub(super) type Panel<'a> = (&'a str, &'a str, &'a [Series]);

/// Pure: the SVG of `panels`, two a row; a panel without points is left out.
pub(super) fn svg(title: &str, panels: &[Panel]) -> String {
    let shown: Vec<&Panel> = panels.iter().filter(|p| p.2.iter().any(|s| !s.points.is_empty())).collect();
    let width = 2.0 * PANEL_W;
    let height = shown.len().div_ceil(2).max(1) as f64 * PANEL_H + 20.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<desc>{}</desc>\n",
        esc(title)
    );
    for (i, (t, y, series)) in shown.iter().enumerate() {
        panel(&mut out, (i % 2) as f64 * PANEL_W, (i / 2) as f64 * PANEL_H, t, y, series);
    }
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n</svg>\n",
        width / 2.0,
        height - 6.0,
        esc(title)
    ));
    out
}

/// The plot of a `--against-floors` summary.
pub(super) fn floors_svg(summary: &Value) -> String {
    let rows: Vec<&Value> = summary["rows"].as_array().map(|r| r.iter().collect()).unwrap_or_default();
    let points = |key: &str| -> Vec<(f64, f64)> {
        rows.iter().filter_map(|r| Some((r["clusters"].as_f64()?, r[key].as_f64()?))).collect()
    };
    let series =
        |label: &str, colour: &'static str, key: &str| Series { label: label.into(), colour, points: points(key) };
    let memory = [
        series("ours", "#1f77b4", "ours_peak_rss_mib"),
        series("controller-runtime floor", "#d62728", "controller_runtime_floor_peak_rss_mib"),
    ];
    let time = [
        series("ours", "#1f77b4", "ours_seconds_to_all_completed"),
        series("API-server floor", "#2ca02c", "api_server_floor_seconds"),
    ];
    // The floors do no reconciles: ours only.
    let latency = [
        series("ours p50", "#1f77b4", "ours_reconcile_p50_ms"),
        series("ours p99", "#9467bd", "ours_reconcile_p99_ms"),
    ];
    let restart_rollout = [
        series("ours: restart, every cluster reconciled", "#ff7f0e", "restart_seconds_every_cluster_reconciled"),
        series("ours: rollout, every pod on the new image", "#1f77b4", "rollout_seconds"),
        series("rollout floor: pods deleted directly", "#2ca02c", "rollout_floor_seconds"),
    ];
    let title = format!(
        "cargo xtask bench --against-floors ({} build, {} nodes per cluster, {} namespaces)",
        summary["profile"].as_str().unwrap_or("?"),
        summary["size"],
        summary["namespaces"]
    );
    svg(
        &title,
        &[
            ("peak RSS", "MiB", &memory),
            ("time to all Completed / floor done", "seconds", &time),
            ("reconcile latency (histogram, interpolated)", "milliseconds", &latency),
            ("restart and rollout", "seconds", &restart_rollout),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceiling_rounds_up_to_1_2_5() {
        assert_eq!(nice_ceiling(63.0), 100.0);
        assert_eq!(nice_ceiling(140.0), 200.0);
        assert_eq!(nice_ceiling(300.0), 500.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }

    #[test]
    fn svg_draws_one_line_and_points_per_series() {
        let s = |label: &str, pts: Vec<(f64, f64)>| Series { label: label.into(), colour: "#000", points: pts };
        let memory = [s("ours", vec![(300.0, 150.0), (100.0, 60.0)]), s("floor", vec![(100.0, 80.0)])];
        let time = [s("ours", vec![(100.0, 24.0)])];
        let empty = [s("ours", vec![])];
        let out = svg("t <&>", &[("m", "MiB", &memory), ("t", "s", &time), ("e", "s", &empty)]);
        assert!(out.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(out.trim_end().ends_with("</svg>"));
        // A line only where there are two points; a point each.
        assert_eq!(out.matches("<polyline").count(), 1);
        assert_eq!(out.matches("<circle").count(), 4);
        assert!(out.contains("t &lt;&amp;&gt;") && !out.contains("t <&>"));
        // Sorted by clusters: the 100-cluster point comes first on the line (x = 50 + 100/500 * 360).
        assert!(out.contains("points=\"122.0,"), "{out}");
        // The empty panel is left out: one row of two panels.
        assert!(out.contains(&format!("height=\"{}\"", PANEL_H + 20.0)), "{out}");
        assert!(!out.contains(">e</text>"), "{out}");
    }

    #[test]
    fn a_series_without_points_has_no_legend_entry() {
        let s = |label: &str, pts: Vec<(f64, f64)>| Series { label: label.into(), colour: "#000", points: pts };
        let restart = [s("restart", vec![(100.0, 0.5)]), s("rollout", vec![])];
        let out = svg("t", &[("restart and rollout", "s", &restart)]);
        assert!(out.contains(">restart</text>"), "{out}");
        assert!(!out.contains(">rollout</text>"), "{out}");
    }

    #[test]
    fn svg_puts_the_third_panel_on_a_second_row() {
        let s = |pts: Vec<(f64, f64)>| [Series { label: "x".into(), colour: "#000", points: pts }];
        let (a, b, c) = (s(vec![(1.0, 1.0)]), s(vec![(1.0, 1.0)]), s(vec![(1.0, 1.0)]));
        let out = svg("t", &[("a", "y", &a), ("b", "y", &b), ("c", "y", &c)]);
        assert!(out.contains(&format!("height=\"{}\"", 2.0 * PANEL_H + 20.0)), "{out}");
        assert!(
            out.contains(&format!("y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\">c<", PANEL_H + 20.0)),
            "{out}"
        );
    }
}
