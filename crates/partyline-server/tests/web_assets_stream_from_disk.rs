//! The web app's files are streamed from disk: 50 browsers loading a 13 MB
//! file (Pyodide's size) at once cost the server a few MB, not 50 copies.
//! The server runs in a process of its own so that its memory is its own.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::process::{ProcessConfig, ServerProcess};
use reqwest::StatusCode;

#[test]
#[ignore = "the server process of the tests in this file, started by them"]
fn server_process() {
    common::process::serve_if_asked();
}

const MIB: u64 = 1 << 20;
const FILE_BYTES: usize = 13 * 1024 * 1024;
const CLIENTS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_asset_to_many_clients_costs_a_few_mb() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    std::fs::create_dir(&web).unwrap();
    // Not compressible, and every byte checkable: byte i is i * 7 mod 251.
    let content: Vec<u8> = (0..FILE_BYTES).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(web.join("pyodide.asm.wasm"), &content).unwrap();
    let mut config = ProcessConfig::new(&dir.path().join("data"));
    config.web_dir = Some(web);
    let server = Arc::new(ServerProcess::start(&config));
    let url = format!("{}/web/pyodide.asm.wasm", server.url);

    // Warm up the server (threads, TLS, buffers) with one full download.
    let client = common::client_with_pin_from(server.pin, "127.0.0.1");
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.bytes().await.unwrap().len(), FILE_BYTES);
    let rss_before = server.rss();

    let running = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (server, running) = (server.clone(), running.clone());
        async move {
            let mut peak = 0;
            while running.load(Ordering::Relaxed) {
                peak = peak.max(server.rss());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        }
    });
    let downloads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            // A client each, so that each download has its own connection.
            let client = common::client_with_pin_from(server.pin, "127.0.0.1");
            let request = client.get(&url);
            tokio::spawn(async move {
                let mut response = request.send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let mut received = 0;
                let mut checksum_ok = true;
                while let Some(chunk) = response.chunk().await.unwrap() {
                    checksum_ok &= chunk
                        .iter()
                        .enumerate()
                        .all(|(i, b)| *b == ((received + i) * 7 % 251) as u8);
                    received += chunk.len();
                }
                (received, checksum_ok)
            })
        })
        .collect();
    for download in downloads {
        let (received, intact) = common::within(120, download).await.unwrap();
        assert_eq!(received, FILE_BYTES);
        assert!(intact, "a download was corrupted");
    }
    running.store(false, Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    let growth = peak.saturating_sub(rss_before);
    eprintln!(
        "{CLIENTS} downloads of {} MiB: server memory {:.1} MiB before, peak {:.1} MiB (+{:.1} MiB)",
        FILE_BYTES as u64 / MIB,
        rss_before as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        growth as f64 / MIB as f64
    );
    assert!(growth < 8 * MIB, "server memory grew by {growth} bytes");
}
