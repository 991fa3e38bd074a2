//! Reading inputs with errors that name the file, writing outputs all at once.
//!
//! Every YAML document is produced from a typed value that goes through `serde_json::Value` first: its maps are
//! ordered by key, so two runs print the same bytes and the key order never depends on struct declarations.
//! Outputs are collected in a [`Staged`] set and written only when the whole command succeeded: first into a
//! staging folder beside them, then moved into place by renames.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One YAML document, keys sorted.
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String> {
    let value = serde_json::to_value(value).context("converting to a JSON value")?;
    Ok(serde_saphyr::to_string_with_options(&value, yaml_options())?)
}

/// Long one-line strings stay on one line (the default folds them at 80 columns), so a generated file reads like
/// the source it came from; strings with newlines are written as literal blocks.
pub fn yaml_options() -> serde_saphyr::SerializerOptions {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX;
    options
}

/// Several YAML documents in one stream, each started by `---`.
pub fn to_yaml_stream(values: &[Value]) -> Result<String> {
    let mut out = String::new();
    for v in values {
        out.push_str("---\n");
        out.push_str(&to_yaml(v)?);
    }
    Ok(out)
}

/// A typed value as a `serde_json::Value` (keys sorted).
pub fn value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("generated values serialise")
}

/// Reads a file as UTF-8, naming it in the error.
pub fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// Parses one YAML document; errors name the file and the field (the parser reports the line and column).
pub fn read_yaml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read_text(path)?;
    parse_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

pub fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str(text)
}

/// Every document of a YAML stream, and the manifest files of a folder: the testbed's readers.
pub use ako_testbed::yaml::{manifest_files, read_yaml_stream};

/// Every file under `dir`, recursively, as paths relative to `dir` (sorted).
pub fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    fn go(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                go(base, &path, out)?;
            } else {
                out.push(path.strip_prefix(base).expect("under base").to_path_buf());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        go(dir, dir, &mut out)?;
    }
    out.sort();
    Ok(out)
}

/// JSON as Go's `encoding/json` writes it (what `opm` stores in `olm.bundle.object`): compact, map keys sorted,
/// `<`, `>`, `&`, U+2028 and U+2029 escaped, integral numbers without a fraction.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                write!(out, "{i}").unwrap();
            } else if let Some(u) = n.as_u64() {
                write!(out, "{u}").unwrap();
            } else {
                out.push_str(&go_float(n.as_f64().expect("a JSON number is finite")));
            }
        }
        Value::String(s) => go_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_string(k, out);
                out.push(':');
                write_go_json(item, out);
            }
            out.push('}');
        }
    }
}

/// Go formats float64 with the shortest representation, in exponent form below 1e-6 and from 1e21.
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust writes 1e21 / 1e-7; encoding/json writes 1e+21 / 1e-7 (two exponent digits only when positive).
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').expect("exponent form");
        match exp.strip_prefix('-') {
            Some(digits) => format!("{mantissa}e-{digits}"),
            None => format!("{mantissa}e+{exp:0>2}"),
        }
    } else {
        let s = format!("{f}");
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    }
}

fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The first line of every generated YAML file: which command regenerates it.
pub fn yaml_header(command: &str) -> String {
    format!("{GENERATED_BY}{command}` (do not edit).\n")
}

const GENERATED_BY: &str = "# Generated by `cargo xtask ";

