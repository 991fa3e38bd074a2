//! `cargo xtask image operator|bundle|catalog|opm-base`: OCI images built in Rust, without Docker, byte for byte
//! reproducible (fixed times and owners, sorted entries, canonical JSON), written as an OCI image layout and/or
//! pushed to a registry.
//!
//! Each image is described once here (`Spec`: files, labels, entrypoint, cmd, user); the Dockerfiles are rendered
//! from the same specs (templates.rs), so what `docker build` makes and what this builder makes agree.
pub mod elf;
pub mod layer;
pub mod oci;
pub mod registry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::project::{self, PACKAGE, paths};
use crate::{bundle, templates};
use ako_testbed::tools::{self, Tool};
use layer::{Layer, Tree};
use oci::{Image, Runtime};

/// Where the operator binary is in its image (its ENTRYPOINT).
pub const OPERATOR_BINARY: &str = "/usr/local/bin/aerospike-kubernetes-operator";
/// Numeric non-root user and group (distroless' "nonroot"): Kubernetes can check `runAsNonRoot` only for numbers.
pub const NONROOT: &str = "65532:65532";
/// The licence inside the operator image.
pub const LICENSE_DEST: &str = "/licenses/LICENSE";
/// The licence in the repository (what the Dockerfile copies).
pub const LICENSE_FILE: &str = "LICENSE";
/// opm in the opm base image and the catalog image.
pub const OPM_BINARY: &str = "/bin/opm";
/// The catalog inside the catalog image.
pub const CATALOG_CONFIGS: &str = "/configs";
pub const INDEX_LABEL: &str = "operators.operatorframework.io.index.configs.v1";
/// The Rust image of the Dockerfile's builder stage.
pub const RUST_BUILDER_IMAGE: &str = "docker.io/library/rust:1.95-bookworm";

/// A `COPY from to`: a folder of the repository into a folder of the image.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CopyDir {
    pub from: String,
    pub to: String,
}

/// What an image holds and runs, shared by the builder and the Dockerfile templates.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub runtime: Runtime,
    pub copies: Vec<CopyDir>,
}

fn copy(from: &str, to: &str) -> CopyDir {
    CopyDir { from: from.to_string(), to: to.to_string() }
}

/// The operator package's `description` (root Cargo.toml, read at compile time: xtask is another package).
fn operator_description() -> String {
    let manifest = include_str!("../../../Cargo.toml");
    let package = manifest.split("\n[package]").nth(1).unwrap_or_default();
    package
        .lines()
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| l.strip_prefix("description = "))
        .and_then(|v| serde_json::from_str::<String>(v.trim()).ok())
        .unwrap_or_else(|| PACKAGE.to_string())
}

/// The operator image: the static binary as entrypoint, non-root, the licence, OCI labels.
pub fn operator_spec(version: &semver::Version) -> Spec {
    let labels = BTreeMap::from([
        ("org.opencontainers.image.title".to_string(), PACKAGE.to_string()),
        ("org.opencontainers.image.description".to_string(), operator_description()),
        ("org.opencontainers.image.version".to_string(), version.to_string()),
        ("org.opencontainers.image.source".to_string(), env!("CARGO_PKG_REPOSITORY").to_string()),
        ("org.opencontainers.image.licenses".to_string(), env!("CARGO_PKG_LICENSE").to_string()),
    ]);
    Spec {
        runtime: Runtime {
            entrypoint: vec![OPERATOR_BINARY.to_string()],
            user: Some(NONROOT.to_string()),
            labels,
            ..Default::default()
        },
        copies: vec![],
    }
}

/// The bundle image: bundle/ with the bundle annotations as labels (bundle.rs's list, the one annotations.yaml
/// and bundle.Dockerfile are written from).
pub fn bundle_spec(labels: &BTreeMap<String, String>) -> Spec {
    Spec {
        runtime: Runtime { labels: labels.clone(), ..Default::default() },
        copies: vec![
            copy("bundle/manifests", "/manifests/"),
            copy("bundle/metadata", "/metadata/"),
            copy("bundle/tests/scorecard", "/tests/scorecard/"),
        ],
    }
}

