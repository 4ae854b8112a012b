//! How records are shown to people (`queue show`, `trace show`, `trace` tables). Every value
//! that came from a client or a relay (subject, names, ids, HELO, addresses, replies, event
//! details) goes through `output::value`, so it shows as text and never as a terminal escape.

use gatepost::store::QueueRecord;

use super::output::value;

/// Everything about one message, its attempts and its timeline, times in the user's zone.
pub fn timeline(r: &QueueRecord) -> String {
    let tz = jiff::tz::TimeZone::get(&r.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let local = |t: jiff::Timestamp| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string();
    let paused = if r.paused { " (paused from the IMAP Scheduled folder)" } else { "" };
    let mut s = format!(
        "queue id:     {}\nstate:        {}{paused}\nuser:         {}\n",
        r.id,
        r.state.as_str(),
        value(&r.user)
    );
    let name = r.sender_name.as_deref().map(|n| format!("\"{}\" ", value(n))).unwrap_or_default();
    s += &format!(
        "sender:       {name}<{}>\nsubject:      {}\n",
        value(&r.sender),
        value(r.subject.as_deref().unwrap_or(""))
    );
    s += &format!("message-id:   {}\nsize:         {} octets\n", value(r.message_id.as_deref().unwrap_or("-")), r.size);
    s += &format!("client:       {}\n", value(&r.client_text()));
    if let Some(account) = &r.route {
        s += &format!("route:        account {} (its own SMTP server, sent as written)\n", value(account));
    }
    s += &format!("submitted:    {}\nsession:      {}\nrecipients:\n", local(r.submitted_at), value(&r.session_id));
    for rc in &r.recipients {
        s += &format!(
            "  {:<40} {:<10} release {} ({})\n",
            value(&rc.address),
            rc.state.as_str(),
            local(rc.release_at),
            value(rc.source.as_str())
        );
        if let Some(next) = rc.next_attempt_at.filter(|_| rc.state.is_pending()) {
            s += &format!("  {:<40} next attempt {}\n", "", local(next));
        }
        if let Some(err) = &rc.last_error {
            s += &format!("  {:<40} last error: {}\n", "", value(err));
        }
        if rc.possibly_delivered > 0 {
            s += &format!("  {:<40} possibly delivered by {} attempt(s)\n", "", rc.possibly_delivered);
        }
    }
    if !r.attempts.is_empty() {
        s += "attempts:\n";
    }
    for (i, a) in r.attempts.iter().enumerate() {
        let ips = match (&a.relay_ip, &a.system_ip) {
            (Some(relay), Some(system)) => format!("relay {relay} from {system}"),
            _ => "no connection".into(),
        };
        let finished = a.finished_at.map(local).unwrap_or_else(|| "(unfinished)".into());
        let to: Vec<_> = a.recipients.iter().map(|x| value(x)).collect();
        s += &format!("  {}. {} -> {}  {}  to {}\n", i + 1, local(a.started_at), finished, ips, to.join(", "));
        if let Some(reply) = &a.reply {
            s += &format!("     reply: {}\n", value(reply));
        }
        if !a.possibly_delivered.is_empty() {
            let to: Vec<_> = a.possibly_delivered.iter().map(|x| value(x)).collect();
            s += &format!("     possibly delivered to: {}\n", to.join(", "));
        }
    }
    s += "timeline:\n";
    for e in &r.events {
        s += &format!("  {}  {:<10} {}\n", local(e.at), value(e.kind.as_str()), value(&e.detail));
    }
    s
}
