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
        /// Tool names, `olm-crds`, `images` (Debian packages docker-registry, skopeo, buildah, podman, runc,
        /// installed with apt-get), `prometheus` (Debian's prometheus and promtool, unpacked into the cache), or
        /// `all` (every Go tool and the OLM CRDs).
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
pub(super) enum Target {
    Tool(Tool),
    OlmCrds,
    /// The Debian packages of the image tests.
    ImagePackages,
    /// Debian's prometheus package (prometheus and promtool), unpacked into the cache.
    Prometheus,
}

pub(super) const OLM_CRDS: &str = "olm-crds";
pub(super) const IMAGES: &str = "images";
pub(super) const PROMETHEUS: &str = "prometheus";

pub(super) fn parse_target(name: &str) -> Result<Target> {
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
        Ok(tool) => Ok(Target::Tool(tool)),
        Err(_) => {
            let names: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).chain([OLM_CRDS, IMAGES, PROMETHEUS]).collect();
            bail!("unknown tool `{name}` (known: {})", names.join(", "))
        }
    }
}

pub(super) fn ensure_target(target: Target) -> Result<PathBuf> {
    match target {
        Target::Tool(tool) => ensure(tool),
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
