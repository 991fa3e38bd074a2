//! Aerospike's official Python client (PyPI `aerospike`, pinned), installed on demand into a virtual environment
//! under the tool cache, for tests that let it judge the simulator. Never skipped: a missing Python client is
//! installed (pip from PyPI), and a failure to install is an error that says why.
//!
//! Layout: `<tool cache>/python-aerospike-<version>/` holds the venv; `.complete` is written last, so an interrupted
//! install is redone; `<tool cache>/locks/python-aerospike.lock` makes parallel tests install once.
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::tools::cache_root;

/// The pinned client: the newest release with a CPython 3.11 manylinux wheel here.
pub const PYTHON_CLIENT_VERSION: &str = "19.3.0";

/// The Python interpreter of the venv with the pinned `aerospike` module, installing it the first time.
/// The base interpreter is `$AKO_PYTHON` or `python3` (a CPython the wheel exists for).
pub fn ensure_python_client() -> Result<PathBuf> {
    let root = cache_root()?;
    let dir = root.join(format!("python-aerospike-{PYTHON_CLIENT_VERSION}"));
    let python = dir.join("bin").join("python");
    let stamp = dir.join(".complete");
    if stamp.is_file() {
        return Ok(python);
    }
    let locks = root.join("locks");
    fs::create_dir_all(&locks).with_context(|| format!("creating {}", locks.display()))?;
    let lock_path = locks.join("python-aerospike.lock");
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    if stamp.is_file() {
        return Ok(python); // another test installed it while we waited
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing the incomplete {}", dir.display()))?;
    }
    let base = std::env::var("AKO_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into());
    run(Command::new(&base).arg("-m").arg("venv").arg(&dir), "creating the venv")?;
    let requirement = format!("aerospike=={PYTHON_CLIENT_VERSION}");
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"])
            .arg(&requirement),
        &format!("pip install {requirement}"),
    )?;
    run(Command::new(&python).args(["-c", "import aerospike"]), "importing the installed client")?;
    fs::write(&stamp, format!("{requirement}\n")).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(python)
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output().with_context(|| format!("{what}: starting {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Runs `script` with the Python client's interpreter and `args`; returns its standard output (an error with
/// both streams when it fails).
pub fn run_python_judge(script: &Path, args: &[String]) -> Result<String> {
    let python = ensure_python_client()?;
    let output = Command::new(&python)
        .arg(script)
        .args(args)
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}):\n{}{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
