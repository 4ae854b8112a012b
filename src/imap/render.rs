//! ENVELOPE, BODYSTRUCTURE and BODY[section] from the stored structure and the raw bytes
//! (RFC 3501 §6.4.5, §7.4.2). Pure functions; the stored structure gives every range, so
//! only a header block is ever parsed here (for ENVELOPE's addresses).

use mail_parser::{Address, MessageParser};

use super::wire::Out;
use crate::mailstore::structure::{Kind, Part, Structure};
use crate::message::header::parse_block;

/// ENVELOPE of the message whose header is `header`.
pub fn envelope(out: &mut Out, header: &[u8]) {
    let block = parse_block(header, 0, header.len());
    let value = |name: &str| -> Option<Vec<u8>> {
        let f = block.fields.iter().find(|f| f.is(header, name))?;
        Some(unfold(&header[f.value(header)]))
    };
    let parsed = MessageParser::default().parse_headers(header);
    out.raw("(");
    out.nstring(value("Date").as_deref()).raw(" ");
    out.nstring(value("Subject").as_deref()).raw(" ");
    let from = parsed.as_ref().and_then(|m| m.from());
    let sender = parsed.as_ref().and_then(|m| m.sender()).or(from);
    let reply_to = parsed.as_ref().and_then(|m| m.reply_to()).or(from);
    addresses(out, from);
    out.raw(" ");
    addresses(out, sender);
    out.raw(" ");
    addresses(out, reply_to);
    for list in [
        parsed.as_ref().and_then(|m| m.to()),
        parsed.as_ref().and_then(|m| m.cc()),
        parsed.as_ref().and_then(|m| m.bcc()),
    ] {
        out.raw(" ");
        addresses(out, list);
    }
    out.raw(" ");
    out.nstring(value("In-Reply-To").as_deref()).raw(" ");
    out.nstring(value("Message-ID").as_deref()).raw(")");
}

/// A header value with its folding removed and surrounding white space trimmed.
fn unfold(v: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = v.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
    while out.first().is_some_and(|b| b.is_ascii_whitespace()) {
        out.remove(0);
    }
    while out.last().is_some_and(|b| b.is_ascii_whitespace()) {
        out.pop();
    }
    out
}

fn addresses(out: &mut Out, list: Option<&Address<'_>>) {
    let Some(list) = list else {
        out.raw("NIL");
        return;
    };
    let mut any = false;
    let mut body = Out::default();
    match list {
        Address::List(addrs) => {
            for a in addrs {
                any |= address(&mut body, a.name.as_deref(), a.address.as_deref());
            }
        }
        Address::Group(groups) => {
            for g in groups {
                // A group: a start marker (NIL NIL name NIL), its members, an end marker.
                if let Some(name) = &g.name {
                    body.raw("(NIL NIL ").string(name.as_bytes()).raw(" NIL)");
                    any = true;
                }
                for a in &g.addresses {
                    any |= address(&mut body, a.name.as_deref(), a.address.as_deref());
                }
                if g.name.is_some() {
                    body.raw("(NIL NIL NIL NIL)");
                }
            }
        }
    }
    if any {
        out.raw("(").bytes(&body.buf).raw(")");
    } else {
        out.raw("NIL");
    }
}

fn address(out: &mut Out, name: Option<&str>, addr: Option<&str>) -> bool {
    let Some(addr) = addr.filter(|a| !a.is_empty()) else { return false };
    // An obsolete source route (`<@route:user@domain>`) goes in its own field.
    let (route, addr) = match addr.strip_prefix('@').and_then(|_| addr.split_once(':')) {
        Some((route, rest)) => (Some(route), rest),
        None => (None, addr),
    };
    let (mailbox, host) = match addr.rsplit_once('@') {
        Some((m, h)) => (m, Some(h)),
        None => (addr, None),
    };
    out.raw("(");
    match name.filter(|n| !n.is_empty()) {
        Some(n) if n.is_ascii() => out.string(n.as_bytes()),
        Some(n) => out.string(encoded_word(n).as_bytes()),
        None => out.raw("NIL"),
    };
    out.raw(" ")
        .nstring(route.map(str::as_bytes))
        .raw(" ")
        .string(mailbox.as_bytes())
        .raw(" ")
        .nstring(host.map(str::as_bytes))
        .raw(")");
    true
}

/// A decoded non-ASCII display name goes back on the wire as an RFC 2047 word, as it came.
fn encoded_word(s: &str) -> String {
    use base64::Engine;
    format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(s))
}

/// BODY (`extended` false) or BODYSTRUCTURE (`extended` true).
pub fn body_structure(out: &mut Out, s: &Structure, raw: &[u8], extended: bool) {
    part(out, &s.root, raw, extended);
}

