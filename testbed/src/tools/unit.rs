//! Build units: what is built together, from which module, how; and the artifacts of the cache.
use super::*;

/// A set of binaries built by one `go build` from one module at one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Unit {
    Opm,
    OperatorSdk,
    /// kube-apiserver, kube-controller-manager and kube-scheduler of one Kubernetes release (nothing else of
    /// k8s.io/kubernetes: the plane needs only these three).
    Kubernetes(KubernetesRelease),
    Etcd(EtcdVersion),
    Kwok,
    Olm,
}

impl Unit {
    #[cfg(test)]
    pub(super) const ALL: [Unit; 8] = [
        Unit::Opm,
        Unit::OperatorSdk,
        Unit::Kubernetes(KubernetesRelease::Oldest),
        Unit::Kubernetes(KubernetesRelease::Newest),
        Unit::Etcd(EtcdVersion(ETCD_OLDEST)),
        Unit::Etcd(EtcdVersion(ETCD_NEWEST)),
        Unit::Kwok,
        Unit::Olm,
    ];

    /// Folder-name prefix.
    pub(super) fn key(self) -> &'static str {
        match self {
            Unit::Opm => "opm",
            Unit::OperatorSdk => "operator-sdk",
            Unit::Kubernetes(_) => "kubernetes",
            Unit::Etcd(_) => "etcd",
            Unit::Kwok => "kwok",
            Unit::Olm => "olm",
        }
    }

    pub(super) fn module(self) -> &'static str {
        match self {
            Unit::Opm => "github.com/operator-framework/operator-registry",
            Unit::OperatorSdk => "github.com/operator-framework/operator-sdk",
            Unit::Kubernetes(_) => "k8s.io/kubernetes",
            Unit::Etcd(_) => "go.etcd.io/etcd/server/v3",
            Unit::Kwok => "sigs.k8s.io/kwok",
            Unit::Olm => "github.com/operator-framework/operator-lifecycle-manager",
        }
    }

    pub(super) fn version(self) -> &'static str {
        match self {
            Unit::Opm => OPM_VERSION,
            Unit::OperatorSdk => OPERATOR_SDK_VERSION,
            Unit::Kubernetes(release) => release.version(),
            Unit::Etcd(etcd) => etcd.tag(),
            Unit::Kwok => KWOK_VERSION,
            Unit::Olm => OLM_VERSION,
        }
    }

    pub(super) fn tools(self) -> Vec<Tool> {
        Tool::ALL.into_iter().filter(|t| KubernetesRelease::ALL.iter().any(|r| t.unit_for(*r) == self)).collect()
    }

    /// Go packages to build, each giving the binary of the same position in [`Unit::tools`].
    pub(super) fn packages(self) -> &'static [&'static str] {
        match self {
            Unit::Opm => &["github.com/operator-framework/operator-registry/cmd/opm"],
            Unit::OperatorSdk => &["github.com/operator-framework/operator-sdk/cmd/operator-sdk"],
            Unit::Kubernetes(_) => &[
                "k8s.io/kubernetes/cmd/kube-apiserver",
                "k8s.io/kubernetes/cmd/kube-controller-manager",
                "k8s.io/kubernetes/cmd/kube-scheduler",
            ],
            // The module root is etcd's main package.
            Unit::Etcd(_) => &["go.etcd.io/etcd/server/v3"],
            Unit::Kwok => &["sigs.k8s.io/kwok/cmd/kwok"],
            Unit::Olm => &[
                "github.com/operator-framework/operator-lifecycle-manager/cmd/olm",
                "github.com/operator-framework/operator-lifecycle-manager/cmd/catalog",
            ],
        }
    }

    /// Build tags, as upstream's Makefiles use them.
    pub(super) fn tags(self) -> &'static str {
        match self {
            // json1: sqlite JSON functions for the (deprecated) sqlite index; netgo/osusergo: pure-Go resolver and
            // user lookup; containers_image_openpgp: no gpgme C library.
            Unit::Opm => "json1,netgo,osusergo,containers_image_openpgp",
            Unit::OperatorSdk => "containers_image_openpgp",
            Unit::Olm => "json1",
            Unit::Kubernetes(_) | Unit::Etcd(_) | Unit::Kwok => "",
        }
    }

    /// Only opm links C (mattn/go-sqlite3, as upstream builds it); the rest are static pure-Go binaries, as
    /// upstream ships them.
    pub(super) fn cgo(self) -> bool {
        matches!(self, Unit::Opm)
    }

    /// `-X` settings of version variables: a plain `go build` leaves them at "unknown"/"v0.0.0", which matters for
    /// kube-apiserver (OLM's minKubeVersion check and kubectl read the version it reports).
    pub(super) fn version_ldflags(self) -> Vec<String> {
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
            Unit::Kubernetes(release) => {
                let (version, minor) = (release.version(), release.minor());
                // Upstream (hack/lib/version.sh) sets both packages: component-base is what the servers report
                // on /version, client-go's goes into their clients' User-Agent.
                ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"]
                    .into_iter()
                    .flat_map(|p| {
                        [
                            x(&format!("{p}.gitVersion"), version),
                            x(&format!("{p}.gitMajor"), "1"),
                            x(&format!("{p}.gitMinor"), minor),
                            x(&format!("{p}.gitTreeState"), "clean"),
                        ]
                    })
                    .collect()
            }
            // etcd's and kwok's versions are constants in their sources.
            Unit::Etcd(_) | Unit::Kwok => vec![],
            Unit::Olm => {
                vec![x("github.com/operator-framework/operator-lifecycle-manager/pkg/version.OLMVersion", OLM_VERSION)]
            }
        }
    }

    /// `go build` arguments, run in the wrapper module folder, writing into `bin`.
    pub(super) fn build_args(self, bin: &Path) -> Vec<String> {
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

    pub(super) fn label(self) -> String {
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
pub(super) enum Artifact {
    Build(Unit),
    /// The unit built without cgo (static binaries).
    Static(Unit),
    OlmCrds,
}

impl Artifact {
    pub(super) fn dir_name(self) -> String {
        match self {
            Artifact::Build(unit) => format!("{}-{}", unit.key(), unit.version()),
            Artifact::Static(unit) => format!("{}-static-{}", unit.key(), unit.version()),
            Artifact::OlmCrds => format!("olm-crds-{OLM_API_VERSION}"),
        }
    }

    pub(super) fn label(self) -> String {
        match self {
            Artifact::Build(unit) => unit.label(),
            Artifact::Static(unit) => format!("{} (static, no cgo)", unit.label()),
            Artifact::OlmCrds => {
                format!("OLM CRDs (github.com/operator-framework/api {OLM_API_VERSION})")
            }
        }
    }

    /// Hash of everything that determines the result; a stamp with another fingerprint means "rebuild".
    pub(super) fn fingerprint(self) -> String {
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
