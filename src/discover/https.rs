//! A small HTTPS GET for autoconfig (discovery): HTTPS only, certificate verified, one
//! request per connection (`Connection: close`), the answer bounded, redirects followed only
//! to HTTPS and at most three times. The response is read by `parse_response` (sans-IO,
//! fuzzed: `http_response`) with httparse for the head; chunked bodies are decoded here.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most an answer may be (head and body): an autoconfig file is a few KiB.
pub const MAX_RESPONSE: usize = 256 * 1024;
const MAX_REDIRECTS: usize = 3;

/// An `https://host[:port]/path?query` URL, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl {
    pub host: String,
    pub port: u16,
    /// Starts with `/`.
    pub path: String,
}

impl HttpsUrl {
    pub fn parse(url: &str) -> Result<HttpsUrl, String> {
        let rest = url.strip_prefix("https://").ok_or_else(|| format!("{url}: only https:// is used"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("{url}: bad port"))?),
            None => (authority, 443),
        };
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
        if host.is_empty() || !host.chars().all(ok) || path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(format!("{url}: not a usable https URL"));
        }
        Ok(HttpsUrl { host: host.to_ascii_lowercase(), port, path })
    }
}

/// A response: its status, `Location` if any, and the body (chunks decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// Read a whole response (the connection closed after it).
pub fn parse_response(bytes: &[u8]) -> Result<Response, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut headers);
    let start = match head.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("the answer ended inside its head".into()),
        Err(e) => return Err(format!("not an HTTP answer: {e}")),
    };
    let status = head.code.ok_or("no status")?;
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    let rest = &bytes[start..];
    let chunked = header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| "bad Content-Length")?;
        rest.get(..len).ok_or("the answer is shorter than its Content-Length")?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, location: header("location"), body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").ok_or("a chunk size line without its end")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if size > MAX_RESPONSE || rest.len() < size + 2 {
            return Err("a chunk longer than the answer".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// GET `url`, following HTTPS redirects; the body of a 200, or why not.
pub async fn get(url: &str, tls: &Arc<ClientConfig>, limit: Duration) -> Result<Vec<u8>, String> {
    let mut url = HttpsUrl::parse(url)?;
    for _ in 0..=MAX_REDIRECTS {
        let r =
            tokio::time::timeout(limit, once(&url, tls)).await.map_err(|_| format!("no answer within {limit:?}"))??;
        match (r.status, r.location) {
            (200, _) => return Ok(r.body),
            (301 | 302 | 303 | 307 | 308, Some(to)) => {
                url = if to.starts_with('/') {
                    HttpsUrl { path: to, ..url }
                } else {
                    HttpsUrl::parse(&to).map_err(|e| format!("redirected: {e}"))?
                };
            }
            (status, _) => return Err(format!("HTTP {status}")),
        }
    }
    Err("too many redirects".into())
}

async fn once(url: &HttpsUrl, tls: &Arc<ClientConfig>) -> Result<Response, String> {
    let tcp = tokio::net::TcpStream::connect((url.host.as_str(), url.port)).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(url.host.clone()).map_err(|e| e.to_string())?;
    let mut stream =
        tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: gatepost\r\nAccept: application/xml, text/xml\r\nConnection: close\r\n\r\n",
        url.path, url.host
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    let mut reader = (&mut stream).take(MAX_RESPONSE as u64 + 1);
    // A server that closes without close_notify still sent what it sent.
    if let Err(e) = reader.read_to_end(&mut bytes).await
        && bytes.is_empty()
    {
        return Err(e.to_string());
    }
    if bytes.len() > MAX_RESPONSE {
        return Err(format!("answer larger than {MAX_RESPONSE} bytes"));
    }
    parse_response(&bytes)
}

/// Fuzz check: any bytes as a response never panic.
pub fn fuzz_one(data: &[u8]) {
    if let Ok(r) = parse_response(data) {
        assert!(r.body.len() <= data.len(), "a body is never longer than the answer");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_only_and_split() {
        let u =
            HttpsUrl::parse("https://Autoconfig.Example.org/mail/config-v1.1.xml?emailaddress=a@example.org").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("autoconfig.example.org", 443, "/mail/config-v1.1.xml?emailaddress=a@example.org")
        );
        assert_eq!(HttpsUrl::parse("https://localhost:8443").unwrap().path, "/");
        for bad in
            ["http://example.org/", "https://", "https://exa mple.org/", "https://x:99999/", "https://a/\r\nX: y"]
        {
            assert!(HttpsUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bodies_by_length_by_chunks_and_to_the_end() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"hello world");
        let r = parse_response(b"HTTP/1.0 200 OK\r\n\r\nall of it").unwrap();
        assert_eq!(r.body, b"all of it");
        let r = parse_response(b"HTTP/1.1 301 Moved\r\nLocation: https://example.org/x\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        assert_eq!(r.location.as_deref(), Some("https://example.org/x"));
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\nx",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200",
            b"SSH-2.0-OpenSSH\r\n",
        ] {
            assert!(parse_response(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
