//! The coordinator and the relay serve the pinned certificate, and nothing
//! else passes for it.
mod common;

use std::error::Error;

use partyline_wire::CertPin;
use partyline_wire::api::ServerInfo;
use reqwest::StatusCode;

#[tokio::test]
async fn client_pinned_to_another_certificate_cannot_connect() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = common::start(common::config(dir.path())).await;
    let stranger = partyline_session::tls::pinned_http_client(CertPin([0; 32]));
    let error = stranger
        .get(format!("{}/v1/info", server.url()))
        .send()
        .await
        .unwrap_err();
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(chain.contains("certificate"), "{chain}");

    // The coordinator client names the refusal by type, with both pins.
    let coordinator = partyline_session::Coordinator::new(server.url(), CertPin([0; 32]));
    match coordinator.info().await {
        Err(partyline_session::SessionError::WrongCertificate { mismatch, .. }) => {
            assert_eq!(mismatch.shown, server.pin());
            assert_eq!(mismatch.pinned, CertPin([0; 32]));
        }
        other => panic!("expected WrongCertificate, got {other:?}"),
    }

    server.shutdown().await;
}

#[tokio::test]
async fn relay_answers_with_the_same_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = common::start(common::config(dir.path())).await;
    assert_ne!(server.relay_url(), server.url().as_str());

    let ping = client
        .get(format!("{}/ping", server.relay_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), StatusCode::OK);

    let info: ServerInfo = common::get_json(&client, format!("{}/v1/info", server.url())).await;
    assert_eq!(info.relay_url, server.relay_url());
    assert!(info.relay_quic_port.is_some());

    server.shutdown().await;
}
