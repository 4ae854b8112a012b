//! The SMTP relay client against real peers (Postfix's smtp-sink, Python's aiosmtpd with
//! STARTTLS and AUTH) and a scripted fake relay for the faults a real one cannot make.
//! One test binary for the whole area keeps builds fast on small machines.

#[path = "../common/ports.rs"]
mod ports;
mod support;

mod faults;
mod peers;
mod scripted;
mod trust;
mod uncertain;
