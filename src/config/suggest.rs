//! "Did you mean …": the nearest known key for a misspelt one, shared by the file reader,
//! the environment overrides and the time-zone check.

/// "did you mean ..." for a misspelt or misplaced key, else a pointer to the docs.
pub(super) fn suggestion(key: &str, known: &[&str]) -> String {
    match closest(key, known) {
        Some(k) => format!("did you mean `{k}`?"),
        None => "see docs/configuration.md for the list of keys".to_string(),
    }
}

/// A known key or section within edit distance 2 (ignoring case), else a known key with
/// the same last component elsewhere (`max_recipients` at the top level, `hostname`
/// under `[submission]`).
fn closest(key: &str, known: &[&str]) -> Option<String> {
    let mut candidates: Vec<String> = Vec::new();
    for k in known.iter().filter(|k| !k.contains("[]")) {
        candidates.push(k.to_string());
        let mut acc = String::new();
        for part in k.split('.') {
            if !acc.is_empty() {
                candidates.push(acc.clone());
                acc.push('.');
            }
            acc.push_str(part);
        }
    }
    candidates.sort();
    candidates.dedup();
    let lower = key.to_ascii_lowercase();
    let best =
        candidates.iter().map(|c| (edit_distance(&lower, c), c)).filter(|(d, _)| *d <= 2).min_by_key(|(d, _)| *d);
    if let Some((_, c)) = best {
        return Some(c.clone());
    }
    let leaf = lower.rsplit('.').next().unwrap_or(&lower);
    candidates.into_iter().find(|c| c.rsplit('.').next() == Some(leaf))
}

/// Levenshtein distance over chars; key names are short, so O(n·m) is fine.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
