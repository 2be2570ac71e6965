//! Everything a session needs survives a restart of the server, and so does
//! the certificate, so invites made before the restart still work.
mod common;

use common::{announce, announcement, create};
use partyline_wire::api::{SessionState, SessionView};
use reqwest::StatusCode;

#[tokio::test]
async fn sessions_and_pin_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = common::start(common::config(dir.path())).await;
    let created = create(&client, &server, 3).await;
    let id = created.session;
    let signed = [announcement(id, 1), announcement(id, 2)];
    for one in &signed {
        assert_eq!(
            announce(&client, &server, id, one).await.status(),
            StatusCode::OK
        );
    }
    let pin = server.pin();
    server.shutdown().await;

    let (server, client) = common::start(common::config(dir.path())).await;
    assert_eq!(server.pin(), pin);
    let view: SessionView =
        common::get_json(&client, format!("{}/v1/sessions/{id}", server.url())).await;
    assert_eq!(view.announcements, signed);
    assert_eq!(view.state, SessionState::Open);
    assert_eq!(view.expires_at, created.expires_at);

    let last: SessionView = announce(&client, &server, id, &announcement(id, 3))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(last.state, SessionState::Full);

    server.shutdown().await;
}
