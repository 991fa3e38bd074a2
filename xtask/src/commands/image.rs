//! `cargo xtask image operator|bundle|catalog|opm-base|dockerfiles`: this repository's images
//! ([`crate::packaging::images`]) written as an OCI image layout and/or pushed to a registry, or the Dockerfiles
//! rendered from the same definitions.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::image::{dockerfile, registry};
use crate::operator_build::build_operator_binary;
use crate::packaging::images::{bundle_image, catalog_image, operator_image, opm_base_image};
use crate::project::{self, paths};
use ako_testbed::tools::Tool;

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
        ("Dockerfile", dockerfile::operator_dockerfile()?),
        (paths::CATALOG_DOCKERFILE, dockerfile::catalog_dockerfile()?),
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
