//! Pinned third-party tools (opm, operator-sdk, the Kubernetes control plane, etcd, kwok, OLM), built from their
//! Go modules into a per-machine cache outside the repository.
//!
//! Why build from source: the project's machines reach package registries (the Go module proxy among them) but
//! no release downloads, container registries or Docker, so the ecosystem's tools arrive as Go modules. Every
//! build is pinned and happens once per machine; every clone and test run then shares it. Layout of the cache:
//!
//! ```text
//! <root>                      $AKO_TOOLS_DIR, else $XDG_CACHE_HOME/aerospike-kubernetes-operator/tools,
//!                             else ~/.cache/aerospike-kubernetes-operator/tools
//!   go/mod, go/build          GOMODCACHE and GOCACHE, so a warm machine rebuilds nothing for a clean clone
//!   locks/<unit>.lock         one exclusive lock per build unit: parallel tests build a tool only once
//!   kubernetes-v1.33.13/      one folder per build unit and version
//!     src/go.mod              generated wrapper module (the `go build` runs here)
//!     bin/kube-apiserver ...  the binaries
//!     build.log               full output of the last build
//!     stamp.json              written last, only after a successful build: without it the build is redone
//! ```
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

// Pinned versions. Each was checked to resolve on the module proxy and to build with the machine's Go.
/// operator-registry (opm).
const OPM_VERSION: &str = "v1.60.0";
/// operator-sdk: v1.42.0 and v1.42.1 are refused by the proxy here; v1.42.2 is served.
const OPERATOR_SDK_VERSION: &str = "v1.42.2";
/// Our Rust client targets Kubernetes 1.33, so 1.33 is the oldest control plane we test against.
const KUBERNETES_VERSION: &str = "v1.33.13";
/// The etcd that Kubernetes v1.33.13 itself requires (its go.mod pins go.etcd.io/etcd/* v3.5.21).
const ETCD_VERSION: &str = "v3.5.21";
/// v0.7 still has built-in fast stages (nodes Ready, bound pods Running); v0.8+ needs an explicit stages config.
const KWOK_VERSION: &str = "v0.7.0";
/// operator-lifecycle-manager (olm and catalog).
const OLM_VERSION: &str = "v0.38.0";
/// The github.com/operator-framework/api that OLM v0.38.0 requires; its crds/ are the CRDs OLM ships.
const OLM_API_VERSION: &str = "v0.36.0";

/// Bump when the way a unit is built changes (wrapper generation, flags), so stamps of older builds stop matching.
const RECIPE_REVISION: u32 = 1;

/// A third-party tool this project runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tool {
    Opm,
    OperatorSdk,
    KubeApiserver,
    KubeControllerManager,
    KubeScheduler,
    Etcd,
    Kwok,
    Olm,
    Catalog,
}

impl Tool {
    pub const ALL: [Tool; 9] = [
        Tool::Opm,
        Tool::OperatorSdk,
        Tool::KubeApiserver,
        Tool::KubeControllerManager,
        Tool::KubeScheduler,
        Tool::Etcd,
        Tool::Kwok,
        Tool::Olm,
        Tool::Catalog,
    ];

