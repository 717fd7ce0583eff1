//! "Did you mean …?": the closest known key by edit distance.

/// The candidate closest to `word`, if it is close enough to be a likely typo: a small edit
/// distance, or else the only candidate that `word` abbreviates (`prod` → `production`).
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let by_distance = candidates
        .iter()
        .map(|c| (distance(&word_lower, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    by_distance.or_else(|| {
        let mut prefixed = candidates
            .iter()
            .filter(|c| word_lower.len() >= 2 && c.to_lowercase().starts_with(&word_lower));
        match (prefixed.next(), prefixed.next()) {
            (Some(only), None) => Some(*only),
            _ => None,
        }
    })
}

/// Edit distance over chars, counting a swap of two neighbours as one edit (optimal string
/// alignment): `limti` is one edit from `limit`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: the distance between a[..i] and b[..j].
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("ttll", "ttl"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("same", "same"), 0);
        assert_eq!(distance("limti", "limit"), 1);
    }

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["backend", "ttl", "max_size", "prefix", "redis"];
        assert_eq!(closest("ttll", keys), Some("ttl"));
        assert_eq!(closest("max_sise", keys), Some("max_size"));
        assert_eq!(closest("TTL", keys), Some("ttl"));
        assert_eq!(closest("completely_different", keys), None);
        assert_eq!(closest("x", []), None);
        let envs = ["development", "staging", "production"];
        assert_eq!(closest("prod", envs), Some("production"));
        assert_eq!(closest("dev", envs), Some("development"));
        assert_eq!(closest("p", envs), None);
        assert_eq!(closest("max", ["max_size", "max_retries"]), None);
    }
}
