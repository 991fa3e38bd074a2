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
//!   kubernetes-v1.33.13/      one folder per build unit and version (each Kubernetes release of
//!   kubernetes-v1.35.4/       [`KubernetesRelease`] is a unit of its own; releases pinning the same etcd share it)
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
/// The oldest supported Kubernetes, the default plane.
const KUBERNETES_OLDEST: &str = "v1.33.13";
/// The etcd that Kubernetes v1.33.13 itself requires (its go.mod pins go.etcd.io/etcd/* v3.5.21).
const ETCD_OLDEST: &str = "v3.5.21";
/// The newest Kubernetes this project tests: the API version of the k8s-openapi types we build with (v1_35), and
/// the newest 1.35 patch the module proxy served when pinned (v1.36 and v1.37 are served too, newer than the types).
const KUBERNETES_NEWEST: &str = "v1.35.4";
/// The etcd that Kubernetes v1.35.4 requires (its go.mod pins go.etcd.io/etcd/* v3.6.5).
const ETCD_NEWEST: &str = "v3.6.5";
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

    /// The pinned version (the Go module's tag); for the control plane's tools, that of the default plane
    /// ([`KubernetesRelease::Oldest`]).
    pub fn version(self) -> &'static str {
        self.unit().version()
    }

    fn unit(self) -> Unit {
        self.unit_for(KubernetesRelease::default())
    }

    /// The unit building this tool for a plane of `release` (only the control plane's tools depend on it).
    fn unit_for(self, release: KubernetesRelease) -> Unit {
        match self {
            Tool::Opm => Unit::Opm,
            Tool::OperatorSdk => Unit::OperatorSdk,
            Tool::KubeApiserver | Tool::KubeControllerManager | Tool::KubeScheduler => Unit::Kubernetes(release),
            Tool::Etcd => Unit::Etcd(release.etcd()),
            Tool::Kwok => Unit::Kwok,
            Tool::Olm | Tool::Catalog => Unit::Olm,
        }
    }

    /// Whether the tool is one of the plane's that exist per Kubernetes release.
    pub fn per_release(self) -> bool {
        self.unit_for(KubernetesRelease::Oldest) != self.unit_for(KubernetesRelease::Newest)
    }
}

/// A Kubernetes release the local control plane runs: the apiserver, controller manager and scheduler of that
/// version, with the etcd version that release pins. Both ends of the supported range are tested.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesRelease {
    /// The oldest supported Kubernetes (the default plane).
    #[default]
    Oldest,
    /// The newest Kubernetes tested (the API version of the Kubernetes types the operator is built with).
    Newest,
}

/// Environment variable choosing the release of the planes tests start (`oldest`, `newest`, or a version).
pub const KUBERNETES_ENV: &str = "AKO_KUBERNETES";

impl KubernetesRelease {
    pub const ALL: [KubernetesRelease; 2] = [KubernetesRelease::Oldest, KubernetesRelease::Newest];

    pub fn name(self) -> &'static str {
        match self {
            KubernetesRelease::Oldest => "oldest",
            KubernetesRelease::Newest => "newest",
        }
    }

    /// The k8s.io/kubernetes tag, e.g. `v1.33.13`.
    pub fn version(self) -> &'static str {
        match self {
            KubernetesRelease::Oldest => KUBERNETES_OLDEST,
            KubernetesRelease::Newest => KUBERNETES_NEWEST,
        }
    }

    /// The minor version, e.g. `33` (what the apiserver reports as `minor`).
    pub fn minor(self) -> &'static str {
        minor_of(self.version()).expect("pinned versions are vMAJOR.MINOR.PATCH")
    }

    /// The etcd (go.etcd.io/etcd/server/v3 tag) this release's go.mod pins.
    pub fn etcd(self) -> EtcdVersion {
        match self {
            KubernetesRelease::Oldest => EtcdVersion(ETCD_OLDEST),
            KubernetesRelease::Newest => EtcdVersion(ETCD_NEWEST),
        }
    }

    /// [`KUBERNETES_ENV`], else the default (oldest). An unknown value is an error, not a silent default.
    pub fn from_env() -> Result<KubernetesRelease> {
        match std::env::var(KUBERNETES_ENV) {
            Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| format!("{KUBERNETES_ENV}={v}")),
            _ => Ok(KubernetesRelease::default()),
        }
    }
}

impl fmt::Display for KubernetesRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (Kubernetes {})", self.name(), self.version())
    }
}

impl FromStr for KubernetesRelease {
    type Err = anyhow::Error;
    /// `oldest`, `newest`, or the version with or without the `v` (`v1.35.4`, `1.35.4`, `1.35`).
    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().trim_start_matches('v');
        KubernetesRelease::ALL
            .into_iter()
            .find(|r| {
                let version = r.version().trim_start_matches('v');
                r.name() == wanted || version == wanted || minor_prefix(version) == wanted
            })
            .ok_or_else(|| {
                let known: Vec<String> =
                    KubernetesRelease::ALL.iter().map(|r| format!("{} or {}", r.name(), r.version())).collect();
                anyhow::anyhow!("unknown Kubernetes release `{s}` (known: {})", known.join(", "))
            })
    }
}

