//! What the forwarders promise any TCP program: every byte arrives, in order,
//! both ways at once; a half-close reaches the other program while the other
//! direction goes on; and a program that reads slowly holds the sender back
//! instead of making partyline buffer what it has not read.
//!
//! Everything is real and on loopback, direct and through the relay only: a
//! session server with its relay, two party endpoints, both forwarders, a
//! client dialling party 0's tunnel end and a far program behind party 1's.
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use partyline_mesh::{Forwarder, LocalEnds};
use partyline_wire::seat::StreamRules;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes each way in the byte-exact test.
const BULK: u64 = 16 * 1024 * 1024;
/// What the sender offers a program that does not read: more than every
/// buffer on the way can hold (two TCP connections' socket buffers, QUIC's
/// windows, the forwarders' copy buffers).
const OFFERED: u64 = 256 * 1024 * 1024;
/// The most a tunnel may hold for a program that does not read. The sum of
/// the buffers above is well under it; an unbounded queue anywhere passes it.
const HELD_AT_MOST: u64 = 96 * 1024 * 1024;
/// Generous for a debug build through the relay on a loaded machine.
const TRANSFER_LIMIT: Duration = Duration::from_secs(120);
/// How long a write must stay blocked to count as held back.
const STALLED: Duration = Duration::from_secs(2);

/// Byte `i` of the stream sent with `seed`: a sequence no buffer
/// mix-up, loss or duplication leaves intact.
fn byte_at(seed: u64, i: u64) -> u8 {
    let x = (i ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8
}

async fn send_pattern(write: &mut (impl AsyncWrite + Unpin), seed: u64, len: u64) {
    send_pattern_from(write, seed, 0, len).await;
}

/// Sends bytes `from..to` of the stream with `seed`.
async fn send_pattern_from(write: &mut (impl AsyncWrite + Unpin), seed: u64, from: u64, to: u64) {
    let mut buf = vec![0u8; 61 * 1024];
    let mut sent = from;
    while sent < to {
        let n = (to - sent).min(buf.len() as u64) as usize;
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = byte_at(seed, sent + k as u64);
        }
        write.write_all(&buf[..n]).await.unwrap();
        sent += n as u64;
    }
}

/// Reads to the end and checks every byte; returns how many came.
async fn check_pattern(read: &mut (impl AsyncRead + Unpin), seed: u64) -> u64 {
    let mut buf = vec![0u8; 37 * 1024];
    let mut got = 0u64;
    loop {
        let n = read.read(&mut buf).await.unwrap();
        if n == 0 {
            return got;
        }
        for (k, b) in buf[..n].iter().enumerate() {
            let at = got + k as u64;
            assert_eq!(*b, byte_at(seed, at), "byte {at} of stream {seed} differs");
        }
        got += n as u64;
    }
}

/// A tunnel from a local tunnel end (returned) to a program listening
/// behind the far party (`program`), and what must live as long as it.
struct Tunnel {
    end: SocketAddr,
    program: TcpListener,
    _forwarders: [Forwarder; 2],
    _pair: Pair,
    _server: (partyline_server::RunningServer, tempfile::TempDir),
}

async fn tunnel(relay_only: bool) -> Tunnel {
    let (server, dir) = start_server().await;
    let pair = connected_pair_with(&server, relay_only).await;
    let near = Forwarder::start(
        &pair.alice_links,
        0,
        LocalEnds::loopback(2).unwrap(),
        StreamRules::Generic,
    )
    .unwrap();
    let mut far_ends = LocalEnds::loopback(2).unwrap();
    let program = far_ends.take(1).pop().unwrap();
    program.set_nonblocking(true).unwrap();
    let far = Forwarder::start(&pair.bob_links, 1, far_ends, StreamRules::Generic).unwrap();
    Tunnel {
        end: near.addrs[1],
        program: TcpListener::from_std(program).unwrap(),
        _forwarders: [near, far],
        _pair: pair,
        _server: (server, dir),
    }
}

