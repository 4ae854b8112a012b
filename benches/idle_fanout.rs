//! The IDLE fan-out load generator for `benches/idle_fanout.sh` (it replaced a Python asyncio
//! one that spent as much CPU reading 10,000 notifications as the server spent sending them,
//! so the figure was the generator's).
//!
//!     cargo bench --bench idle_fanout -- HOST PORT CAFILE PASSWORD USERS SESSIONS
//!
//! Opens USERS × SESSIONS TLS connections (users u000..), each LOGIN, SELECT INBOX, IDLE, plus
//! one more logged-in connection per user to APPEND from. Prints `ready` and waits for a line
//! on stdin (the driver measures the server's RSS), then sends one APPEND per user at once
//! (LITERAL+) and records when each IDLE session's `* n EXISTS` arrives. Prints the latency
//! percentiles from the sending of that user's APPEND (the durable commit included), how
//! many sessions saw it, its own CPU time for the fan-out, then `end`, and waits for one
//! more line before it closes the connections.
//!
//! One thread (a current-thread runtime): the driver pins it to its own core.

use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

type Conn = BufReader<TlsStream<TcpStream>>;
type Fail = Box<dyn std::error::Error + Send + Sync>;

struct Target {
    host: String,
    port: u16,
    password: String,
    tls: TlsConnector,
}

fn main() -> Result<(), Fail> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [host, port, cafile, password, users, sessions] = &args[..] else {
        return Err("usage: idle_fanout HOST PORT CAFILE PASSWORD USERS SESSIONS".into());
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(cafile)? {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let target = Arc::new(Target {
        host: host.clone(),
        port: port.parse()?,
        password: password.clone(),
        tls: TlsConnector::from(Arc::new(config)),
    });
    let (users, sessions): (usize, usize) = (users.parse()?, sessions.parse()?);
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run(target, users, sessions))
}