/// The catalog image, on an opm base image. No serving cache is baked in: opm's pogreb cache differs from build
/// to build (hash seeds), which would make the image unreproducible; opm builds it at start (a second here).
pub fn catalog_spec() -> Spec {
    Spec {
        runtime: Runtime {
            entrypoint: vec![OPM_BINARY.to_string()],
            cmd: ["serve", CATALOG_CONFIGS, "--cache-dir=/tmp/cache", "--cache-enforce-integrity=false"]
                .map(String::from)
                .to_vec(),
            labels: BTreeMap::from([(INDEX_LABEL.to_string(), CATALOG_CONFIGS.to_string())]),
            ..Default::default()
        },
        copies: vec![copy(paths::CATALOG, CATALOG_CONFIGS)],
    }
}

/// The opm base image: a static opm, /tmp, non-root.
pub fn opm_base_spec() -> Spec {
    Spec {
        runtime: Runtime {
            entrypoint: vec![OPM_BINARY.to_string()],
            user: Some(NONROOT.to_string()),
            labels: BTreeMap::from([
                ("org.opencontainers.image.title".to_string(), "opm".to_string()),
                ("org.opencontainers.image.version".to_string(), Tool::Opm.version().to_string()),
                (
                    "org.opencontainers.image.source".to_string(),
                    "https://github.com/operator-framework/operator-registry".to_string(),
                ),
            ]),
            ..Default::default()
        },
        copies: vec![],
    }
}

/// The fixed time of every file and of the config: $SOURCE_DATE_EPOCH, else 0 (1970-01-01).
pub fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.trim().is_empty() => {
            s.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH `{s}` is not a number of seconds"))
        }
        _ => Ok(0),
    }
}

fn rfc3339(epoch: u64) -> Result<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch as i64).context("SOURCE_DATE_EPOCH out of range")?;
    Ok(crate::out::rfc3339(t))
}

/// /etc/passwd and /etc/group lines naming root and the non-root user, for programs that look users up.
pub const PASSWD: &[&str] = &["root:x:0:0:root:/:/sbin/nologin", "nonroot:x:65532:65532:nonroot:/:/sbin/nologin"];
pub const GROUP: &[&str] = &["root:x:0:", "nonroot:x:65532:"];

fn lines(l: &[&str]) -> Vec<u8> {
    l.iter().flat_map(|x| format!("{x}\n").into_bytes()).collect()
}

/// /tmp (1777) and the user files.
fn base_files(tree: &mut Tree) -> Result<()> {
    tree.dir("tmp", 0o1777, (0, 0))?;
    tree.file("etc/passwd", 0o644, (0, 0), lines(PASSWD))?;
    tree.file("etc/group", 0o644, (0, 0), lines(GROUP))?;
    Ok(())
}

fn single_layer(tree: &Tree, spec: &Spec, base: Option<&Image>, what: &str) -> Result<Image> {
    let epoch = source_date_epoch()?;
    let layer = Layer::from_tree(tree, epoch)?;
    oci::build(base, vec![layer], &spec.runtime, &rfc3339(epoch)?, &format!("cargo xtask image {what}"))
}

fn copies(root: &Path, spec: &Spec, tree: &mut Tree) -> Result<()> {
    for c in &spec.copies {
        tree.copy_dir(&root.join(&c.from), &c.to)?;
    }
    Ok(())
}

/// The Rust target the operator is built for: this machine's, with glibc linked statically.
pub fn host_target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// The rustc flags of the operator's release build (here and in the Dockerfile): static glibc, and the paths of
/// the dependency sources and of the checkout mapped to fixed names, so the binary (and the image digest) does not
/// depend on where the repository or the cargo home are.
pub fn operator_rustflags(cargo_home: &str, checkout: &str) -> Vec<String> {
    vec![
        "-C".into(),
        "target-feature=+crt-static".into(),
        format!("--remap-path-prefix={cargo_home}=/cargo"),
        format!("--remap-path-prefix={checkout}=/src"),
    ]
}

