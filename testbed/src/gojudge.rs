//! Small Go programs kept in the repository (with a pinned go.mod and go.sum), built on demand into the tool cache:
//! the official Aerospike Go client's judge of the simulator (simulator/tests/judges/go). Never skipped: a missing
//! binary is built with the machine's Go (modules from the Go module proxy, checked against go.sum), and a failed
//! build is an error that says why.
//!
//! Layout: `<tool cache>/go-programs/<name>-<hash of the sources>/<name>`, so an edited program is rebuilt;
//! `<tool cache>/locks/go-program-<name>.lock` makes parallel tests build once.
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::tools::cache_root;

/// Builds the Go main package in `src` (go.mod, go.sum and *.go files, no sub-folders) unless this exact source is
/// built already; returns the binary.
pub fn ensure_go_program(src: &Path, name: &str) -> Result<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(src)
        .with_context(|| format!("reading {}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "go") || p.ends_with("go.mod") || p.ends_with("go.sum"))
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for f in &files {
        hash.update(f.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
        hash.update(fs::read(f).with_context(|| format!("reading {}", f.display()))?);
    }
    let digest = hex::encode(&hash.finalize()[..8]);
    let root = cache_root()?;
    let dir = root.join("go-programs").join(format!("{name}-{digest}"));
    let binary = dir.join(name);
    if binary.is_file() {
        return Ok(binary);
    }
    let locks = root.join("locks");
    fs::create_dir_all(&locks).with_context(|| format!("creating {}", locks.display()))?;
    let lock_path = locks.join(format!("go-program-{name}.lock"));
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    if binary.is_file() {
        return Ok(binary); // built by another test while we waited
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let partial = dir.join(format!("{name}.partial"));
    let output = Command::new("go")
        .args(["build", "-trimpath", "-o"])
        .arg(&partial)
        .arg(".")
        .current_dir(src)
        // The tool cache's module and build caches, as tools.rs uses them; go.sum pins every module (readonly).
        .env("GOMODCACHE", root.join("go").join("mod"))
        .env("GOCACHE", root.join("go").join("build"))
        .env("GOFLAGS", "-mod=readonly -modcacherw -buildvcs=false")
        .env("GOTOOLCHAIN", "local")
        .env("GOWORK", "off")
        .env("CGO_ENABLED", "0")
        .env_remove("GOOS")
        .env_remove("GOARCH")
        .stdin(Stdio::null())
        .output()
        .context("starting `go build` (Go must be installed and on PATH)")?;
    if !output.status.success() {
        bail!(
            "`go build` of {} failed ({}):\n{}{}",
            src.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    fs::rename(&partial, &binary).with_context(|| format!("moving {} into place", binary.display()))?;
    Ok(binary)
}

/// Builds (if needed) and runs the Go program in `src` with `args`; returns its standard output (an error with both
/// streams when it fails).
pub fn run_go_program(src: &Path, name: &str, args: &[String]) -> Result<String> {
    let binary = ensure_go_program(src, name)?;
    let output = Command::new(&binary).args(args).output().with_context(|| format!("running {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}):\n{}{}",
            binary.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
