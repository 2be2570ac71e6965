//! A client that sends its request head slowly (slowloris), or nothing at
//! all after TLS, is disconnected after the header timeout, and does not
//! keep others from being served.
mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(2);

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> Vec<u8> {
    let mut answer = Vec::new();
    // An error (the server reset the connection) ends it as well as EOF.
    let _ = stream.read_to_end(&mut answer).await;
    answer
}

#[tokio::test]
async fn slow_and_silent_clients_are_disconnected_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.quotas.header_timeout = TIMEOUT;
    let (server, client) = common::start(config).await;
    let addr = common::addr_of(server.url());

    // Silent after TLS.
    let started = Instant::now();
    let mut silent = common::raw_tls(addr, server.pin()).await;
    let answer = common::within(10, read_until_closed(&mut silent)).await;
    let silent_for = started.elapsed();
    assert!(answer.is_empty());

    // A head that trickles in, one byte at a time, never finished.
    let started = Instant::now();
    let mut slow = common::raw_tls(addr, server.pin()).await;
    let trickle = async {
        let head = b"GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        for byte in head.iter().chain(std::iter::repeat(&b'a')) {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    common::within(10, trickle).await;
    let trickled_for = started.elapsed();

    eprintln!("silent client dropped after {silent_for:?}, slow one after {trickled_for:?}");
    for held in [silent_for, trickled_for] {
        assert!(held >= TIMEOUT - Duration::from_millis(200), "{held:?}");
        assert!(held < TIMEOUT * 3, "{held:?}");
    }

    // A client that sends its request in time is served as before.
    let info = client
        .get(format!("{}/v1/info", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::OK);
    server.shutdown().await;
}