/// `cargo build --release --target <host>` of the operator with crt-static; returns the binary. `--target` keeps
/// the static flag off build scripts and proc-macros (they must stay dynamic to be loaded by the compiler).
pub fn build_operator_binary(root: &Path) -> Result<PathBuf> {
    let target = host_target();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("image: cargo build --release --target {target} -p {PACKAGE} (static glibc)...");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let flags = operator_rustflags(&cargo_home.to_string_lossy(), &root.to_string_lossy());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--locked", "--target", &target, "-p", PACKAGE])
        // The encoded form keeps paths with spaces whole.
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"))
        .env_remove("RUSTFLAGS");
    // The variables cargo sets for the program it runs (`cargo run`, `cargo test`): some build scripts (ring's)
    // rerun when they change, so a build from a test and one from the command line would rebuild each other's.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_by_cargo = ["CARGO_PKG_", "CARGO_BIN_EXE_"].iter().any(|p| key.starts_with(p))
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_MANIFEST_LINKS",
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
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        bail!("building the operator failed ({status})");
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let target_dir = if target_dir.is_absolute() { target_dir } else { root.join(target_dir) };
    Ok(target_dir.join(&target).join("release").join(PACKAGE))
}

/// The operator image from an already built binary.
pub fn operator_image(root: &Path, binary: &Path) -> Result<Image> {
    let spec = operator_spec(&project::workspace_version());
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    elf::check_static(&data, &binary.display().to_string())?;
    let license = root.join(LICENSE_FILE);
    let license = std::fs::read(&license)
        .with_context(|| format!("reading {} (the licence the image ships under {LICENSE_DEST})", license.display()))?;
    let mut tree = Tree::default();
    base_files(&mut tree)?;
    tree.file(OPERATOR_BINARY, 0o755, (0, 0), data)?;
    tree.file(LICENSE_DEST, 0o644, (0, 0), license)?;
    single_layer(&tree, &spec, None, "operator")
}

/// The bundle image of bundle/.
pub fn bundle_image(root: &Path) -> Result<(Image, String)> {
    let dir = root.join(paths::BUNDLE);
    let contents = bundle::read_dir(&dir)?;
    let labels = bundle::annotations(&contents.channels, &contents.default_channel);
    if labels != contents.annotations {
        bail!("{}/metadata/annotations.yaml differs from what `cargo xtask bundle` writes; rerun it", paths::BUNDLE);
    }
    let version = contents.csv["spec"]["version"].as_str().unwrap_or_default().to_string();
    let spec = bundle_spec(&labels);
    let mut tree = Tree::default();
    copies(root, &spec, &mut tree)?;
    Ok((single_layer(&tree, &spec, None, "bundle")?, format!("v{version}")))
}

/// The opm base image, from the pinned opm built without cgo.
pub fn opm_base_image() -> Result<Image> {
    let opm = tools::ensure_static(Tool::Opm)?;
    let data = std::fs::read(&opm).with_context(|| format!("reading {}", opm.display()))?;
    elf::check_static(&data, &opm.display().to_string())?;
    let mut tree = Tree::default();
    base_files(&mut tree)?;
    tree.file(OPM_BINARY, 0o755, (0, 0), data)?;
    single_layer(&tree, &opm_base_spec(), None, "opm-base")
}

/// The catalog image: the file-based catalog in `catalog_dir` (the repository's catalog/ for `cargo xtask image
/// catalog`) on `base`, after `opm validate` accepts it (what baking the serving cache used to check).
pub fn catalog_image(catalog_dir: &Path, base: &Image) -> Result<Image> {
    let opm = tools::ensure(Tool::Opm)?;
    crate::validate::opm_validate(&opm, catalog_dir)?;
    let spec = catalog_spec();
    let mut tree = Tree::default();
    tree.copy_dir(catalog_dir, &spec.copies[0].to)?;
    single_layer(&tree, &spec, Some(base), "catalog")
}

