//! Prometheus and promtool, from Debian's `prometheus` package: downloaded with `apt-get download` and unpacked
//! into the tool cache (no install, no service started). The package pins the 2.42 series: a Debian security
//! update (`+deb12uN`) is taken, another series is refused, so rules and the e2e tests see the same PromQL.
use super::*;

/// The upstream series the tests are written against.
pub const PROMETHEUS_SERIES: &str = "2.42.";
const PACKAGE: &str = "prometheus";

/// The folder holding `prometheus` and `promtool`, downloading and unpacking the package the first time.
/// Parallel callers wait for one download (a lock in the cache).
pub fn ensure_prometheus() -> Result<PathBuf> {
    let root = cache_root()?;
    fs::create_dir_all(root.join("locks"))?;
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(root.join("locks/prometheus.lock"))?;
    lock.lock().context("waiting for another prometheus download")?;
    if let Some(bin) = installed_prometheus(&root) {
        return Ok(bin);
    }
    let version = candidate_version()?;
    if !version.starts_with(PROMETHEUS_SERIES) {
        bail!("Debian offers {PACKAGE} {version}; the tests are written for {PROMETHEUS_SERIES}x");
    }
    let name = format!("prometheus-{}", version.replace([':', '+', '~'], "_"));
    let dir = root.join(&name);
    let staging = root.join(format!("{name}.partial"));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)?;
    eprintln!("downloading Debian's {PACKAGE} {version} into the tool cache (first time only)...");
    let download = || -> Result<std::process::ExitStatus> {
        Command::new("apt-get")
            .args(["download", &format!("{PACKAGE}={version}")])
            .current_dir(&staging)
            .stdin(Stdio::null())
            .status()
            .context("running apt-get download (Debian's prometheus package)")
    };
    // Package lists older than the mirror name a file it no longer has: update them once and retry.
    if !download()?.success() {
        apt_update()?;
        let status = download()?;
        if !status.success() {
            bail!("`apt-get download {PACKAGE}={version}` failed ({status})");
        }
    }
    let deb = fs::read_dir(&staging)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("apt-get download left no .deb")?;
    let unpacked = staging.join("root");
    let status = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked).status().context("running dpkg-deb")?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed ({status})", deb.display());
    }
    fs::create_dir_all(staging.join("bin"))?;
    for bin in ["prometheus", "promtool"] {
        fs::rename(unpacked.join("usr/bin").join(bin), staging.join("bin").join(bin))?;
    }
    fs::remove_dir_all(&unpacked)?;
    fs::remove_file(&deb)?;
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&staging, &dir)?;
    Ok(dir.join("bin"))
}

/// A previously unpacked 2.42 series in the cache.
fn installed_prometheus(root: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.starts_with(&format!("prometheus-{PROMETHEUS_SERIES}")) && !name.ends_with(".partial")
        })
        .map(|p| p.join("bin"))
        .filter(|b| b.join("promtool").is_file() && b.join("prometheus").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The version apt would download (`apt-cache policy`), updating the package lists once if it knows none.
fn candidate_version() -> Result<String> {
    let read = || -> Result<Option<String>> {
        let out = Command::new("apt-cache").args(["policy", PACKAGE]).output().context("running apt-cache")?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Candidate:"))
            .map(|v| v.trim().to_string())
            .filter(|v| v != "(none)" && !v.is_empty()))
    };
    if let Some(v) = read()? {
        return Ok(v);
    }
    apt_update()?;
    read()?.with_context(|| format!("Debian's package lists have no {PACKAGE}"))
}

fn apt_update() -> Result<()> {
    let status = Command::new("apt-get")
        .args(["-o", "DPkg::Lock::Timeout=600", "update"])
        .stdin(Stdio::null())
        .status()
        .context("running apt-get update")?;
    if !status.success() {
        bail!("apt-get update failed ({status}); it needs root and a reachable Debian mirror");
    }
    Ok(())
}