async fn run(target: Arc<Target>, users: usize, sessions: usize) -> Result<(), Fail> {
    let names: Vec<String> = (0..users).map(|u| format!("u{u:03}")).collect();
    let start = Instant::now();
    // Arrival times of EXISTS per user; the idlers hold their connection until `quit`.
    let seen: Arc<Mutex<Vec<Vec<Instant>>>> = Arc::new(Mutex::new(vec![Vec::new(); users]));
    let (quit_tx, quit_rx) = watch::channel(false);
    let connecting = Arc::new(Semaphore::new(200));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    for (u, name) in names.iter().enumerate() {
        for _ in 0..sessions {
            let (target, name, seen, ready, connecting) =
                (target.clone(), name.clone(), seen.clone(), ready_tx.clone(), connecting.clone());
            let mut quit = quit_rx.clone();
            tokio::spawn(async move {
                let permit = connecting.acquire_owned().await;
                let idling = async {
                    let mut c = login(&target, &name).await?;
                    command(&mut c, "s", "SELECT INBOX").await?;
                    c.get_mut().write_all(b"i IDLE\r\n").await?;
                    c.get_mut().flush().await?;
                    let l = line(&mut c).await?;
                    if !l.starts_with('+') {
                        return Err(format!("IDLE answered {l}").into());
                    }
                    Ok::<_, Fail>(c)
                };
                let mut c = match idling.await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready.send(Err(format!("{name}: {e}")));
                        return;
                    }
                };
                drop(permit);
                let _ = ready.send(Ok(()));
                loop {
                    tokio::select! {
                        l = line(&mut c) => match l {
                            Ok(l) if l.ends_with(" EXISTS\r\n") => {
                                seen.lock().unwrap()[u].push(Instant::now());
                                break;
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        },
                        _ = quit.changed() => return,
                    }
                }
                let _ = quit.changed().await;
            });
        }
    }
    drop(ready_tx);
    let total = users * sessions;
    for _ in 0..total {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("an idler ended".into()),
        }
    }
    println!("connected {total} IDLE sessions in {:.1} s", start.elapsed().as_secs_f64());
    let mut appenders = Vec::with_capacity(users);
    for name in &names {
        appenders.push(login(&target, name).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("ready");
    wait_for_stdin().await;

    let cpu0 = cpu_time();
    let msg = b"Subject: fan-out\r\n\r\nhello\r\n";
    let appends = appenders.into_iter().map(|mut c| {
        tokio::spawn(async move {
            let sent = Instant::now();
            let mut cmd = format!("a APPEND INBOX {{{}+}}\r\n", msg.len()).into_bytes();
            cmd.extend_from_slice(msg);
            cmd.extend_from_slice(b"\r\n");
            c.get_mut().write_all(&cmd).await?;
            c.get_mut().flush().await?;
            loop {
                let l = line(&mut c).await?;
                if l.starts_with("a ") {
                    if !l.starts_with("a OK") {
                        return Err(format!("APPEND answered {l}").into());
                    }
                    return Ok::<_, Fail>((sent, sent.elapsed()));
                }
            }
        })
    });
    let mut sent = Vec::with_capacity(users);
    let mut oks = Vec::with_capacity(users);
    for a in appends.collect::<Vec<_>>() {
        let (at, took) = a.await??;
        sent.push(at);
        oks.push(took);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().iter().map(Vec::len).sum::<usize>() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = cpu_time() - cpu0;
    let seen = seen.lock().unwrap().clone();
    let mut lat: Vec<Duration> = seen
        .iter()
        .enumerate()
        .flat_map(|(u, ts)| ts.iter().map(|t| t.duration_since(sent[u])).collect::<Vec<_>>())
        .collect();
    lat.sort_unstable();
    let n = lat.len();
    let pct = |p: f64| lat.get(((p * n as f64) as usize).min(n.saturating_sub(1))).map_or(f64::NAN, ms);
    println!("sessions that saw EXISTS: {n} of {total}");
    println!("latency ms: p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}", pct(0.5), pct(0.9), pct(0.99), pct(1.0));
    oks.sort_unstable();
    println!("APPEND sent -> tagged OK ms: p50 {:.1} max {:.1}", ms(&oks[oks.len() / 2]), ms(&oks[oks.len() - 1]));
    let first = sent.iter().min().copied().unwrap_or_else(Instant::now);
    let last = seen.iter().flatten().max().map_or(f64::NAN, |t| t.duration_since(first).as_secs_f64());
    println!(
        "load generator: {:.2} s of CPU for the fan-out; last EXISTS {last:.2} s after the first APPEND was sent",
        cpu.as_secs_f64()
    );
    println!("end");
    wait_for_stdin().await;
    let _ = quit_tx.send(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn login(target: &Target, user: &str) -> Result<Conn, Fail> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(target.host.clone())?;
    let mut c = BufReader::with_capacity(4096, target.tls.connect(name, tcp).await?);
    let greeting = line(&mut c).await?;
    if !greeting.starts_with("* OK") {
        return Err(format!("greeting {greeting}").into());
    }
    command(&mut c, "l", &format!("LOGIN {user} \"{}\"", target.password)).await?;
    Ok(c)
}

async fn command(c: &mut Conn, tag: &str, text: &str) -> Result<(), Fail> {
    c.get_mut().write_all(format!("{tag} {text}\r\n").as_bytes()).await?;
    c.get_mut().flush().await?;
    loop {
        let l = line(c).await?;
        if let Some(rest) = l.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
            return if rest.starts_with("OK") { Ok(()) } else { Err(format!("{tag} {text}: {l}").into()) };
        }
    }
}

async fn line(c: &mut Conn) -> Result<String, Fail> {
    let mut l = String::new();
    if c.read_line(&mut l).await? == 0 {
        return Err("connection closed".into());
    }
    Ok(l)
}

/// This process's CPU time (user + system), from the scheduler's own count.
fn cpu_time() -> Duration {
    let text = std::fs::read_to_string("/proc/self/schedstat").unwrap_or_default();
    Duration::from_nanos(text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0))
}

/// One line from the driver, read off the runtime.
async fn wait_for_stdin() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut l = String::new();
        std::io::stdin().lock().read_line(&mut l)
    })
    .await;
}
