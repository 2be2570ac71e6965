//! Floods from one address (announcements, long-polls, polls of unknown
//! sessions) are held off while an honest session from another address
//! completes, and the server's memory and disk stay bounded. The server runs
//! in a process of its own with the default quotas; every 127.x.y.z address
//! is this machine, and a different client to the server.
mod common;

use common::process::{ProcessConfig, ServerProcess};
use partyline_wire::api::{CreateSession, SessionCreated, SessionState, SessionView};
use partyline_wire::{EndpointKey, SessionId, SignedAnnouncement};
use reqwest::{Client, StatusCode};

#[test]
#[ignore = "the server process of the tests in this file, started by them"]
fn server_process() {
    common::process::serve_if_asked();
}

const MIB: u64 = 1 << 20;

/// How a flood's requests ended.
#[derive(Default, Debug)]
struct Outcomes {
    ok: usize,
    not_found: usize,
    too_many: usize,
    /// The connection was refused (the address holds too many).
    disconnected: usize,
    /// Anything else: the first few, to say what went wrong.
    other: Vec<String>,
}

impl Outcomes {
    fn add(&mut self, outcome: Result<StatusCode, reqwest::Error>) {
        let other = match outcome {
            Ok(status) if status.is_success() => return self.ok += 1,
            Ok(StatusCode::NOT_FOUND) => return self.not_found += 1,
            Ok(StatusCode::TOO_MANY_REQUESTS) => return self.too_many += 1,
            Err(e) if e.is_connect() || e.is_request() => return self.disconnected += 1,
            Ok(status) => status.to_string(),
            Err(e) => e.to_string(),
        };
        if self.other.len() < 3 {
            self.other.push(other);
        }
    }

    fn refused(&self) -> usize {
        self.too_many + self.disconnected
    }
}

/// Sends `total` requests, 100 at a time (fewer than the connections one
/// address may hold), and counts how they ended.
async fn in_waves(total: u32, request: impl Fn(u32) -> reqwest::RequestBuilder) -> Outcomes {
    let mut outcomes = Outcomes::default();
    for wave in 0..total.div_ceil(100) {
        let sent: Vec<_> = (wave * 100..(wave * 100 + 100).min(total))
            .map(|n| {
                let request = request(n);
                tokio::spawn(async move { request.send().await.map(|r| r.status()) })
            })
            .collect();
        for outcome in sent {
            outcomes.add(common::within(30, outcome).await.unwrap());
        }
    }
    outcomes
}

async fn create(client: &Client, url: &str, parties: u16) -> reqwest::Response {
    client
        .post(format!("{url}/v1/sessions"))
        .json(&CreateSession {
            parties,
            label: None,
            write_token_hash: common::write_token().hash(),
        })
        .send()
        .await
        .unwrap()
}

