//! Soak: sessions back to back on one `partyline serve` (3 parties each, a
//! small MPyC program) all succeed, and the server gives back what they took:
//! its memory, open file descriptors, database size and relay clients return
//! to near their start values once the sessions are deleted.
//!
//! `PARTYLINE_SOAK_SESSIONS` sets the count (default 20; the full
//! run is 200).
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use partyline_session::{Coordinator, ServerLink};

/// What the server holds at one moment.
#[derive(Debug, Clone, Copy)]
struct Holdings {
    rss_kib: u64,
    fds: usize,
    /// The database file; its write-ahead log is emptied by each sweep that deletes.
    database_bytes: u64,
    wal_bytes: u64,
    relay_clients: usize,
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn file_bytes(dir: &Path, name: &str) -> u64 {
    std::fs::metadata(dir.join(name)).map_or(0, |meta| meta.len())
}

/// Established TCP connections to the relay's port (every relay client holds one).
fn relay_clients(port: u16) -> usize {
    let local_port = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&local_port) && fields[3] == "01"
        })
        .count()
}

fn relay_port(server: &Server) -> u16 {
    let link: ServerLink = server.link.parse().unwrap();
    let info = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(Coordinator::new(&link.url, link.pin.unwrap()).info())
        .unwrap();
    let port = info.relay_url.rsplit(':').next().unwrap();
    port.trim_end_matches('/').parse().unwrap()
}

fn holdings(server: &Server, relay: u16) -> Holdings {
    Holdings {
        rss_kib: rss_kib(server.pid()),
        fds: open_fds(server.pid()),
        database_bytes: file_bytes(server.data.path(), "partyline.sqlite3"),
        wal_bytes: file_bytes(server.data.path(), "partyline.sqlite3-wal"),
        relay_clients: relay_clients(relay),
    }
}

/// Waits until the server has let go of every session: no relay client, and
/// a sweep deleted the last ones (it empties the write-ahead log), with
/// `also` true; gives up after 30 s and returns what it holds then.
fn settled(server: &Server, relay: u16, also: impl Fn(&Holdings) -> bool) -> Holdings {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = holdings(server, relay);
        let let_go = now.relay_clients == 0 && now.wal_bytes == 0 && also(&now);
        if let_go || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn one_session(server: &Server, program: &[String]) {
    for run in run_session(server, 3, &[], program) {
        run.assert_success();
        assert_eq!(run.result_lines(&["sum"]), ["sum: 3"], "{}", run.name);
    }
}

#[test]
fn sessions_back_to_back_leave_the_server_as_it_was() {
    let sessions: usize = std::env::var("PARTYLINE_SOAK_SESSIONS")
        .ok()
        .map(|count| count.parse().expect("PARTYLINE_SOAK_SESSIONS is a number"))
        .unwrap_or(20);
    // Done sessions are deleted 2 s after their end (swept every second), so
    // the database can be seen to shrink back within the test.
    let server = Server::start_with(&[
        "--listen",
        "127.0.0.1:0",
        "--no-quotas",
        "--keep-done-secs",
        "2",
    ]);
    let relay = relay_port(&server);
    let program = vec![
        repo_file("crates/partyline/tests/programs/timed_rounds.py"),
        "5".to_string(),
    ];
    let empty = holdings(&server, relay);
    // The first session makes the server grow its thread pools and caches
    // once: the start values are taken once it is deleted.
    one_session(&server, &program);
    let start = settled(&server, relay, |_| true);
    assert_eq!(
        start.wal_bytes, 0,
        "the first session was not deleted: {start:?}"
    );
    let began = Instant::now();
    for _ in 0..sessions {
        one_session(&server, &program);
    }
    let took = began.elapsed();
    let near_start = |now: &Holdings| {
        now.fds <= start.fds + 2 && now.database_bytes <= start.database_bytes + 16 * 1024
    };
    let end = settled(&server, relay, near_start);
    eprintln!(
        "{sessions} sessions in {took:?} ({:?} each)\n  empty server: {empty:?}\n  start:        {start:?}\n  end:          {end:?}",
        took / sessions as u32
    );
    assert_eq!(end.relay_clients, 0, "relay clients left: {end:?}");
    assert_eq!(
        end.wal_bytes, 0,
        "the last sessions were not deleted: {end:?}"
    );
    assert!(near_start(&end), "the server grew: {start:?} -> {end:?}");
    // Memory: within 8 MiB or a quarter of the start (the allocator keeps
    // some freed memory for reuse).
    let tolerance = (8 * 1024).max(start.rss_kib / 4);
    assert!(
        end.rss_kib <= start.rss_kib + tolerance,
        "memory grew: {start:?} -> {end:?}"
    );
}