/// Both programs send at once; each closes its sending side when done and
/// must then still receive the other's bytes, every one of them.
async fn bytes_arrive_intact_both_ways_and_half_close_passes(relay_only: bool) {
    let tunnel = tunnel(relay_only).await;
    let client = TcpStream::connect(tunnel.end).await.unwrap();
    let (far, _) = within(tunnel.program.accept(), "the stream reaches the program")
        .await
        .unwrap();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut far_read, mut far_write) = far.into_split();

    let near_side = async {
        send_pattern(&mut client_write, 1, BULK).await;
        // Half-close: the far program reads the end, while we keep reading.
        client_write.shutdown().await.unwrap();
        check_pattern(&mut client_read, 2).await
    };
    let far_side = async {
        let got = check_pattern(&mut far_read, 1).await;
        // Only after the client's end arrived do we answer the rest and end:
        // the direction towards the client is still open.
        send_pattern(&mut far_write, 2, BULK).await;
        far_write.shutdown().await.unwrap();
        got
    };
    let (near_got, far_got) =
        tokio::time::timeout(TRANSFER_LIMIT, async { tokio::join!(near_side, far_side) })
            .await
            .expect("both directions finish");
    assert_eq!(
        far_got, BULK,
        "the far program got {far_got} of {BULK} bytes"
    );
    assert_eq!(near_got, BULK, "the client got {near_got} of {BULK} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_arrive_intact_both_ways_and_half_close_passes_direct() {
    bytes_arrive_intact_both_ways_and_half_close_passes(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_arrive_intact_both_ways_and_half_close_passes_through_the_relay() {
    bytes_arrive_intact_both_ways_and_half_close_passes(true).await;
}

/// Resident memory of this process, in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// The far program does not read: the sender must come to a halt after a
/// bounded amount, and stay there without partyline's memory growing; once
/// the program reads (slowly), every byte arrives.
async fn a_program_that_does_not_read_holds_the_sender_back(relay_only: bool) {
    let tunnel = tunnel(relay_only).await;
    let client = TcpStream::connect(tunnel.end).await.unwrap();
    let (mut far, _) = within(tunnel.program.accept(), "the stream reaches the program")
        .await
        .unwrap();
    let (_, mut client) = client.into_split();
    let before = resident();

    // One `write` at a time, so that a write cut by the timeout took nothing.
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    let held_at = loop {
        assert!(
            sent < OFFERED,
            "all {OFFERED} bytes were taken while the program read none"
        );
        for (k, b) in buf.iter_mut().enumerate() {
            *b = byte_at(3, sent + k as u64);
        }
        match tokio::time::timeout(STALLED, client.write(&buf)).await {
            Ok(written) => sent += written.unwrap() as u64,
            // Blocked this long: everything on the way is full.
            Err(_) => break sent,
        }
    };
    assert!(
        held_at <= HELD_AT_MOST,
        "the tunnel took {held_at} bytes for a program that read none (at most {HELD_AT_MOST})"
    );
    let grown = resident().saturating_sub(before);
    assert!(
        grown <= HELD_AT_MOST,
        "memory grew by {grown} bytes while the sender was held back"
    );

    // Now the program reads, in small pieces, and the sender goes on a little.
    let total = held_at + 8 * 1024 * 1024;
    let sender = async {
        send_pattern_from(&mut client, 3, held_at, total).await;
        client.shutdown().await.unwrap();
    };
    let (got, ()) = tokio::time::timeout(TRANSFER_LIMIT, async {
        tokio::join!(check_pattern(&mut far, 3), sender)
    })
    .await
    .expect("the held-back bytes arrive once the program reads");
    assert_eq!(got, total, "the program got {got} of {total} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_program_that_does_not_read_holds_the_sender_back_direct() {
    a_program_that_does_not_read_holds_the_sender_back(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_program_that_does_not_read_holds_the_sender_back_through_the_relay() {
    a_program_that_does_not_read_holds_the_sender_back(true).await;
}
