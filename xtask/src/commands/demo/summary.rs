//! The summary: tables as kubectl prints them, from the CRDs' printer columns.
use super::*;

/// `.a.b.c` of a JSON value (the simple JSONPath of printer columns).
pub(super) fn json_path<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.trim_start_matches('.').split('.').filter(|s| !s.is_empty()).fold(v, |v, k| &v[k])
}

/// `2026-01-02T03:04:05Z` (how the API server writes timestamps) as a time.
pub(super) fn parse_timestamp(s: &str) -> Option<time::OffsetDateTime> {
    let (date, clock) = s.strip_suffix('Z')?.split_once('T')?;
    let d: Vec<i64> = date.split('-').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let c: Vec<u8> = clock.split('.').next()?.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let (&[y, mo, day], &[h, mi, sec]) = (d.as_slice(), c.as_slice()) else { return None };
    let date = time::Date::from_calendar_date(y as i32, time::Month::try_from(mo as u8).ok()?, day as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, time::Time::from_hms(h, mi, sec).ok()?).assume_utc())
}

pub(super) fn age(created: Option<&str>) -> String {
    let Some(t) = created.and_then(parse_timestamp) else {
        return "<unknown>".into();
    };
    let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

pub(super) fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders `objects` with the default (priority 0) printer columns of `crd`, as `kubectl get` does.
pub(super) fn table(crd: &CustomResourceDefinition, objects: &[DynamicObject]) -> String {
    let columns: Vec<_> = crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .and_then(|v| v.additional_printer_columns.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.priority.unwrap_or(0) == 0)
        .collect();
    let mut rows = vec![
        std::iter::once("NAME".to_string()).chain(columns.iter().map(|c| c.name.to_uppercase())).collect::<Vec<_>>(),
    ];
    for o in objects {
        let value = serde_json::to_value(o).unwrap_or_default();
        let mut row = vec![o.name_any()];
        for c in &columns {
            let v = json_path(&value, &c.json_path);
            row.push(if c.type_ == "date" { age(v.as_str()) } else { cell(v) });
        }
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            cells.join("   ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) async fn summary(
    client: &Client,
    dir: &Path,
    kubeconfig: &Path,
    target: &str,
    operator_ns: &str,
    demo: &DemoState,
) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let clusters = olm::aerospike_clusters(client, target).list(&ListParams::default()).await?.items;
    let csvs = olm::olm_api(client, OlmKind::ClusterServiceVersion, Some(operator_ns))
        .list(&ListParams::default())
        .await?
        .items;
    println!("$ kubectl get aerospikeclusters -n {target}");
    println!("{}\n", table(&crds.get("aerospikeclusters.asdb.aerospike.com").await?, &clusters));
    println!("$ kubectl get csv -n {operator_ns}");
    println!("{}\n", table(&crds.get("clusterserviceversions.operators.coreos.com").await?, &csvs));
    println!(
        "The operator runs on the host (pid {}, WATCH_NAMESPACE={}, log {}).",
        demo.operator.pid,
        demo.watch_namespace,
        demo.operator.log.display()
    );
    println!("Look around:    export KUBECONFIG={}", kubeconfig.display());
    println!("State and logs: {}", dir.display());
    println!("Stop it all:    cargo xtask demo down{}", state_dir_flag(dir));
    Ok(())
}
