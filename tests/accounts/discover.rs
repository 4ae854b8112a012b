//! Discovery when `account add` gets no `--incoming`, offline against local peers: autoconfig
//! served over HTTPS by Python's http.server, SRV records served by dnsmasq, the login checked
//! against the private Dovecot. A server outside the address's domain is used only with
//! `--accept-server`; an OAuth2-only provider is named as not supported yet.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::dovecot::{Dovecot, available, cert, repo};
use crate::ports::free_port;
use crate::serve::{Gatepost, LOGIN, PASSWORD, gatepost, text};

const DNSMASQ: &str = "/usr/sbin/dnsmasq";

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_tcp(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Python's http.server over TLS (the test certificate, name `localhost`) serving `root`.
fn https_server(root: &Path) -> (Peer, u16) {
    let port = free_port();
    let script = r#"
import functools, http.server, ssl, sys
port, cert, key, root = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
httpd = http.server.HTTPServer(("127.0.0.1", port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
"#;
    let child = Command::new("/usr/bin/python3")
        .args(["-c", script, &port.to_string()])
        .arg(cert())
        .arg(repo().join("certs/localhost-key.pem"))
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let peer = Peer(child);
    wait_tcp(port, "the HTTPS server");
    (peer, port)
}

/// dnsmasq answering only from its `--srv-host` records, on a UDP port of its own.
fn dnsmasq(records: &[String]) -> Option<(Peer, u16)> {
    if !Path::new(DNSMASQ).exists() {
        assert!(
            std::env::var("GATEPOST_REQUIRE_PEERS").map_or(true, |v| v != "1"),
            "required test peer dnsmasq-base is not installed (GATEPOST_REQUIRE_PEERS=1)"
        );
        eprintln!("SKIPPED: dnsmasq-base is not installed");
        return None;
    }
    let port = free_port();
    let mut cmd = Command::new(DNSMASQ);
    cmd.args(["--no-daemon", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts"])
        .args(["--user=root".to_string(), format!("--port={port}")])
        .args(records.iter().map(|r| format!("--srv-host={r}")))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let peer = Peer(cmd.spawn().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    Some((peer, port))
}

/// A UDP port nothing listens on: SRV questions there fail at once.
fn closed_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

fn add(g: &Gatepost, env: &[(&str, String)], extra: &[&str]) -> Output {
    let pw = g.dir.path().join("work-pw").display().to_string();
    let ca = cert().display().to_string();
    let mut args = vec![
        "--config",
        g.config.to_str().unwrap(),
        "account",
        "add",
        "alice",
        "--name",
        "Work",
        "--address",
        LOGIN,
        "--password-file",
        &pw,
        "--ca-file",
        &ca,
        "--no-follow",
    ];
    args.extend_from_slice(extra);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatepost"));
    cmd.args(&args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn incoming(g: &Gatepost) -> String {
    let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["incoming"].as_str().unwrap_or_default().to_string()
}

#[test]
fn autoconfig_finds_the_server_and_one_outside_the_domain_needs_accepting() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let g = Gatepost::new("");
    let root = g.dir.path().join("www");
    std::fs::create_dir_all(root.join("mail")).unwrap();
    std::fs::write(
        root.join("mail/config-v1.1.xml"),
        format!(
            r#"<?xml version="1.0"?><clientConfig version="1.1"><emailProvider id="work.example">
<incomingServer type="imap"><hostname>localhost</hostname><port>{}</port><socketType>STARTTLS</socketType>
<authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username></incomingServer>
</emailProvider></clientConfig>"#,
            dv.imap_port
        ),
    )
    .unwrap();
    let (_www, port) = https_server(&root);
    let env = [
        ("GATEPOST_DISCOVERY_HTTPS_BASE", format!("https://localhost:{port}")),
        ("GATEPOST_DISCOVERY_NAMESERVER", format!("127.0.0.1:{}", closed_udp_port())),
    ];

    // `localhost` is not under work.example: found, named, not used.
    let o = add(&g, &env, &[]);
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("provider table: nothing for work.example"), "{t}");
    assert!(t.contains("outside work.example: give --accept-server localhost"), "{t}");
    assert!(t.contains("no servers found"), "{t}");
    assert!(incoming(&g).is_empty(), "nothing stored");

    let o = add(&g, &env, &["--accept-server", "localhost"]);
    assert!(o.status.success(), "{}", text(&o));
    let want = format!("imap+starttls://localhost:{}", dv.imap_port);
    assert!(text(&o).contains(&format!("found by autoconfig: incoming {want}")), "{}", text(&o));
    assert_eq!(incoming(&g), want);
}

#[test]
fn srv_records_find_the_servers_when_autoconfig_does_not() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let Some((_dns, dns_port)) = dnsmasq(&[
        format!("_imaps._tcp.work.example,localhost,{}", dv.imaps_port),
        "_imap._tcp.work.example".into(),
        "_submissions._tcp.work.example".into(),
    ]) else {
        return;
    };
    let g = Gatepost::new("");
    let env = [
        // Nothing listens there: both autoconfig URLs fail at once.
        ("GATEPOST_DISCOVERY_HTTPS_BASE", format!("https://localhost:{}", free_port())),
        ("GATEPOST_DISCOVERY_NAMESERVER", format!("127.0.0.1:{dns_port}")),
    ];
    let o = add(&g, &env, &["--accept-server", "LOCALHOST"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    let want = format!("imaps://localhost:{}", dv.imaps_port);
    assert!(t.contains(&format!("SRV _imaps._tcp.work.example: localhost:{}", dv.imaps_port)), "{t}");
    assert!(t.contains("SRV _submissions._tcp.work.example: none"), "{t}");
    assert!(t.contains(&format!("found by SRV: incoming {want}")), "{t}");
    assert_eq!(incoming(&g), want);
}

#[test]
fn an_oauth2_only_provider_is_named_as_not_supported_yet() {
    let g = Gatepost::new("");
    let o = gatepost(
        &g.config,
        &[
            "account",
            "add",
            "alice",
            "--name",
            "Mail",
            "--address",
            "alice@hotmail.com",
            "--password-file",
            &g.dir.path().join("work-pw").display().to_string(),
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("Outlook.com: not supported yet") && t.contains("OAuth2"), "{t}");
}
