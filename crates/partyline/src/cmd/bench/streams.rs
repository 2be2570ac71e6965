//! The stream figures of `partyline bench`: what the tunnel costs against
//! the bare iroh connection it rides on, and against loopback TCP.
//!
//! Everything is real and on loopback, laid out as on a machine running two
//! parties: a session server with its relay on a runtime of its own (as
//! `partyline serve`), each party's endpoint on a single-threaded runtime of
//! its own thread (as `partyline join`), and the client and the far program
//! each on a single-threaded runtime of its own thread (as separate
//! processes, such as MPyC's, whose asyncio loop is one thread and reads up to
//! [`READ_CHUNK`] at a time). Each party binds its endpoint as `join` does
//! ([`PartyEndpoint::bind`], the same transport settings).
//!
//! Five ways from a client to a far end are measured, taking turns in every
//! repetition: loopback TCP; a bare QUIC stream between the two endpoints
//! (the client and the far end run on the parties' own runtimes, no
//! forwarding) with direct paths and relay-only; and the tunnel (the client
//! dials party 0's tunnel end, party 1's forwarder dials the far program) the
//! same two ways. Each transfer opens a new connection or stream whose first
//! byte says what the far end does ([`Transfer`]).
//!
//! Idle cost: two parties connected and left alone, the CPU time of their
//! threads and the QUIC packets on their connection, per peer and minute.
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use iroh::endpoint::Connection;
use partyline_lab::report::median;
use partyline_mesh::{Forwarder, LocalEnds, MeshConfig, PartyEndpoint, PeerLink, connect_all};
use partyline_server::{Quotas, RunningServer, ServerConfig};
use partyline_session::Coordinator;
use partyline_wire::seat::StreamRules;
use partyline_wire::{Member, Roster, SessionId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;

/// Round trips per repetition of the ping-pong.
const PINGS: usize = 1000;
/// Bytes of one ping (and of its answer).
const PING_BYTES: usize = 1024;
/// Bytes sent each way by one bulk transfer.
const BULK_BYTES: u64 = 64 * 1024 * 1024;
/// How the client writes: as large as programs usually do.
const WRITE_CHUNK: usize = 64 * 1024;
/// How the client and the far end read: as much as asyncio (MPyC's) reads at
/// once. tokio's copy reads 8 KiB, which made the far program of the tunnel
/// and of loopback TCP pay 132 reads per MiB.
const READ_CHUNK: usize = 256 * 1024;
/// How long the idle connections are watched.
const IDLE: Duration = Duration::from_secs(15);

/// What the far end does with a stream, said by its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transfer {
    /// Echoes what it reads (the ping-pong and the bulk echo).
    Echo,
    /// Reads to the end, then answers with the number of bytes it read.
    OneWay,
    /// Sends [`BULK_BYTES`] while it reads to the end, then the number read.
    BothWays,
}

impl Transfer {
    fn byte(self) -> u8 {
        match self {
            Transfer::Echo => b'e',
            Transfer::OneWay => b'o',
            Transfer::BothWays => b'b',
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        [Transfer::Echo, Transfer::OneWay, Transfer::BothWays]
            .into_iter()
            .find(|t| t.byte() == byte)
    }
}

/// The figures, each a list over repetitions. Throughput is MB/s each way;
/// CPU is the whole process's (client, parties, relay, far end) per MB
/// delivered, counting both ways where both carry data: unlike time, it
/// hardly changes with the machine's load.
#[derive(Default, Clone)]
struct Figures {
    rtt_median_us: Vec<f64>,
    rtt_p99_us: Vec<f64>,
    one_way: Vec<f64>,
    echo: Vec<f64>,
    both_ways: Vec<f64>,
    one_way_cpu_us_per_mb: Vec<f64>,
    echo_cpu_us_per_mb: Vec<f64>,
    both_ways_cpu_us_per_mb: Vec<f64>,
}

impl Figures {
    /// The figures by name, with their label in the table.
    fn rows(&self) -> [(&'static str, &'static str, &Vec<f64>); 8] {
        [
            (
                "rtt_1k_median_us",
                "1 KB round trip, median (µs)",
                &self.rtt_median_us,
            ),
            (
                "rtt_1k_p99_us",
                "1 KB round trip, p99 (µs)",
                &self.rtt_p99_us,
            ),
            ("one_way_mb_s", "one-way (MB/s)", &self.one_way),
            ("echo_mb_s_each_way", "echo (MB/s each way)", &self.echo),
            (
                "both_ways_mb_s_each_way",
                "both ways at once (MB/s each way)",
                &self.both_ways,
            ),
            (
                "one_way_cpu_us_per_mb",
                "one-way: CPU µs per MB",
                &self.one_way_cpu_us_per_mb,
            ),
            (
                "echo_cpu_us_per_mb",
                "echo: CPU µs per MB",
                &self.echo_cpu_us_per_mb,
            ),
            (
                "both_ways_cpu_us_per_mb",
                "both ways: CPU µs per MB",
                &self.both_ways_cpu_us_per_mb,
            ),
        ]
    }

