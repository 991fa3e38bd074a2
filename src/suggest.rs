//! "Did you mean" suggestions for unknown keys and names, bounded in time and memory whatever the input.

/// Strings longer than this (in characters) get no suggestion and are no candidate: a typo of a key or name is
/// short, and the distance costs the product of the two lengths.
pub(crate) const MAX_SUGGEST_CHARS: usize = 64;

/// Candidates examined per suggestion: the static tables are far smaller; user-defined lists (roles, namespaces)
/// are cut here so one suggestion costs at most this many 64x64 distances.
pub(crate) const MAX_SUGGEST_CANDIDATES: usize = 256;

/// `; did you mean "x"?` for the closest known key, when it is close enough to be a likely typo (this also
/// catches the conf-file spelling of plural CR keys: `device` for `devices`). Bounded: nothing for a key longer
/// than [`MAX_SUGGEST_CHARS`], longer candidates skipped, at most [`MAX_SUGGEST_CANDIDATES`] examined, and the
/// distance kept in three rows of at most 65 cells.
pub(crate) fn suggestion<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> String {
    if key.chars().nth(MAX_SUGGEST_CHARS).is_some() {
        return String::new();
    }
    let key_l = key.to_ascii_lowercase();
    let key_len = key_l.chars().count();
    let limit = if key_len >= 6 { 2.max(key_len / 4) } else { 1 };
    let best = known
        .take(MAX_SUGGEST_CANDIDATES)
        .filter(|k| k.chars().nth(MAX_SUGGEST_CHARS).is_none())
        // The distance is at least the difference in length.
        .filter(|k| k.chars().count().abs_diff(key_len) <= limit)
        .filter_map(|k| distance_within(&key_l, k, limit).map(|d| (d, k)))
        .min_by_key(|(d, k)| (*d, k.len()));
    match best {
        Some((_, k)) => format!("; did you mean {k:?}?"),
        None => String::new(),
    }
}

/// Suggestions for many user strings against user-defined names (a user's roles against the roles, rack-enabled
/// namespaces against the namespaces): only the first few misses get one, so a list of thousands of misses
/// against thousands of names costs a few suggestions, not their product.
pub(crate) struct SuggestionBudget(usize);

impl SuggestionBudget {
    pub(crate) const MISSES: usize = 16;

    pub(crate) fn new() -> Self {
        SuggestionBudget(Self::MISSES)
    }

    pub(crate) fn suggestion<'a>(&mut self, key: &str, known: impl Iterator<Item = &'a str>) -> String {
        if self.0 == 0 {
            return String::new();
        }
        self.0 -= 1;
        suggestion(key, known)
    }
}

/// Levenshtein distance with adjacent transpositions (optimal string alignment).
#[cfg(test)]
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    distance_within(a, b, usize::MAX).unwrap_or(usize::MAX)
}

/// [`edit_distance`] when it is at most `limit`, else `None`, in three rows (the current one, the one before
/// for edits, the one before that for transpositions): memory grows with the shorter string only, never with
/// the product of the lengths. A row's minimum is at least the smaller of the two rows' before it, so once two
/// rows in a row exceed `limit` the answer does, and the work stops there.
pub(crate) fn distance_within(a: &str, b: &str, limit: usize) -> Option<usize> {
    let (a, b) = if a.chars().count() < b.chars().count() { (b, a) } else { (a, b) };
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let m = b.len();
    let mut before: Vec<usize> = vec![0; m + 1];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur: Vec<usize> = vec![0; m + 1];
    let mut prev_min = 0;
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = i;
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(before[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > limit && prev_min > limit {
            return None;
        }
        prev_min = row_min;
        // before <- prev <- cur; the old `before` is overwritten on the next row.
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[m]).filter(|d| *d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full (n+1)x(m+1) table, as a reference for the three-row version.
    fn table_distance(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        let (n, m) = (a.len(), b.len());
        let mut d = vec![vec![0usize; m + 1]; n + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=n {
            for j in 1..=m {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[i - 2][j - 2] + 1);
                }
                d[i][j] = v;
            }
        }
        d[n][m]
    }

    #[test]
    fn three_rows_match_the_full_table() {
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "acb",
            "ca",
            "abc-def",
            "service",
            "servcie",
            "sevrice",
            "devices",
            "device",
            "replication-factor",
            "replciation-factor",
            "tls-port",
            "port",
            "\u{e9}t\u{e9}",
            "et\u{e9}",
            "xyzzy",
        ];
        for a in words {
            for b in words {
                assert_eq!(edit_distance(a, b), table_distance(a, b), "{a:?} {b:?}");
                assert_eq!(edit_distance(a, b), edit_distance(b, a), "{a:?} {b:?}");
                let d = table_distance(a, b);
                for limit in 0..6 {
                    assert_eq!(distance_within(a, b, limit), Some(d).filter(|d| *d <= limit), "{a:?} {b:?} {limit}");
                }
            }
        }
        assert_eq!(edit_distance("servcie", "service"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggestions_are_bounded() {
        assert_eq!(suggestion("servce", ["service", "network"].into_iter()), "; did you mean \"service\"?");
        assert_eq!(suggestion("device", ["devices"].into_iter()), "; did you mean \"devices\"?");
        // 64 characters still get one, 65 do not; candidates longer than 64 are skipped.
        let k64 = format!("{}x", "a".repeat(63));
        let c64 = "a".repeat(64);
        assert_eq!(suggestion(&k64, [c64.as_str()].into_iter()), format!("; did you mean {c64:?}?"));
        let k65 = format!("{}x", "a".repeat(64));
        let c65 = "a".repeat(65);
        assert_eq!(suggestion(&k65, [c65.as_str()].into_iter()), "");
        assert_eq!(suggestion(&k64, [c65.as_str()].into_iter()), "");
        // Only the first candidates are examined.
        let many: Vec<String> = (0..MAX_SUGGEST_CANDIDATES).map(|i| format!("zz{i:06}")).collect();
        let known = many.iter().map(String::as_str).chain(["service"]);
        assert_eq!(suggestion("servce", known), "");
    }
}
