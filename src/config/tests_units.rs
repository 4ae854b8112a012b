//! Durations, sizes, networks, listener collisions, edit distance.

use std::net::IpAddr;
use std::time::Duration;

use super::suggest::edit_distance;
use super::units::listeners_collide;
use super::{IpNetwork, parse_duration, parse_size};

#[test]
fn durations() {
    let good = [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("400d", 400 * 86_400),
        ("2w", 14 * 86_400),
        ("1y", 365 * 86_400),
        ("52w", 52 * 7 * 86_400),
        ("1h30m", 5400),
        (" 1d 12h ", 129_600),
        ("0s", 0),
        ("18446744073709551615s", u64::MAX),
    ];
    for (text, secs) in good {
        assert_eq!(parse_duration(text), Ok(Duration::from_secs(secs)), "{text:?}");
    }
    let bad = [
        ("", "empty"),
        ("30", "missing a unit"),
        ("1h30", "missing a unit"),
        ("5 minutes", "unknown unit \"minutes\""),
        ("5M", "unknown unit \"M\""),
        ("-1s", "expected a number"),
        ("1.5h", "not a whole number"),
        ("h", "expected a number"),
        ("18446744073709551616s", "too large"),
        ("18446744073709551615m", "too large"),
        ("18446744073709551615s1s", "too large"),
        ("99999999999999y", "too large"),
    ];
    for (text, want) in bad {
        let e = parse_duration(text).expect_err(text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn sizes() {
    let good = [
        ("25MiB", 25 << 20),
        ("10MB", 10_000_000),
        ("512KiB", 512 << 10),
        ("512 kib", 512 << 10),
        ("1048576", 1 << 20),
        ("7B", 7),
        ("2GiB", 2 << 30),
        ("3TB", 3_000_000_000_000),
        ("16777215TiB", 16_777_215 << 40),
    ];
    for (text, n) in good {
        assert_eq!(parse_size(text), Ok(n), "{text:?}");
    }
    let bad = [
        ("", "not a size"),
        ("MiB", "not a size"),
        ("-1", "not a size"),
        ("10M", "unknown unit \"M\""),
        ("1.5MiB", "whole number"),
        ("25 mebibytes", "unknown unit"),
        ("16777216TiB", "too large"),
        ("99999999999999999999", "too large"),
    ];
    for (text, want) in bad {
        let e = parse_size(text).expect_err(text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ip_network_parse_and_display() {
    let good = [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("127.0.0.1", "127.0.0.1/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::1", "::1/128"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("::/0", "::/0"),
        (" 192.168.1.0/24 ", "192.168.1.0/24"),
    ];
    for (text, shown) in good {
        let n: IpNetwork = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(n.to_string(), shown);
        assert_eq!(n.to_string().parse::<IpNetwork>(), Ok(n));
    }
    let bad = [
        ("10.0.0.1/8", "did you mean 10.0.0.0/8?"),
        ("10.0.0.0/33", "prefix"),
        ("::/129", "prefix"),
        ("10.0.0.0/+8", "prefix"),
        ("10.0.0.0/", "prefix"),
        ("10.0.0/8", "not an IP network"),
        ("example.com", "not an IP network"),
        ("", "not an IP network"),
    ];
    for (text, want) in bad {
        let e = text.parse::<IpNetwork>().expect_err(text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn ip_network_contains() {
    let cases = [
        ("10.0.0.0/8", "10.255.1.2", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false),
        ("0.0.0.0/0", "203.0.113.9", true),
        ("192.168.1.0/24", "::ffff:192.168.1.77", true),
        ("192.168.1.0/24", "::ffff:192.168.2.77", false),
        ("127.0.0.1", "::1", false),
        ("::1", "::1", true),
        ("::1", "::2", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("::/0", "2001:db8::1", true),
        ("::ffff:10.0.0.0/104", "10.9.9.9", true),
        ("::1", "127.0.0.1", false),
        ("0.0.0.1", "::1", false),
    ];
    for (net, addr, want) in cases {
        let n: IpNetwork = net.parse().unwrap();
        assert_eq!(n.contains(ip(addr)), want, "{net} contains {addr}");
    }
}

#[test]
fn listener_collisions() {
    let cases = [
        ("127.0.0.1:25", "127.0.0.1:25", true),
        ("127.0.0.1:25", "127.0.0.1:26", false),
        ("0.0.0.0:25", "127.0.0.1:25", true),
        ("127.0.0.2:25", "127.0.0.1:25", false),
        ("[::]:25", "127.0.0.1:25", true),
        ("0.0.0.0:25", "[::1]:25", false),
        ("127.0.0.1:0", "127.0.0.1:0", false),
    ];
    for (a, b, want) in cases {
        let (a, b) = (a.parse().unwrap(), b.parse().unwrap());
        assert_eq!(listeners_collide(a, b), want, "{a} {b}");
        assert_eq!(listeners_collide(b, a), want, "{b} {a}");
    }
}

#[test]
fn edit_distances() {
    for (a, b, d) in
        [("", "", 0), ("abc", "abc", 0), ("abc", "", 3), ("kitten", "sitting", 3), ("daily_hours", "daily_hour", 1)]
    {
        assert_eq!(edit_distance(a, b), d, "{a} {b}");
    }
}
