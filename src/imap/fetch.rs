//! FETCH data items: what a client asked for, in gatepost's own terms, and the rendering of
//! one message's response (RFC 3501 §6.4.5, §7.4.2; MODSEQ from RFC 7162).

use imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Part, Section as WireSection};

use imap_types::IntoStatic;

use super::render::{self, Section};
use super::wire::Out;
use crate::mailstore::db::Member;
use crate::mailstore::structure::Structure;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Uid,
    Flags,
    InternalDate,
    Size,
    Envelope,
    /// BODY (`false`) or BODYSTRUCTURE (`true`).
    Structure(bool),
    ModSeq,
    /// RFC822, RFC822.HEADER, RFC822.TEXT and every BODY[...]: the label to answer with, the
    /// section, a partial range, and whether it sets `\Seen`.
    Section {
        label: String,
        section: Section,
        partial: Option<(u32, u32)>,
        sets_seen: bool,
    },
}

impl Item {
    pub fn needs_raw(&self) -> bool {
        matches!(self, Item::Envelope | Item::Structure(_) | Item::Section { .. })
    }

    pub fn needs_structure(&self) -> bool {
        matches!(self, Item::Structure(_) | Item::Section { .. })
    }

    pub fn sets_seen(&self) -> bool {
        matches!(self, Item::Section { sets_seen: true, .. })
    }
}

fn path(part: &Option<Part>) -> Vec<u32> {
    part.as_ref().map(|p| p.0.as_ref().iter().map(|n| n.get()).collect()).unwrap_or_default()
}

fn path_label(p: &[u32]) -> String {
    p.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(".")
}

fn with_path(p: &[u32], what: &str) -> String {
    if p.is_empty() { what.to_string() } else { format!("{}.{what}", path_label(p)) }
}

fn names(list: &[imap_types::core::AString<'_>]) -> Vec<String> {
    list.iter().map(|a| String::from_utf8_lossy(a.as_ref()).into_owned()).collect()
}

/// The client's items as gatepost's, or the reason they cannot be served (BAD).
pub fn items(wanted: MacroOrMessageDataItemNames<'_>) -> Result<Vec<Item>, &'static str> {
    let list: Vec<MessageDataItemName<'_>> = match wanted {
        MacroOrMessageDataItemNames::Macro(m) => m.expand().into_iter().map(|i| i.into_static()).collect(),
        MacroOrMessageDataItemNames::MessageDataItemNames(l) => l,
    };
    let mut out = Vec::new();
    for name in list {
        out.push(match name {
            MessageDataItemName::Uid => Item::Uid,
            MessageDataItemName::Flags => Item::Flags,
            MessageDataItemName::InternalDate => Item::InternalDate,
            MessageDataItemName::Rfc822Size => Item::Size,
            MessageDataItemName::Envelope => Item::Envelope,
            MessageDataItemName::Body => Item::Structure(false),
            MessageDataItemName::BodyStructure => Item::Structure(true),
            MessageDataItemName::ModSeq => Item::ModSeq,
            MessageDataItemName::Rfc822 => {
                Item::Section { label: "RFC822".into(), section: Section::Part(vec![]), partial: None, sets_seen: true }
            }
            MessageDataItemName::Rfc822Header => Item::Section {
                label: "RFC822.HEADER".into(),
                section: Section::Header(vec![]),
                partial: None,
                sets_seen: false,
            },
            MessageDataItemName::Rfc822Text => Item::Section {
                label: "RFC822.TEXT".into(),
                section: Section::Text(vec![]),
                partial: None,
                sets_seen: true,
            },
            MessageDataItemName::BodyExt { section, partial, peek } => {
                let (spec, section) = match &section {
                    None => (String::new(), Section::Part(vec![])),
                    Some(WireSection::Part(p)) => {
                        let p: Vec<u32> = p.0.as_ref().iter().map(|n| n.get()).collect();
                        (path_label(&p), Section::Part(p))
                    }
                    Some(WireSection::Header(p)) => (with_path(&path(p), "HEADER"), Section::Header(path(p))),
                    Some(WireSection::Text(p)) => (with_path(&path(p), "TEXT"), Section::Text(path(p))),
                    Some(WireSection::Mime(p)) => {
                        let p: Vec<u32> = p.0.as_ref().iter().map(|n| n.get()).collect();
                        (with_path(&p, "MIME"), Section::Mime(p))
                    }
                    Some(WireSection::HeaderFields(p, list)) => {
                        let n = names(list.as_ref());
                        (
                            with_path(&path(p), &format!("HEADER.FIELDS ({})", n.join(" "))),
                            Section::Fields(path(p), n, false),
                        )
                    }
                    Some(WireSection::HeaderFieldsNot(p, list)) => {
                        let n = names(list.as_ref());
                        let label = with_path(&path(p), &format!("HEADER.FIELDS.NOT ({})", n.join(" ")));
                        (label, Section::Fields(path(p), n, true))
                    }
                };
                let partial = partial.map(|(start, len)| (start, len.get()));
                Item::Section { label: format!("BODY[{spec}]"), section, partial, sets_seen: !peek }
            }
            MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. } => {
                return Err("BINARY is not supported");
            }
        });
    }
    Ok(out)
}

