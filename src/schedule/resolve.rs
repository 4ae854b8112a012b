//! Turning requests into instants, and combining a message's sources.
//!
//! One place applies the rules to every source: daily hour for dates, the
//! user's timezone with jiff's `Compatible` disambiguation for wall-clock
//! times, the past rules, and the max-hold limit. A release is always
//! `max(requested, now)`, so it is never earlier than what was asked for.

use jiff::{
    Span, Timestamp,
    civil::{Date, DateTime},
    tz::{Disambiguation, TimeZone},
};

use super::{
    PAST_GRACE, RecipientRelease, ScheduleContext, ScheduleError,
    ScheduleErrorKind::{self, BeyondMaxHold, Conflict, InPast},
    ScheduleRequest, ScheduleSource, deliver_on,
    deliver_on::When,
    hold, plus_tag,
};

/// What was asked for and when it will actually go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Resolved {
    /// The instant named by the schedule (for dates: the daily hour).
    pub requested: Timestamp,
    /// `max(requested, now)`.
    pub release: Timestamp,
    /// Whether `requested` was an explicit time (grace rule) rather than a day.
    pub exact: bool,
}

/// A wall-clock time in `tz` as an instant. `Compatible`: a time in a
/// spring-forward gap moves forward by the gap (02:30 -> 03:30), a time in a
/// fall-back overlap takes the earlier instant (the first 02:30).
pub(super) fn local_instant(dt: DateTime, tz: &TimeZone) -> Result<Timestamp, ScheduleErrorKind> {
    // Only the far end of year 9999 can fail here.
    tz.to_ambiguous_timestamp(dt).disambiguate(Disambiguation::Compatible).map_err(|_| BeyondMaxHold)
}

/// Applies the context to a parsed request.
pub(super) fn resolve(when: When, ctx: &ScheduleContext) -> Result<Resolved, ScheduleErrorKind> {
    let today = ctx.tz.to_datetime(ctx.now).date();
    match when {
        When::Day(date) => day(date, today, ctx),
        When::DaysAhead(n) => {
            let span = Span::new().try_days(n).map_err(|_| BeyondMaxHold)?;
            day(today.checked_add(span).map_err(|_| BeyondMaxHold)?, today, ctx)
        }
        When::NextWeekday(wanted) => {
            let ahead = (wanted.to_monday_zero_offset() - today.weekday().to_monday_zero_offset()).rem_euclid(7);
            // "monday" on a Monday means next week's: today is never meant.
            let ahead = if ahead == 0 { 7 } else { ahead };
            let span = Span::new().days(i64::from(ahead));
            day(today.checked_add(span).map_err(|_| BeyondMaxHold)?, today, ctx)
        }
        When::Local(dt) => exact(local_instant(dt, ctx.tz)?, ctx),
        When::Instant(at) => exact(at, ctx),
        When::After(delay) => exact(ctx.now.checked_add(delay).map_err(|_| BeyondMaxHold)?, ctx),
    }
}

/// A day: before today is past; today after the daily hour goes at once.
fn day(date: Date, today: Date, ctx: &ScheduleContext) -> Result<Resolved, ScheduleErrorKind> {
    if date < today {
        return Err(InPast);
    }
    let requested = local_instant(date.to_datetime(ctx.daily_hour), ctx.tz)?;
    finish(requested, false, ctx)
}

/// An explicit time: up to [`PAST_GRACE`] ago is accepted (sent at once).
fn exact(requested: Timestamp, ctx: &ScheduleContext) -> Result<Resolved, ScheduleErrorKind> {
    let earliest = ctx.now.checked_sub(PAST_GRACE).unwrap_or(Timestamp::MIN);
    if requested < earliest {
        return Err(InPast);
    }
    finish(requested, true, ctx)
}

fn finish(requested: Timestamp, exact: bool, ctx: &ScheduleContext) -> Result<Resolved, ScheduleErrorKind> {
    let release = requested.max(ctx.now);
    if release > ctx.latest_release() {
        return Err(BeyondMaxHold);
    }
    Ok(Resolved { requested, release, exact })
}

/// One Deliver-On value, with the error already attributed to it.
pub(super) fn deliver_on_value(value: &str, ctx: &ScheduleContext) -> Result<Resolved, ScheduleError> {
    let value = value.trim();
    deliver_on::parse(value)
        .and_then(|when| resolve(when, ctx))
        .map_err(|kind| ScheduleError::new(kind, value, ScheduleSource::DeliverOnHeader))
}

/// One recipient's plus tag (`tag` as returned by `split_date_tag`).
pub(super) fn tag_value(tag: &str, original: &str, ctx: &ScheduleContext) -> Result<Resolved, ScheduleError> {
    plus_tag::parse_tag(tag)
        .and_then(|when| resolve(when, ctx))
        .map_err(|kind| ScheduleError::new(kind, original, ScheduleSource::PlusAddress))
}

/// See [`super::plan`]. Order of checks: the MAIL FROM hold (it came first),
/// then each Deliver-On header in order, then agreement between them, then
/// each recipient's tag. The first problem is reported.
pub(super) fn plan(req: &ScheduleRequest, ctx: &ScheduleContext) -> Result<Vec<RecipientRelease>, ScheduleError> {
    let held = match req.hold {
        Some(h) => Some((hold::check(h, ctx)?, hold_source(h))),
        None => None,
    };

    // The first header fixes the message-wide time; every other header and
    // the hold must land on the same instant.
    let mut header: Option<(Timestamp, &str)> = None;
    for raw in req.deliver_on {
        let release = deliver_on_value(raw, ctx)?.release;
        match header {
            None => header = Some((release, raw.trim())),
            Some((first, _)) if first != release => {
                return Err(ScheduleError::new(Conflict, raw.trim(), ScheduleSource::DeliverOnHeader));
            }
            Some(_) => {}
        }
    }
    let wide = match (header, held) {
        (Some((at, value)), Some((hold_at, _))) if at != hold_at => {
            return Err(ScheduleError::new(Conflict, value, ScheduleSource::DeliverOnHeader));
        }
        (Some((at, _)), _) => (at, ScheduleSource::DeliverOnHeader),
        (None, Some(hold)) => hold,
        (None, None) => (ctx.now, ScheduleSource::Immediate),
    };

    req.recipients
        .iter()
        .map(|original| {
            let (address, release_at, source) = match super::split_date_tag(original) {
                // A tag beats the message-wide schedule for its own recipient.
                Some((address, tag)) => (address, tag_value(&tag, original, ctx)?.release, ScheduleSource::PlusAddress),
                None => (original.clone(), wide.0, wide.1),
            };
            Ok(RecipientRelease { original: original.clone(), address, release_at, source })
        })
        .collect()
}

fn hold_source(hold: &super::Hold) -> ScheduleSource {
    match hold {
        super::Hold::Until { .. } => ScheduleSource::HoldUntil,
        super::Hold::For { .. } => ScheduleSource::HoldFor,
    }
}