    fn add(&mut self, other: Figures) {
        let pairs = [
            (&mut self.rtt_median_us, other.rtt_median_us),
            (&mut self.rtt_p99_us, other.rtt_p99_us),
            (&mut self.one_way, other.one_way),
            (&mut self.echo, other.echo),
            (&mut self.both_ways, other.both_ways),
            (&mut self.one_way_cpu_us_per_mb, other.one_way_cpu_us_per_mb),
            (&mut self.echo_cpu_us_per_mb, other.echo_cpu_us_per_mb),
            (
                &mut self.both_ways_cpu_us_per_mb,
                other.both_ways_cpu_us_per_mb,
            ),
        ];
        for (mine, theirs) in pairs {
            mine.extend(theirs);
        }
    }
}

/// CPU time of every thread of this process so far.
fn process_cpu() -> Duration {
    let tasks = std::fs::read_dir("/proc/self/task").into_iter().flatten();
    tasks
        .flatten()
        .map(|task| schedstat_cpu(&task.path().join("schedstat")))
        .sum()
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// How the client reaches the far end.
#[derive(Clone)]
enum Dialer {
    Tcp(SocketAddr),
    Quic(Connection),
}

impl Dialer {
    async fn open(&self) -> anyhow::Result<(Reader, Writer)> {
        Ok(match self {
            Dialer::Tcp(addr) => {
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let (read, write) = tcp.into_split();
                (Box::new(read), Box::new(write))
            }
            Dialer::Quic(conn) => {
                let (send, recv) = conn.open_bi().await?;
                (Box::new(recv), Box::new(send))
            }
        })
    }
}

/// A thread with a tokio runtime of its own, as a separate process would
/// have; stopped when dropped.
struct Host {
    handle: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Host {
    /// `single`: one thread, as `partyline join`; else two workers, as `serve`.
    fn start(name: &str, single: bool) -> anyhow::Result<Self> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let name = name.to_string();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let runtime = if single {
                    tokio::runtime::Builder::new_current_thread()
                } else {
                    let mut builder = tokio::runtime::Builder::new_multi_thread();
                    builder.worker_threads(2).thread_name(name.clone());
                    builder
                }
                .enable_all()
                .build();
                let runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                runtime.shutdown_timeout(Duration::from_millis(200));
            })?;
        let handle = ready_rx
            .recv()
            .context("the bench's runtime thread ended at once")??;
        Ok(Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Runs `future` on this host and waits for it.
    async fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> anyhow::Result<T> {
        Ok(self.handle.spawn(future).await?)
    }

    /// CPU time this host's thread has used so far (single-threaded hosts).
    async fn cpu(&self) -> anyhow::Result<Duration> {
        self.run(async { thread_cpu() }).await
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// User plus system CPU time of the calling thread.
fn thread_cpu() -> Duration {
    schedstat_cpu(Path::new("/proc/thread-self/schedstat"))
}

/// The time on CPU a `schedstat` file of procfs gives, in nanoseconds.
fn schedstat_cpu(file: &Path) -> Duration {
    let nanos = std::fs::read_to_string(file)
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
        .unwrap_or_default();
    Duration::from_nanos(nanos)
}

/// Two parties connected as the roster says, each on its own host.
struct Pair {
    hosts: [Host; 2],
    ends: [PartyEndpoint; 2],
    links: [Vec<PeerLink>; 2],
}

impl Pair {
    /// `name` names the parties' threads (`{name}-0`, `{name}-1`), for profilers.
    async fn connect(server: &RunningServer, relay_only: bool, name: &str) -> anyhow::Result<Self> {
        let info = Coordinator::new(server.url(), server.pin()).info().await?;
        let config = MeshConfig {
            relay_url: info.relay_url,
            relay_quic_port: info.relay_quic_port,
            // The bench's parties announce no WebRTC: nothing to ask STUN for.
            stun_port: None,
            pin: server.pin(),
            more_relays: info.relays,
            relay_only,
            webrtc_port: None,
            relay_token: None,
            peer_timeout: Default::default(),
        };
        let hosts = [
            Host::start(&format!("{name}-0"), true)?,
            Host::start(&format!("{name}-1"), true)?,
        ];
        let bind = |index: usize| {
            let config = config.clone();
            hosts[index].run(async move { PartyEndpoint::bind(&config).await })
        };
        let (end0, end1) = tokio::try_join!(bind(0), bind(1))?;
        let ends = [end0?, end1?];
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
                identity: None,
                webrtc: None,
            })
            .collect();
        let session = SessionId::random();
        let connect = |own_index: usize| {
            let roster = Roster {
                session,
                members: members.clone(),
                own_index,
            };
            let end = ends[own_index].clone();
            hosts[own_index]
                .run(async move { connect_all(&end, &roster, Duration::from_secs(30)).await })
        };
        let (links0, links1) = tokio::try_join!(connect(0), connect(1))?;
        Ok(Self {
            hosts,
            ends,
            links: [links0?, links1?],
        })
    }

    fn conn(&self, index: usize) -> Connection {
        self.links[index][0].conn.clone()
    }

    async fn close(self) {
        for (host, end) in self.hosts.iter().zip(&self.ends) {
            let end = end.clone();
            let _ = host.run(async move { end.close().await }).await;
        }
    }
}

/// One way from the client to the far end, and what it measured.
struct Route {
    name: &'static str,
    dialer: Dialer,
    /// Where the client runs: party 0's runtime (bare iroh), or its own.
    client: Handle,
    figures: Figures,
}

impl Route {
    async fn measure(&mut self) -> anyhow::Result<()> {
        let dialer = self.dialer.clone();
        let run = async move { measure_once(&dialer).await };
        let once = self.client.spawn(run).await??;
        self.figures.add(once);
        Ok(())
    }
}

/// The ping-pong and the three bulk transfers, once each.
async fn measure_once(dialer: &Dialer) -> anyhow::Result<Figures> {
    let (rtt_median_us, rtt_p99_us) = ping_pong(dialer).await?;
    let (one_way, one_way_cpu) = bulk(dialer, Transfer::OneWay).await?;
    let (echo, echo_cpu) = bulk(dialer, Transfer::Echo).await?;
    let (both_ways, both_ways_cpu) = bulk(dialer, Transfer::BothWays).await?;
    Ok(Figures {
        rtt_median_us: vec![rtt_median_us],
        rtt_p99_us: vec![rtt_p99_us],
        one_way: vec![one_way],
        echo: vec![echo],
        both_ways: vec![both_ways],
        one_way_cpu_us_per_mb: vec![one_way_cpu],
        echo_cpu_us_per_mb: vec![echo_cpu],
        both_ways_cpu_us_per_mb: vec![both_ways_cpu],
    })
}

/// Median and 99th percentile of a 1 KB round trip, in µs.
async fn ping_pong(dialer: &Dialer) -> anyhow::Result<(f64, f64)> {
    let (mut read, mut write) = dialer.open().await?;
    write.write_all(&[Transfer::Echo.byte()]).await?;
    let ping = vec![7u8; PING_BYTES];
    let mut pong = vec![0u8; PING_BYTES];
    let mut rtts = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let start = Instant::now();
        write.write_all(&ping).await?;
        read.read_exact(&mut pong).await?;
        rtts.push(start.elapsed().as_secs_f64() * 1e6);
    }
    write.shutdown().await?;
    let median_us = median(&mut rtts).context("no round trips")?;
    // `median` sorted them.
    Ok((median_us, rtts[rtts.len() * 99 / 100]))
}

/// One bulk transfer of [`BULK_BYTES`] (each way, where both ways carry
/// data): MB/s each way until the far end confirmed everything, and CPU µs
/// per MB delivered.
async fn bulk(dialer: &Dialer, transfer: Transfer) -> anyhow::Result<(f64, f64)> {
    let (mut read, mut write) = dialer.open().await?;
    let cpu = process_cpu();
    let start = Instant::now();
    let sender = async move {
        write.write_all(&[transfer.byte()]).await?;
        send_bulk(&mut write).await?;
        write.shutdown().await?;
        anyhow::Ok(())
    };
    let receiver = async move {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut received = 0u64;
        loop {
            let n = read.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            received += n as u64;
        }
        let expected = match transfer {
            Transfer::Echo => BULK_BYTES,
            Transfer::OneWay => 8,
            Transfer::BothWays => BULK_BYTES + 8,
        };
        anyhow::ensure!(
            received == expected,
            "the far end sent {received} bytes, not {expected}"
        );
        Ok(())
    };
    tokio::try_join!(sender, receiver)?;
    let seconds = start.elapsed().as_secs_f64();
    let ways = if transfer == Transfer::OneWay { 1 } else { 2 };
    let mb = (ways * BULK_BYTES) as f64 / 1e6;
    let cpu_us = (process_cpu() - cpu).as_secs_f64() * 1e6;
    Ok((BULK_BYTES as f64 / 1e6 / seconds, cpu_us / mb))
}

async fn send_bulk(write: &mut (impl AsyncWrite + Unpin)) -> std::io::Result<()> {
    let chunk = vec![1u8; WRITE_CHUNK];
    let mut left = BULK_BYTES;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        write.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

/// The far end of one stream: reads the [`Transfer`] byte and does it.
async fn serve_far(read: impl AsyncRead + Unpin, mut write: impl AsyncWrite + Unpin) {
    let mut read = BufReader::with_capacity(READ_CHUNK, read);
    let mut first = [0u8; 1];
    if read.read_exact(&mut first).await.is_err() {
        return;
    }
    let Some(transfer) = Transfer::from_byte(first[0]) else {
        return;
    };
    let _ = async {
        match transfer {
            Transfer::Echo => {
                tokio::io::copy_buf(&mut read, &mut write).await?;
            }
            Transfer::OneWay => {
                let read_bytes = tokio::io::copy_buf(&mut read, &mut tokio::io::sink()).await?;
                write.write_all(&read_bytes.to_le_bytes()).await?;
            }
            Transfer::BothWays => {
                let mut sink = tokio::io::sink();
                let (read_bytes, ()) = tokio::try_join!(
                    tokio::io::copy_buf(&mut read, &mut sink),
                    send_bulk(&mut write)
                )?;
                write.write_all(&read_bytes.to_le_bytes()).await?;
            }
        }
        write.shutdown().await
    }
    .await;
}

/// A far program listening on TCP, on `host`.
fn spawn_far_tcp(host: &Host, listener: std::net::TcpListener) -> anyhow::Result<SocketAddr> {
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    host.handle.spawn(async move {
        // Bound already: connections wait in its backlog until accepted.
        let Ok(listener) = TcpListener::from_std(listener) else {
            return;
        };
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let (read, write) = tcp.into_split();
                serve_far(read, write).await;
            });
        }
    });
    Ok(addr)
}

