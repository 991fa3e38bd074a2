//! The conf hash stored in the rack ConfigMap (docs/aerospike-conf.md §7), compatible with the reference operator
//! so that clusters it created are not rolled when we take them over.

use ripemd::{Digest, Ripemd160};

/// The benchmark keys the reference writer once printed bare (without `true`); the hash reduces
/// `<key> ... true` to the bare key for them, in this order.
const BENCHMARK_KEYS: &[&str] = &[
    "enable-benchmarks-batch-sub",
    "enable-benchmarks-read",
    "enable-benchmarks-udf",
    "enable-benchmarks-write",
    "enable-benchmarks-udf-sub",
    "enable-benchmarks-storage",
];

/// RIPEMD-160 (lower-case hex) of the rendered template after the reference's two normalisations:
///
/// 1. the first match of the regular expression `rack-id.*\d+` (leftmost, greedy, within one line) is
///    taken, and every occurrence of that exact text is replaced by `rack-id    0` (so racks that differ
///    only by their rack-id hash alike);
/// 2. for each benchmark key K, the first match of `K.*true` is taken and every occurrence of that text
///    is replaced by K (`enable-benchmarks-read    true` -> `enable-benchmarks-read`).
///
/// The replacements are plain substring replacements, exactly like Go's `strings.ReplaceAll` in the
/// reference (so `rack-id    1` also rewrites the start of `rack-id    12`).
pub fn config_hash(rendered: &str) -> String {
    let mut text = rendered.to_string();
    if let Some(found) = find_key_then_last(&text, "rack-id", last_digit_end) {
        text = text.replace(&found, "rack-id    0");
    }
    for key in BENCHMARK_KEYS {
        if let Some(found) = find_key_then_last(&text, key, |rest| rest.rfind("true").map(|i| i + 4)) {
            text = text.replace(&found, key);
        }
    }
    hex::encode(Ripemd160::digest(text.as_bytes()))
}

/// Emulates the leftmost match of `<key>.*<tail>` where `.` does not match a line break: the first
/// occurrence of `key` whose remaining line satisfies `tail_end`, extended to the end `tail_end` gives
/// (measured from just after the key; greedy, so the last possible end on the line).
fn find_key_then_last(text: &str, key: &str, tail_end: impl Fn(&str) -> Option<usize>) -> Option<String> {
    let mut from = 0;
    while let Some(pos) = text[from..].find(key) {
        let start = from + pos;
        let after = start + key.len();
        let line_end = text[after..].find('\n').map_or(text.len(), |i| after + i);
        if let Some(end) = tail_end(&text[after..line_end]) {
            return Some(text[start..after + end].to_string());
        }
        from = start + 1;
        while !text.is_char_boundary(from) {
            from += 1;
        }
    }
    None
}

/// End (exclusive) of the last ASCII digit in `s`.
fn last_digit_end(s: &str) -> Option<usize> {
    s.bytes().rposition(|b| b.is_ascii_digit()).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn known_ripemd160_vectors() {
        assert_eq!(config_hash(""), "9c1185a5c5e9fc54612808977ee8f548b2258d31");
        assert_eq!(config_hash("abc"), "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc");
    }

    #[test]
    fn rack_id_is_normalised() {
        let a =
            "\nnamespace a {\n    rack-id    1\n    replication-factor    2\n}\n\nnamespace b {\n    rack-id    1\n}\n";
        let b =
            "\nnamespace a {\n    rack-id    2\n    replication-factor    2\n}\n\nnamespace b {\n    rack-id    2\n}\n";
        let zero =
            "\nnamespace a {\n    rack-id    0\n    replication-factor    2\n}\n\nnamespace b {\n    rack-id    0\n}\n";
        assert_eq!(config_hash(a), config_hash(b));
        assert_eq!(config_hash(a), config_hash(zero));
        assert_ne!(config_hash(a), config_hash("\nnamespace a {\n    rack-id    1\n    replication-factor    3\n}\n"));
    }

    #[test]
    fn rack_id_replacement_is_textual_like_the_reference() {
        // First match is "rack-id    1"; ReplaceAll also hits the prefix of "rack-id    12".
        let text = "rack-id    1\nrack-id    12\n";
        assert_eq!(config_hash(text), config_hash("rack-id    0\nrack-id    02\n"));
        // A rack-id occurrence without a digit on its line is skipped.
        assert_eq!(
            find_key_then_last("x rack-id none\n  rack-id    42 z\n", "rack-id", last_digit_end),
            Some("rack-id    42".to_string())
        );
        assert_eq!(find_key_then_last("rack-id\n5", "rack-id", last_digit_end), None);
    }

    #[test]
    fn benchmark_true_is_reduced_to_the_bare_key() {
        let with_true = "\nnamespace a {\n    enable-benchmarks-read    true\n    enable-benchmarks-write    true\n}\n";
        let bare = "\nnamespace a {\n    enable-benchmarks-read\n    enable-benchmarks-write\n}\n";
        assert_eq!(config_hash(with_true), config_hash(bare));
        assert_eq!(config_hash(bare), hex::encode(Ripemd160::digest(bare.as_bytes())));
    }
}
