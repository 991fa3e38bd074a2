//! `cargo xtask tools ...`: build, locate or list the pinned tools.
use super::*;

/// Build, locate or list the pinned third-party tools.
#[derive(clap::Args, Debug)]
pub struct ToolsArgs {
    #[command(subcommand)]
    command: ToolsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub(super) enum ToolsCommand {
    /// Build tools into the cache unless already there (`all`: every tool and the OLM CRDs).
    Install {
        /// Tool names (a control plane tool of another Kubernetes release than the oldest as `NAME@newest`, e.g.
        /// `kube-apiserver@newest`), `plane@newest` or `plane@oldest` (kube-apiserver, kube-controller-manager,
        /// kube-scheduler and etcd of that release), `olm-crds`, `images` (Debian packages docker-registry,
        /// skopeo, buildah, podman, runc, installed with apt-get), `prometheus` (Debian's prometheus and promtool,
        /// unpacked into the cache), or `all` (every Go tool, for both Kubernetes releases, and the OLM CRDs).
        #[arg(value_name = "NAME|all", required = true)]
        names: Vec<String>,
    },
    /// Print a tool's path, building it first if needed (`olm-crds`: the folder of OLM CRD manifests;
    /// `NAME@newest`: a control plane tool of the newest Kubernetes).
    Path {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// List the tools, their pinned versions and whether they are installed.
    List,
}

/// A command-line target: a tool or the OLM CRDs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// A tool; the release matters only for the control plane's tools ([`Tool::per_release`]).
    Tool(Tool, KubernetesRelease),
    OlmCrds,
    /// The Debian packages of the image tests.
    ImagePackages,
    /// Debian's prometheus package (prometheus and promtool), unpacked into the cache.
    Prometheus,
}

pub(super) const OLM_CRDS: &str = "olm-crds";
pub(super) const IMAGES: &str = "images";
pub(super) const PROMETHEUS: &str = "prometheus";
/// `plane@RELEASE`: the control plane's per-release tools.
pub(super) const PLANE: &str = "plane";

/// The tools of a plane of `release` that differ between releases (apiserver, controller manager, scheduler, etcd).
pub(super) fn plane_targets(release: KubernetesRelease) -> Vec<Target> {
    Tool::ALL.into_iter().filter(|t| t.per_release()).map(|t| Target::Tool(t, release)).collect()
}

/// Every Go tool, the per-release ones for every release.
pub(super) fn all_tool_targets() -> Vec<Target> {
    let mut targets: Vec<Target> =
        Tool::ALL.into_iter().map(|t| Target::Tool(t, KubernetesRelease::default())).collect();
    for release in KubernetesRelease::ALL.into_iter().filter(|r| *r != KubernetesRelease::default()) {
        targets.extend(plane_targets(release));
    }
    targets
}

/// Names as `install` takes them, expanded (`all`, `plane@RELEASE`) into targets.
pub(super) fn parse_targets(name: &str) -> Result<Vec<Target>> {
    if name == "all" {
        return Ok(all_tool_targets().into_iter().chain([Target::OlmCrds]).collect());
    }
    if let Some(release) = name.strip_prefix(PLANE).and_then(|r| r.strip_prefix('@')) {
        return Ok(plane_targets(release.parse()?));
    }
    Ok(vec![parse_target(name)?])
}

pub(super) fn parse_target(name: &str) -> Result<Target> {
    if let Some((tool, release)) = name.split_once('@') {
        let release: KubernetesRelease = release.parse()?;
        let tool: Tool = tool.parse()?;
        if !tool.per_release() && release != KubernetesRelease::default() {
            bail!("{tool} is the same for every Kubernetes release; name it without @{}", release.name());
        }
        return Ok(Target::Tool(tool, release));
    }
    if name == OLM_CRDS {
        return Ok(Target::OlmCrds);
    }
    if name == IMAGES {
        return Ok(Target::ImagePackages);
    }
    if name == PROMETHEUS {
        return Ok(Target::Prometheus);
    }
    match name.parse() {
        Ok(tool) => Ok(Target::Tool(tool, KubernetesRelease::default())),
        Err(_) => {
            let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).chain([OLM_CRDS, IMAGES, PROMETHEUS]).collect();
            bail!("unknown tool `{name}` (known: {})", names.join(", "))
        }
    }
}

pub(super) fn ensure_target(target: Target) -> Result<PathBuf> {
    match target {
        Target::Tool(tool, release) => ensure_for(tool, release),
        Target::OlmCrds => olm_crds_dir(),
        Target::ImagePackages => {
            ensure_debian_packages(IMAGE_PACKAGES)?;
            Ok(PathBuf::from("/usr/bin"))
        }
        Target::Prometheus => ensure_prometheus(),
    }
}

/// Entry point of `cargo xtask tools`.
pub fn run(args: ToolsArgs) -> Result<()> {
    match args.command {
        ToolsCommand::Install { names } => {
            let mut targets = Vec::new();
            for name in &names {
                for t in parse_targets(name)? {
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
            let tool_rows = all_tool_targets().into_iter().filter_map(|t| match t {
                Target::Tool(tool, release) => {
                    let unit = tool.unit_for(release);
                    let name = if release == KubernetesRelease::default() {
                        tool.name().to_string()
                    } else {
                        format!("{tool}@{}", release.name())
                    };
                    Some((name, unit.version(), installed_for(tool, release), Artifact::Build(unit)))
                }
                _ => None,
            });
            let rows = tool_rows.chain([{
                let a = Artifact::OlmCrds;
                let dir = cache.is_complete(a).then(|| cache.dir(a).join("crds"));
                (OLM_CRDS.to_string(), OLM_API_VERSION, dir, a)
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
                println!("{name:<31} {version:<9} {status}");
            }
        }
    }
    Ok(())
}