/// A far end on the streams of a bare connection, on the party's runtime.
fn spawn_far_quic(host: &Host, conn: Connection) {
    host.handle.spawn(async move {
        while let Ok((send, recv)) = conn.accept_bi().await {
            tokio::spawn(serve_far(recv, send));
        }
    });
}

/// The tunnel through `pair`: party 0's forwarder and tunnel end, party 1's
/// forwarder in front of a far program on `far`. Returns the tunnel end and
/// the forwarders (which must live as long as the measurements).
async fn start_tunnel(pair: &Pair, far: &Host) -> anyhow::Result<(SocketAddr, [Forwarder; 2])> {
    let mut far_ends = LocalEnds::loopback(2)?;
    let far_program = far_ends
        .take(1)
        .pop()
        .context("no program socket for party 1")?;
    spawn_far_tcp(far, far_program)?;
    let links0 = pair.links[0].clone();
    let near = pair.hosts[0]
        .run(async move {
            // Party 0's own program port is never dialled here.
            Forwarder::start(&links0, 0, LocalEnds::loopback(2)?, StreamRules::Generic)
        })
        .await??;
    let links1 = pair.links[1].clone();
    let far = pair.hosts[1]
        .run(async move { Forwarder::start(&links1, 1, far_ends, StreamRules::Generic) })
        .await??;
    Ok((near.addrs[1], [near, far]))
}

