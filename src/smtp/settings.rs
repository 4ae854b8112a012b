//! What a submission is judged by, whichever door it comes through: the listener-wide
//! settings and the user it is submitted as (`session` for SMTP, `submission` for both).

use jiff::SignedDuration;
use jiff::civil::Time;
use jiff::tz::TimeZone;

/// Listener-wide settings, shared by all sessions.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub hostname: String,
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub max_line_length: usize,
    pub daily_hour: Time,
    pub timezone: TimeZone,
    pub timezone_name: String,
    pub max_hold: SignedDuration,
    /// Whether STARTTLS can be offered (a certificate is loaded).
    pub starttls_available: bool,
    /// `rewrite.rewrite_from`: From is replaced at release (and Sender, Resent-From and
    /// Resent-Sender removed). When off they go out as written and must all name the user.
    pub rewrite_from: bool,
}

/// A user the session acts for, with what they may send as.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthedUser {
    pub name: String,
    /// Lower-case addresses allowed in MAIL FROM and From.
    pub addresses: Vec<String>,
    /// The user's own zone, when set.
    pub timezone: Option<(String, TimeZone)>,
    /// Addresses (also in `addresses`) that leave through a connected account's own server.
    pub send_as: Vec<crate::store::SendAs>,
}