    /// The binary's name, also the name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Opm => "opm",
            Tool::OperatorSdk => "operator-sdk",
            Tool::KubeApiserver => "kube-apiserver",
            Tool::KubeControllerManager => "kube-controller-manager",
            Tool::KubeScheduler => "kube-scheduler",
            Tool::Etcd => "etcd",
            Tool::Kwok => "kwok",
            Tool::Olm => "olm",
            Tool::Catalog => "catalog",
        }
    }

    /// The pinned version (the Go module's tag).
    pub fn version(self) -> &'static str {
        self.unit().version()
    }

    fn unit(self) -> Unit {
        match self {
            Tool::Opm => Unit::Opm,
            Tool::OperatorSdk => Unit::OperatorSdk,
            Tool::KubeApiserver | Tool::KubeControllerManager | Tool::KubeScheduler => Unit::Kubernetes,
            Tool::Etcd => Unit::Etcd,
            Tool::Kwok => Unit::Kwok,
            Tool::Olm | Tool::Catalog => Unit::Olm,
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a tool name that is not one of [`Tool::ALL`].
#[derive(Debug, Clone)]
pub struct UnknownTool(String);

impl fmt::Display for UnknownTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
        write!(f, "unknown tool `{}` (known: {})", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownTool {}

impl FromStr for Tool {
    type Err = UnknownTool;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tool::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| UnknownTool(s.to_string()))
    }
}

/// The path of `tool`, building it first (once per machine) if it is not in the cache yet.
pub fn ensure(tool: Tool) -> Result<PathBuf> {
    let cache = Cache::new()?;
    let artifact = Artifact::Build(tool.unit());
    cache.ensure(artifact)?;
    Ok(cache.dir(artifact).join("bin").join(tool.name()))
}

/// A statically linked build of `tool` (CGO_ENABLED=0), for images that have no C library: only opm links C in
/// its usual build (sqlite, for the deprecated sqlite index; file-based catalogs do not need it).
pub fn ensure_static(tool: Tool) -> Result<PathBuf> {
    let unit = tool.unit();
    if !unit.cgo() {
        return ensure(tool);
    }
    let cache = Cache::new()?;
    let artifact = Artifact::Static(unit);
    cache.ensure(artifact)?;
    Ok(cache.dir(artifact).join("bin").join(tool.name()))
}

/// cargo-deny, pinned: the dependency-tree checks of `deny.toml`.
pub const CARGO_DENY_VERSION: &str = "0.20.2";

/// The pinned cargo-deny, installed from crates.io (`cargo install --locked`) into the tool cache the first time.
/// Parallel callers wait for one build (a lock file in the cache).
pub fn ensure_cargo_deny() -> Result<PathBuf> {
    let dir = cache_root()?.join(format!("cargo-deny-{CARGO_DENY_VERSION}"));
    let bin = dir.join("bin").join("cargo-deny");
    if bin.is_file() {
        return Ok(bin);
    }
    fs::create_dir_all(cache_root()?)?;
    let lock = fs::File::create(cache_root()?.join("cargo-deny.lock"))?;
    lock.lock().context("waiting for another cargo-deny build")?;
    if bin.is_file() {
        return Ok(bin);
    }
    let staging = dir.with_extension("partial");
    let _ = fs::remove_dir_all(&staging);
    eprintln!("building cargo-deny {CARGO_DENY_VERSION} from crates.io (first time only)...");
    let start = Instant::now();
    let status = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["install", "cargo-deny", "--locked", "--version", CARGO_DENY_VERSION, "--root"])
        .arg(&staging)
        // Its own target folder, not the workspace's (cargo install ignores it anyway, but CARGO_TARGET_DIR would not).
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_INCREMENTAL", "0")
        .status()
        .context("running cargo install cargo-deny")?;
    if !status.success() {
        bail!("cargo install cargo-deny {CARGO_DENY_VERSION}: {status}");
    }
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&staging, &dir)?;
    eprintln!("built cargo-deny {CARGO_DENY_VERSION} in {}", format_duration(start.elapsed()));
    Ok(bin)
}

/// Debian packages the image tests drive (binary, package): a registry, skopeo, buildah, podman and runc.
pub const IMAGE_PACKAGES: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("buildah", "buildah"),
    ("podman", "podman"),
    ("runc", "runc"),
];

/// On PATH, or in the sbin folders Debian puts some of these in (runc) and a user's PATH may lack.
fn on_path(bin: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .any(|d| d.join(bin).is_file())
}

/// Installs the Debian packages of `packages` whose binary is not on PATH (`apt-get install`, as root; once per
/// machine). Parallel callers wait for one install: apt refuses, rather than waits, when another holds its lock.
pub fn ensure_debian_packages(packages: &[(&str, &str)]) -> Result<()> {
    let missing = || -> Vec<&str> { packages.iter().filter(|(bin, _)| !on_path(bin)).map(|(_, p)| *p).collect() };
    if missing().is_empty() {
        return Ok(());
    }
    let locks = cache_root()?.join("locks");
    fs::create_dir_all(&locks).with_context(|| format!("creating {}", locks.display()))?;
    let lock_path = locks.join("apt.lock");
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    let names = missing();
    if names.is_empty() {
        return Ok(());
    }
    let apt = |args: &[&str]| -> Result<()> {
        eprintln!("running: apt-get {}", args.join(" "));
        let status = Command::new("apt-get")
            // Wait for a dpkg lock held by apt-daily or unattended-upgrades on a fresh machine, not fail at once.
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .context("running apt-get (these tools are Debian packages; install them yourself on other systems)")?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status}); it needs root and a reachable Debian mirror", args.join(" "));
        }
        Ok(())
    };
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&names);
    // A fresh machine may have no package lists yet: update once and retry.
    if apt(&install).is_err() {
        apt(&["update"])?;
        apt(&install)?;
    }
    let still = missing();
    if !still.is_empty() {
        bail!("installed {} but {} still not on PATH", names.join(" "), still.join(" "));
    }
    Ok(())
}

/// The path of `tool` if a completed build of the pinned version is in the cache.
pub fn installed(tool: Tool) -> Option<PathBuf> {
    let cache = Cache::new().ok()?;
    let artifact = Artifact::Build(tool.unit());
    let bin = cache.dir(artifact).join("bin").join(tool.name());
    cache.is_complete(artifact).then_some(bin)
}

/// A folder holding the OLM CRD manifests (`operators.coreos.com_*.yaml`) matching the pinned OLM, taken from the
/// pinned github.com/operator-framework/api module's crds/ folder (fetched once from the module proxy).
pub fn olm_crds_dir() -> Result<PathBuf> {
    let cache = Cache::new()?;
    cache.ensure(Artifact::OlmCrds)?;
    Ok(cache.dir(Artifact::OlmCrds).join("crds"))
}

