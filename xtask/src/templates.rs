//! Text artifacts rendered from tera templates (xtask/templates/).
use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use tera::{Context, Tera};

use crate::project::{self, CATALOG_IMAGE, PACKAGE};

const TEMPLATES: &[(&str, &str)] = &[
    ("bundle.Dockerfile", include_str!("../templates/bundle.Dockerfile.tera")),
    ("catalog.Dockerfile", include_str!("../templates/catalog.Dockerfile.tera")),
    ("examples-README.md", include_str!("../templates/examples-README.md.tera")),
];

fn render(name: &str, context: &Context) -> Result<String> {
    let mut tera = Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_templates(TEMPLATES.iter().copied()).context("parsing the templates")?;
    tera.render(name, context).with_context(|| format!("rendering template {name}"))
}

pub fn bundle_dockerfile(labels: &BTreeMap<String, String>, version: &semver::Version) -> Result<String> {
    let mut c = Context::new();
    c.insert("package", PACKAGE);
    c.insert("version", &version.to_string());
    c.insert("bundle_image", &project::bundle_image(version));
    c.insert("labels", labels);
    render("bundle.Dockerfile", &c)
}

pub fn catalog_dockerfile() -> Result<String> {
    let mut c = Context::new();
    c.insert("catalog_image", CATALOG_IMAGE);
    c.insert("opm_version", crate::tools::Tool::Opm.version());
    render("catalog.Dockerfile", &c)
}

pub fn examples_readme(context: &Context) -> Result<String> {
    render("examples-README.md", context)
}
