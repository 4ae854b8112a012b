//! SRV look-ups (RFC 2782) for discovery, RFC 6186 and RFC 8314 names: a query built and an
//! answer read here (sans-IO, fuzzed: `dns_srv`), sent over UDP to one name server. A small
//! client of its own because discovery needs one record type from one server, and a resolver
//! crate would be most of a DNS implementation for it.

use std::net::SocketAddr;
use std::time::Duration;

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Lower case, without the final dot; `""` is "not offered here" (RFC 2782 `.`).
    pub target: String,
}

const SRV: u16 = 33;
const IN: u16 = 1;
/// A name is at most 255 octets (RFC 1035 §2.3.4); following more pointers than this is a loop.
const MAX_NAME: usize = 255;
const MAX_JUMPS: usize = 32;

/// The query for `name`'s SRV records, with recursion desired.
pub fn srv_query(id: u16, name: &str) -> Result<Vec<u8>, String> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    let name = name.trim_end_matches('.');
    if name.is_empty() || name.len() > 253 {
        return Err(format!("{name:?} is not a domain name"));
    }
    for label in name.split('.') {
        if label.is_empty()
            || label.len() > 63
            || !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("{name:?} is not a domain name"));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&SRV.to_be_bytes());
    q.extend_from_slice(&IN.to_be_bytes());
    Ok(q)
}

/// The SRV records of an answer to query `id`, best first (lowest priority, then highest
/// weight). A name that does not exist is no records; any damage is an error, never a panic.
pub fn parse_srv(msg: &[u8], id: u16) -> Result<Vec<Srv>, String> {
    let u16_at = |at: usize| -> Result<u16, String> {
        msg.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "answer cut short".to_string())
    };
    if u16_at(0)? != id {
        return Err("answer to another query".into());
    }
    let flags = u16_at(2)?;
    if flags & 0x8000 == 0 {
        return Err("not an answer".into());
    }
    match flags & 0x000f {
        0 => {}
        3 => return Ok(Vec::new()), // NXDOMAIN
        2 => return Err("the name server failed (SERVFAIL)".into()),
        5 => return Err("the name server refused to answer (REFUSED)".into()),
        rcode => return Err(format!("name server error (rcode {rcode})")),
    }
    if flags & 0x0200 != 0 {
        return Err("answer truncated".into());
    }
    let (questions, answers) = (u16_at(4)?, u16_at(6)?);
    let mut at = 12;
    for _ in 0..questions {
        at = read_name(msg, at)?.1 + 4;
    }
    let mut out = Vec::new();
    for _ in 0..answers {
        let (_, after) = read_name(msg, at)?;
        let (rtype, class, len) = (u16_at(after)?, u16_at(after + 2)?, usize::from(u16_at(after + 8)?));
        let rdata = after + 10;
        if msg.len() < rdata + len {
            return Err("answer cut short".into());
        }
        if rtype == SRV && class == IN {
            if len < 7 {
                return Err("SRV record too short".into());
            }
            let (target, _) = read_name(msg, rdata + 6)?;
            out.push(Srv { priority: u16_at(rdata)?, weight: u16_at(rdata + 2)?, port: u16_at(rdata + 4)?, target });
        }
        at = rdata + len;
    }
    out.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
    Ok(out)
}

/// A (possibly compressed) name at `at`: the name in lower case without its final dot, and
/// where the bytes after it (in place, not after a pointer) begin.
fn read_name(msg: &[u8], mut at: usize) -> Result<(String, usize), String> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(at).ok_or("name cut short")?;
        match len {
            0 => {
                return Ok((name, end.unwrap_or(at + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let low = *msg.get(at + 1).ok_or("name cut short")?;
                end.get_or_insert(at + 2);
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return Err("name compression loops".into());
                }
                at = (usize::from(l & 0x3f) << 8) | usize::from(low);
            }
            l if l & 0xc0 != 0 => return Err("unknown label type".into()),
            l => {
                let label = msg.get(at + 1..at + 1 + usize::from(l)).ok_or("name cut short")?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.extend(label.iter().map(|&b| char::from(b.to_ascii_lowercase())));
                if name.len() > MAX_NAME {
                    return Err("name too long".into());
                }
                at += 1 + usize::from(l);
            }
        }
    }
}