/// The cache root: `$AKO_TOOLS_DIR`, else `$XDG_CACHE_HOME/aerospike-kubernetes-operator/tools`, else
/// `~/.cache/aerospike-kubernetes-operator/tools`.
pub fn cache_root() -> Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let root = if let Some(dir) = non_empty("AKO_TOOLS_DIR") {
        dir
    } else {
        let base = match non_empty("XDG_CACHE_HOME") {
            Some(xdg) if xdg.is_absolute() => xdg,
            _ => non_empty("HOME").context("neither AKO_TOOLS_DIR nor HOME is set")?.join(".cache"),
        };
        base.join("aerospike-kubernetes-operator").join("tools")
    };
    // Go wants GOMODCACHE/GOCACHE absolute, and the go commands run in other folders.
    std::path::absolute(&root).with_context(|| format!("resolving {}", root.display()))
}

// ---------------------------------------------------------------------------------------------------------------
// Build units: what is built together, from which module, how.

/// A set of binaries built by one `go build` from one module at one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Opm,
    OperatorSdk,
    Kubernetes,
    Etcd,
    Kwok,
    Olm,
}

impl Unit {
    #[cfg(test)]
    const ALL: [Unit; 6] = [Unit::Opm, Unit::OperatorSdk, Unit::Kubernetes, Unit::Etcd, Unit::Kwok, Unit::Olm];

    /// Folder-name prefix.
    fn key(self) -> &'static str {
        match self {
            Unit::Opm => "opm",
            Unit::OperatorSdk => "operator-sdk",
            Unit::Kubernetes => "kubernetes",
            Unit::Etcd => "etcd",
            Unit::Kwok => "kwok",
            Unit::Olm => "olm",
        }
    }

    fn module(self) -> &'static str {
        match self {
            Unit::Opm => "github.com/operator-framework/operator-registry",
            Unit::OperatorSdk => "github.com/operator-framework/operator-sdk",
            Unit::Kubernetes => "k8s.io/kubernetes",
            Unit::Etcd => "go.etcd.io/etcd/server/v3",
            Unit::Kwok => "sigs.k8s.io/kwok",
            Unit::Olm => "github.com/operator-framework/operator-lifecycle-manager",
        }
    }

    fn version(self) -> &'static str {
        match self {
            Unit::Opm => OPM_VERSION,
            Unit::OperatorSdk => OPERATOR_SDK_VERSION,
            Unit::Kubernetes => KUBERNETES_VERSION,
            Unit::Etcd => ETCD_VERSION,
            Unit::Kwok => KWOK_VERSION,
            Unit::Olm => OLM_VERSION,
        }
    }

    fn tools(self) -> Vec<Tool> {
        Tool::ALL.into_iter().filter(|t| t.unit() == self).collect()
    }

    /// Go packages to build, each giving the binary of the same position in [`Unit::tools`].
    fn packages(self) -> &'static [&'static str] {
        match self {
            Unit::Opm => &["github.com/operator-framework/operator-registry/cmd/opm"],
            Unit::OperatorSdk => &["github.com/operator-framework/operator-sdk/cmd/operator-sdk"],
            Unit::Kubernetes => &[
                "k8s.io/kubernetes/cmd/kube-apiserver",
                "k8s.io/kubernetes/cmd/kube-controller-manager",
                "k8s.io/kubernetes/cmd/kube-scheduler",
            ],
            // The module root is etcd's main package.
            Unit::Etcd => &["go.etcd.io/etcd/server/v3"],
            Unit::Kwok => &["sigs.k8s.io/kwok/cmd/kwok"],
            Unit::Olm => &[
                "github.com/operator-framework/operator-lifecycle-manager/cmd/olm",
                "github.com/operator-framework/operator-lifecycle-manager/cmd/catalog",
            ],
        }
    }

    /// Build tags, as upstream's Makefiles use them.
    fn tags(self) -> &'static str {
        match self {
            // json1: sqlite JSON functions for the (deprecated) sqlite index; netgo/osusergo: pure-Go resolver and
            // user lookup; containers_image_openpgp: no gpgme C library.
            Unit::Opm => "json1,netgo,osusergo,containers_image_openpgp",
            Unit::OperatorSdk => "containers_image_openpgp",
            Unit::Olm => "json1",
            Unit::Kubernetes | Unit::Etcd | Unit::Kwok => "",
        }
    }

    /// Only opm links C (mattn/go-sqlite3, as upstream builds it); the rest are static pure-Go binaries, as
    /// upstream ships them.
    fn cgo(self) -> bool {
        matches!(self, Unit::Opm)
    }

    /// `-X` settings of version variables: a plain `go build` leaves them at "unknown"/"v0.0.0", which matters for
    /// kube-apiserver (OLM's minKubeVersion check and kubectl read the version it reports).
    fn version_ldflags(self) -> Vec<String> {
        let x = |var: &str, value: &str| format!("-X {var}={value}");
        match self {
            Unit::Opm => {
                vec![x("github.com/operator-framework/operator-registry/cmd/opm/version.opmVersion", OPM_VERSION)]
            }
            Unit::OperatorSdk => {
                let p = "github.com/operator-framework/operator-sdk/internal/version";
                vec![
                    x(&format!("{p}.Version"), OPERATOR_SDK_VERSION),
                    x(&format!("{p}.GitVersion"), OPERATOR_SDK_VERSION),
                    x(&format!("{p}.ImageVersion"), OPERATOR_SDK_VERSION),
                    // What upstream's Makefile of v1.42.2 sets (K8S_VERSION = 1.33.1).
                    x(&format!("{p}.KubernetesVersion"), "v1.33.1"),
                ]
            }
            Unit::Kubernetes => {
                let minor = KUBERNETES_VERSION.split('.').nth(1).expect("vMAJOR.MINOR.PATCH");
                // Upstream (hack/lib/version.sh) sets both packages: component-base is what the servers report
                // on /version, client-go's goes into their clients' User-Agent.
                ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"]
                    .into_iter()
                    .flat_map(|p| {
                        [
                            x(&format!("{p}.gitVersion"), KUBERNETES_VERSION),
                            x(&format!("{p}.gitMajor"), "1"),
                            x(&format!("{p}.gitMinor"), minor),
                            x(&format!("{p}.gitTreeState"), "clean"),
                        ]
                    })
                    .collect()
            }
            // etcd's and kwok's versions are constants in their sources.
            Unit::Etcd | Unit::Kwok => vec![],
            Unit::Olm => {
                vec![x("github.com/operator-framework/operator-lifecycle-manager/pkg/version.OLMVersion", OLM_VERSION)]
            }
        }
    }

    /// `go build` arguments, run in the wrapper module folder, writing into `bin`.
    fn build_args(self, bin: &Path) -> Vec<String> {
        // -s -w: no symbol table / DWARF, as upstream release builds (smaller binaries, faster links).
        let mut ldflags = vec!["-s".to_string(), "-w".to_string()];
        ldflags.extend(self.version_ldflags());
        let mut args = vec!["build".to_string(), "-trimpath".to_string()];
        if !self.tags().is_empty() {
            args.push(format!("-tags={}", self.tags()));
        }
        args.push(format!("-ldflags={}", ldflags.join(" ")));
        let tools = self.tools();
        // One `go build` for all of a unit's binaries, so the packages they share compile once. With one package,
        // name the file (the etcd package path ends in /v3); with several, `-o DIR/` names each after its package.
        let out = if let [tool] = tools.as_slice() {
            bin.join(tool.name()).display().to_string()
        } else {
            format!("{}/", bin.display())
        };
        args.push("-o".to_string());
        args.push(out);
        args.extend(self.packages().iter().map(|p| p.to_string()));
        args
    }

    fn label(self) -> String {
        let tools = self.tools();
        if let [tool] = tools.as_slice() {
            format!("{} {}", tool.name(), self.version())
        } else {
            let names: Vec<&str> = tools.iter().map(|t| t.name()).collect();
            format!("{} {} ({})", self.key(), self.version(), names.join(", "))
        }
    }
}

