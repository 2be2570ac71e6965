//! A real server on 127.0.0.1 with a fresh data directory, and a client that
//! trusts exactly its certificate.
#![allow(dead_code)] // each test binary uses its own share of the helpers

pub mod postgres;
pub mod process;
pub mod relay_client;

use std::path::Path;
use std::time::Duration;

use partyline_server::{RunningServer, ServerConfig};
use partyline_wire::api::{ApiError, CreateSession, SessionCreated};
use partyline_wire::{
    Announcement, AnnouncementKey, CertPin, EndpointKey, Invite, InviteSecret, SessionId,
    SignedAnnouncement, WriteToken,
};
use reqwest::{Client, Response, StatusCode};

/// A configuration for tests: free ports on loopback, data in `dir`; the
/// sessions in SQLite there, or with `PARTYLINE_TEST_DATABASE=postgres` in a
/// PostgreSQL database of `dir`'s own ([`postgres::database_url`]).
pub fn config(dir: &Path) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        database_url: test_database(dir),
        ..ServerConfig::default()
    }
}

/// The PostgreSQL database of the server whose data are in `dir`, when the
/// tests run on PostgreSQL.
pub fn test_database(dir: &Path) -> Option<String> {
    postgres::selected().then(|| postgres::database_url(&dir.display().to_string()))
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
            write_token_hash: write_token().hash(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// The invite secret of every test session.
pub const SECRET: InviteSecret = InviteSecret([7; 16]);

/// The write token of every test session (from [`SECRET`]).
pub fn write_token() -> WriteToken {
    WriteToken::derive(&SECRET)
}

/// Party `n`'s announcement for `session`, signed as a real party would.
pub fn announcement(session: SessionId, n: u8) -> SignedAnnouncement {
    let invite = Invite::new(
        &"https://127.0.0.1:1".parse().unwrap(),
        session,
        2,
        CertPin([0; 32]),
        SECRET,
    )
    .unwrap();
    AnnouncementKey::derive(&invite).sign(&Announcement {
        session,
        name: format!("party{n}"),
        endpoint: endpoint(n),
        relay_url: None,
        addrs: vec![format!("127.0.0.1:{}", 4000 + u16::from(n))],
        joined_at_ms: u64::from(n),
        identity: None,
        webrtc: None,
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
        .header("authorization", write_token().bearer())
        .json(signed)
        .send()
        .await
        .unwrap()
}

/// Asserts that `response` is an error with `status` and a JSON [`ApiError`]; returns its message.
/// GETs `url` and decodes the JSON answer, failing the test on any error.
pub async fn get_json<T: serde::de::DeserializeOwned>(client: &Client, url: String) -> T {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

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

/// A client that trusts the server's certificate and connects from `source`
/// (any 127.x.y.z address is this machine, and a different client to the server).
pub fn client_from(server: &RunningServer, source: &str) -> Client {
    client_with_pin_from(server.pin(), source)
}

pub fn client_with_pin_from(pin: CertPin, source: &str) -> Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(partyline_session::tls::pinned_client_config(pin))
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// A TLS connection to `addr` with nothing on top: what the test writes is
/// exactly what the server reads, with no HTTP client to tidy it up.
pub async fn raw_tls(
    addr: std::net::SocketAddr,
    pin: CertPin,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut config = partyline_session::tls::pinned_client_config(pin);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    connector.connect(name, tcp).await.unwrap()
}

/// `host:port` of an `https://host:port` URL.
pub fn addr_of(url: &partyline_wire::ServerUrl) -> std::net::SocketAddr {
    let ip: std::net::IpAddr = url.host().parse().unwrap();
    (ip, url.port().unwrap()).into()
}

/// Sends `target` exactly as given in a GET request over a raw TLS
/// connection; returns the status code and the whole answer.
pub async fn raw_get(server: &RunningServer, target: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = raw_tls(addr_of(server.url()), server.pin()).await;
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    (status, answer)
}
