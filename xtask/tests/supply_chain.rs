//! The dependency tree against deny.toml (issue 18, item 12), with the pinned cargo-deny built on demand.
use xtask::deny::{self, Advisories};

#[test]
fn dependencies_pass_cargo_deny() {
    let report = deny::check(&xtask::project::default_root()).unwrap_or_else(|e| panic!("{e:#}"));
    let duplicates = report.tree.lines().filter(|l| l.starts_with("warning[duplicate]")).count();
    eprintln!("cargo deny: licences, bans, sources pass; {duplicates} crates in more than one version");
    match report.advisories {
        Advisories::Checked(_) => eprintln!("cargo deny: advisories pass"),
        // Documented in README: no github.com here, so no RustSec database unless AKO_ADVISORY_DB names a copy.
        Advisories::Skipped(why) => eprintln!("cargo deny: advisories SKIPPED: {why}"),
    }
}