/// Something the cache holds: built binaries, or the OLM CRD manifests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Artifact {
    Build(Unit),
    /// The unit built without cgo (static binaries).
    Static(Unit),
    OlmCrds,
}

impl Artifact {
    fn dir_name(self) -> String {
        match self {
            Artifact::Build(unit) => format!("{}-{}", unit.key(), unit.version()),
            Artifact::Static(unit) => format!("{}-static-{}", unit.key(), unit.version()),
            Artifact::OlmCrds => format!("olm-crds-{OLM_API_VERSION}"),
        }
    }

    fn label(self) -> String {
        match self {
            Artifact::Build(unit) => unit.label(),
            Artifact::Static(unit) => format!("{} (static, no cgo)", unit.label()),
            Artifact::OlmCrds => {
                format!("OLM CRDs (github.com/operator-framework/api {OLM_API_VERSION})")
            }
        }
    }

    /// Hash of everything that determines the result; a stamp with another fingerprint means "rebuild".
    fn fingerprint(self) -> String {
        let recipe = match self {
            Artifact::Build(unit) => format!(
                "rev={RECIPE_REVISION} {}@{} cgo={} args={:?}",
                unit.module(),
                unit.version(),
                unit.cgo(),
                unit.build_args(Path::new("BIN"))
            ),
            Artifact::Static(unit) => format!(
                "rev={RECIPE_REVISION} {}@{} cgo=false args={:?}",
                unit.module(),
                unit.version(),
                unit.build_args(Path::new("BIN"))
            ),
            Artifact::OlmCrds => {
                format!("rev={RECIPE_REVISION} github.com/operator-framework/api@{OLM_API_VERSION} crds")
            }
        };
        hex::encode(Sha256::digest(recipe.as_bytes()))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The cache: locking, stamps, running go.

#[derive(Serialize, Deserialize)]
struct Stamp {
    fingerprint: String,
    go_version: String,
    build_seconds: u64,
}

struct Cache {
    root: PathBuf,
}

impl Cache {
    fn new() -> Result<Self> {
        Ok(Cache { root: cache_root()? })
    }

    fn dir(&self, artifact: Artifact) -> PathBuf {
        self.root.join(artifact.dir_name())
    }

    fn read_stamp(&self, artifact: Artifact) -> Option<Stamp> {
        let text = fs::read_to_string(self.dir(artifact).join("stamp.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// A stamp of the current recipe, and the outputs still there (someone may have deleted a binary).
    fn is_complete(&self, artifact: Artifact) -> bool {
        let dir = self.dir(artifact);
        let outputs_present = match artifact {
            Artifact::Build(unit) | Artifact::Static(unit) => {
                unit.tools().iter().all(|t| dir.join("bin").join(t.name()).is_file())
            }
            Artifact::OlmCrds => dir.join("crds").is_dir(),
        };
        outputs_present && self.read_stamp(artifact).is_some_and(|s| s.fingerprint == artifact.fingerprint())
    }

    /// Builds `artifact` unless a completed build is present. Holding the per-unit lock while checking the stamp
    /// and building makes concurrent callers (parallel tests, several processes) wait for one build.
    fn ensure(&self, artifact: Artifact) -> Result<()> {
        if self.is_complete(artifact) {
            return Ok(());
        }
        let locks = self.root.join("locks");
        fs::create_dir_all(&locks).with_context(|| format!("creating {}", locks.display()))?;
        let lock_path = locks.join(format!("{}.lock", artifact.dir_name()));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                eprintln!("waiting for another process building {}...", artifact.label());
                lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", lock_path.display()));
            }
        }
        // Someone else may have finished it while we waited.
        if self.is_complete(artifact) {
            return Ok(());
        }
        let result = self.build(artifact);
        drop(lock);
        result
    }

    fn build(&self, artifact: Artifact) -> Result<()> {
        let dir = self.dir(artifact);
        // Start from scratch: whatever is there is from an interrupted or older build.
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        let src = dir.join("src");
        fs::create_dir_all(&src).with_context(|| format!("creating {}", src.display()))?;
        let log_path = dir.join("build.log");
        let log = File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let go = Go { cache: self, log, log_path, cgo: matches!(artifact, Artifact::Build(u) if u.cgo()) };

        let start = Instant::now();
        match artifact {
            Artifact::Build(_) | Artifact::Static(_) => {
                eprintln!("building {} from Go modules (first time only)...", artifact.label())
            }
            Artifact::OlmCrds => eprintln!("fetching {} (first time only)...", artifact.label()),
        }
        let go_version = go.run(&src, &["env".into(), "GOVERSION".into()], true)?;
        let go_version = String::from_utf8_lossy(&go_version).trim().to_string();
        match artifact {
            Artifact::Build(unit) | Artifact::Static(unit) => build_unit(&go, unit, &dir, &src)?,
            Artifact::OlmCrds => fetch_olm_crds(&go, &dir, &src)?,
        }
        let elapsed = start.elapsed();

        let stamp = Stamp { fingerprint: artifact.fingerprint(), go_version, build_seconds: elapsed.as_secs() };
        let tmp = dir.join("stamp.json.tmp");
        fs::write(&tmp, serde_json::to_string_pretty(&stamp)?)?;
        fs::rename(&tmp, dir.join("stamp.json"))?;
        match artifact {
            Artifact::Build(_) | Artifact::Static(_) => {
                eprintln!("built {} in {}", artifact.label(), format_duration(elapsed))
            }
            Artifact::OlmCrds => eprintln!("fetched {} in {}", artifact.label(), format_duration(elapsed)),
        }
        Ok(())
    }
}

/// Runs go commands with the cache's environment, appending their output to the build log.
struct Go<'a> {
    cache: &'a Cache,
    log: File,
    log_path: PathBuf,
    cgo: bool,
}

impl Go<'_> {
    /// Runs `go ARGS` in `cwd`. Stderr (and stdout unless `capture`) go to the log; returns the captured stdout.
    fn run(&self, cwd: &Path, args: &[String], capture: bool) -> Result<Vec<u8>> {
        let shown = format!("go {}", args.join(" "));
        writeln!(&self.log, "$ cd {} && {shown}", cwd.display())?;
        let mut cmd = Command::new("go");
        cmd.args(args)
            .current_dir(cwd)
            // Caches under the cache root: nothing lands in ~/go or in the repo, and a warm machine cache makes a
            // clean clone rebuild nothing.
            .env("GOMODCACHE", self.cache.root.join("go").join("mod"))
            .env("GOCACHE", self.cache.root.join("go").join("build"))
            // -mod=mod: the generated wrapper has no go.sum; let go fill it in (checked against the checksum
            // database). -modcacherw: a plain `rm -rf` of the cache root works. Replaces the user's GOFLAGS so
            // their settings cannot change what gets built.
            .env("GOFLAGS", "-mod=mod -modcacherw -buildvcs=false")
            // Build with the machine's Go; never download another toolchain.
            .env("GOTOOLCHAIN", "local")
            .env("GOWORK", "off")
            .env("GO111MODULE", "on")
            .env("CGO_ENABLED", if self.cgo { "1" } else { "0" })
            // Binaries for this machine, whatever the caller's environment says.
            .env_remove("GOOS")
            .env_remove("GOARCH")
            .stdin(Stdio::null())
            .stderr(self.log.try_clone()?)
            .stdout(if capture { Stdio::piped() } else { Stdio::from(self.log.try_clone()?) });
        let output = match cmd.output() {
            Ok(output) => output,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                bail!("`go` was not found on PATH; the pinned tools are built from Go modules and need Go installed")
            }
            Err(e) => return Err(e).with_context(|| format!("running `{shown}`")),
        };
        if !output.status.success() {
            if capture {
                // `go mod download -json` reports its errors on stdout.
                (&self.log).write_all(&output.stdout)?;
            }
            let log = fs::read_to_string(&self.log_path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            bail!(
                "`{shown}` failed ({}) in {}\n--- last lines of the build log ---\n{tail}\n--- full log: {}",
                output.status,
                cwd.display(),
                self.log_path.display()
            );
        }
        Ok(output.stdout)
    }

    /// `go mod download -json MODULE@VERSION`: the module's source folder and the path of its go.mod.
    fn download(&self, cwd: &Path, module: &str, version: &str) -> Result<(PathBuf, PathBuf)> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Downloaded {
            dir: Option<PathBuf>,
            go_mod: Option<PathBuf>,
            error: Option<String>,
        }
        let args = ["mod", "download", "-json"].map(String::from).into_iter().chain([format!("{module}@{version}")]);
        let out = self.run(cwd, &args.collect::<Vec<_>>(), true)?;
        let d: Downloaded = serde_json::from_slice(&out).context("parsing `go mod download -json` output")?;
        if let Some(e) = d.error {
            bail!("downloading {module}@{version}: {e}");
        }
        match (d.dir, d.go_mod) {
            (Some(dir), Some(go_mod)) => Ok((dir, go_mod)),
            _ => bail!("`go mod download -json {module}@{version}` did not report Dir and GoMod"),
        }
    }
}

