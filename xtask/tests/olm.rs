//! The OLM packaging end to end: committed files match the generators, output is deterministic, the upgrade
//! graph is checked, bad input is refused with nothing written, and the ecosystem's own validators agree
//! (operator-sdk and opm are built on demand through `ako_testbed::tools::ensure`, never skipped).
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ako_testbed::tools::{self, Tool};
use xtask::commands::manifests;
use xtask::out::Staged;
use xtask::packaging::bundle::scorecard_checks as scorecard;
use xtask::packaging::bundle::{self, BundleArgs};
use xtask::packaging::catalog::{self, Catalog};
use xtask::packaging::{graph, validate};
use xtask::project::{self, PACKAGE, paths};

fn repo() -> PathBuf {
    project::default_root()
}

fn copy_dir(from: &Path, to: &Path) {
    for rel in xtask::out::walk(from).unwrap() {
        let dst = to.join(&rel);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(from.join(&rel), dst).unwrap();
    }
}

/// A scratch copy of the repository's generated and source files for OLM (config/, bundle/, catalog/).
fn temp_copy(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-olm-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    for d in ["config", paths::SCORECARD, paths::BUNDLE, paths::CATALOG] {
        copy_dir(&repo().join(d), &dir.join(d));
    }
    for f in [paths::BUNDLE_DOCKERFILE, paths::CATALOG_DOCKERFILE] {
        fs::copy(repo().join(f), dir.join(f)).unwrap();
    }
    dir
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    xtask::out::walk(dir).unwrap().into_iter().map(|rel| (rel.clone(), fs::read(dir.join(&rel)).unwrap())).collect()
}

fn args(version: &str) -> BundleArgs {
    BundleArgs { version: Some(version.into()), channels: "stable".into(), ..Default::default() }
}

/// `cargo xtask bundle` + `cargo xtask catalog` in `root`.
fn release(root: &Path, args: &BundleArgs) {
    bundle::write(root, args).unwrap();
    catalog::write(root, &Default::default(), None).unwrap();
}

fn name(v: &str) -> String {
    format!("{PACKAGE}.v{v}")
}

/// A catalog with v0.1.0 and v0.2.0 (committed; re-bundling the head changes nothing) and v0.3.0 (skipRange) in
/// channel stable.
fn three_versions(tag: &str) -> PathBuf {
    let root = temp_copy(tag);
    release(&root, &args("0.2.0"));
    release(&root, &BundleArgs { skip_range: Some(">=0.1.0 <0.3.0".into()), ..args("0.3.0") });
    root
}