fn params(out: &mut Out, params: &[(String, String)]) {
    if params.is_empty() {
        out.raw("NIL");
        return;
    }
    out.raw("(");
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.raw(" ");
        }
        out.string(k.as_bytes()).raw(" ").string(v.as_bytes());
    }
    out.raw(")");
}

fn part(out: &mut Out, p: &Part, raw: &[u8], extended: bool) {
    out.raw("(");
    if let Kind::Multipart(children) = &p.kind
        && !children.is_empty()
    {
        for c in children {
            part(out, c, raw, extended);
        }
        out.raw(" ").string(p.subtype.as_bytes());
        if extended {
            out.raw(" ");
            params(out, &p.params);
            out.raw(" ");
            disposition(out, p);
            out.raw(" NIL NIL");
        }
        out.raw(")");
        return;
    }
    let (media, sub) = match &p.kind {
        // A multipart without parts is shown as what it holds: bytes.
        Kind::Multipart(_) => ("application", "octet-stream"),
        _ => (p.media_type.as_str(), p.subtype.as_str()),
    };
    out.string(media.as_bytes()).raw(" ").string(sub.as_bytes()).raw(" ");
    params(out, &p.params);
    out.raw(" ").nstring(p.id.as_deref().map(str::as_bytes));
    out.raw(" ").nstring(p.description.as_deref().map(str::as_bytes));
    out.raw(" ").string(p.encoding.as_deref().unwrap_or("7bit").as_bytes());
    out.raw(" ").num(p.body.1 - p.body.0);
    match &p.kind {
        Kind::Message(inner) => {
            out.raw(" ");
            envelope(out, slice(raw, inner.header));
            out.raw(" ");
            part(out, inner, raw, extended);
            out.raw(" ").num(p.lines);
        }
        _ if media == "text" => {
            out.raw(" ").num(p.lines);
        }
        _ => {}
    }
    if extended {
        out.raw(" NIL ");
        disposition(out, p);
        out.raw(" NIL NIL");
    }
    out.raw(")");
}

fn disposition(out: &mut Out, p: &Part) {
    match &p.disposition {
        Some((kind, ps)) => {
            out.raw("(").string(kind.as_bytes()).raw(" ");
            params(out, ps);
            out.raw(")");
        }
        None => {
            out.raw("NIL");
        }
    }
}

pub fn slice(raw: &[u8], r: (u32, u32)) -> &[u8] {
    let end = (r.1 as usize).min(raw.len());
    &raw[(r.0 as usize).min(end)..end]
}

/// What a BODY[...] section names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// `[]` or `[1.2]`: the part's body (`[]`: the whole message).
    Part(Vec<u32>),
    Header(Vec<u32>),
    /// HEADER.FIELDS / HEADER.FIELDS.NOT: (names, not).
    Fields(Vec<u32>, Vec<String>, bool),
    Text(Vec<u32>),
    Mime(Vec<u32>),
}

/// The bytes of a section, or `None` when the message has no such part (answered as empty,
/// as Dovecot does, rather than failing the whole FETCH).
pub fn section(s: &Structure, raw: &[u8], sec: &Section) -> Vec<u8> {
    // HEADER and TEXT of a part number name the message/rfc822 it holds.
    let message_at = |path: &[u32]| -> Option<&Part> {
        if path.is_empty() {
            return Some(&s.root);
        }
        match &s.section(path)?.kind {
            Kind::Message(inner) => Some(inner),
            _ => None,
        }
    };
    match sec {
        Section::Part(path) if path.is_empty() => raw.to_vec(),
        Section::Part(path) => s.section(path).map(|p| slice(raw, p.body).to_vec()).unwrap_or_default(),
        Section::Header(path) => message_at(path).map(|p| slice(raw, p.header).to_vec()).unwrap_or_default(),
        Section::Text(path) => message_at(path).map(|p| slice(raw, p.body).to_vec()).unwrap_or_default(),
        Section::Mime(path) => s.section(path).map(|p| slice(raw, p.header).to_vec()).unwrap_or_default(),
        Section::Fields(path, names, not) => {
            let Some(p) = message_at(path) else { return Vec::new() };
            let header = slice(raw, p.header);
            let block = parse_block(header, 0, header.len());
            let mut out = Vec::new();
            for f in &block.fields {
                let listed = names.iter().any(|n| f.is(header, n));
                if listed != *not {
                    out.extend_from_slice(f.bytes(header));
                }
            }
            out.extend_from_slice(b"\r\n");
            out
        }
    }
}

#[cfg(test)]
mod tests;
