//! The cache: locking, stamps, running go.
use super::*;

#[derive(Serialize, Deserialize)]
pub(super) struct Stamp {
    pub(super) fingerprint: String,
    pub(super) go_version: String,
    pub(super) build_seconds: u64,
}

pub(super) struct Cache {
    pub(super) root: PathBuf,
}

impl Cache {
    pub(super) fn new() -> Result<Self> {
        Ok(Cache { root: cache_root()? })
    }

    pub(super) fn dir(&self, artifact: Artifact) -> PathBuf {
        self.root.join(artifact.dir_name())
    }

    pub(super) fn read_stamp(&self, artifact: Artifact) -> Option<Stamp> {
        let text = fs::read_to_string(self.dir(artifact).join("stamp.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// A stamp of the current recipe, and the outputs still there (someone may have deleted a binary).
    pub(super) fn is_complete(&self, artifact: Artifact) -> bool {
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
    pub(super) fn ensure(&self, artifact: Artifact) -> Result<()> {
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

    pub(super) fn build(&self, artifact: Artifact) -> Result<()> {
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
pub(super) struct Go<'a> {
    cache: &'a Cache,
    log: File,
    log_path: PathBuf,
    cgo: bool,
}

impl Go<'_> {
    /// Runs `go ARGS` in `cwd`. Stderr (and stdout unless `capture`) go to the log; returns the captured stdout.
    pub(super) fn run(&self, cwd: &Path, args: &[String], capture: bool) -> Result<Vec<u8>> {
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
    pub(super) fn download(&self, cwd: &Path, module: &str, version: &str) -> Result<(PathBuf, PathBuf)> {
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
pub(super) fn build_unit(go: &Go, unit: Unit, dir: &Path, src: &Path) -> Result<()> {
    // A stub go.mod so `go mod download` works in module mode here, whatever encloses the cache folder.
    fs::write(src.join("go.mod"), "module ako.tools/wrapper\n")?;
    let (_, go_mod_path) = go.download(src, unit.module(), unit.version())?;
    let tool_go_mod = fs::read_to_string(&go_mod_path).with_context(|| format!("reading {}", go_mod_path.display()))?;
    let replaces = match unit {
        Unit::Kubernetes(release) => kubernetes_staging_replaces(&tool_go_mod, &staging_version(release.version())?),
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
pub(super) fn fetch_olm_crds(go: &Go, dir: &Path, src: &Path) -> Result<()> {
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
