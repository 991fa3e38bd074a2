//! Reading manifest folders: the plane installs OLM's CRDs from them, xtask reads the repository's generated files.
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

/// YAML and JSON files directly in `dir`, sorted by name.
pub fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if path.is_file() && matches!(ext, "yaml" | "yml" | "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Every document of a YAML stream (empty documents are skipped).
pub fn read_yaml_stream(path: &Path) -> Result<Vec<Value>> {
    let text = fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(docs.into_iter().filter(|v| !v.is_null()).collect())
}
