//! A relay of its own (`partyline relay`) serves the parties of its
//! coordinator's live sessions and no one else: it asks the coordinator,
//! showing the relay token. Without the token the coordinator tells nothing,
//! neither to a relay nor to anyone else, and such a relay does not start.
mod common;

use std::time::Duration;

use common::relay_client::{announcement_of, connect, dropped, ping};
use iroh_base::SecretKey;
use partyline_server::{RelayOnlyConfig, RelayToken, RunningRelay, RunningServer, ServerError};
use partyline_wire::api::{LiveSessions, RelayAdmission, RelayAdmitted};
use partyline_wire::{EndpointKey, SessionId};
use reqwest::StatusCode;

const TOKEN: &str = "relay-token-for-tests-0123456789";

async fn coordinator(
    dir: &std::path::Path,
    token: Option<&str>,
) -> (RunningServer, reqwest::Client) {
    let mut config = common::config(dir);
    config.relay_token = token.map(|token| RelayToken::new(token).unwrap());
    common::start(config).await
}

fn relay_config(server: &RunningServer, dir: &std::path::Path, token: &str) -> RelayOnlyConfig {
    RelayOnlyConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        grace: Duration::ZERO,
        ..RelayOnlyConfig::new(
            server.url().clone(),
            server.pin(),
            RelayToken::new(token).unwrap(),
        )
    }
}

async fn connect_to(
    relay: &RunningRelay,
    key: &SecretKey,
    token: Option<String>,
) -> Result<iroh_relay::client::Client, String> {
    connect(relay.url().as_str(), relay.pin(), key, token).await
}

#[tokio::test]
async fn a_relay_of_its_own_serves_only_live_sessions() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (server, client) = coordinator(dirs[0].path(), Some(TOKEN)).await;
    let relay = partyline_server::start_relay(relay_config(&server, dirs[1].path(), TOKEN))
        .await
        .unwrap();
    assert_ne!(
        relay.pin(),
        server.pin(),
        "the relay has a certificate of its own"
    );

    let stranger = SecretKey::generate();
    assert!(
        connect_to(&relay, &stranger, None).await.is_err(),
        "a stranger was let in"
    );
    let made_up = connect_to(&relay, &stranger, Some(SessionId::random().to_string())).await;
    assert!(made_up.is_err(), "a made-up session id let a stranger in");

    // Alice shows the session id (she connects before announcing); Bob has
    // announced and shows nothing.
    let id = common::create(&client, &server, 2).await.session;
    let alice = SecretKey::generate();
    let mut alice_relay = connect_to(&relay, &alice, Some(id.to_string()))
        .await
        .unwrap();
    ping(&mut alice_relay).await;
    let bob = SecretKey::generate();
    let announced = common::announce(&client, &server, id, &announcement_of(id, &bob, "bob")).await;
    assert_eq!(announced.status(), StatusCode::OK);
    let mut bob_relay = connect_to(&relay, &bob, None).await.unwrap();
    ping(&mut bob_relay).await;

    // The session ends: at the relay's next check its connections go, and
    // no one new gets in on its id.
    let done = client
        .post(format!("{}/v1/sessions/{id}/done", server.url()))
        .header("authorization", common::write_token().bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert!(
        connect_to(&relay, &SecretKey::generate(), Some(id.to_string()))
            .await
            .is_err()
    );
    let check = partyline_server::LIVE_CHECK.as_secs() + 10;
    common::within(check, dropped(&mut alice_relay)).await;
    common::within(check, dropped(&mut bob_relay)).await;

    relay.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn without_the_relay_token_the_coordinator_tells_nothing() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (server, client) = coordinator(dirs[0].path(), Some(TOKEN)).await;
    let id = common::create(&client, &server, 2).await.session;
    let bob = SecretKey::generate();
    let announced = common::announce(&client, &server, id, &announcement_of(id, &bob, "bob")).await;
    assert_eq!(announced.status(), StatusCode::OK);
    let bob = EndpointKey(*bob.public().as_bytes());

    // A relay with another token does not start, and says why.
    let wrong = "another-token-0123456789abcdef";
    match partyline_server::start_relay(relay_config(&server, dirs[1].path(), wrong)).await {
        Err(error @ ServerError::RelayTokenRefused { .. }) => {
            assert!(error.to_string().contains("--relay-token"), "{error}")
        }
        other => panic!("a relay with a wrong token started: {other:?}"),
    }

    // Asked with no token or a wrong one, the coordinator answers as if the
    // paths did not exist: nothing about Bob, nor that relays are served.
    let asked = RelayAdmission {
        endpoint: bob,
        token: None,
    };
    let ask = |path: &str, bearer: Option<String>| {
        let mut request = client.post(format!("{}{path}", server.url())).json(&asked);
        if let Some(bearer) = bearer {
            request = request.header("authorization", bearer);
        }
        request.send()
    };
    let unknown = common::api_error(
        ask("/v1/relay/unknown", None).await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    let wrong_token = RelayToken::new(wrong).unwrap().bearer();
    for bearer in [
        None,
        Some(wrong_token.clone()),
        Some(format!("Bearer {id}")),
    ] {
        let answer = ask("/v1/relay/admissions", bearer).await.unwrap();
        let error = common::api_error(answer, StatusCode::NOT_FOUND).await;
        assert_eq!(
            error.replace("/v1/relay/admissions", "/v1/relay/unknown"),
            unknown
        );
    }
    let live = client
        .post(format!("{}/v1/relay/live", server.url()))
        .header("authorization", wrong_token)
        .json(&LiveSessions { sessions: vec![id] })
        .send()
        .await
        .unwrap();
    common::api_error(live, StatusCode::NOT_FOUND).await;

    // With the token, the same question is answered.
    let right = RelayToken::new(TOKEN).unwrap().bearer();
    let answer = ask("/v1/relay/admissions", Some(right)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let admitted: RelayAdmitted = answer.json().await.unwrap();
    assert_eq!(
        admitted,
        RelayAdmitted {
            session: id,
            parties: 2
        }
    );

    // A coordinator given no token answers no relay at all.
    server.shutdown().await;
    let dir = tempfile::tempdir().unwrap();
    let (tokenless, _) = coordinator(dir.path(), None).await;
    let refused =
        partyline_server::start_relay(relay_config(&tokenless, dirs[1].path(), TOKEN)).await;
    assert!(
        matches!(refused, Err(ServerError::RelayTokenRefused { .. })),
        "{refused:?}"
    );
    tokenless.shutdown().await;
}