// ---------------------------------------------------------------------------------------------------------------
// `cargo xtask image ...`

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The operator (static release binary on scratch).
    Operator,
    /// The OLM bundle image of bundle/.
    Bundle,
    /// The file-based catalog on the opm base image.
    Catalog,
    /// The opm base image (the pinned opm, built here).
    OpmBase,
    /// Not an image: write Dockerfile and catalog.Dockerfile from the image specs.
    Dockerfiles,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Operator => "operator",
            Which::Bundle => "bundle",
            Which::Catalog => "catalog",
            Which::OpmBase => "opm-base",
            Which::Dockerfiles => "dockerfiles",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ImageArgs {
    #[arg(value_enum)]
    pub which: Which,
    /// Push the image to this reference (registry/repository:tag); plain HTTP only for loopback registries.
    #[arg(long, value_name = "REF")]
    pub push: Option<String>,
    /// OCI image layout folder to write (default target/images/<image>).
    #[arg(long, value_name = "DIR")]
    pub layout: Option<PathBuf>,
    /// catalog: pull the opm base image from this reference instead of building it here.
    #[arg(long, value_name = "REF")]
    pub base_image: Option<String>,
}

/// Writes Dockerfile and catalog.Dockerfile (bundle.Dockerfile is written by `cargo xtask bundle`).
pub fn write_dockerfiles(root: &Path) -> Result<()> {
    for (path, text) in [
        ("Dockerfile", templates::operator_dockerfile()?),
        (paths::CATALOG_DOCKERFILE, templates::catalog_dockerfile()?),
    ] {
        std::fs::write(root.join(path), text).with_context(|| format!("writing {path}"))?;
        eprintln!("image: wrote {path}");
    }
    Ok(())
}

pub fn run(root: &Path, args: &ImageArgs) -> Result<()> {
    if args.base_image.is_some() && args.which != Which::Catalog {
        bail!("--base-image is for the catalog image only");
    }
    if args.which == Which::Dockerfiles && (args.push.is_some() || args.layout.is_some()) {
        bail!("`image dockerfiles` writes files; --push and --layout are for images");
    }
    let start = Instant::now();
    let (image, tag) = match args.which {
        Which::Dockerfiles => return write_dockerfiles(root),
        Which::Operator => {
            let binary = build_operator_binary(root)?;
            (operator_image(root, &binary)?, project::workspace_version().to_string())
        }
        Which::Bundle => bundle_image(root)?,
        Which::OpmBase => (opm_base_image()?, Tool::Opm.version().to_string()),
        Which::Catalog => {
            let base = match &args.base_image {
                Some(r) => registry::pull(r)?,
                None => opm_base_image()?,
            };
            (catalog_image(&root.join(paths::CATALOG), &base)?, "latest".to_string())
        }
    };
    let layout = match &args.layout {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => std::env::current_dir()?.join(d),
        None => root.join("target/images").join(args.which.name()),
    };
    image.write_layout(&layout, &tag)?;
    eprintln!(
        "image {}: {} layers, {} compressed, built in {:.1}s; layout {}:{tag}",
        args.which.name(),
        image.layers.len(),
        human(image.layers_size()),
        start.elapsed().as_secs_f64(),
        layout.display()
    );
    if let Some(target) = &args.push {
        let digest = registry::push(&image, target)?;
        eprintln!("pushed {target}");
        // The by-digest reference (what `cargo xtask catalog --bundle-image` takes).
        let r = registry::parse_reference(target)?;
        println!("{}/{}@{digest}", r.registry(), r.repository());
    } else {
        println!("{}", image.manifest.digest);
    }
    Ok(())
}

pub fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
