//! Address-level header work: removing date tags from To/Cc without touching anything else in
//! the field, and writing the rewritten From with a properly quoted or encoded display name.

/// Which bytes of a structured field value stand outside quoted strings and comments, where an
/// address can be (a tag inside a quoted display name is just text and must stay).
fn outside_mask(v: &[u8]) -> Vec<bool> {
    let mut mask = vec![false; v.len()];
    let (mut quoted, mut depth, mut i) = (false, 0usize, 0);
    while i < v.len() {
        let b = v[i];
        if quoted || depth > 0 {
            if b == b'\\' {
                i += 1;
            } else if quoted && b == b'"' {
                quoted = false;
            } else if !quoted && b == b'(' {
                depth += 1;
            } else if !quoted && b == b')' {
                depth -= 1;
            }
        } else if b == b'"' {
            quoted = true;
        } else if b == b'(' {
            depth = 1;
        } else {
            mask[i] = true;
        }
        i += 1;
    }
    mask
}

/// `field` (a To or Cc field; its value starts at `value_off`) with every address listed in
/// `tagged` replaced by its clean form, or None when none occurs. Matching is
/// case-insensitive and whole-address only; the user's spelling of the rest is kept.
pub(super) fn strip_tags(field: &[u8], value_off: usize, tagged: &[(String, String)]) -> Option<Vec<u8>> {
    let value = &field[value_off..];
    let mask = outside_mask(value);
    let before_ok = |i: usize| i == 0 || b"<,:; \t\r\n)".contains(&value[i - 1]);
    let after_ok = |i: usize| i == value.len() || b">,; \t\r\n(".contains(&value[i]);
    let mut cuts: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    for (tagged, clean) in tagged {
        let t = tagged.as_bytes();
        let unsafe_text = |a: &str| a.is_empty() || a.chars().any(|c| c.is_control() || c.is_whitespace());
        if unsafe_text(tagged) || unsafe_text(clean) || tagged.eq_ignore_ascii_case(clean) || t.len() > value.len() {
            continue;
        }
        let mut i = 0;
        while i + t.len() <= value.len() {
            let end = i + t.len();
            if value[i..end].eq_ignore_ascii_case(t) && mask[i..end].iter().all(|&m| m) && before_ok(i) && after_ok(end)
            {
                cuts.push((i, end, untagged(&value[i..end], clean)));
                i = end;
            } else {
                i += 1;
            }
        }
    }
    if cuts.is_empty() {
        return None;
    }
    cuts.sort_by_key(|c| c.0);
    let mut out = field[..value_off].to_vec();
    let mut pos = 0;
    for (start, end, replacement) in cuts {
        if start >= pos {
            out.extend_from_slice(&value[pos..start]);
            out.extend_from_slice(&replacement);
            pos = end;
        }
    }
    out.extend_from_slice(&value[pos..]);
    Some(out)
}

/// The clean address for `found`: its own local part cut back to the clean one's length when
/// they agree (so `Bob+2026-12-25@Example.net` becomes `Bob@Example.net`), else `clean` as given.
fn untagged(found: &[u8], clean: &str) -> Vec<u8> {
    let split = |a: &[u8]| a.iter().rposition(|&b| b == b'@').map(|i| (a[..i].to_vec(), a[i..].to_vec()));
    if let (Some((local, domain)), Some((clean_local, clean_domain))) = (split(found), split(clean.as_bytes())) {
        let n = clean_local.len();
        if domain.eq_ignore_ascii_case(&clean_domain)
            && local.len() > n
            && local[..n].eq_ignore_ascii_case(&clean_local)
        {
            return [&local[..n], &domain[..]].concat();
        }
    }
    clean.as_bytes().to_vec()
}

/// One line of printable text: control characters (CR and LF above all, which could smuggle a
/// header in) become spaces, runs of white space one space.
pub(super) fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// An address as written by gatepost: no white space, controls or angle brackets.
pub(super) fn bare_address(text: &str) -> String {
    text.chars().filter(|c| !c.is_control() && !c.is_whitespace() && !matches!(c, '<' | '>' | ',' | ';')).collect()
}

/// Longest payload of one `=?UTF-8?Q?…?=` word: RFC 2047 §2 limits a line holding encoded
/// words to 76 characters, and the first word follows `From: `.
const Q_PAYLOAD: usize = 76 - "From: ".len() - "=?UTF-8?Q??=".len();

/// A display name as an RFC 5322 phrase: a quoted string when ASCII, else RFC 2047 encoded
/// words (Q encoding, UTF-8, never splitting a character), separated by spaces.
pub(super) fn phrase(name: &str) -> String {
    if name.is_ascii() {
        let escaped: String =
            name.chars().flat_map(|c| if c == '"' || c == '\\' { vec!['\\', c] } else { vec![c] }).collect();
        return format!("\"{escaped}\"");
    }
    let mut words: Vec<String> = vec![String::new()];
    for c in name.chars() {
        let mut buf = [0u8; 4];
        let encoded: String = c
            .encode_utf8(&mut buf)
            .bytes()
            .map(|b| match b {
                b' ' => "_".to_string(),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => char::from(b).to_string(),
                _ => format!("={b:02X}"),
            })
            .collect();
        if words.last().is_some_and(|w| w.len() + encoded.len() > Q_PAYLOAD) {
            words.push(String::new());
        }
        if let Some(w) = words.last_mut() {
            w.push_str(&encoded);
        }
    }
    words.iter().map(|w| format!("=?UTF-8?Q?{w}?=")).collect::<Vec<_>>().join(" ")
}

/// Longest display name (in characters) the rewritten From carries. The name comes from the
/// client's From: a name of thousands of characters without a space could not be folded and
/// would make a line over RFC 5322's 998 octets, which relays refuse or cut.
pub(super) const MAX_NAME_CHARS: usize = 200;

/// `name` cut to [`MAX_NAME_CHARS`] characters, with `...` when cut.
fn shortened(name: &str) -> String {
    match name.char_indices().nth(MAX_NAME_CHARS - 3) {
        Some((at, _)) if name.chars().count() > MAX_NAME_CHARS => format!("{}...", name[..at].trim_end()),
        _ => name.to_string(),
    }
}

/// The rewritten From field: the display name (already rendered from its template, shortened
/// when very long) and the relay's address, folded when long.
pub(super) fn from_field(display_name: &str, relay_address: &str, eol: &[u8]) -> Vec<u8> {
    let name = shortened(&one_line(display_name));
    let address = bare_address(relay_address);
    if name.is_empty() {
        return super::headers::fold_words(&format!("From: {address}"), eol);
    }
    let text = format!("From: {} <{address}>", phrase(&name));
    super::headers::fold_words(&text, eol)
}
