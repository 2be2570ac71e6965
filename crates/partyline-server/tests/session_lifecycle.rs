//! A session from creation to done, as parties drive it, and the long-poll
//! that tells them when something changed.
mod common;

use std::time::Duration;

use common::{announce, announcement, api_error, create, endpoint, within};
use partyline_wire::api::{ServerInfo, SessionState, SessionView, path};
use reqwest::StatusCode;

#[tokio::test]
async fn parties_announce_until_full_then_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = common::start(common::config(dir.path())).await;
    let link: partyline_session::ServerLink = server.server_link().parse().unwrap();
    assert_eq!((&link.url, link.pin), (server.url(), Some(server.pin())));

    let info: ServerInfo =
        common::get_json(&client, format!("{}{}", server.url(), path::INFO)).await;
    assert_eq!(info.relay_url, server.relay_url());
    assert_eq!(info.protocol, partyline_proto::PROTOCOL);
    // What a party compares with its own addresses to tell whether a NAT is
    // on the way: the test's client connects from loopback.
    assert_eq!(info.client_ip, Some(std::net::Ipv4Addr::LOCALHOST.into()));

    let created = create(&client, &server, 2).await;
    let id = created.session;
    let session_url = format!("{}{}", server.url(), path::session(&id));
    let view = |query: &'static str| {
        let request = client.get(format!("{session_url}{query}"));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<SessionView>().await.unwrap()
        }
    };

    let first = announcement(id, 1);
    let after_first: SessionView = announce(&client, &server, id, &first)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after_first.state, SessionState::Open);
    assert_eq!(after_first.announcements, vec![first.clone()]);
    assert_eq!(after_first.expires_at, created.expires_at);
    assert_eq!(after_first.label.as_deref(), Some("test"));

    // Announcing again from the same endpoint replaces, never adds.
    let mut moved = announcement(id, 1);
    moved.body = moved.body.replace("4001", "5001");
    let again: SessionView = announce(&client, &server, id, &moved)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again.announcements, vec![moved]);

    let second = announcement(id, 2);
    let full: SessionView = announce(&client, &server, id, &second)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(full.state, SessionState::Full);
    assert_eq!(full.announcements.len(), 2);
    assert_eq!(view("?seen=1&wait=30").await.state, SessionState::Full);

    let third = announce(&client, &server, id, &announcement(id, 3)).await;
    let message = api_error(third, StatusCode::CONFLICT).await;
    assert!(message.contains("full"), "{message}");
    let repeat = announce(&client, &server, id, &second).await;
    assert_eq!(repeat.status(), StatusCode::OK);

    let left = client
        .delete(format!("{session_url}/announcements/{}", endpoint(1)))
        .header("authorization", common::write_token().bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    let after_leaving = view("").await;
    assert_eq!(after_leaving.state, SessionState::Open);
    assert_eq!(after_leaving.announcements, vec![second.clone()]);

    assert_eq!(
        announce(&client, &server, id, &first).await.status(),
        StatusCode::OK
    );
    let done = client
        .post(format!("{session_url}/done"))
        .header("authorization", common::write_token().bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    // A finished session answers at once, whatever the client has seen.
    let finished = within(10, view("?seen=2&wait=30")).await;
    assert_eq!(finished.state, SessionState::Done);
    let late = announce(&client, &server, id, &announcement(id, 3)).await;
    api_error(late, StatusCode::CONFLICT).await;

    server.shutdown().await;
}

#[tokio::test]
async fn long_poll_wakes_when_a_party_announces() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = common::start(common::config(dir.path())).await;
    let id = create(&client, &server, 3).await.session;

    // Whether the poll reaches the server before the announcement or after,
    // it must answer with it, and promptly; the unit tests in `api` pin down
    // the case where the poll is already waiting.
    let poll = tokio::spawn(
        client
            .get(format!("{}/v1/sessions/{id}?seen=0&wait=30", server.url()))
            .send(),
    );
    let signed = announcement(id, 1);
    assert_eq!(
        announce(&client, &server, id, &signed).await.status(),
        StatusCode::OK
    );
    let woken: SessionView = within(10, poll)
        .await
        .unwrap()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(woken.announcements, vec![signed]);
    assert_eq!(woken.state, SessionState::Open);

    server.shutdown().await;
}

#[tokio::test]
async fn long_poll_answers_unchanged_after_its_wait() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = common::start(common::config(dir.path())).await;
    let id = create(&client, &server, 2).await.session;

    let response = within(
        10,
        client
            .get(format!("{}/v1/sessions/{id}?seen=0&wait=1", server.url()))
            .send(),
    )
    .await
    .unwrap();
    let view: SessionView = response.json().await.unwrap();
    assert!(view.announcements.is_empty());

    server.shutdown().await;
}

#[tokio::test]
async fn expired_sessions_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.session_ttl = Duration::from_secs(1);
    let (server, client) = common::start(config).await;
    let id = create(&client, &server, 2).await.session;

    let url = format!("{}/v1/sessions/{id}", server.url());
    let mut response = client.get(&url).send().await.unwrap();
    for _ in 0..50 {
        if response.status() != StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        response = client.get(&url).send().await.unwrap();
    }
    let message = api_error(response, StatusCode::NOT_FOUND).await;
    assert_eq!(message, format!("no session {id} (it may have expired)"));
    let late = announce(&client, &server, id, &announcement(id, 1)).await;
    api_error(late, StatusCode::NOT_FOUND).await;

    server.shutdown().await;
}