/// Ask `server` for `name`'s SRV records over UDP, within `limit`.
pub async fn lookup_srv(server: SocketAddr, name: &str, limit: Duration) -> Result<Vec<Srv>, String> {
    let mut id = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
    let id = u16::from_le_bytes(id);
    let query = srv_query(id, name)?;
    let local: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("an address");
    let ask = async {
        let socket = tokio::net::UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
        socket.connect(server).await.map_err(|e| e.to_string())?;
        socket.send(&query).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = socket.recv(&mut buf).await.map_err(|e| e.to_string())?;
            // Stray or forged answers (another id) are ignored; the deadline ends the wait.
            match parse_srv(&buf[..n], id) {
                Err(e) if e == "answer to another query" => continue,
                other => return other,
            }
        }
    };
    tokio::time::timeout(limit, ask).await.map_err(|_| format!("no answer from {server} within {limit:?}"))?
}

/// The first name server of `/etc/resolv.conf` (port 53), else 127.0.0.1.
pub fn system_nameserver() -> SocketAddr {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .unwrap_or_else(|| "127.0.0.1:53".parse().expect("an address"))
}

/// Fuzz check: any bytes as an answer never panic, and what parses is well formed.
pub fn fuzz_one(data: &[u8]) {
    if data.len() >= 2 {
        let id = u16::from_be_bytes([data[0], data[1]]);
        if let Ok(records) = parse_srv(data, id) {
            for r in records {
                assert!(r.target.len() <= MAX_NAME + 64, "a name within bounds");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer as a name server sends it: the question, then the records (targets
    /// compressed against the question where `compress`).
    fn answer(id: u16, name: &str, records: &[(u16, u16, u16, &str)], compress: bool) -> Vec<u8> {
        let mut m = srv_query(id, name).unwrap();
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = records.len() as u8;
        for &(priority, weight, port, target) in records {
            m.extend_from_slice(&[0xc0, 12]); // the question's name
            m.extend_from_slice(&[0, 33, 0, 1, 0, 0, 0x0e, 0x10]);
            let mut rdata = Vec::new();
            for v in [priority, weight, port] {
                rdata.extend_from_slice(&v.to_be_bytes());
            }
            if compress && target.ends_with(name.split_once('.').unwrap().1) {
                let first = target.split('.').next().unwrap();
                rdata.push(first.len() as u8);
                rdata.extend_from_slice(first.as_bytes());
                rdata.extend_from_slice(&[0xc0, 12 + 1 + name.split('.').next().unwrap().len() as u8]);
            } else {
                for l in target.split('.').filter(|l| !l.is_empty()) {
                    rdata.push(l.len() as u8);
                    rdata.extend_from_slice(l.as_bytes());
                }
                rdata.push(0);
            }
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(&rdata);
        }
        m
    }

    #[test]
    fn records_are_read_best_first_compressed_or_not() {
        let a = answer(
            7,
            "_imaps._tcp.example.org",
            &[(20, 0, 993, "b.example.org"), (10, 5, 993, "A.Example.org")],
            false,
        );
        let r = parse_srv(&a, 7).unwrap();
        assert_eq!(
            r.iter().map(|s| (s.priority, s.target.as_str())).collect::<Vec<_>>(),
            [(10, "a.example.org"), (20, "b.example.org")]
        );
        let c = answer(8, "_imaps._tcp.example.org", &[(0, 1, 993, "imap._tcp.example.org")], true);
        assert_eq!(parse_srv(&c, 8).unwrap()[0].target, "imap._tcp.example.org");
        let dot = answer(9, "_imap._tcp.example.org", &[(0, 0, 0, ".")], false);
        assert_eq!(parse_srv(&dot, 9).unwrap()[0].target, "", "not offered");
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let a = answer(7, "_imaps._tcp.example.org", &[(10, 5, 993, "imap.example.org")], false);
        assert_eq!(parse_srv(&a, 8).unwrap_err(), "answer to another query");
        for cut in 0..a.len() {
            assert!(parse_srv(&a[..cut], 7).is_err(), "cut at {cut}");
        }
        let mut nx = a.clone();
        nx[3] = 0x83;
        assert_eq!(parse_srv(&nx, 7).unwrap(), []);
        let mut servfail = a.clone();
        servfail[3] = 0x82;
        assert!(parse_srv(&servfail, 7).unwrap_err().contains("SERVFAIL"));
        // A pointer to itself.
        let mut looped = srv_query(1, "x.example").unwrap();
        looped[2] = 0x81;
        looped[7] = 1;
        looped.extend_from_slice(&[0xc0, looped.len() as u8]);
        assert!(parse_srv(&looped, 1).unwrap_err().contains("loops"));
        assert!(srv_query(1, "bad name.example").is_err() && srv_query(1, "").is_err());
    }
}
