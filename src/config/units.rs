//! Text forms shared by the config and the rest of the crate: durations, sizes,
//! CIDR networks. Hand-written so the crate needs no extra dependency and the error
//! messages can say exactly what was wrong.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use super::IpNetwork;

/// Units accepted by [`parse_duration`], for hints.
pub(super) const DURATION_UNITS: &str = "s, m, h, d, w, y (1y = 365d)";
/// Units accepted by [`parse_size`], for hints.
pub(super) const SIZE_UNITS: &str = "B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)";

/// Parse `"30s"`, `"5m"`, `"2h"`, `"400d"`, `"2w"`, `"1y"` (= 365 days) and sums such as
/// `"1h30m"` or `"1d 12h"`. A bare number is refused: `"30"` could mean seconds or
/// minutes, and a wrong guess would be silent.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err(format!("empty duration; expected a number with a unit ({DURATION_UNITS})"));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("\"{s}\" is not a duration: expected a number at \"{rest}\""));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| format!("\"{s}\" is too large a duration"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c.is_whitespace()).unwrap_or(rest.len());
        let secs_per_unit: u64 = match &rest[..unit_len] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "y" => 365 * 86_400,
            "" => {
                return Err(format!("\"{s}\" is missing a unit after {n}; use one of {DURATION_UNITS}"));
            }
            u if u.starts_with('.') => {
                return Err(format!("\"{s}\" is not a whole number; use a smaller unit, e.g. \"90m\" for 1.5h"));
            }
            other => {
                return Err(format!("\"{s}\" has unknown unit \"{other}\"; use one of {DURATION_UNITS}"));
            }
        };
        total = n
            .checked_mul(secs_per_unit)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| format!("\"{s}\" is too large a duration"))?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(Duration::from_secs(total))
}

/// Parse a byte count: `"25MiB"`, `"10MB"`, `"512 KiB"`, `"1048576"`. Units are
/// case-insensitive; single letters (`"10M"`) are refused because 1000 vs 1024 is a guess.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    if digits == 0 {
        return Err(format!("\"{s}\" is not a size; expected a whole number with an optional unit ({SIZE_UNITS})"));
    }
    let n: u64 = text[..digits].parse().map_err(|_| format!("\"{s}\" is too large a size"))?;
    let unit = text[digits..].trim_start();
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000_u64.pow(2),
        "gb" => 1000_u64.pow(3),
        "tb" => 1000_u64.pow(4),
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ if unit.starts_with('.') => {
            return Err(format!("\"{s}\" is not a whole number; use a smaller unit, e.g. 1536KiB for 1.5MiB"));
        }
        _ => {
            return Err(format!("\"{s}\" has unknown unit \"{unit}\"; use one of {SIZE_UNITS}"));
        }
    };
    n.checked_mul(factor).ok_or_else(|| format!("\"{s}\" is too large a size"))
}

impl IpNetwork {
    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`,
    /// what a dual-stack listener reports for an IPv4 client) is compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => v4_prefix_eq(net, a, self.prefix),
            (IpAddr::V6(net), IpAddr::V6(a)) => v6_prefix_eq(net, a, self.prefix),
            (IpAddr::V4(net), IpAddr::V6(a)) => a.to_ipv4_mapped().is_some_and(|a| v4_prefix_eq(net, a, self.prefix)),
            (IpAddr::V6(net), IpAddr::V4(a)) => v6_prefix_eq(net, a.to_ipv6_mapped(), self.prefix),
        }
    }

    fn max_prefix(addr: IpAddr) -> u8 {
        if addr.is_ipv4() { 32 } else { 128 }
    }
}

fn v4_mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn v6_mask(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

fn v4_prefix_eq(net: Ipv4Addr, a: Ipv4Addr, prefix: u8) -> bool {
    let m = v4_mask(prefix);
    u32::from(net) & m == u32::from(a) & m
}

fn v6_prefix_eq(net: Ipv6Addr, a: Ipv6Addr, prefix: u8) -> bool {
    let m = v6_mask(prefix);
    u128::from(net) & m == u128::from(a) & m
}

impl FromStr for IpNetwork {
    type Err = String;

    /// Host bits must be zero (`10.0.0.1/8` is refused with the network it probably meant),
    /// so what the file says is exactly what is trusted.
    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim();
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| format!("\"{s}\" is not an IP network; expected e.g. 10.0.0.0/8, ::1/128 or a bare IP"))?;
        let max = IpNetwork::max_prefix(addr);
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(format!("\"{s}\" has an invalid prefix length; expected 0 to {max}"));
                }
            },
        };
        let network = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & v4_mask(prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & v6_mask(prefix))),
        };
        if network != addr {
            return Err(format!("\"{s}\" has host bits set; did you mean {network}/{prefix}?"));
        }
        Ok(IpNetwork { addr, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Whether binding both addresses would fail with "address in use": same port and the
/// same IP, or one side is a wildcard covering the other (`[::]` is dual-stack on Linux).
/// Port 0 asks the OS for a free port and never collides.
pub(super) fn listeners_collide(a: SocketAddr, b: SocketAddr) -> bool {
    fn covers(wild: IpAddr, other: IpAddr) -> bool {
        wild.is_unspecified() && (wild.is_ipv6() || other.is_ipv4())
    }
    a.port() != 0 && a.port() == b.port() && (a.ip() == b.ip() || covers(a.ip(), b.ip()) || covers(b.ip(), a.ip()))
}
