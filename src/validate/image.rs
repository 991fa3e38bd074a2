//! The server image: edition and version read from the image reference.
//!
//! Decision for references that do not name a version: a digest without a tag (`repo@sha256:...`) is accepted with
//! the version unknown (the reference is immutable and the operator cannot read the version without a registry);
//! a missing tag, `latest` or any tag without a version number is refused, because such tags move: pods restarted
//! at different times would run different servers, and the version decides which configuration is valid.

/// What an image reference says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    /// The tag, if any (`7.1.0.0`, `latest`).
    pub tag: Option<String>,
    /// Pinned by digest (`@sha256:...`).
    pub digest: bool,
    /// The server version read from the tag (the longest run of dot-separated numbers), e.g. `[7, 1, 0, 0]`.
    pub version: Option<Vec<u64>>,
}

/// The oldest server version the operator supports.
pub(crate) const MIN_VERSION: [u64; 2] = [6, 0];

pub(crate) fn parse(image: &str) -> ImageRef {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, !d.is_empty()),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t.to_string()).filter(|t| !t.is_empty());
    let version = tag.as_deref().and_then(version_in);
    ImageRef { tag, digest, version }
}

/// The longest run of numbers joined by dots that has at least two parts (`ee-7.1.0.0_1` -> 7.1.0.0).
fn version_in(tag: &str) -> Option<Vec<u64>> {
    let mut best: Option<Vec<u64>> = None;
    let mut best_len = 0;
    let bytes = tag.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let run = tag[start..i].trim_end_matches('.');
        let parts: Vec<&str> = run.split('.').collect();
        // A run like "7..1" has an empty part: keep the prefix before it.
        let parts: Vec<&str> = parts.into_iter().take_while(|p| !p.is_empty()).collect();
        if parts.len() >= 2 {
            let text_len = parts.iter().map(|p| p.len() + 1).sum::<usize>();
            let nums: Option<Vec<u64>> = parts.iter().map(|p| p.parse().ok()).collect();
            if let Some(nums) = nums
                && text_len > best_len
            {
                best_len = text_len;
                best = Some(nums);
            }
        }
    }
    best
}

/// `a >= b`, comparing part by part (missing parts count as 0).
pub(crate) fn at_least(a: &[u64], b: &[u64]) -> bool {
    let n = a.len().max(b.len());
    for i in 0..n {
        let (x, y) = (a.get(i).copied().unwrap_or(0), b.get(i).copied().unwrap_or(0));
        if x != y {
            return x > y;
        }
    }
    true
}

pub(crate) fn is_federal(image: &str) -> bool {
    image.to_ascii_lowercase().contains("federal")
}

pub(crate) fn is_enterprise_or_federal(image: &str) -> bool {
    let lower = image.to_ascii_lowercase();
    lower.contains("enterprise") || lower.contains("federal")
}

pub(crate) fn show(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_tags() {
        let v = |s: &str| parse(s).version;
        assert_eq!(v("aerospike/aerospike-server-enterprise:7.1.0.0"), Some(vec![7, 1, 0, 0]));
        assert_eq!(v("registry:5000/aerospike/aerospike-server-enterprise:6.4.0.7_1"), Some(vec![6, 4, 0, 7]));
        assert_eq!(v("aerospike/aerospike-server-enterprise:ee-8.0.0.8-ubi9"), Some(vec![8, 0, 0, 8]));
        assert_eq!(v("registry:5000/aerospike-server-enterprise"), None);
        assert_eq!(v("aerospike/aerospike-server-enterprise:latest"), None);
        assert_eq!(v("aerospike/aerospike-server-enterprise:7"), None);
        let r = parse("aerospike/aerospike-server-enterprise@sha256:abcd");
        assert_eq!((r.tag, r.digest, r.version), (None, true, None));
        let r = parse("aerospike/aerospike-server-enterprise:7.2.0.1@sha256:abcd");
        assert_eq!((r.tag.as_deref(), r.digest, r.version), (Some("7.2.0.1"), true, Some(vec![7, 2, 0, 1])));
    }

    #[test]
    fn ordering() {
        assert!(at_least(&[6, 0, 0, 0], &MIN_VERSION));
        assert!(at_least(&[10, 0], &MIN_VERSION));
        assert!(!at_least(&[5, 7, 0, 17], &MIN_VERSION));
        assert!(at_least(&[6], &MIN_VERSION));
    }
}
