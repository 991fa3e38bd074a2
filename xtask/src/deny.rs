//! The dependency tree checked (`cargo xtask deny`) against `deny.toml` by the pinned cargo-deny: licences, bans
//! (wildcards, duplicate versions listed), sources (crates.io only) and RustSec advisories.
//!
//! The advisory database is a git repository on github.com. Where it cannot be fetched (this project's build
//! machines resolve no github.com), the advisories check is reported as skipped with the reason, never passed
//! silently; `AKO_ADVISORY_DB` names another copy (a git URL or a local repository path).
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use ako_testbed::tools;

/// What one run found.
#[derive(Debug)]
pub struct Report {
    /// Output of `check bans licenses sources` (warnings included: the duplicate versions).
    pub tree: String,
    /// Advisories: checked (its output) or skipped (why).
    pub advisories: Advisories,
}

#[derive(Debug)]
pub enum Advisories {
    Checked(String),
    Skipped(String),
}

fn cargo_deny(bin: &Path, root: &Path, config: &Path, offline: bool, args: &[&str]) -> Result<(bool, String)> {
    let output = Command::new(bin)
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .args(["--workspace", "--color", "never", "--config"])
        .arg(config)
        .args(offline.then_some("--offline"))
        .arg("check")
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Ok((output.status.success(), text))
}

/// Whether cargo-deny failed only because the advisory database could not be fetched (as opposed to finding an
/// advisory): the fetch errors it prints.
fn fetch_failed(output: &str) -> bool {
    let lower = output.to_ascii_lowercase();
    [
        "failed to fetch",
        "could not resolve host",
        "failed to resolve address",
        "unable to fetch",
        "failed to load advisory database",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// Runs every check. Fails when licences, bans or sources fail, or when an advisory applies.
pub fn check(root: &Path) -> Result<Report> {
    let bin = tools::ensure_cargo_deny()?;
    let config = root.join("deny.toml");
    let (ok, tree) = cargo_deny(&bin, root, &config, false, &["bans", "licenses", "sources"])?;
    if !ok {
        bail!("cargo deny check bans licenses sources failed:\n{tree}");
    }
    let advisories = match std::env::var("AKO_ADVISORY_DB").ok().filter(|v| !v.is_empty()) {
        Some(source) => {
            let text = check_with_copy(&bin, root, &config, &source)?;
            Advisories::Checked(text)
        }
        None => {
            let (ok, text) = cargo_deny(&bin, root, &config, false, &["advisories"])?;
            match (ok, fetch_failed(&text)) {
                (true, _) => Advisories::Checked(text),
                (false, true) => Advisories::Skipped(format!(
                    "the RustSec advisory database could not be fetched (set AKO_ADVISORY_DB to a copy):\n{}",
                    text.lines().filter(|l| !l.trim().is_empty()).take(6).collect::<Vec<_>>().join("\n")
                )),
                (false, false) => bail!("cargo deny check advisories failed:\n{text}"),
            }
        }
    };
    Ok(Report { tree, advisories })
}

/// Advisories from a copy of the database (`source`: a git URL or a local repository): cargo-deny accepts only
/// network URLs for its databases, so the copy is cloned where it would put the official one (the folder named in
/// its fetch error, under target/advisory-dbs) and the check runs offline.
fn check_with_copy(bin: &Path, root: &Path, config: &Path, source: &str) -> Result<String> {
    let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let dbs = root.join("target").join("advisory-dbs");
    let Some(at) = text.find("[advisories]\n") else { bail!("{}: no [advisories] table", config.display()) };
    let at = at + "[advisories]\n".len();
    let local = root.join("target").join("deny-with-advisory-db.toml");
    std::fs::create_dir_all(&dbs)?;
    std::fs::write(&local, format!("{}db-path = {:?}\n{}", &text[..at], dbs.display().to_string(), &text[at..]))?;
    let (ok, first) = cargo_deny(bin, root, &local, false, &["advisories"])?;
    if ok {
        return Ok(first);
    }
    // The folder cargo-deny tried to clone into: `<dbs>/advisory-db-<hash>`.
    let prefix = dbs.join("advisory-db-").display().to_string();
    let Some(start) = first.find(&prefix) else {
        bail!("cargo deny check advisories failed before fetching:\n{first}")
    };
    let dir: String =
        first[start..].chars().take_while(|c| !matches!(c, '"' | '\'' | ' ' | '\n' | ']' | ',')).collect();
    let _ = std::fs::remove_dir_all(&dir);
    let status = Command::new("git")
        .args(["clone", "--quiet", "--depth=1", "--branch", "main"])
        .arg(if source.contains("://") { source.to_string() } else { format!("file://{source}") })
        .arg(&dir)
        .status()
        .context("running git clone")?;
    if !status.success() {
        bail!("git clone {source} {dir}: {status}");
    }
    let (ok, text) = cargo_deny(bin, root, &local, true, &["advisories"])?;
    if !ok {
        bail!("cargo deny check advisories (database {source}) failed:\n{text}");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_failure_is_told_apart_from_an_advisory() {
        assert!(fetch_failed("error: failed to fetch advisory database: Could not resolve host: github.com"));
        assert!(!fetch_failed("error[vulnerability]: Use-after-free in foo\n  ID: RUSTSEC-2024-0001"));
    }
}