/// Builds a unit's binaries from a generated wrapper module requiring the tool's module. A wrapper (rather than
/// `go install pkg@version`) takes the same build list from the tool's own go.mod, but also accepts modules whose
/// go.mod has replace directives (Kubernetes, etcd), where `go install pkg@version` refuses to build.
fn build_unit(go: &Go, unit: Unit, dir: &Path, src: &Path) -> Result<()> {
    // A stub go.mod so `go mod download` works in module mode here, whatever encloses the cache folder.
    fs::write(src.join("go.mod"), "module ako.tools/wrapper\n")?;
    let (_, go_mod_path) = go.download(src, unit.module(), unit.version())?;
    let tool_go_mod = fs::read_to_string(&go_mod_path).with_context(|| format!("reading {}", go_mod_path.display()))?;
    let replaces = match unit {
        Unit::Kubernetes => kubernetes_staging_replaces(&tool_go_mod, &staging_version(KUBERNETES_VERSION)?),
        _ => Vec::new(),
    };
    let wrapper = wrapper_go_mod(unit.module(), unit.version(), &tool_go_mod, &replaces);
    fs::write(src.join("go.mod"), wrapper)?;
    let bin = dir.join("bin");
    fs::create_dir_all(&bin)?;
    go.run(src, &unit.build_args(&bin), false)?;
    for tool in unit.tools() {
        let path = bin.join(tool.name());
        if !path.is_file() {
            bail!("`go build` succeeded but {} is missing (see {})", path.display(), go.log_path.display());
        }
    }
    Ok(())
}

