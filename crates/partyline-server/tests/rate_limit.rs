//! One client cannot create sessions faster than the configured rate.
mod common;

use partyline_wire::api::CreateSession;
use reqwest::StatusCode;

#[tokio::test]
async fn creating_too_many_sessions_gets_429() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.quotas.creates_per_minute_per_ip = 3;
    let (server, client) = common::start(config).await;
    for _ in 0..3 {
        common::create(&client, &server, 2).await;
    }
    let response = client
        .post(format!("{}/v1/sessions", server.url()))
        .json(&CreateSession {
            parties: 2,
            label: None,
            write_token_hash: common::write_token().hash(),
        })
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=21).contains(&retry_after), "{retry_after}");
    let message = common::api_error(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(message.contains("try again in"), "{message}");

    server.shutdown().await;
}
