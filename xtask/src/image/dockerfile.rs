//! The Dockerfiles (bundle.Dockerfile, catalog.Dockerfile, the operator's Dockerfile), rendered with tera
//! (xtask/templates/) from the image definitions of [`super::spec`].
use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use tera::{Context, Tera};

use super::spec as image;
use crate::project::{self, CATALOG_IMAGE, PACKAGE};

const TEMPLATES: &[(&str, &str)] = &[
    ("bundle.Dockerfile", include_str!("../../templates/bundle.Dockerfile.tera")),
    ("catalog.Dockerfile", include_str!("../../templates/catalog.Dockerfile.tera")),
    ("Dockerfile", include_str!("../../templates/operator.Dockerfile.tera")),
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
    let spec = image::bundle_spec(labels);
    c.insert("labels", &spec.runtime.labels);
    c.insert("copies", &spec.copies);
    render("bundle.Dockerfile", &c)
}

/// JSON-array (exec) form of an ENTRYPOINT or CMD.
fn exec_form(args: &[String]) -> Result<String> {
    Ok(serde_json::to_string(args)?)
}

/// LABEL lines, values quoted (descriptions have spaces).
fn label_lines(labels: &BTreeMap<String, String>) -> Result<Vec<String>> {
    labels.iter().map(|(k, v)| Ok(format!("LABEL {k}={}", serde_json::to_string(v)?))).collect()
}

pub fn catalog_dockerfile() -> Result<String> {
    let spec = image::catalog_spec();
    let mut c = Context::new();
    c.insert("catalog_image", CATALOG_IMAGE);
    c.insert("opm_version", ako_testbed::tools::Tool::Opm.version());
    c.insert("entrypoint", &exec_form(&spec.runtime.entrypoint)?);
    c.insert("cmd", &exec_form(&spec.runtime.cmd)?);
    c.insert("copies", &spec.copies);
    c.insert("labels", &label_lines(&spec.runtime.labels)?);
    render("catalog.Dockerfile", &c)
}

/// The operator's multi-stage Dockerfile (repository root `Dockerfile`).
pub fn operator_dockerfile() -> Result<String> {
    let version = project::workspace_version();
    let spec = image::operator_spec(&version);
    let mut c = Context::new();
    c.insert("package", PACKAGE);
    // The rust image's cargo home, and the build stage's WORKDIR.
    c.insert("rustflags", &image::operator_rustflags("/usr/local/cargo", "/src").join(" "));
    c.insert("operator_image", &project::operator_image(&version));
    c.insert("builder", image::RUST_BUILDER_IMAGE);
    c.insert("binary", image::OPERATOR_BINARY);
    c.insert("license_file", image::LICENSE_FILE);
    c.insert("license", image::LICENSE_DEST);
    c.insert("passwd", image::PASSWD);
    c.insert("group", image::GROUP);
    c.insert("labels", &label_lines(&spec.runtime.labels)?);
    c.insert("user", spec.runtime.user.as_deref().unwrap_or_default());
    c.insert("entrypoint", &exec_form(&spec.runtime.entrypoint)?);
    render("Dockerfile", &c)
}
