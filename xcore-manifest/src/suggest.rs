//! The distance behind every "did you mean …?" of xcore (manifest keys, config keys).

/// The edit distance between `a` and `b`, over chars: insertions, deletions, substitutions and
/// swaps of two neighbours each cost 1 (optimal string alignment), so `limti` is one edit from
/// `limit`. Case-sensitive: lowercase both sides first for a case-insensitive distance.
///
/// ```
/// assert_eq!(xcore_manifest::edit_distance("permisions", "permissions"), 1);
/// assert_eq!(xcore_manifest::edit_distance("limti", "limit"), 1);
/// assert_eq!(xcore_manifest::edit_distance("", "abc"), 3);
/// ```
pub fn edit_distance(a: &str, b: &str) -> usize {
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