/// An announcement the server accepts (it checks only the shape): 8 KiB,
/// the most it keeps.
fn big_announcement(n: u32) -> SignedAnnouncement {
    let mut endpoint = [0u8; 32];
    endpoint[..4].copy_from_slice(&n.to_be_bytes());
    let head = format!(r#"{{"endpoint":"{}","pad":""#, EndpointKey(endpoint));
    let pad = "x".repeat(8 * 1024 - head.len() - 2);
    SignedAnnouncement {
        body: format!("{head}{pad}\"}}"),
        mac: "0".repeat(64),
    }
}

fn data_dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_from_one_address_leave_other_sessions_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&ProcessConfig::new(dir.path()));
    let url = server.url.clone();
    let client = |source| common::client_with_pin_from(server.pin, source);
    let rss_at_start = server.rss();

    // 1. Long-polls of sessions that do not exist, 100 at a time: answered
    // at once (nothing is kept for them), and refused once the address is
    // over its requests.
    let flood = client("127.0.0.1");
    let unknown = in_waves(2_000, |_| {
        flood.get(format!(
            "{url}/v1/sessions/{}?seen=0&wait=30",
            SessionId::random()
        ))
    })
    .await;
    eprintln!("unknown-session polls: {unknown:?}");
    assert!(unknown.other.is_empty(), "{:?}", unknown.other);
    // 1,200 a minute, and a few more as the bucket refills during the flood.
    assert!(unknown.not_found <= 1_300, "{unknown:?}");
    assert!(unknown.too_many >= 700, "{unknown:?}");

    // 2. Sessions and 8 KiB announcements, as fast as one address can send
    // them: creation stops at 30 a minute, changes (creations included) at 300.
    let flood = client("127.0.0.3");
    let mut sessions = Vec::new();
    let mut creates = Outcomes::default();
    for _ in 0..40 {
        let response = create(&flood, &url, 64).await;
        let status = response.status();
        if status == StatusCode::CREATED {
            sessions.push(response.json::<SessionCreated>().await.unwrap().session);
        }
        creates.add(Ok(status));
    }
    eprintln!("session creations: {creates:?}");
    assert_eq!((creates.ok, creates.too_many), (30, 10), "{creates:?}");
    let announcements = in_waves(2_000, |n| {
        let session = sessions[n as usize % sessions.len()];
        flood
            .post(format!("{url}/v1/sessions/{session}/announcements"))
            .header("authorization", common::write_token().bearer())
            .json(&big_announcement(n))
    })
    .await;
    eprintln!("announcements: {announcements:?}");
    assert!(announcements.other.is_empty(), "{:?}", announcements.other);
    assert!(announcements.ok <= 300, "{announcements:?}");
    assert!(announcements.too_many >= 1_700, "{announcements:?}");

    // 3. Long-polls of a real session, each on its own connection: no more
    // than the address's share are held, the rest are refused at once.
    let flood = Client::builder()
        .tls_backend_preconfigured(partyline_session::tls::pinned_client_config(server.pin))
        .local_address("127.0.0.4".parse::<std::net::IpAddr>().unwrap())
        .http1_only()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let created: SessionCreated = create(&flood, &url, 2).await.json().await.unwrap();
    let target = created.session;
    let (results, mut finished) = tokio::sync::mpsc::unbounded_channel();
    let total = 300;
    for _ in 0..total {
        let request = flood.get(format!("{url}/v1/sessions/{target}?seen=0&wait=30"));
        let results = results.clone();
        tokio::spawn(async move {
            let _ = results.send(request.send().await.map(|r| r.status()));
        });
    }
    let held_at_most = 128;
    let mut waits = Outcomes::default();
    while waits.refused() < total - held_at_most {
        waits.add(common::within(20, finished.recv()).await.unwrap());
    }
    assert_eq!(waits.ok, 0, "a long-poll answered without a change");
    assert!(waits.other.is_empty(), "{waits:?}");

    // Meanwhile, an honest session from another address runs from start to end.
    let honest = client("127.0.0.2");
    let created: SessionCreated = create(&honest, &url, 2).await.json().await.unwrap();
    let id = created.session;
    for n in 1..=2 {
        let response = honest
            .post(format!("{url}/v1/sessions/{id}/announcements"))
            .header("authorization", common::write_token().bearer())
            .json(&common::announcement(id, n))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let view: SessionView =
        common::get_json(&honest, format!("{url}/v1/sessions/{id}?seen=1&wait=30")).await;
    assert_eq!(view.state, SessionState::Full);
    let done = honest
        .post(format!("{url}/v1/sessions/{id}/done"))
        .header("authorization", common::write_token().bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);

    // The held long-polls answer when their session changes (the flooding
    // address holds all the connections it may, so the change comes from another).
    let done = client("127.0.0.5")
        .post(format!("{url}/v1/sessions/{target}/done"))
        .header("authorization", common::write_token().bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    drop(results);
    while let Some(outcome) = common::within(20, finished.recv()).await {
        waits.add(outcome);
    }
    eprintln!(
        "long-polls: {} held, {} refused with 429, {} refused at connect",
        waits.ok, waits.too_many, waits.disconnected
    );
    assert!(waits.other.is_empty(), "{waits:?}");
    assert!(waits.ok <= held_at_most, "{waits:?}");
    assert_eq!(waits.ok + waits.refused(), total);

    // What all that left behind.
    let rss_growth = server.rss().saturating_sub(rss_at_start);
    let disk = data_dir_bytes(dir.path());
    eprintln!(
        "server memory grew by {:.1} MiB; data directory {:.1} MiB",
        rss_growth as f64 / MIB as f64,
        disk as f64 / MIB as f64
    );
    assert!(
        rss_growth < 48 * MIB,
        "server memory grew by {rss_growth} bytes"
    );
    assert!(disk < 16 * MIB, "the data directory holds {disk} bytes");
}

/// The store's own bounds: sessions alive per address, and the bytes of all
/// announcements together.
#[tokio::test]
async fn stored_sessions_and_bytes_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.quotas.live_sessions_per_ip = 2;
    config.max_announcement_bytes = 20 * 1024;
    let (server, client) = common::start(config).await;
    let url = server.url().to_string();
    let first: SessionCreated = create(&client, &url, 64).await.json().await.unwrap();
    create(&client, &url, 64).await;
    let third = create(&client, &url, 64).await;
    assert!(third.headers().contains_key("retry-after"));
    let message = common::api_error(third, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(message.contains("sessions alive"), "{message}");
    // Another address still creates sessions.
    let other = common::client_from(&server, "127.0.0.2");
    assert_eq!(create(&other, &url, 2).await.status(), StatusCode::CREATED);
    // A done session is forgotten ten minutes later, and then no longer counts.
    let done = client
        .post(format!("{url}/v1/sessions/{}/done", first.session))
        .header("authorization", common::write_token().bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let view: SessionView =
        common::get_json(&client, format!("{url}/v1/sessions/{}", first.session)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(view.expires_at <= now + 601, "{} vs {now}", view.expires_at);

    let second: SessionCreated = create(&other, &url, 64).await.json().await.unwrap();
    let mut statuses = Vec::new();
    for n in 0..4 {
        let response =
            common::announce(&client, &server, second.session, &big_announcement(n)).await;
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE
        ]
    );
    // Replacing an announcement with one no bigger is still allowed.
    let again = common::announce(&client, &server, second.session, &big_announcement(1)).await;
    assert_eq!(again.status(), StatusCode::OK);
    server.shutdown().await;
}
