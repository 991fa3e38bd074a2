//! Building the operator binary: the one `cargo build -p aerospike-kubernetes-operator` every command uses (the
//! image's static release build, the bench's and the demo's host builds).
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::image::spec::{host_target, operator_rustflags};
use crate::project::PACKAGE;

/// What receives each line of cargo's messages.
pub type OnLine<'a> = &'a mut dyn FnMut(&str);

/// How to build the operator.
#[derive(Default)]
pub struct OperatorBuild<'a> {
    /// `--release` (else the debug profile).
    pub release: bool,
    /// The image's build: `--locked --target <host>` with crt-static (static glibc) and the checkout and cargo
    /// home mapped to fixed paths, so the binary does not depend on where they are. `--target` keeps the static
    /// flag off build scripts and proc-macros (they must stay dynamic to be loaded by the compiler).
    pub static_glibc: bool,
    /// Stop cargo (our own child) and fail after this long.
    pub timeout: Option<Duration>,
    /// cargo's messages: `None` passes them to our stderr; `Some((log, line))` hands each line to `line` and
    /// keeps them all in the file `log` (a failure then quotes their last 30 lines).
    pub progress: Option<(&'a Path, OnLine<'a>)>,
}

/// The static release binary of the operator image (see [`OperatorBuild::static_glibc`]).
pub fn build_operator_binary(root: &Path) -> Result<PathBuf> {
    eprintln!("image: cargo build --release --target {} -p {PACKAGE} (static glibc)...", host_target());
    build(root, OperatorBuild { release: true, static_glibc: true, ..Default::default() })
}

/// Runs the build; returns the path of the binary cargo reports.
pub fn build(root: &Path, options: OperatorBuild) -> Result<PathBuf> {
    let OperatorBuild { release, static_glibc, timeout, mut progress } = options;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["build", "-p", PACKAGE, "--message-format=json-render-diagnostics"]);
    if release {
        cmd.arg("--release");
    }
    if static_glibc {
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
            .context("neither CARGO_HOME nor HOME is set")?;
        let flags = operator_rustflags(&cargo_home.to_string_lossy(), &root.to_string_lossy());
        cmd.args(["--locked", "--target", &host_target()])
            // The encoded form keeps paths with spaces whole.
            .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"))
            .env_remove("RUSTFLAGS");
    }
    // The variables cargo sets for the program it runs (`cargo xtask`, `cargo test`): some build scripts (ring's)
    // rerun when they change, so a build from here and a plain `cargo build` would rebuild each other's.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_by_cargo = ["CARGO_PKG_", "CARGO_BIN_EXE_", "CARGO_MANIFEST_"].iter().any(|p| key.starts_with(p))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&key.as_ref());
        if set_by_cargo {
            cmd.env_remove(key.as_ref());
        }
    }
    let captured = progress.is_some();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if captured { Stdio::piped() } else { Stdio::inherit() })
        .spawn()
        .context("running cargo build")?;
    let stdout = child.stdout.take().expect("piped");
    let executable = std::thread::spawn(move || {
        let mut exe = None;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(msg) = serde_json::from_str::<Value>(&line) else { continue };
            if msg["reason"] == "compiler-artifact"
                && msg["target"]["name"] == PACKAGE
                && let Some(p) = msg["executable"].as_str()
            {
                exe = Some(PathBuf::from(p));
            }
        }
        exe
    });
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().map(|stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.trim().to_string());
                text.push_str(&line);
                text.push('\n');
            }
            text
        })
    });
    let deadline = timeout.map(|t| Instant::now() + t);
    let status = loop {
        while let Ok(line) = rx.try_recv() {
            if let Some((_, on_line)) = progress.as_mut()
                && !line.is_empty()
            {
                on_line(&line);
            }
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill(); // our own child
            let _ = child.wait();
            bail!("cargo build did not finish within {:?}", timeout.unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr_text = stderr.map(|t| t.join().unwrap_or_default()).unwrap_or_default();
    if let Some((log, _)) = &progress {
        std::fs::write(log, &stderr_text).with_context(|| format!("writing {}", log.display()))?;
    }
    let exe = executable.join().ok().flatten();
    if !status.success() {
        let tail: Vec<&str> = stderr_text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
        bail!("cargo build -p {PACKAGE} failed ({status}){}{}", if captured { ":\n" } else { "" }, tail.join("\n"));
    }
    exe.with_context(|| format!("cargo build did not report the {PACKAGE} executable"))
}
