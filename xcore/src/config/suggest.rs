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
    xcore_manifest::edit_distance(a, b)
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