/// What one idle pair cost per peer and minute.
struct Idle {
    cpu_ms_per_min: f64,
    packets_per_min: f64,
}

async fn measure_idle(server: &RunningServer, relay_only: bool) -> anyhow::Result<Idle> {
    let pair = Pair::connect(server, relay_only, "idle").await?;
    // Let the path settle (hole punching, the first probes) before watching.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let packets = |pair: &Pair| {
        let stats = pair.conn(0).stats();
        stats.sent_packets + stats.udp_rx.datagrams
    };
    let cpu = async |pair: &Pair| -> anyhow::Result<Duration> {
        Ok(pair.hosts[0].cpu().await? + pair.hosts[1].cpu().await?)
    };
    let (cpu_before, packets_before) = (cpu(&pair).await?, packets(&pair));
    tokio::time::sleep(IDLE).await;
    let (cpu_after, packets_after) = (cpu(&pair).await?, packets(&pair));
    pair.close().await;
    let minutes = IDLE.as_secs_f64() / 60.0;
    Ok(Idle {
        // Two parties with one peer each.
        cpu_ms_per_min: (cpu_after - cpu_before).as_secs_f64() * 1000.0 / 2.0 / minutes,
        packets_per_min: (packets_after - packets_before) as f64 / minutes,
    })
}