/// `FLAGS (...)` of a membership, `\Recent` when it is recent for this session.
pub fn flag_list(out: &mut Out, m: &Member, recent: bool) {
    out.raw("FLAGS (");
    let mut first = true;
    for f in m.flags().chain(recent.then_some("\\Recent")) {
        if !first {
            out.raw(" ");
        }
        first = false;
        out.raw(f);
    }
    out.raw(")");
}

/// INTERNALDATE as `"01-Dec-2026 10:00:00 +0000"`.
pub fn internaldate(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::UTC).strftime("%d-%b-%Y %H:%M:%S +0000").to_string()
}

/// What one message's response is made from.
pub struct Message<'a> {
    pub msn: usize,
    pub member: &'a Member,
    pub recent: bool,
    pub raw: Option<&'a [u8]>,
    pub structure: Option<&'a Structure>,
}

/// `* n FETCH (...)`.
pub fn render(out: &mut Out, m: &Message<'_>, items: &[Item]) {
    out.raw("* ").num(m.msn).raw(" FETCH (");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.raw(" ");
        }
        let raw = m.raw.unwrap_or_default();
        match item {
            Item::Uid => {
                out.raw("UID ").num(m.member.uid);
            }
            Item::Flags => flag_list(out, m.member, m.recent),
            Item::InternalDate => {
                out.raw("INTERNALDATE \"").raw(&internaldate(m.member.message.internaldate)).raw("\"");
            }
            Item::Size => {
                out.raw("RFC822.SIZE ").num(m.member.message.size);
            }
            Item::ModSeq => {
                out.raw("MODSEQ (").num(m.member.modseq).raw(")");
            }
            Item::Envelope => {
                let header = m.structure.map_or(raw, |s| render::slice(raw, s.root.header));
                out.raw("ENVELOPE ");
                render::envelope(out, header);
            }
            Item::Structure(extended) => {
                out.raw(if *extended { "BODYSTRUCTURE " } else { "BODY " });
                if let Some(s) = m.structure {
                    render::body_structure(out, s, raw, *extended);
                }
            }
            Item::Section { label, section, partial, .. } => {
                let bytes = match m.structure {
                    Some(s) => render::section(s, raw, section),
                    None => Vec::new(),
                };
                out.raw(label);
                match partial {
                    Some((start, len)) => {
                        let from = (*start as usize).min(bytes.len());
                        let to = from.saturating_add(*len as usize).min(bytes.len());
                        out.raw("<").num(start).raw("> ").literal(&bytes[from..to]);
                    }
                    None => {
                        out.raw(" ").literal(&bytes);
                    }
                }
            }
        }
    }
    out.raw(")").crlf();
}
