//! Raw stream figures through a partyline tunnel against plain loopback TCP:
//! a 1 KB ping-pong (round-trip time) and a bulk echo (throughput each way).
//!
//! Everything is real and on loopback: a session server with its relay
//! (`partyline-server`, in this process), two party endpoints connected as
//! the roster says, and the forwarders between them; party 1's "program" is
//! a TCP echo server, party 0's side is measured through its tunnel end.
//! The tunnel runs twice: with direct paths, and through the relay only.
//!
//! Run with `cargo bench -p partyline-mesh` (optimised build); it prints a
//! markdown table of medians and their ratios to plain TCP.
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use partyline_lab::report::median;
use partyline_mesh::{Forwarder, LocalEnds, MeshConfig, PartyEndpoint, connect_all};
use partyline_server::{RunningServer, ServerConfig};
use partyline_session::Coordinator;
use partyline_wire::seat::StreamRules;
use partyline_wire::{Member, Roster, SessionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Round trips per measurement.
const PINGS: usize = 2000;
/// Bytes sent (and echoed back) per bulk measurement.
const BULK_BYTES: usize = 64 * 1024 * 1024;
/// Bulk measurements per way; their median is reported.
const BULK_RUNS: usize = 3;

fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let server = partyline_server::start(ServerConfig {
        listen: (Ipv4Addr::LOCALHOST, 0).into(),
        data_dir: dir.path().join("server"),
        // Two endpoints outside any session, and the relay's throughput is
        // measured: a relay open to all, no quotas.
        quotas: partyline_server::Quotas::unlimited(),
        ..ServerConfig::default()
    })
    .await?;
    let echo = spawn_echo(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?).await?;
    let tcp = measure(echo).await?;
    let direct = measure_tunnel(&server, false).await?;
    let relay = measure_tunnel(&server, true).await?;
    server.shutdown().await;

    println!("| stream | tcp | direct | relay | direct/tcp | relay/tcp |");
    println!("|---|---|---|---|---|---|");
    let line = |what: &str, value: fn(&Figures) -> f64| {
        let (t, d, r) = (value(&tcp), value(&direct), value(&relay));
        println!(
            "| {what} | {t:.0} | {d:.0} | {r:.0} | {:.2} | {:.2} |",
            d / t,
            r / t
        );
    };
    line("1 KB RTT median (µs)", |f| f.rtt_median_us);
    line("1 KB RTT p99 (µs)", |f| f.rtt_p99_us);
    line("echo throughput, median (MB/s each way)", |f| {
        f.mb_per_s_median
    });
    Ok(())
}

struct Figures {
    rtt_median_us: f64,
    rtt_p99_us: f64,
    mb_per_s_median: f64,
}

/// A TCP echo server on loopback, for as long as the process runs.
async fn spawn_echo(listener: std::net::TcpListener) -> Result<SocketAddr, Error> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let (mut read, mut write) = tcp.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    Ok(addr)
}

/// The ping-pong, then the bulk echoes, against whatever echoes at `addr`.
async fn measure(addr: SocketAddr) -> Result<Figures, Error> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let ping = vec![7u8; 1024];
    let mut pong = vec![0u8; 1024];
    let mut rtts = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let start = Instant::now();
        tcp.write_all(&ping).await?;
        tcp.read_exact(&mut pong).await?;
        rtts.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let rtt_median_us = median(&mut rtts).ok_or("no round trips")?;
    // `median` sorted them.
    let rtt_p99_us = rtts[rtts.len() * 99 / 100];
    let mut throughputs = Vec::with_capacity(BULK_RUNS);
    for _ in 0..BULK_RUNS {
        throughputs.push(bulk_echo(addr).await?);
    }
    Ok(Figures {
        rtt_median_us,
        rtt_p99_us,
        mb_per_s_median: median(&mut throughputs).ok_or("no bulk runs")?,
    })
}

/// Sends `BULK_BYTES` and reads them back at the same time; MB/s each way.
async fn bulk_echo(addr: SocketAddr) -> Result<f64, Error> {
    let tcp = TcpStream::connect(addr).await?;
    let (mut read, mut write) = tcp.into_split();
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        let chunk = vec![1u8; 64 * 1024];
        for _ in 0..BULK_BYTES / chunk.len() {
            write.write_all(&chunk).await?;
        }
        write.shutdown().await
    });
    let mut received = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    while received < BULK_BYTES {
        let n = read.read(&mut buf).await?;
        if n == 0 {
            return Err(format!("the echo stream ended after {received} bytes").into());
        }
        received += n;
    }
    sender.await??;
    Ok(BULK_BYTES as f64 / 1e6 / start.elapsed().as_secs_f64())
}

/// The same measurement through a two-party tunnel whose far end is an echo server.
async fn measure_tunnel(server: &RunningServer, relay_only: bool) -> Result<Figures, Error> {
    let info = Coordinator::new(server.url(), server.pin()).info().await?;
    let config = MeshConfig {
        relay_url: info.relay_url,
        relay_quic_port: info.relay_quic_port,
        pin: server.pin(),
        relay_only,
        relay_token: None,
        peer_timeout: Default::default(),
    };
    let ends = [
        PartyEndpoint::bind(&config).await?,
        PartyEndpoint::bind(&config).await?,
    ];
    let members: Vec<Member> = ends
        .iter()
        .enumerate()
        .map(|(index, end)| Member {
            index,
            name: format!("party{index}"),
            endpoint: end.key(),
            relay_url: Some(end.relay_url()),
            addrs: if relay_only {
                Vec::new()
            } else {
                end.direct_addrs()
            },
        })
        .collect();
    let session = SessionId::random();
    let roster = |own_index| Roster {
        session,
        members: members.clone(),
        own_index,
    };
    let (roster0, roster1) = (roster(0), roster(1));
    let (links0, links1) = tokio::try_join!(
        connect_all(&ends[0], &roster0, Duration::from_secs(30)),
        connect_all(&ends[1], &roster1, Duration::from_secs(30)),
    )?;
    // Party 0's own program port is never dialled here.
    let tunnel = Forwarder::start(&links0, 0, LocalEnds::loopback(2)?, StreamRules::Generic)?;
    let mut far_ends = LocalEnds::loopback(2)?;
    let far_program = far_ends
        .take(1)
        .pop()
        .ok_or("no program socket for party 1")?;
    spawn_echo(far_program).await?;
    let _far_end = Forwarder::start(&links1, 1, far_ends, StreamRules::Generic)?;
    let figures = measure(tunnel.addrs[1]).await;
    for end in &ends {
        end.close().await;
    }
    figures
}
