//! `partyline bench`: MPyC over partyline (direct and relay) against MPyC over
//! plain TCP, side by side in one run, and raw stream round-trip time and
//! throughput through a partyline tunnel against plain loopback TCP.
//!
//! Runs alternate between the three ways in every repetition, so that drift
//! in machine load affects them alike; medians are reported, and ratios to
//! plain TCP, which is the baseline partyline adds its overhead to.
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use partyline_lab::report::median;
use partyline_launch::mpyc;
use partyline_mesh::{Forwarder, MeshConfig, PartyEndpoint, connect_all};
use partyline_server::RunningServer;
use partyline_session::Coordinator;
use partyline_wire::{Member, Roster, SessionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

use super::demo::{join_command, local_invite, start_local_server};
use crate::cli::BenchArgs;
use crate::config::Config;

/// The MPyC workloads: (program and arguments, parties). Sorting is
/// round-bound (latency matters) with a fixed cost; Secret Santa is too, but
/// redraws until it finds a derangement, so its cost varies from run to run;
/// bulk is volume-bound (throughput matters).
const WORKLOADS: [(&[&str], u16); 5] = [
    (&["securesum.py"], 3),
    (&["sort.py", "16"], 3),
    (&["sort.py", "8"], 5),
    (&["secretsanta.py", "8"], 3),
    (&["bulk.py", "10"], 3),
];
const WAYS: [Way; 3] = [Way::Tcp, Way::Direct, Way::Relay];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Tcp,
    Direct,
    Relay,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<i32> {
    let dir = tempfile::Builder::new()
        .prefix("partyline-bench-")
        .tempdir()?;
    let python = super::join::find_python(&args.python, &Config::default()).await?;
    crate::examples::write_to(dir.path(), "securesum.py")?;
    let server = start_local_server(dir.path()).await?;

    eprintln!(
        "partyline bench: {} repetitions; MPyC time is the largest 'elapsed time' any party reports, \
         wall time is start to exit of all party processes (includes Python start-up and, for \
         partyline, joining and connecting)",
        args.repeat
    );
    println!(
        "| workload | parties | tcp MPyC s | direct MPyC s | relay MPyC s | direct/tcp | relay/tcp | tcp wall s | direct wall s | relay wall s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (program, parties) in WORKLOADS {
        let program: Vec<String> =
            std::iter::once(dir.path().join(program[0]).to_string_lossy().into_owned())
                .chain(program[1..].iter().map(|a| a.to_string()))
                .collect();
        let mut mpyc: [Vec<f64>; 3] = Default::default();
        let mut wall: [Vec<f64>; 3] = Default::default();
        for _ in 0..args.repeat {
            for (i, way) in WAYS.iter().enumerate() {
                let run = match way {
                    Way::Tcp => run_plain_tcp(&python, parties, &program).await?,
                    Way::Direct => {
                        run_partyline(&server, &python, parties, &program, false).await?
                    }
                    Way::Relay => run_partyline(&server, &python, parties, &program, true).await?,
                };
                mpyc[i].push(run.mpyc_secs);
                wall[i].push(run.wall_secs);
            }
        }
        let [tcp, direct, relay] = mpyc.map(|mut v| median(&mut v).unwrap_or(f64::NAN));
        let [tcp_wall, direct_wall, relay_wall] =
            wall.map(|mut v| median(&mut v).unwrap_or(f64::NAN));
        println!(
            "| {} | {parties} | {tcp:.3} | {direct:.3} | {relay:.3} | {:.2} | {:.2} | {tcp_wall:.2} | {direct_wall:.2} | {relay_wall:.2} |",
            program_label(&program),
            direct / tcp,
            relay / tcp,
        );
    }

    println!();
    println!("| stream | tcp | direct | relay | direct/tcp | relay/tcp |");
    println!("|---|---|---|---|---|---|");
    let tcp_echo = spawn_echo().await?;
    let plain = measure_stream(tcp_echo).await?;
    let direct = measure_tunnel(&server, false).await?;
    let relay = measure_tunnel(&server, true).await?;
    println!(
        "| 1 KB RTT median (µs) | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
        plain.rtt_us,
        direct.rtt_us,
        relay.rtt_us,
        direct.rtt_us / plain.rtt_us,
        relay.rtt_us / plain.rtt_us
    );
    println!(
        "| 1 KB RTT p99 (µs) | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
        plain.rtt_p99_us,
        direct.rtt_p99_us,
        relay.rtt_p99_us,
        direct.rtt_p99_us / plain.rtt_p99_us,
        relay.rtt_p99_us / plain.rtt_p99_us
    );
    println!(
        "| echo throughput (MB/s each way) | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
        plain.mb_per_s,
        direct.mb_per_s,
        relay.mb_per_s,
        direct.mb_per_s / plain.mb_per_s,
        relay.mb_per_s / plain.mb_per_s
    );
    server.shutdown().await;
    Ok(0)
}

fn program_label(program: &[String]) -> String {
    let file = Path::new(&program[0])
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::iter::once(file)
        .chain(program[1..].iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Timing {
    mpyc_secs: f64,
    wall_secs: f64,
}

/// Waits for every party and returns the timing; any failure fails the bench.
async fn collect(children: Vec<tokio::process::Child>, started: Instant) -> anyhow::Result<Timing> {
    let mut slowest: f64 = 0.0;
    for child in children {
        let out = child.wait_with_output().await?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "a party failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let elapsed =
            mpyc::elapsed(&stdout).context("a party printed no MPyC 'elapsed time' line")?;
        slowest = slowest.max(elapsed.as_secs_f64());
    }
    Ok(Timing {
        mpyc_secs: slowest,
        wall_secs: started.elapsed().as_secs_f64(),
    })
}

async fn run_plain_tcp(python: &Path, parties: u16, program: &[String]) -> anyhow::Result<Timing> {
    let mut addrs = Vec::new();
    for _ in 0..parties {
        addrs.push(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?);
    }
    let started = Instant::now();
    let mut children = Vec::new();
    for index in 0..parties {
        let mut command = Command::new(python);
        command
            .args(program)
            .args(mpyc::connection_flags(&addrs, usize::from(index)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children.push(command.kill_on_drop(true).spawn()?);
    }
    collect(children, started).await
}

async fn run_partyline(
    server: &RunningServer,
    python: &Path,
    parties: u16,
    program: &[String],
    relay_only: bool,
) -> anyhow::Result<Timing> {
    let exe = std::env::current_exe()?;
    let invite = local_invite(server, parties, "bench").await?;
    let started = Instant::now();
    let mut children = Vec::new();
    for index in 0..parties {
        let name = format!("party{index}");
        let mut command =
            join_command(&exe, &invite, &name, relay_only, Some(python), &[], program);
        children.push(command.kill_on_drop(true).spawn()?);
    }
    collect(children, started).await
}

struct StreamFigures {
    rtt_us: f64,
    rtt_p99_us: f64,
    mb_per_s: f64,
}

const PINGS: usize = 2000;
const BULK_BYTES: usize = 64 * 1024 * 1024;

/// A TCP echo server on loopback, for as long as the process runs.
async fn spawn_echo() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
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

/// 1 KB ping-pong, then a bulk echo, against whatever listens at `addr`.
async fn measure_stream(addr: SocketAddr) -> anyhow::Result<StreamFigures> {
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
    rtts.sort_by(f64::total_cmp);
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
            bail!("the echo stream ended after {received} bytes");
        }
        received += n;
    }
    sender.await??;
    let secs = start.elapsed().as_secs_f64();
    Ok(StreamFigures {
        rtt_us: rtts[rtts.len() / 2],
        rtt_p99_us: rtts[rtts.len() * 99 / 100],
        mb_per_s: BULK_BYTES as f64 / 1e6 / secs,
    })
}

/// The same measurement through a two-party partyline tunnel in this process:
/// party 1's "program" is an echo server, party 0 connects to its tunnel end.
async fn measure_tunnel(server: &RunningServer, relay_only: bool) -> anyhow::Result<StreamFigures> {
    let coordinator = Coordinator::new(server.url(), server.pin());
    let info = coordinator.info().await?;
    let config = MeshConfig {
        relay_url: info.relay_url,
        relay_quic_port: info.relay_quic_port,
        pin: server.pin(),
        relay_only,
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
    let echo = spawn_echo().await?;
    let unused: SocketAddr = (Ipv4Addr::LOCALHOST, 9).into();
    let tunnel = Forwarder::start(&links0, 0, unused).await?;
    let _far_end = Forwarder::start(&links1, 1, echo).await?;
    let figures = measure_stream(tunnel.addrs[1]).await;
    for end in &ends {
        end.close().await;
    }
    figures
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn labels_name_the_file() {
        let program = vec![
            PathBuf::from("/tmp/x/bulk.py")
                .to_string_lossy()
                .into_owned(),
            "10".into(),
        ];
        assert_eq!(program_label(&program), "bulk.py 10");
    }
}
