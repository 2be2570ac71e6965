//! A real server on 127.0.0.1 with a fresh data directory, and a client that
//! trusts exactly its certificate.
#![allow(dead_code)] // each test binary uses its own share of the helpers

use std::path::Path;
use std::time::Duration;

use partyline_server::{RunningServer, ServerConfig};
use partyline_wire::api::{ApiError, CreateSession, SessionCreated};
use partyline_wire::{
    Announcement, AnnouncementKey, CertPin, EndpointKey, Invite, InviteSecret, SessionId,
    SignedAnnouncement,
};
use reqwest::{Client, Response, StatusCode};

/// A configuration for tests: free ports on loopback, data in `dir`.
pub fn config(dir: &Path) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        ..ServerConfig::default()
    }
}

pub async fn start(config: ServerConfig) -> (RunningServer, Client) {
    let server = partyline_server::start(config)
        .await
        .expect("server starts");
    let client = partyline_session::tls::pinned_http_client(server.pin());
    (server, client)
}

pub async fn create(client: &Client, server: &RunningServer, parties: u16) -> SessionCreated {
    let response = client
        .post(format!("{}/v1/sessions", server.url()))
        .json(&CreateSession {
            parties,
            label: Some("test".into()),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// Party `n`'s announcement for `session`, signed as a real party would.
pub fn announcement(session: SessionId, n: u8) -> SignedAnnouncement {
    let invite = Invite::new(
        "https://127.0.0.1:1",
        session,
        2,
        CertPin([0; 32]),
        InviteSecret([7; 16]),
    )
    .unwrap();
    AnnouncementKey::derive(&invite).sign(&Announcement {
        session,
        name: format!("party{n}"),
        endpoint: endpoint(n),
        relay_url: None,
        addrs: vec![format!("127.0.0.1:{}", 4000 + u16::from(n))],
        joined_at_ms: u64::from(n),
    })
}

pub fn endpoint(n: u8) -> EndpointKey {
    EndpointKey([n; 32])
}

pub async fn announce(
    client: &Client,
    server: &RunningServer,
    session: SessionId,
    signed: &SignedAnnouncement,
) -> Response {
    client
        .post(format!(
            "{}/v1/sessions/{session}/announcements",
            server.url()
        ))
        .json(signed)
        .send()
        .await
        .unwrap()
}

/// Asserts that `response` is an error with `status` and a JSON [`ApiError`]; returns its message.
pub async fn api_error(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE].clone();
    assert_eq!(content_type, "application/json");
    let error: ApiError = response.json().await.unwrap();
    assert!(!error.error.is_empty());
    error.error
}

/// Awaits `future`, failing the test if it takes longer than `secs`.
pub async fn within<F: Future>(secs: u64, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .expect("took too long")
}