/// Copies the YAML manifests of the pinned github.com/operator-framework/api module's crds/ folder into the cache
/// (the module cache itself is not a stable place to hand out).
fn fetch_olm_crds(go: &Go, dir: &Path, src: &Path) -> Result<()> {
    fs::write(src.join("go.mod"), "module ako.tools/wrapper\n")?;
    let (module_dir, _) = go.download(src, "github.com/operator-framework/api", OLM_API_VERSION)?;
    let from = module_dir.join("crds");
    let to = dir.join("crds");
    fs::create_dir_all(&to)?;
    let mut copied = 0;
    for entry in fs::read_dir(&from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            fs::copy(&path, to.join(path.file_name().expect("file name")))?;
            copied += 1;
        }
    }
    if copied == 0 {
        bail!("no CRD manifests (*.yaml) in {}", from.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// go.mod handling (pure functions).

/// The directives of a go.mod text as (verb, arguments), with blocks (`require ( ... )`) flattened and comments
/// removed.
fn go_mod_directives(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(verb) = &block {
            if line == ")" {
                block = None;
            } else {
                out.push((verb.clone(), line.to_string()));
            }
            continue;
        }
        let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        if rest == "(" {
            block = Some(verb.to_string());
        } else {
            out.push((verb.to_string(), rest.to_string()));
        }
    }
    out
}

/// `v1.33.13` -> `v0.33.13`: Kubernetes publishes each staging module (k8s.io/api, k8s.io/apiserver, ...) with tag
/// v0.N.P for Kubernetes v1.N.P.
fn staging_version(kubernetes_version: &str) -> Result<String> {
    match kubernetes_version.strip_prefix("v1.") {
        Some(rest) => Ok(format!("v0.{rest}")),
        None => bail!("unexpected Kubernetes version {kubernetes_version}"),
    }
}

/// The replace lines a wrapper module needs to build k8s.io/kubernetes. Its go.mod requires the staging modules
/// (k8s.io/api, k8s.io/client-go, ...) at the placeholder version v0.0.0 and replaces them with folders of its own
/// repository; replace directives only apply in the main module, so the wrapper must point each v0.0.0 requirement at
/// the published release of that module, `staging_version` (v0.N.P for Kubernetes v1.N.P).
fn kubernetes_staging_replaces(kubernetes_go_mod: &str, staging_version: &str) -> Vec<String> {
    let mut lines: Vec<String> = go_mod_directives(kubernetes_go_mod)
        .into_iter()
        .filter(|(verb, _)| verb == "require")
        .filter_map(|(_, args)| {
            let mut fields = args.split_whitespace();
            let (path, version) = (fields.next()?, fields.next()?);
            (path.starts_with("k8s.io/") && version == "v0.0.0")
                .then(|| format!("replace {path} => {path} {staging_version}"))
        })
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

/// The go.mod of a wrapper module building `module@version`. It copies the tool's `go` and `godebug` lines: the
/// main module decides the language version's GODEBUG defaults (TLS, x509, ...) of the binary, and these should be
/// what upstream builds with, not whatever our Go's default would be.
fn wrapper_go_mod(module: &str, version: &str, tool_go_mod: &str, replaces: &[String]) -> String {
    let directives = go_mod_directives(tool_go_mod);
    let mut out = format!(
        "// Generated by `cargo xtask tools` (testbed/src/tools.rs): builds {module} {version} with its own go.mod's\n\
         // build list. Do not edit; the folder is rebuilt when the recipe changes.\n\
         module ako.tools/wrapper\n\n"
    );
    if let Some((_, go)) = directives.iter().find(|(verb, _)| verb == "go") {
        out.push_str(&format!("go {go}\n"));
    }
    for (_, setting) in directives.iter().filter(|(verb, _)| verb == "godebug") {
        out.push_str(&format!("godebug {setting}\n"));
    }
    out.push_str(&format!("\nrequire {module} {version}\n"));
    if !replaces.is_empty() {
        out.push('\n');
        for line in replaces {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 { format!("{}m{:02}s", secs / 60, secs % 60) } else { format!("{:.1}s", d.as_secs_f64()) }
}

// ---------------------------------------------------------------------------------------------------------------
// `cargo xtask tools ...`

/// Build, locate or list the pinned third-party tools.
#[derive(clap::Args, Debug)]
pub struct ToolsArgs {
    #[command(subcommand)]
    command: ToolsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ToolsCommand {
    /// Build tools into the cache unless already there (`all`: every tool and the OLM CRDs).
    Install {
        /// Tool names, `olm-crds`, `images` (Debian packages docker-registry, skopeo, buildah, podman, runc,
        /// installed with apt-get), or `all` (every Go tool and the OLM CRDs).
        #[arg(value_name = "NAME|all", required = true)]
        names: Vec<String>,
    },
    /// Print a tool's path, building it first if needed (`olm-crds`: the folder of OLM CRD manifests).
    Path {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// List the tools, their pinned versions and whether they are installed.
    List,
}

/// A command-line target: a tool or the OLM CRDs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Tool(Tool),
    OlmCrds,
    /// The Debian packages of the image tests.
    ImagePackages,
}

const OLM_CRDS: &str = "olm-crds";
const IMAGES: &str = "images";

fn parse_target(name: &str) -> Result<Target> {
    if name == OLM_CRDS {
        return Ok(Target::OlmCrds);
    }
    if name == IMAGES {
        return Ok(Target::ImagePackages);
    }
    match name.parse() {
        Ok(tool) => Ok(Target::Tool(tool)),
        Err(_) => {
            let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).chain([OLM_CRDS, IMAGES]).collect();
            bail!("unknown tool `{name}` (known: {})", names.join(", "))
        }
    }
}

fn ensure_target(target: Target) -> Result<PathBuf> {
    match target {
        Target::Tool(tool) => ensure(tool),
        Target::OlmCrds => olm_crds_dir(),
        Target::ImagePackages => {
            ensure_debian_packages(IMAGE_PACKAGES)?;
            Ok(PathBuf::from("/usr/bin"))
        }
    }
}

/// Entry point of `cargo xtask tools`.
pub fn run(args: ToolsArgs) -> Result<()> {
    match args.command {
        ToolsCommand::Install { names } => {
            let mut targets = Vec::new();
            for name in &names {
                let expanded = if name == "all" {
                    Tool::ALL.into_iter().map(Target::Tool).chain([Target::OlmCrds]).collect()
                } else {
                    vec![parse_target(name)?]
                };
                for t in expanded {
                    if !targets.contains(&t) {
                        targets.push(t);
                    }
                }
            }
            let start = Instant::now();
            for target in targets {
                ensure_target(target)?;
            }
            eprintln!("tools ready in {} ({})", cache_root()?.display(), format_duration(start.elapsed()));
        }
        ToolsCommand::Path { name } => {
            let path = ensure_target(parse_target(&name)?)?;
            println!("{}", path.display());
        }
        ToolsCommand::List => {
            let cache = Cache::new()?;
            println!("cache: {}", cache.root.display());
            let rows = Tool::ALL
                .into_iter()
                .map(|t| (t.name(), t.version(), installed(t), Artifact::Build(t.unit())))
                .chain([{
                    let a = Artifact::OlmCrds;
                    let dir = cache.is_complete(a).then(|| cache.dir(a).join("crds"));
                    (OLM_CRDS, OLM_API_VERSION, dir, a)
                }]);
            for (name, version, path, artifact) in rows {
                let status = match (path, cache.read_stamp(artifact)) {
                    (Some(path), Some(stamp)) => {
                        format!(
                            "installed  {} (built in {}s with {})",
                            path.display(),
                            stamp.build_seconds,
                            stamp.go_version
                        )
                    }
                    (Some(path), None) => format!("installed  {}", path.display()),
                    (None, _) => "not installed".to_string(),
                };
                println!("{name:<24} {version:<9} {status}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Abridged from k8s.io/kubernetes v1.33.13's go.mod.
    const KUBERNETES_GO_MOD: &str = r#"// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
	github.com/blang/semver/v4 v4.0.0
	go.etcd.io/etcd/client/v3 v3.5.21
	k8s.io/api v0.0.0
	k8s.io/apiserver v0.0.0
	k8s.io/client-go v0.0.0 // a comment
	k8s.io/klog/v2 v2.130.1
	k8s.io/kube-openapi v0.0.0-20250318190949-c8a335a9a2ff
	k8s.io/utils v0.0.0-20241104100929-3ea5e8cea738
	sigs.k8s.io/yaml v1.4.0
)

require (
	github.com/example/untagged v0.0.0 // indirect
	k8s.io/externaljwt v0.0.0 // indirect
)

require k8s.io/kms v0.0.0

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/apiserver => ./staging/src/k8s.io/apiserver
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	k8s.io/sample-controller => ./staging/src/k8s.io/sample-controller
)
"#;

    #[test]
    fn kubernetes_replaces_cover_every_v0_0_0_staging_requirement() {
        let lines = kubernetes_staging_replaces(KUBERNETES_GO_MOD, "v0.33.13");
        assert_eq!(
            lines,
            [
                "replace k8s.io/api => k8s.io/api v0.33.13",
                "replace k8s.io/apiserver => k8s.io/apiserver v0.33.13",
                "replace k8s.io/client-go => k8s.io/client-go v0.33.13",
                "replace k8s.io/externaljwt => k8s.io/externaljwt v0.33.13",
                "replace k8s.io/kms => k8s.io/kms v0.33.13",
            ]
        );
    }

    #[test]
    fn wrapper_go_mod_keeps_go_and_godebug_and_adds_replaces() {
        let replaces = kubernetes_staging_replaces(KUBERNETES_GO_MOD, &staging_version("v1.33.13").unwrap());
        let text = wrapper_go_mod("k8s.io/kubernetes", "v1.33.13", KUBERNETES_GO_MOD, &replaces);
        let directives = go_mod_directives(&text);
        let get = |verb: &str| -> Vec<String> {
            directives.iter().filter(|(v, _)| v == verb).map(|(_, a)| a.clone()).collect()
        };
        assert_eq!(get("module"), ["ako.tools/wrapper"]);
        assert_eq!(get("go"), ["1.24.0"]);
        assert_eq!(get("godebug"), ["default=go1.24"]);
        assert_eq!(get("require"), ["k8s.io/kubernetes v1.33.13"]);
        assert_eq!(get("replace").len(), 5);
        assert!(text.contains("\nreplace k8s.io/kms => k8s.io/kms v0.33.13\n"));
    }

    #[test]
    fn staging_version_maps_v1_to_v0() {
        assert_eq!(staging_version("v1.33.13").unwrap(), "v0.33.13");
        assert!(staging_version("v2.0.0").is_err());
    }

    #[test]
    fn tool_names_round_trip() {
        for tool in Tool::ALL {
            assert_eq!(tool.name().parse::<Tool>().unwrap(), tool);
        }
        assert!("kubectl".parse::<Tool>().is_err());
    }

    #[test]
    fn multi_binary_units_name_binaries_after_their_packages() {
        for unit in Unit::ALL {
            let tools = unit.tools();
            assert_eq!(tools.len(), unit.packages().len(), "{unit:?}");
            if tools.len() > 1 {
                for (tool, package) in tools.iter().zip(unit.packages()) {
                    assert_eq!(package.rsplit('/').next(), Some(tool.name()), "{unit:?}");
                }
            }
        }
    }

    #[test]
    fn kubernetes_build_sets_the_reported_version() {
        let args = Unit::Kubernetes.build_args(Path::new("/bin"));
        let ldflags = args.iter().find(|a| a.starts_with("-ldflags=")).unwrap();
        for x in [
            "-X k8s.io/component-base/version.gitVersion=v1.33.13",
            "-X k8s.io/component-base/version.gitMajor=1",
            "-X k8s.io/component-base/version.gitMinor=33",
        ] {
            assert!(ldflags.contains(x), "{ldflags}");
        }
        assert!(args.contains(&"/bin/".to_string()));
        assert_eq!(args.iter().filter(|a| a.starts_with("k8s.io/kubernetes/cmd/")).count(), 3);
    }
}