/// Runs the stream figures `repeat` times, writes `streams.csv` into `out`
/// and returns the markdown tables.
pub async fn run(repeat: usize, out: &Path) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let server_host = Host::start("server", false)?;
    let data_dir = dir.path().join("server");
    let server = server_host
        .run(async move {
            partyline_server::start(ServerConfig {
                listen: (Ipv4Addr::LOCALHOST, 0).into(),
                data_dir,
                // Endpoints outside any session, and the relay's throughput
                // is measured: a relay open to all, no quotas.
                quotas: Quotas::unlimited(),
                ..ServerConfig::default()
            })
            .await
        })
        .await??;
    let result = run_with(&server, repeat, out).await;
    let _ = server_host.run(server.shutdown()).await;
    result
}

async fn run_with(server: &RunningServer, repeat: usize, out: &Path) -> anyhow::Result<String> {
    eprintln!(
        "partyline bench: idle connections ({} s each)",
        IDLE.as_secs()
    );
    let idle_direct = measure_idle(server, false).await?;
    let idle_relay = measure_idle(server, true).await?;

    // The programs at both ends of the TCP routes, as processes of their own.
    let client = Host::start("client", true)?;
    let far = Host::start("far", true)?;
    let far_tcp = spawn_far_tcp(&far, std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?)?;
    let bare_direct = Pair::connect(server, false, "iroh-direct").await?;
    let bare_relay = Pair::connect(server, true, "iroh-relay").await?;
    let tunnel_direct = Pair::connect(server, false, "tunnel-direct").await?;
    let tunnel_relay = Pair::connect(server, true, "tunnel-relay").await?;
    for bare in [&bare_direct, &bare_relay] {
        spawn_far_quic(&bare.hosts[1], bare.conn(1));
    }
    let (direct_end, _direct_forwarders) = start_tunnel(&tunnel_direct, &far).await?;
    let (relay_end, _relay_forwarders) = start_tunnel(&tunnel_relay, &far).await?;
    let bare = |name, pair: &Pair| Route {
        name,
        dialer: Dialer::Quic(pair.conn(0)),
        client: pair.hosts[0].handle.clone(),
        figures: Figures::default(),
    };
    let tcp = |name, addr| Route {
        name,
        dialer: Dialer::Tcp(addr),
        client: client.handle.clone(),
        figures: Figures::default(),
    };
    let mut paths = [
        tcp("tcp", far_tcp),
        bare("iroh direct", &bare_direct),
        tcp("tunnel direct", direct_end),
        bare("iroh relay", &bare_relay),
        tcp("tunnel relay", relay_end),
    ];
    for round in 0..repeat {
        eprintln!(
            "partyline bench: streams, repetition {} of {repeat}",
            round + 1
        );
        for path in &mut paths {
            path.measure()
                .await
                .with_context(|| format!("measuring {}", path.name))?;
        }
    }
    for pair in [bare_direct, bare_relay, tunnel_direct, tunnel_relay] {
        pair.close().await;
    }
    write_csv(&paths, &out.join("streams.csv"))?;
    Ok(tables(&paths, &idle_direct, &idle_relay))
}