/// `text` (YAML) headed by [`yaml_header`] of `command`, replacing a generated-by header it already has (the
/// catalog writes unchanged files back as they were read).
pub fn with_yaml_header(command: &str, text: impl Into<Vec<u8>>) -> Vec<u8> {
    let text = text.into();
    let body = match text.strip_prefix(GENERATED_BY.as_bytes()) {
        Some(rest) => rest.iter().position(|&b| b == b'\n').map_or(&[][..], |i| &rest[i + 1..]),
        None => &text[..],
    };
    let mut out = yaml_header(command).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Files to write, all or nothing. Directories claimed with [`Staged::own_dir`] are replaced as a whole (files
/// that are no longer generated disappear); other files are replaced one by one.
pub struct Staged {
    root: PathBuf,
    dirs: Vec<PathBuf>,
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl Staged {
    pub fn new(root: &Path) -> Self {
        Staged { root: root.to_path_buf(), dirs: Vec::new(), files: BTreeMap::new() }
    }

    /// Claims `rel` (relative to the root): after commit it holds exactly the files added under it.
    pub fn own_dir(&mut self, rel: impl AsRef<Path>) {
        self.dirs.push(rel.as_ref().to_path_buf());
    }

    pub fn file(&mut self, rel: impl AsRef<Path>, contents: impl Into<Vec<u8>>) {
        self.files.insert(rel.as_ref().to_path_buf(), contents.into());
    }

    /// A generated YAML file: `text` with the header naming `command`, the `cargo xtask` command that writes it.
    pub fn yaml(&mut self, command: &str, rel: impl AsRef<Path>, text: impl Into<Vec<u8>>) {
        self.file(rel, with_yaml_header(command, text));
    }

    pub fn files(&self) -> &BTreeMap<PathBuf, Vec<u8>> {
        &self.files
    }

    /// The folders claimed with [`Staged::own_dir`].
    pub fn owned_dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Writes everything into a staging folder under the root, then renames it into place.
    pub fn commit(self) -> Result<()> {
        let staging = self.root.join(format!(".xtask-staging-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging)?;
        }
        let result = self.commit_via(&staging);
        let _ = fs::remove_dir_all(&staging);
        result
    }

    fn commit_via(&self, staging: &Path) -> Result<()> {
        let new = staging.join("new");
        let old = staging.join("old");
        for dir in &self.dirs {
            fs::create_dir_all(new.join(dir))?;
        }
        for (rel, contents) in &self.files {
            let path = new.join(rel);
            fs::create_dir_all(path.parent().expect("a file has a parent"))?;
            fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        }
        // Everything is on disk; now swap it in, owned directories first.
        for dir in &self.dirs {
            let target = self.root.join(dir);
            if target.exists() {
                let aside = old.join(dir);
                fs::create_dir_all(aside.parent().expect("has parent"))?;
                fs::rename(&target, &aside).with_context(|| format!("moving {} aside", target.display()))?;
            }
            fs::create_dir_all(target.parent().expect("has parent"))?;
            fs::rename(new.join(dir), &target).with_context(|| format!("moving {} into place", target.display()))?;
        }
        for rel in self.files.keys() {
            if self.dirs.iter().any(|d| rel.starts_with(d)) {
                continue;
            }
            let target = self.root.join(rel);
            fs::create_dir_all(target.parent().expect("has parent"))?;
            fs::rename(new.join(rel), &target).with_context(|| format!("moving {} into place", target.display()))?;
        }
        Ok(())
    }
}

/// Fails unless `value` is a valid DNS-1123 subdomain-like name part (used for file names we derive).
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        bail!("{what} `{name}` is not a valid name (lower-case letters, digits, '-' and '.')");
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds): the CSV's createdAt and an image's created time.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_yaml_has_one_header_naming_its_command() {
        let once = with_yaml_header("bundle", "a: 1\n");
        assert_eq!(
            String::from_utf8(once.clone()).unwrap(),
            "# Generated by `cargo xtask bundle` (do not edit).\na: 1\n"
        );
        assert_eq!(with_yaml_header("bundle", once.clone()), once);
        let other = with_yaml_header("catalog", once);
        assert_eq!(String::from_utf8(other).unwrap(), "# Generated by `cargo xtask catalog` (do not edit).\na: 1\n");
    }
    use serde_json::json;

    #[test]
    fn go_json_matches_go_encoding() {
        let v = json!({"b": [1, 2.5, 1.0, 1e21, 0.0000001], "a": "x <= y && z > 0\u{2028}", "c": null});
        assert_eq!(
            go_json(&v),
            r#"{"a":"x \u003c= y \u0026\u0026 z \u003e 0\u2028","b":[1,2.5,1,1e+21,1e-7],"c":null}"#
        );
    }

    #[test]
    fn staged_replaces_owned_dirs_and_files() {
        let tmp = std::env::temp_dir().join(format!("xtask-staged-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(tmp.join("d")).unwrap();
        fs::write(tmp.join("d/stale.yaml"), "old").unwrap();
        let mut s = Staged::new(&tmp);
        s.own_dir("d");
        s.file("d/new.yaml", "new");
        s.file("top.txt", "top");
        s.commit().unwrap();
        assert!(!tmp.join("d/stale.yaml").exists());
        assert_eq!(fs::read_to_string(tmp.join("d/new.yaml")).unwrap(), "new");
        assert_eq!(fs::read_to_string(tmp.join("top.txt")).unwrap(), "top");
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 2, "no staging folder left behind");
        fs::remove_dir_all(&tmp).unwrap();
    }
}
