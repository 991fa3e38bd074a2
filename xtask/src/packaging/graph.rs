//! Upgrade-graph checks of a file-based catalog: one head per channel, no cycles, every replaces/skips target
//! present, versions increasing along the chain, no stranded entries, the default channel present.
use std::collections::{BTreeMap, BTreeSet};

use semver::Version;

use super::fbc::{Catalog, heads};

/// The version range syntax OLM uses for `olm.skipRange` (blang/semver): comparators separated by spaces are
/// all required, `||` separates alternatives. Returns whether `v` is in the range.
pub fn parse_skip_range(range: &str) -> Result<SkipRange, String> {
    let mut alternatives = Vec::new();
    for alt in range.split("||") {
        let mut comparators = Vec::new();
        let tokens: Vec<&str> = alt.split_whitespace().collect();
        if tokens.is_empty() {
            return Err(format!("`{range}`: empty alternative"));
        }
        for token in tokens {
            let (op, rest) = [">=", "<=", "!=", "==", ">", "<", "="]
                .iter()
                .find_map(|op| token.strip_prefix(op).map(|r| (*op, r)))
                .unwrap_or(("=", token));
            let version = Version::parse(rest.trim_start_matches('v'))
                .map_err(|e| format!("`{range}`: `{token}` is not a comparison with a version ({e})"))?;
            comparators.push((op.to_string(), version));
        }
        alternatives.push(comparators);
    }
    Ok(SkipRange { alternatives })
}

#[derive(Clone, Debug)]
pub struct SkipRange {
    alternatives: Vec<Vec<(String, Version)>>,
}

impl SkipRange {
    pub fn contains(&self, v: &Version) -> bool {
        self.alternatives.iter().any(|all| {
            all.iter().all(|(op, w)| match op.as_str() {
                ">=" => v >= w,
                "<=" => v <= w,
                ">" => v > w,
                "<" => v < w,
                "!=" => v != w,
                _ => v == w,
            })
        })
    }
}

/// Every problem of the catalog's upgrade graph, each naming the file, the channel and the entry.
pub fn check(catalog: &Catalog) -> Vec<String> {
    let mut errors = Vec::new();
    let versions: BTreeMap<&str, Option<Version>> =
        catalog.bundles.iter().map(|b| (b.doc.name.as_str(), b.doc.version())).collect();
    for b in &catalog.bundles {
        if b.doc.version().is_none() {
            errors.push(format!("{}: bundle {}: no olm.package property with a semantic version", b.file, b.doc.name));
        }
        if !catalog.packages.iter().any(|p| p.doc.name == b.doc.package) {
            errors.push(format!("{}: bundle {}: package {} has no olm.package", b.file, b.doc.name, b.doc.package));
        }
        let in_channel = catalog
            .channels
            .iter()
            .any(|c| c.doc.package == b.doc.package && c.doc.entries.iter().any(|e| e.name == b.doc.name));
        if !in_channel {
            errors.push(format!("{}: bundle {} is in no channel", b.file, b.doc.name));
        }
    }
    if catalog.packages.is_empty() {
        errors.push("no olm.package in the catalog".to_string());
    }
    for p in &catalog.packages {
        let channels: Vec<_> = catalog.channels.iter().filter(|c| c.doc.package == p.doc.name).collect();
        if !channels.iter().any(|c| c.doc.name == p.doc.default_channel) {
            errors.push(format!(
                "{}: package {}: defaultChannel {} is not a channel of the package (channels: {})",
                p.file,
                p.doc.name,
                p.doc.default_channel,
                channels.iter().map(|c| c.doc.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for c in &catalog.channels {
        let at = format!("{}: channel {}", c.file, c.doc.name);
        if !catalog.packages.iter().any(|p| p.doc.name == c.doc.package) {
            errors.push(format!("{at}: package {} has no olm.package", c.doc.package));
        }
        let entries = &c.doc.entries;
        let mut names = BTreeSet::new();
        for e in entries {
            if !names.insert(e.name.as_str()) {
                errors.push(format!("{at}: entry {} appears twice", e.name));
            }
            if !versions.contains_key(e.name.as_str()) {
                errors.push(format!("{at}: entry {} has no olm.bundle", e.name));
            }
            if let Some(range) = &e.skip_range
                && let Err(err) = parse_skip_range(range)
            {
                errors.push(format!("{at}: entry {}: skipRange {err}", e.name));
            }
        }
        let version_of = |name: &str| versions.get(name).cloned().flatten();
        for e in entries {
            let targets = e.replaces.iter().map(|t| ("replaces", t)).chain(e.skips.iter().map(|t| ("skips", t)));
            for (how, target) in targets {
                if !names.contains(target.as_str()) {
                    errors.push(format!("{at}: entry {} {how} {target}, which is not in the channel", e.name));
                    continue;
                }
                if let (Some(v), Some(t)) = (version_of(&e.name), version_of(target))
                    && v <= t
                {
                    errors.push(format!(
                        "{at}: entry {} (version {v}) {how} {target} (version {t}): versions must increase along the chain",
                        e.name
                    ));
                }
            }
        }
        // Cycles along replaces.
        let replaces: BTreeMap<&str, &str> =
            entries.iter().filter_map(|e| e.replaces.as_deref().map(|r| (e.name.as_str(), r))).collect();
        let mut reported = BTreeSet::new();
        for e in entries {
            let mut path = vec![e.name.as_str()];
            let mut cur = e.name.as_str();
            while let Some(&next) = replaces.get(cur) {
                if let Some(pos) = path.iter().position(|p| *p == next) {
                    let mut cycle: Vec<&str> = path[pos..].to_vec();
                    let key: BTreeSet<&str> = cycle.iter().copied().collect();
                    if reported.insert(key.into_iter().collect::<Vec<_>>().join(",")) {
                        cycle.push(next);
                        errors.push(format!("{at}: replaces cycle {}", cycle.join(" -> ")));
                    }
                    break;
                }
                path.push(next);
                cur = next;
            }
        }
        let hs = heads(entries);
        match hs.len() {
            0 if !entries.is_empty() => errors.push(format!("{at}: no head (every entry is replaced or skipped)")),
            0 => errors.push(format!("{at}: no entries")),
            1 => {
                // Everything must be reachable from the head through replaces and skips (else stranded).
                let mut seen = BTreeSet::new();
                let mut todo = vec![hs[0].as_str()];
                while let Some(n) = todo.pop() {
                    if !seen.insert(n) {
                        continue;
                    }
                    if let Some(e) = entries.iter().find(|e| e.name == n) {
                        todo.extend(e.replaces.iter().chain(e.skips.iter()).map(String::as_str));
                    }
                }
                for e in entries {
                    if !seen.contains(e.name.as_str()) {
                        errors.push(format!(
                            "{at}: entry {} is stranded (not reachable from the head {})",
                            e.name, hs[0]
                        ));
                    }
                }
            }
            _ => errors.push(format!("{at}: {} heads ({}); a channel has exactly one", hs.len(), hs.join(", "))),
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_ranges() {
        let r = parse_skip_range(">=0.1.0 <0.3.0").unwrap();
        assert!(r.contains(&Version::new(0, 2, 5)));
        assert!(!r.contains(&Version::new(0, 3, 0)));
        let r = parse_skip_range("<0.1.0 || >=1.0.0").unwrap();
        assert!(r.contains(&Version::new(1, 2, 0)));
        assert!(parse_skip_range(">=abc").is_err());
        assert!(parse_skip_range("").is_err());
    }
}
