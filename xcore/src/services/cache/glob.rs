//! Glob matching with Redis's rules (`SCAN ... MATCH`), so that the memory backend lists and
//! deletes exactly what the Redis backend would: `*` any bytes, `?` one byte, `[abc]`, `[^a]`,
//! `[a-z]` classes, `\` escapes the next byte. Matching is byte-wise and linear in time (one
//! backtracking point), never exponential.

enum Token<'a> {
    Star,
    Any,
    Class { body: &'a [u8], negate: bool },
    Byte(u8),
}

/// The token at `p[i..]` and where the next one starts.
fn token(p: &[u8], i: usize) -> (Token<'_>, usize) {
    match p[i] {
        b'*' => (Token::Star, i + 1),
        b'?' => (Token::Any, i + 1),
        b'\\' if i + 1 < p.len() => (Token::Byte(p[i + 1]), i + 2),
        b'[' => {
            let mut j = i + 1;
            let negate = p.get(j) == Some(&b'^');
            if negate {
                j += 1;
            }
            let start = j;
            while j < p.len() && p[j] != b']' {
                j += if p[j] == b'\\' && j + 1 < p.len() {
                    2
                } else {
                    1
                };
            }
            let body = &p[start..j.min(p.len())];
            (Token::Class { body, negate }, (j + 1).min(p.len()))
        }
        b => (Token::Byte(b), i + 1),
    }
}

fn class_matches(body: &[u8], c: u8) -> bool {
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' && i + 1 < body.len() {
            if body[i + 1] == c {
                return true;
            }
            i += 2;
        } else if i + 2 < body.len() && body[i + 1] == b'-' {
            let (a, b) = (body[i].min(body[i + 2]), body[i].max(body[i + 2]));
            if (a..=b).contains(&c) {
                return true;
            }
            i += 3;
        } else {
            if body[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// Whether `text` matches the Redis glob `pattern`.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut si) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index it covers to).
    let mut resume: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            let (tok, next) = token(p, pi);
            let ok = match tok {
                Token::Star => {
                    resume = Some((next, si));
                    pi = next;
                    continue;
                }
                Token::Any => true,
                Token::Class { body, negate } => class_matches(body, s[si]) != negate,
                Token::Byte(b) => b == s[si],
            };
            if ok {
                pi = next;
                si += 1;
                continue;
            }
        }
        match resume {
            Some((after_star, covered)) => {
                resume = Some((after_star, covered + 1));
                pi = after_star;
                si = covered + 1;
            }
            None => return false,
        }
    }
    while pi < p.len() {
        match token(p, pi) {
            (Token::Star, next) => pi = next,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_rules() {
        let table: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("a*", "abc", true),
            ("a*", "bac", false),
            ("*c", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a[bc]d", "acd", true),
            ("a[bc]d", "aed", false),
            ("a[^bc]d", "aed", true),
            ("a[^bc]d", "abd", false),
            ("a[b-d]e", "ace", true),
            ("a[d-b]e", "ace", true),
            ("a[b-d]e", "aze", false),
            (r"a\*b", "a*b", true),
            (r"a\*b", "axb", false),
            (r"a[\]]b", "a]b", true),
            ("user:*:name", "user:42:name", true),
            ("user:*:name", "user:42:mail", false),
            ("**a", "xxa", true),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b*", "xxbxxaxx", false),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("a[bc", "ab", true),
            (r"trailing\", "trailing\\", true),
        ];
        for (p, s, want) in table {
            assert_eq!(matches(p, s), *want, "{p} ~ {s}");
        }
    }

    #[test]
    fn linear_on_adversarial_input() {
        let text = "a".repeat(10_000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!matches(&pattern, &text));
    }
}