fn err_of<T>(r: anyhow::Result<T>) -> String {
    match r {
        Ok(_) => panic!("should fail"),
        Err(e) => format!("{e:#}"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Drift and determinism.

#[test]
fn committed_files_match_the_generators() {
    let drift = validate::drift(&repo()).unwrap();
    assert!(
        drift.is_empty(),
        "generated files are out of date; run `cargo xtask manifests && cargo xtask examples && cargo xtask bundle \
         && cargo xtask catalog`:\n  {}",
        drift.join("\n  ")
    );
    assert!(repo().join(paths::CSV_BASE).is_file());
}

/// Every folder a generator owns is checked for left-over files, from the generators' own list (config/webhook
/// was missed by a hand-written one).
#[test]
fn a_stale_file_in_any_generated_folder_is_drift() {
    let root = temp_copy("stale");
    for dir in ["config/webhook", "config/crd", paths::BUNDLE] {
        fs::write(root.join(dir).join("stale.yaml"), "kind: Leftover\n").unwrap();
    }
    let drift = validate::drift(&root).unwrap();
    for dir in ["config/webhook", "config/crd", paths::BUNDLE] {
        let stale = format!("{dir}/stale.yaml: not generated any more (stale)");
        assert!(drift.iter().any(|d| d == &stale), "{stale} not reported: {drift:?}");
    }
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn two_runs_write_the_same_bytes() {
    let a = validate::regenerate(&repo()).unwrap();
    let b = validate::regenerate(&repo()).unwrap();
    assert_eq!(a.files(), b.files());
    // Through the file system too: two scratch trees written by the commands.
    let (x, y) = (temp_copy("det-a"), temp_copy("det-b"));
    for root in [&x, &y] {
        manifests::run(root, &Default::default()).unwrap();
        xtask::packaging::examples::write(root).unwrap();
        release(root, &args("0.2.0"));
    }
    assert_eq!(snapshot(&x), snapshot(&y));
    let csv = fs::read_to_string(x.join("bundle/manifests").join(bundle::CSV_FILE)).unwrap();
    assert!(!csv.contains("createdAt"), "createdAt only when asked for");
    for d in [x, y] {
        fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn created_at_only_with_the_flag() {
    let root = temp_copy("created-at");
    let (staged, _) =
        bundle::generate(&root, &BundleArgs { created_at: Some("2026-01-02T03:04:05Z".into()), ..args("0.1.0") })
            .unwrap();
    let csv = &staged.files()[&PathBuf::from("bundle/manifests").join(bundle::CSV_FILE)];
    // A string annotation (quoted: unquoted, YAML 1.1 readers would take it for a timestamp).
    let doc: serde_json::Value = xtask::out::parse_yaml(&String::from_utf8_lossy(csv)).unwrap();
    assert_eq!(doc["metadata"]["annotations"]["createdAt"], "2026-01-02T03:04:05Z");
    fs::remove_dir_all(root).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// The upgrade graph.

#[test]
fn three_releases_append_and_move_the_head() {
    let root = temp_copy("three");
    let v1_file = root.join(paths::CATALOG_PACKAGE).join(format!("bundles/{}.yaml", name("0.1.0")));
    let v1 = fs::read(&v1_file).unwrap();
    release(&root, &args("0.2.0"));
    let v2_file = root.join(paths::CATALOG_PACKAGE).join(format!("bundles/{}.yaml", name("0.2.0")));
    let v2 = fs::read(&v2_file).unwrap();
    release(&root, &BundleArgs { skip_range: Some(">=0.1.0 <0.3.0".into()), ..args("0.3.0") });
    // Earlier releases stay byte for byte.
    assert_eq!(fs::read(&v1_file).unwrap(), v1);
    assert_eq!(fs::read(&v2_file).unwrap(), v2);

    let cat = Catalog::load(&root, paths::CATALOG).unwrap();
    assert_eq!(cat.head("stable"), Some(name("0.3.0")));
    let entries = &cat.channel("stable").unwrap().doc.entries;
    let chain: Vec<(String, Option<String>)> = entries.iter().map(|e| (e.name.clone(), e.replaces.clone())).collect();
    assert_eq!(
        chain,
        vec![(name("0.1.0"), None), (name("0.2.0"), Some(name("0.1.0"))), (name("0.3.0"), Some(name("0.2.0"))),]
    );
    assert_eq!(entries[2].skip_range.as_deref(), Some(">=0.1.0 <0.3.0"));
    assert!(graph::check(&cat).is_empty(), "{:?}", graph::check(&cat));
    // Running catalog again changes nothing.
    let before = snapshot(&root.join(paths::CATALOG));
    catalog::write(&root, &Default::default(), None).unwrap();
    assert_eq!(snapshot(&root.join(paths::CATALOG)), before);
    // The real opm agrees.
    let opm = tools::ensure(Tool::Opm).unwrap();
    validate::opm_validate(&opm, &root.join(paths::CATALOG)).unwrap();
    fs::remove_dir_all(root).unwrap();
}

/// Rewrites the channel of a scratch catalog with `edit` and returns (our errors, opm's verdict).
fn mutated(tag: &str, edit: impl Fn(&mut Vec<catalog::ChannelEntry>)) -> (Vec<String>, anyhow::Result<String>) {
    let root = three_versions(tag);
    let mut cat = Catalog::load(&root, paths::CATALOG).unwrap();
    let c = cat.channels.iter_mut().find(|c| c.doc.name == "stable").unwrap();
    edit(&mut c.doc.entries);
    c.raw = None;
    let errors = graph::check(&cat);
    let mut staged = Staged::new(&root);
    catalog::stage(&cat, &mut staged, paths::CATALOG, false).unwrap();
    staged.commit().unwrap();
    let opm = tools::ensure(Tool::Opm).unwrap();
    let verdict = validate::opm_validate(&opm, &root.join(paths::CATALOG));
    fs::remove_dir_all(root).unwrap();
    (errors, verdict)
}

fn entry<'a>(entries: &'a mut [catalog::ChannelEntry], v: &str) -> &'a mut catalog::ChannelEntry {
    entries.iter_mut().find(|e| e.name == name(v)).unwrap()
}

#[test]
fn graph_rejects_a_cycle() {
    let (errors, opm) = mutated("cycle", |e| entry(e, "0.1.0").replaces = Some(name("0.3.0")));
    assert!(errors.iter().any(|e| e.contains("replaces cycle")), "{errors:?}");
    assert!(opm.is_err(), "opm validate should refuse a cycle too");
}

#[test]
fn graph_rejects_a_missing_target() {
    let (errors, opm) = mutated("missing", |e| entry(e, "0.2.0").replaces = Some(name("0.0.9")));
    assert!(
        errors.iter().any(|e| e.contains(&format!("replaces {}, which is not in the channel", name("0.0.9")))),
        "{errors:?}"
    );
    // opm tolerates a replaces target outside the catalog (it only strands v0.1.0 here); ours is stricter.
    let _ = opm;
    let (errors, _) = mutated("missing-skip", |e| entry(e, "0.3.0").skips = vec![name("0.0.7")]);
    assert!(errors.iter().any(|e| e.contains("skips") && e.contains("not in the channel")), "{errors:?}");
}

#[test]
fn graph_rejects_two_heads() {
    let (errors, opm) = mutated("two-heads", |e| entry(e, "0.3.0").replaces = Some(name("0.1.0")));
    assert!(errors.iter().any(|e| e.contains("2 heads")), "{errors:?}");
    assert!(opm.is_err(), "opm validate should refuse two heads too");
}

#[test]
fn graph_rejects_decreasing_versions_and_a_missing_default_channel() {
    let (errors, _) = mutated("decreasing", |e| {
        entry(e, "0.2.0").replaces = Some(name("0.3.0"));
        entry(e, "0.3.0").replaces = None;
        entry(e, "0.1.0").replaces = Some(name("0.2.0"));
    });
    assert!(errors.iter().any(|e| e.contains("versions must increase")), "{errors:?}");

    let root = three_versions("default-channel");
    let mut cat = Catalog::load(&root, paths::CATALOG).unwrap();
    cat.packages[0].doc.default_channel = "fast".into();
    let errors = graph::check(&cat);
    assert!(errors.iter().any(|e| e.contains("defaultChannel fast is not a channel")), "{errors:?}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn released_bundles_are_immutable() {
    let root = three_versions("immutable");
    let base = root.join(paths::CSV_BASE);
    let text = fs::read_to_string(&base)
        .unwrap()
        .replace("displayName: Aerospike Kubernetes Operator", "displayName: Changed");
    fs::write(&base, text).unwrap();
    bundle::write(&root, &args("0.2.0")).unwrap();
    let before = snapshot(&root.join(paths::CATALOG));
    let e = err_of(catalog::with_release(&root));
    assert!(e.contains("already released") && e.contains(&name("0.2.0")), "{e}");
    assert!(catalog::write(&root, &Default::default(), None).is_err());
    assert_eq!(snapshot(&root.join(paths::CATALOG)), before, "nothing written");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn default_replaces_is_the_channel_head() {
    let root = three_versions("default-replaces");
    let p = bundle::plan(&root, &args("0.4.0")).unwrap();
    assert_eq!(p.release.replaces, Some(name("0.3.0")));
    // Re-bundling a release keeps its place in the graph.
    let p = bundle::plan(&root, &args("0.2.0")).unwrap();
    assert_eq!(p.release.replaces, Some(name("0.1.0")));
    let p = bundle::plan(&root, &BundleArgs { replaces: Some("0.1.0".into()), ..args("0.4.0") }).unwrap();
    assert_eq!(p.release.replaces, Some(name("0.1.0")));
    fs::remove_dir_all(root).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input: a clear error naming the file and field, nothing half-written.

fn assert_refused(root: &Path, args: &BundleArgs, needles: &[&str]) {
    let before = snapshot(root);
    let e = err_of(bundle::write(root, args));
    for n in needles {
        assert!(e.contains(n), "error {e:?} should mention {n:?}");
    }
    assert_eq!(snapshot(root), before, "nothing may be written on error");
}

#[test]
fn bad_versions_and_flags_are_refused() {
    let root = temp_copy("bad-flags");
    assert_refused(&root, &args("1.2"), &["--version `1.2`", "semantic version"]);
    assert_refused(&root, &args("0.1.0-"), &["--version"]);
    assert_refused(
        &root,
        &BundleArgs { replaces: Some("0.0.9".into()), ..args("0.2.0") },
        &["--replaces", &name("0.0.9"), "not in"],
    );
    assert_refused(&root, &BundleArgs { replaces: Some("0.3.0".into()), ..args("0.2.0") }, &["--replaces"]);
    assert_refused(&root, &args("0.0.1"), &["not newer than", &name("0.2.0")]);
    assert_refused(
        &root,
        &BundleArgs { skip_range: Some(">=x <0.2.0".into()), ..args("0.2.0") },
        &["--skip-range", ">=x"],
    );
    assert_refused(
        &root,
        &BundleArgs { default_channel: Some("fast".into()), ..args("0.2.0") },
        &["--default-channel `fast`", "not one of"],
    );
    assert_refused(&root, &BundleArgs { channels: "stable,bad channel".into(), ..args("0.2.0") }, &["--channels"]);
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_sample_that_does_not_validate_is_refused() {
    let root = temp_copy("bad-sample");
    let file = root.join(paths::CONFIG_SAMPLES).join("asdb_v1_aerospikecluster_in_memory.yaml");
    let good = fs::read_to_string(&file).unwrap();
    fs::write(&file, good.replace("size: 3", "size: 0\n  sise: 3")).unwrap();
    assert_refused(
        &root,
        &args("0.2.0"),
        &[
            "config/samples/asdb_v1_aerospikecluster_in_memory.yaml",
            "spec.size: 0 is below the minimum 1",
            "spec.sise: unknown field",
        ],
    );
    fs::write(&file, good.replace("name: aerospike-config-secret", "name: Bad_Name")).unwrap();
    assert_refused(&root, &args("0.2.0"), &["spec.storage.volumes[0].name", "does not match the pattern"]);
    fs::write(&file, good.replace("size: 3", "size: three")).unwrap();
    assert_refused(&root, &args("0.2.0"), &["spec.size: must be of type integer"]);
    // aerospikeConfig is free-form: the CRD cannot judge its contents (the webhook does), so this passes.
    fs::write(&file, good.replace("type: memory", "type: 7")).unwrap();
    bundle::generate(&root, &args("0.2.0")).unwrap();
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_bad_csv_base_names_the_field() {
    let root = temp_copy("bad-base");
    let base = root.join(paths::CSV_BASE);
    let good = fs::read_to_string(&base).unwrap();
    fs::write(&base, good.replace("  maintainers:", "  maintainer:")).unwrap();
    assert_refused(&root, &args("0.2.0"), &[paths::CSV_BASE, "maintainer"]);
    let bad = good.replace("capabilities: Deep Insights", "capabilities: Everything");
    assert_ne!(bad, good);
    fs::write(&base, bad).unwrap();
    assert_refused(&root, &args("0.2.0"), &[paths::CSV_BASE, "metadata.annotations.capabilities `Everything`"]);
    fs::write(&base, good.replace("mediatype: image/svg+xml", "mediatype: image/bmp")).unwrap();
    assert_refused(&root, &args("0.2.0"), &[paths::CSV_BASE, "spec.icon[0].mediatype"]);
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_channel_with_two_heads_is_refused() {
    let root = three_versions("two-heads-input");
    let channels = root.join(paths::CATALOG_PACKAGE).join("channels.yaml");
    let text = fs::read_to_string(&channels).unwrap();
    // v0.2.0 no longer replaces v0.1.0: v0.1.0 and v0.3.0 are both heads.
    let broken = text.replacen(&format!("\n  replaces: {}", name("0.1.0")), "", 1);
    assert_ne!(text, broken);
    fs::write(&channels, broken).unwrap();
    // bundle cannot pick a head to replace, catalog refuses to add to a broken graph, validate reports it.
    let e = err_of(catalog::with_release(&root));
    assert!(e.contains("channels.yaml: channel stable: 2 heads"), "{e}");
    let cat = Catalog::load(&root, paths::CATALOG).unwrap();
    assert_eq!(cat.head("stable"), None);
    fs::remove_dir_all(root).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Scorecard static checks.

#[test]
fn scorecard_static_checks_pass_and_catch_gaps() {
    let contents = bundle::read_dir(&repo().join(paths::BUNDLE)).unwrap();
    for r in scorecard::check(&contents) {
        assert!(r.errors.is_empty(), "{}: {:?}", r.test, r.errors);
    }
    let mut broken = contents.clone();
    let owned = &mut broken.csv["spec"]["customresourcedefinitions"]["owned"][0];
    owned["statusDescriptors"] = serde_json::json!([]);
    owned["resources"] = serde_json::json!([]);
    let failed: Vec<&str> =
        scorecard::check(&broken).into_iter().filter(|r| !r.errors.is_empty()).map(|r| r.test).collect();
    assert_eq!(failed, vec!["olm-crds-have-resources", "olm-status-descriptors"]);
}

// ---------------------------------------------------------------------------------------------------------------
// The ecosystem's validators (built on demand).

#[test]
fn operator_sdk_validates_the_bundle_without_warnings() {
    let sdk = tools::ensure(Tool::OperatorSdk).unwrap();
    let out = validate::operator_sdk_validate(&sdk, &repo().join(paths::BUNDLE)).unwrap();
    assert!(out.contains("All validation tests have completed successfully"), "{out}");
}

#[test]
fn opm_validates_the_catalog() {
    let opm = tools::ensure(Tool::Opm).unwrap();
    validate::opm_validate(&opm, &repo().join(paths::CATALOG)).unwrap();
}

#[test]
fn opm_render_of_the_bundle_equals_the_catalog_entry() {
    let opm = tools::ensure(Tool::Opm).unwrap();
    let theirs = validate::opm_render(&opm, &repo().join(paths::BUNDLE)).unwrap();
    let ours = validate::catalog_entry_image_less(&repo(), &repo().join(paths::BUNDLE)).unwrap();
    assert_eq!(theirs, ours);
    // Our own renderer gives the same (so `catalog` needs no opm).
    assert_eq!(catalog::render_bundle_dir(&repo().join(paths::BUNDLE), "").unwrap(), theirs);
}

#[test]
fn manifests_only_catalog_is_served_without_images() {
    let root = three_versions("manifests-only");
    let out = root.join("served");
    catalog::write(&root, &catalog::CatalogArgs { manifests_only: true, out: out.clone() }, None).unwrap();
    let cat = Catalog::load(&out, ".").unwrap();
    assert_eq!(cat.bundles.len(), 3);
    for b in &cat.bundles {
        assert_eq!(b.doc.image, "");
        assert!(b.doc.objects().unwrap().iter().any(|o| o["kind"] == "ClusterServiceVersion"));
        assert!(b.doc.related_images.iter().all(|r| !r.image.contains("-bundle:")));
    }
    let opm = tools::ensure(Tool::Opm).unwrap();
    validate::opm_validate(&opm, &out).unwrap();
    fs::remove_dir_all(root).unwrap();
}