fn write_csv(paths: &[Route], file: &Path) -> anyhow::Result<()> {
    let mut csv = String::from("path,figure,repeat,value\n");
    for path in paths {
        for (figure, _, values) in path.figures.rows() {
            for (repeat, value) in values.iter().enumerate() {
                let _ = writeln!(csv, "{},{figure},{repeat},{value:.3}", path.name);
            }
        }
    }
    std::fs::write(file, csv).with_context(|| format!("cannot write {}", file.display()))
}

fn tables(paths: &[Route], idle_direct: &Idle, idle_relay: &Idle) -> String {
    let medians: Vec<[f64; 8]> = paths
        .iter()
        .map(|p| {
            p.figures
                .rows()
                .map(|(_, _, values)| median(&mut values.clone()).unwrap_or(0.0))
        })
        .collect();
    let [tcp, iroh_direct, tunnel_direct, iroh_relay, tunnel_relay] = [0, 1, 2, 3, 4];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Streams\n\nMedians of {} repetitions; each transfer {} MiB each way. \
         iroh: a bare QUIC stream between the two parties' endpoints; tunnel: through \
         both forwarders (TCP in, QUIC between, TCP out).\n",
        paths[0].figures.echo.len(),
        BULK_BYTES >> 20
    );
    let _ = writeln!(
        out,
        "| transfer | tcp | iroh direct | tunnel direct | iroh relay | tunnel relay | tunnel/iroh direct | tunnel/iroh relay | tunnel direct/tcp | tunnel relay/direct |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for (row, (_, label, _)) in paths[0].figures.rows().iter().enumerate() {
        let at = |path: usize| medians[path][row];
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let _ = writeln!(
            out,
            "| {label} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            at(tcp),
            at(iroh_direct),
            at(tunnel_direct),
            at(iroh_relay),
            at(tunnel_relay),
            ratio(at(tunnel_direct), at(iroh_direct)),
            ratio(at(tunnel_relay), at(iroh_relay)),
            ratio(at(tunnel_direct), at(tcp)),
            ratio(at(tunnel_relay), at(tunnel_direct)),
        );
    }
    let _ = writeln!(
        out,
        "\nIdle connection, per peer ({} s watched): direct {:.1} ms CPU and {:.0} QUIC packets \
         a minute; relay {:.1} ms CPU and {:.0} packets a minute.",
        IDLE.as_secs(),
        idle_direct.cpu_ms_per_min,
        idle_direct.packets_per_min,
        idle_relay.cpu_ms_per_min,
        idle_relay.packets_per_min
    );
    out
}
