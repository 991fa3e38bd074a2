//! Kubernetes resource quantities (`500m`, `2Gi`, `1e3`), parsed to compare limits with requests.

/// The value of a quantity in base units (cores, bytes), or `None` when it is not a quantity.
pub(crate) fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let (sign, rest) = match q.as_bytes().first()? {
        b'+' => (1.0, &q[1..]),
        b'-' => (-1.0, &q[1..]),
        _ => (1.0, q),
    };
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..].parse().ok()?;
            10f64.powi(exp)
        }
        _ => return None,
    };
    Some(sign * n * factor)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn quantities() {
        assert_eq!(parse("1"), Some(1.0));
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("2Gi"), Some(2.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse("1.5G"), Some(1.5e9));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert!(parse("64Mi").unwrap() < parse("1Gi").unwrap());
        assert_eq!(parse("abc"), None);
        assert_eq!(parse("1Zi"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("1.2.3"), None);
    }
}
