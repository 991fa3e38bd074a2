//! Deterministic filesystem layers: a sorted tar with fixed owner and time, gzipped without a name or mtime, so
//! the same files always give the same bytes (and digests).
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

/// One entry of a layer: a directory or a regular file, owned by `uid:gid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32, uid: u64, gid: u64 },
    File { mode: u32, uid: u64, gid: u64, data: Vec<u8> },
}

/// The files of one layer by path inside the image (no leading slash; `a/b`). A BTreeMap keeps tar order
/// sorted, and parents sort before their children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    pub entries: BTreeMap<String, Node>,
}

fn clean(path: &str) -> Result<String> {
    let p = path.trim_matches('/');
    if p.is_empty() || p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        bail!("`{path}` is not a plain path inside the image");
    }
    Ok(p.to_string())
}

impl Tree {
    /// Adds a directory (and its missing parents, 0755 root).
    pub fn dir(&mut self, path: &str, mode: u32, owner: (u64, u64)) -> Result<()> {
        let p = clean(path)?;
        self.parents(&p);
        self.entries.insert(p, Node::Dir { mode, uid: owner.0, gid: owner.1 });
        Ok(())
    }

    /// Adds a regular file (and its missing parents, 0755 root).
    pub fn file(&mut self, path: &str, mode: u32, owner: (u64, u64), data: Vec<u8>) -> Result<()> {
        let p = clean(path)?;
        if matches!(self.entries.get(&p), Some(Node::Dir { .. })) {
            bail!("`{path}` is added as a file and as a directory");
        }
        self.parents(&p);
        self.entries.insert(p, Node::File { mode, uid: owner.0, gid: owner.1, data });
        Ok(())
    }

    fn parents(&mut self, p: &str) {
        let mut at = 0;
        while let Some(i) = p[at..].find('/') {
            let parent = &p[..at + i];
            self.entries.entry(parent.to_string()).or_insert(Node::Dir { mode: 0o755, uid: 0, gid: 0 });
            at += i + 1;
        }
    }

    /// Copies the host folder `src` to `dest` inside the image, as Docker's `COPY src dest/` does: the folder's
    /// contents, recursively. Files keep their executable bit (0755 or 0644); owner root.
    pub fn copy_dir(&mut self, src: &Path, dest: &str) -> Result<()> {
        if !src.is_dir() {
            bail!("{}: not a folder (COPY source)", src.display());
        }
        self.dir(dest, 0o755, (0, 0))?;
        let mut stack = vec![(src.to_path_buf(), clean(dest)?)];
        while let Some((dir, into)) = stack.pop() {
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .collect::<std::io::Result<Vec<_>>>()
                .with_context(|| format!("reading {}", dir.display()))?;
            names.sort_by_key(|e| e.file_name());
            for e in names {
                let name = e.file_name().into_string().map_err(|n| anyhow::anyhow!("{n:?}: not UTF-8"))?;
                let path = e.path();
                let target = format!("{into}/{name}");
                let meta = std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
                if meta.is_dir() {
                    self.dir(&target, 0o755, (0, 0))?;
                    stack.push((path, target));
                } else if meta.is_file() {
                    use std::os::unix::fs::PermissionsExt as _;
                    let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
                    let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                    self.file(&target, mode, (0, 0), data)?;
                } else {
                    bail!("{}: only folders and regular files can be copied into an image", path.display());
                }
            }
        }
        Ok(())
    }

    /// The uncompressed tar: entries sorted by path, mtime `mtime`, no user or group names.
    pub fn tar(&self, mtime: u64) -> Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, node) in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(mtime);
            match node {
                Node::Dir { mode, uid, gid } => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_uid(*uid);
                    h.set_gid(*gid);
                    h.set_size(0);
                    b.append_data(&mut h, format!("{path}/"), std::io::empty())?;
                }
                Node::File { mode, uid, gid, data } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_uid(*uid);
                    h.set_gid(*gid);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, path, data.as_slice())?;
                }
            }
        }
        Ok(b.into_inner()?)
    }
}

/// A built layer: the gzipped tar (the blob) and the digest of the uncompressed tar (the config's diff_id).
pub struct Layer {
    pub blob: Vec<u8>,
    pub diff_id: String,
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

impl Layer {
    pub fn from_tree(tree: &Tree, mtime: u64) -> Result<Layer> {
        let tar = tree.tar(mtime)?;
        let diff_id = sha256(&tar);
        // No file name and mtime 0 in the gzip header; the OS byte is fixed by flate2 (255, unknown).
        let mut gz = GzBuilder::new().mtime(0).write(Vec::new(), Compression::default());
        gz.write_all(&tar)?;
        Ok(Layer { blob: gz.finish()?, diff_id })
    }
}

/// Reads a gzipped (or plain) tar layer back into a tree (files and folders; links and others are refused).
pub fn read_layer(blob: &[u8]) -> Result<Tree> {
    let mut tree = Tree::default();
    let gz = blob.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gz { Box::new(flate2::read::GzDecoder::new(blob)) } else { Box::new(blob) };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().context("reading a layer")? {
        let mut entry = entry.context("reading a layer entry")?;
        let path = entry.path()?.to_string_lossy().to_string();
        let path = path.trim_start_matches("./").trim_end_matches('/').to_string();
        if path.is_empty() || path == "." {
            continue;
        }
        let h = entry.header();
        let (mode, uid, gid) = (h.mode()? & 0o7777, h.uid()?, h.gid()?);
        match h.entry_type() {
            tar::EntryType::Directory => {
                tree.entries.insert(path, Node::Dir { mode, uid, gid });
            }
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                tree.entries.insert(path, Node::File { mode, uid, gid, data });
            }
            other => bail!("layer entry {path}: type {other:?} is not supported here"),
        }
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_byte_reproducible_and_read_back() {
        let mut t = Tree::default();
        t.file("b/x", 0o644, (0, 0), b"x".to_vec()).unwrap();
        t.dir("tmp", 0o1777, (0, 0)).unwrap();
        t.file("a", 0o755, (0, 0), b"a".to_vec()).unwrap();
        let one = Layer::from_tree(&t, 0).unwrap();
        let two = Layer::from_tree(&t.clone(), 0).unwrap();
        assert_eq!(one.blob, two.blob);
        let back = read_layer(&one.blob).unwrap();
        assert_eq!(back, t);
        assert!(matches!(back.entries["b"], Node::Dir { mode: 0o755, .. }));
    }

    #[test]
    fn paths_outside_the_image_are_refused() {
        let mut t = Tree::default();
        assert!(t.file("../etc/passwd", 0o644, (0, 0), vec![]).is_err());
        assert!(t.dir("/", 0o755, (0, 0)).is_err());
    }
}
