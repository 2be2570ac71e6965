//! The relay serves the parties of live sessions on its server, and no one
//! else: a stranger is refused, a party is admitted (by the session id it
//! shows, or because it is announced), and its connection is dropped when it
//! withdraws or its session ends.
mod common;

use std::time::Duration;

use common::relay_client::{announcement_of, dropped, ping};
use iroh_base::SecretKey;
use iroh_relay::client::Client;
use partyline_server::RunningServer;
use partyline_wire::{EndpointKey, SessionId};
use reqwest::StatusCode;

/// Connects to the relay as `key`, showing `token` if any.
async fn connect(
    server: &RunningServer,
    key: &SecretKey,
    token: Option<String>,
) -> Result<Client, String> {
    connect_at(server.relay_url(), server, key, token).await
}

/// The same through `url`: the relay's own port, or the coordinator's, which
/// passes `/relay` through for browsers.
async fn connect_at(
    url: &str,
    server: &RunningServer,
    key: &SecretKey,
    token: Option<String>,
) -> Result<Client, String> {
    common::relay_client::connect(url, server.pin(), key, token).await
}

#[tokio::test]
async fn only_parties_of_live_sessions_use_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.relay_grace = Duration::from_millis(500);
    let (server, client) = common::start(config).await;

    // A stranger: no session, or one that does not exist.
    let stranger = SecretKey::generate();
    let refused = connect(&server, &stranger, None).await.err();
    assert!(refused.is_some(), "a stranger was let in");
    let made_up = connect(&server, &stranger, Some(SessionId::random().to_string())).await;
    assert!(made_up.is_err(), "a made-up session id let a stranger in");
    let through_coordinator = connect_at(server.url().as_str(), &server, &stranger, None).await;
    assert!(
        through_coordinator.is_err(),
        "a stranger got in through /relay"
    );

    // Alice shows the session id (she connects before announcing); Bob has
    // announced and shows nothing.
    let id = common::create(&client, &server, 2).await.session;
    let alice = SecretKey::generate();
    let mut alice_relay = connect(&server, &alice, Some(id.to_string()))
        .await
        .unwrap();
    ping(&mut alice_relay).await;
    // The same for a browser party, through the coordinator's origin.
    let carol = SecretKey::generate();
    let mut carol_relay = connect_at(server.url().as_str(), &server, &carol, Some(id.to_string()))
        .await
        .unwrap();
    ping(&mut carol_relay).await;
    let bob = SecretKey::generate();
    let announced = common::announce(&client, &server, id, &announcement_of(id, &bob, "bob")).await;
    assert_eq!(announced.status(), StatusCode::OK);
    let mut bob_relay = connect(&server, &bob, None).await.unwrap();
    ping(&mut bob_relay).await;

    // Bob withdraws: his relay connection goes at once, and he is a stranger again.
    let left = client
        .delete(format!(
            "{}/v1/sessions/{id}/announcements/{}",
            server.url(),
            EndpointKey(*bob.public().as_bytes())
        ))
        .header("authorization", common::write_token().bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    common::within(10, dropped(&mut bob_relay)).await;
    assert!(connect(&server, &bob, None).await.is_err());

    // The session ends: after the grace, Alice's connection goes, and no
    // one gets in on its id any more.
    let done = client
        .post(format!("{}/v1/sessions/{id}/done", server.url()))
        .header("authorization", common::write_token().bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert!(
        connect(&server, &SecretKey::generate(), Some(id.to_string()))
            .await
            .is_err()
    );
    common::within(10, dropped(&mut alice_relay)).await;
    common::within(10, dropped(&mut carol_relay)).await;
    assert!(
        connect(&server, &alice, Some(id.to_string()))
            .await
            .is_err()
    );

    server.shutdown().await;
}
