//! Only holders of the invite may change a session: every change shows the
//! write token derived from the invite secret, and the server, which keeps
//! only the token's hash, refuses changes without it or with another one.
mod common;

use common::{announcement, api_error, create};
use partyline_wire::{InviteSecret, WriteToken};
use reqwest::StatusCode;

#[tokio::test]
async fn changes_without_the_write_token_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = common::start(common::config(dir.path())).await;
    let id = create(&client, &server, 2).await.session;
    let url = format!("{}/v1/sessions/{id}", server.url());
    let stranger = WriteToken::derive(&InviteSecret([8; 16]));
    let signed = announcement(id, 1);

    // Announce: none, someone else's, then the session's own.
    let none = client
        .post(format!("{url}/announcements"))
        .json(&signed)
        .send()
        .await
        .unwrap();
    let message = api_error(none, StatusCode::UNAUTHORIZED).await;
    assert!(message.contains("write token"), "{message}");
    let wrong = client
        .post(format!("{url}/announcements"))
        .header("authorization", stranger.bearer())
        .json(&signed)
        .send()
        .await
        .unwrap();
    api_error(wrong, StatusCode::FORBIDDEN).await;
    // The hash the server keeps is no token either.
    let hash_as_token = client
        .post(format!("{url}/announcements"))
        .header(
            "authorization",
            format!("Bearer {}", common::write_token().hash()),
        )
        .json(&signed)
        .send()
        .await
        .unwrap();
    api_error(hash_as_token, StatusCode::FORBIDDEN).await;
    let right = common::announce(&client, &server, id, &signed).await;
    assert_eq!(right.status(), StatusCode::OK);

    // Withdraw and done likewise.
    let endpoint = common::endpoint(1);
    let leave = client
        .delete(format!("{url}/announcements/{endpoint}"))
        .header("authorization", stranger.bearer())
        .send()
        .await
        .unwrap();
    api_error(leave, StatusCode::FORBIDDEN).await;
    let done = client.post(format!("{url}/done")).send().await.unwrap();
    api_error(done, StatusCode::UNAUTHORIZED).await;

    // Nothing changed: the announcement is still there, the session open.
    let view: partyline_wire::api::SessionView =
        client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(view.announcements, vec![signed]);
    assert_eq!(view.state, partyline_wire::api::SessionState::Open);

    let done = client
        .post(format!("{url}/done"))
        .header("authorization", common::write_token().bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    server.shutdown().await;
}
