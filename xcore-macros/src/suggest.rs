//! "Did you mean ...?" for misspelt keys.

/// The edit distance between `a` and `b`, ignoring ASCII case.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    xcore_manifest::edit_distance(&a.to_ascii_lowercase(), &b.to_ascii_lowercase())
}

/// The candidate `word` most likely stands for, if one is close enough: a small edit distance
/// (at most a third of the word's length, and at least 1), or a candidate containing the word
/// (or contained in it) when the shorter of the two has at least 3 characters.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let budget = (word.chars().count() / 3).max(1);
    let by_distance = candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    by_distance.or_else(|| {
        let lower = word.to_ascii_lowercase();
        candidates.iter().copied().find(|c| {
            let (short, long) = if c.len() < lower.len() {
                (*c, lower.as_str())
            } else {
                (lower.as_str(), *c)
            };
            short.len() >= 3 && long.contains(short)
        })
    })
}

/// The message for an unknown key: the closest valid key if there is one, then every valid key.
pub(crate) fn unknown_key(word: &str, valid: &[&str]) -> String {
    let list = valid
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match closest(word, valid) {
        Some(hint) => format!("unknown key `{word}`; did you mean `{hint}`? (valid keys: {list})"),
        None => format!("unknown key `{word}`; valid keys: {list}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &[
        "name",
        "version",
        "description",
        "author",
        "services",
        "requires",
        "permissions",
        "allowed_callers",
        "mode",
        "timeout",
        "rate_limit",
        "max_concurrency",
    ];

    #[test]
    fn distance() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("versoin", "version"), 1);
        assert_eq!(edit_distance("Name", "name"), 0);
        assert_eq!(edit_distance("permisions", "permissions"), 1);
    }

    #[test]
    fn suggests_close_keys() {
        assert_eq!(closest("permisions", KEYS), Some("permissions"));
        assert_eq!(closest("timout", KEYS), Some("timeout"));
        assert_eq!(closest("versoin", KEYS), Some("version"));
        assert_eq!(closest("Name", KEYS), Some("name"));
        assert_eq!(closest("ratelimit", KEYS), Some("rate_limit"));
        assert_eq!(closest("service", KEYS), Some("services"));
        assert_eq!(closest("desc", KEYS), Some("description"));
        assert_eq!(closest("concurrency", KEYS), Some("max_concurrency"));
        assert_eq!(
            closest("allowed_callers_list", KEYS),
            Some("allowed_callers")
        );
    }

    #[test]
    fn does_not_suggest_far_keys() {
        assert_eq!(closest("zzz", KEYS), None);
        assert_eq!(closest("x", KEYS), None);
        assert_eq!(closest("colour", KEYS), None);
        assert_eq!(closest("", KEYS), None);
    }

    #[test]
    fn message() {
        let msg = unknown_key("permisions", KEYS);
        assert!(
            msg.starts_with("unknown key `permisions`; did you mean `permissions`?"),
            "{msg}"
        );
        assert!(msg.contains("`max_concurrency`"), "{msg}");
        let msg = unknown_key("zzz", &["name"]);
        assert_eq!(msg, "unknown key `zzz`; valid keys: `name`");
    }
}