/// `1.35.4` -> `1.35`.
fn minor_prefix(version: &str) -> &str {
    version.rsplit_once('.').map_or(version, |(prefix, _)| prefix)
}

/// `v1.35.4` -> `35`.
fn minor_of(version: &str) -> Option<&str> {
    let mut parts = version.strip_prefix('v')?.split('.');
    let (_major, minor, _patch) = (parts.next()?, parts.next()?, parts.next()?);
    (!minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())).then_some(minor)
}

/// An etcd release (a go.etcd.io/etcd/server/v3 tag): its own build unit, shared by the Kubernetes releases that
/// pin the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EtcdVersion(&'static str);

impl EtcdVersion {
    pub fn tag(self) -> &'static str {
        self.0
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

/// The path of `tool`, building it first (once per machine) if it is not in the cache yet. The control plane's
/// tools are those of the default plane ([`KubernetesRelease::Oldest`]).
pub fn ensure(tool: Tool) -> Result<PathBuf> {
    ensure_for(tool, KubernetesRelease::default())
}

/// [`ensure`] for a plane of `release`: the control plane's tools (kube-apiserver, kube-controller-manager,
/// kube-scheduler, etcd) of that Kubernetes release; the other tools are the same for every release.
pub fn ensure_for(tool: Tool, release: KubernetesRelease) -> Result<PathBuf> {
    let cache = Cache::new()?;
    let artifact = Artifact::Build(tool.unit_for(release));
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
    installed_for(tool, KubernetesRelease::default())
}

/// [`installed`] for a plane of `release`.
pub fn installed_for(tool: Tool, release: KubernetesRelease) -> Option<PathBuf> {
    let cache = Cache::new().ok()?;
    let artifact = Artifact::Build(tool.unit_for(release));
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

/// kwok's `Exec` CRD (`kwok.x-k8s.io/v1alpha1`), from the pinned kwok module's source in the cache (building kwok
/// fetches it): the local plane serves pod exec through kwok's kubelet API, per pod, from these objects.
pub fn kwok_exec_crd() -> Result<PathBuf> {
    ensure(Tool::Kwok)?;
    let path = cache_root()?
        .join("go/mod/sigs.k8s.io")
        .join(format!("kwok@{KWOK_VERSION}"))
        .join("kustomize/crd/bases/kwok.x-k8s.io_execs.yaml");
    anyhow::ensure!(path.is_file(), "{} is missing from the Go module cache", path.display());
    Ok(path)
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

mod cache;
mod command;
mod gomod;
mod prometheus;
mod unit;

use cache::*;
pub use command::{ToolsArgs, run};
use gomod::*;
pub use prometheus::{PROMETHEUS_SERIES, ensure_prometheus};
use unit::*;

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

    /// Abridged from k8s.io/kubernetes v1.35.4's go.mod: go 1.25, and a staging module 1.33 did not have.
    const KUBERNETES_1_35_GO_MOD: &str = r#"// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
	go.etcd.io/etcd/api/v3 v3.6.5
	go.etcd.io/etcd/client/v3 v3.6.5
	k8s.io/api v0.0.0
	k8s.io/endpointslice v0.0.0
	k8s.io/kube-openapi v0.0.0-20250910181357-589584f1c912
)

require (
	go.etcd.io/etcd/server/v3 v3.6.5 // indirect
	k8s.io/externaljwt v0.0.0 // indirect
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/endpointslice => ./staging/src/k8s.io/endpointslice
)
"#;

    #[test]
    fn the_newest_release_gets_a_wrapper_of_its_own_version() {
        let release = KubernetesRelease::Newest;
        let replaces =
            kubernetes_staging_replaces(KUBERNETES_1_35_GO_MOD, &staging_version(release.version()).unwrap());
        assert_eq!(
            replaces,
            [
                "replace k8s.io/api => k8s.io/api v0.35.4",
                "replace k8s.io/endpointslice => k8s.io/endpointslice v0.35.4",
                "replace k8s.io/externaljwt => k8s.io/externaljwt v0.35.4",
            ]
        );
        let unit = Unit::Kubernetes(release);
        let text = wrapper_go_mod(unit.module(), unit.version(), KUBERNETES_1_35_GO_MOD, &replaces);
        let directives = go_mod_directives(&text);
        let get = |verb: &str| -> Vec<String> {
            directives.iter().filter(|(v, _)| v == verb).map(|(_, a)| a.clone()).collect()
        };
        assert_eq!(get("go"), ["1.25.0"]);
        assert_eq!(get("godebug"), ["default=go1.25"]);
        assert_eq!(get("require"), ["k8s.io/kubernetes v1.35.4"]);
        assert_eq!(get("replace").len(), 3);
    }

    #[test]
    fn each_kubernetes_release_is_a_unit_with_a_folder_of_its_own() {
        let dir = |unit| Artifact::Build(unit).dir_name();
        let (oldest, newest) = (KubernetesRelease::Oldest, KubernetesRelease::Newest);
        assert_eq!(dir(Tool::KubeApiserver.unit_for(oldest)), "kubernetes-v1.33.13");
        assert_eq!(dir(Tool::KubeApiserver.unit_for(newest)), "kubernetes-v1.35.4");
        assert_eq!(dir(Tool::KubeScheduler.unit_for(newest)), "kubernetes-v1.35.4");
        assert_eq!(dir(Tool::Etcd.unit_for(oldest)), "etcd-v3.5.21");
        assert_eq!(dir(Tool::Etcd.unit_for(newest)), "etcd-v3.6.5");
        // The default plane is the oldest: its folders (and so machines' existing builds) are those of before.
        assert_eq!(Tool::KubeApiserver.unit(), Tool::KubeApiserver.unit_for(oldest));
        assert_eq!(Tool::KubeApiserver.version(), "v1.33.13");
        assert_ne!(
            Artifact::Build(Unit::Kubernetes(oldest)).fingerprint(),
            Artifact::Build(Unit::Kubernetes(newest)).fingerprint()
        );
        // Only the plane's tools are built per release; the rest are shared.
        let per_release: Vec<&str> = Tool::ALL.into_iter().filter(|t| t.per_release()).map(|t| t.name()).collect();
        assert_eq!(per_release, ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"]);
        for tool in [Tool::Kwok, Tool::Opm, Tool::Olm] {
            assert_eq!(tool.unit_for(oldest), tool.unit_for(newest));
        }
        // The newest unit builds the three plane binaries and nothing else of k8s.io/kubernetes.
        let tools = Unit::Kubernetes(newest).tools();
        assert_eq!(tools, [Tool::KubeApiserver, Tool::KubeControllerManager, Tool::KubeScheduler]);
    }

    #[test]
    fn releases_that_pin_the_same_etcd_share_its_build() {
        // Both releases are checked against their go.mod (tests above); the sharing itself is by folder name.
        let same = |a: EtcdVersion, b: EtcdVersion| Artifact::Build(Unit::Etcd(a)) == Artifact::Build(Unit::Etcd(b));
        assert!(same(EtcdVersion(ETCD_OLDEST), KubernetesRelease::Oldest.etcd()));
        assert!(!same(KubernetesRelease::Oldest.etcd(), KubernetesRelease::Newest.etcd()));
        assert_eq!(Unit::Etcd(EtcdVersion("v3.6.5")).tools(), [Tool::Etcd]);
    }

    #[test]
    fn releases_parse_from_names_and_versions() {
        use KubernetesRelease::*;
        for (text, release) in [
            ("oldest", Oldest),
            ("newest", Newest),
            ("v1.35.4", Newest),
            ("1.35.4", Newest),
            ("1.35", Newest),
            ("v1.33", Oldest),
        ] {
            assert_eq!(text.parse::<KubernetesRelease>().unwrap(), release, "{text}");
        }
        for text in ["1.34", "v1.35.3", "latest", ""] {
            assert!(text.parse::<KubernetesRelease>().is_err(), "{text}");
        }
        assert_eq!(Oldest.minor(), "33");
        assert_eq!(Newest.minor(), "35");
        assert_eq!(minor_of("v1.x"), None);
        assert_eq!(minor_of("1.35.4"), None);
        assert_eq!(KubernetesRelease::default(), Oldest);
    }

    #[test]
    fn install_names_cover_both_planes() {
        let newest = KubernetesRelease::Newest;
        let plane = command::parse_targets("plane@newest").unwrap();
        assert_eq!(plane.len(), 4);
        assert!(plane.iter().all(|t| matches!(t, command::Target::Tool(_, r) if *r == newest)));
        assert!(matches!(
            command::parse_target("kube-apiserver@newest").unwrap(),
            command::Target::Tool(Tool::KubeApiserver, r) if r == newest
        ));
        assert!(command::parse_target("opm@newest").is_err());
        assert!(command::parse_target("kube-apiserver@v1.20.0").is_err());
        // `all` builds every tool once, plus the newest plane's own tools.
        let all = command::parse_targets("all").unwrap();
        assert_eq!(all.len(), Tool::ALL.len() + 4 + 1);
    }

    #[test]
    fn kubernetes_build_sets_the_reported_version() {
        let args = Unit::Kubernetes(KubernetesRelease::Oldest).build_args(Path::new("/bin"));
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
        let args = Unit::Kubernetes(KubernetesRelease::Newest).build_args(Path::new("/bin"));
        let ldflags = args.iter().find(|a| a.starts_with("-ldflags=")).unwrap();
        for x in [
            "-X k8s.io/component-base/version.gitVersion=v1.35.4",
            "-X k8s.io/component-base/version.gitMinor=35",
            "-X k8s.io/client-go/pkg/version.gitVersion=v1.35.4",
        ] {
            assert!(ldflags.contains(x), "{ldflags}");
        }
    }
}
