//! RFC 4865 FUTURERELEASE: `HOLDUNTIL=` and `HOLDFOR=` on MAIL FROM.
//!
//! Checked at MAIL time so the client gets its 5xx before sending a body.
//! HOLDUNTIL gets no past grace (unlike Deliver-On date-times): the client
//! computed it from its own clock for the server, and RFC 4865 treats a past
//! value as an error, so a past HOLDUNTIL is refused rather than guessed at.

use jiff::{SignedDuration, Timestamp};

use super::{
    Hold, ScheduleContext, ScheduleError,
    ScheduleErrorKind::{BeyondMaxHold, InPast},
    ScheduleSource,
    resolve::latest_release,
};

pub(super) fn check(hold: Hold, ctx: &ScheduleContext) -> Result<Timestamp, ScheduleError> {
    let limit = latest_release(ctx);
    match hold {
        Hold::Until(at) => {
            let fail = |kind| ScheduleError::new(kind, &at.as_second().to_string(), ScheduleSource::HoldUntil);
            if at < ctx.now {
                return Err(fail(InPast));
            }
            if at > limit {
                return Err(fail(BeyondMaxHold));
            }
            Ok(at)
        }
        Hold::For(secs) => {
            let fail = || ScheduleError::new(BeyondMaxHold, &secs.to_string(), ScheduleSource::HoldFor);
            let secs = i64::try_from(secs).map_err(|_| fail())?;
            let at = ctx.now.checked_add(SignedDuration::from_secs(secs)).map_err(|_| fail())?;
            if at > limit {
                return Err(fail());
            }
            Ok(at)
        }
    }
}
