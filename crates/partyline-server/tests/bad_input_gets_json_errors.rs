//! Whatever a client sends, the answer is a 4xx with a JSON error that says
//! what was wrong, and the server keeps working.
mod common;

use common::{announce, announcement, api_error, create};
use partyline_wire::SignedAnnouncement;
use partyline_wire::api::CreateSession;
use reqwest::StatusCode;

#[tokio::test]
async fn bad_requests_get_json_errors_and_the_server_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = common::start(common::config(dir.path())).await;
    let base = server.url().to_string();
    let sessions = format!("{base}/v1/sessions");

    let garbage = client
        .post(&sessions)
        .header("content-type", "application/json")
        .body("{parties: 3")
        .send()
        .await
        .unwrap();
    api_error(garbage, StatusCode::BAD_REQUEST).await;

    let untyped = client.post(&sessions).body("{}").send().await.unwrap();
    api_error(untyped, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    let huge = client
        .post(&sessions)
        .header("content-type", "application/json")
        .body(vec![b' '; 1 << 20])
        .send()
        .await
        .unwrap();
    api_error(huge, StatusCode::PAYLOAD_TOO_LARGE).await;

    for parties in [0, 65] {
        let response = client
            .post(&sessions)
            .json(&CreateSession {
                parties,
                label: None,
                write_token_hash: common::write_token().hash(),
            })
            .send()
            .await
            .unwrap();
        let message = api_error(response, StatusCode::BAD_REQUEST).await;
        assert!(message.contains("1 to 64"), "{message}");
    }
    let long_label = client
        .post(&sessions)
        .json(&CreateSession {
            parties: 2,
            label: Some("x".repeat(101)),
            write_token_hash: common::write_token().hash(),
        })
        .send()
        .await
        .unwrap();
    api_error(long_label, StatusCode::BAD_REQUEST).await;

    let id = create(&client, &server, 2).await.session;
    let unknown = partyline_wire::SessionId([9; 16]);
    let response = client
        .get(format!("{sessions}/{unknown}"))
        .send()
        .await
        .unwrap();
    let message = api_error(response, StatusCode::NOT_FOUND).await;
    assert_eq!(
        message,
        format!("no session {unknown} (it may have expired)")
    );
    let not_an_id = client
        .get(format!("{sessions}/not-an-id"))
        .send()
        .await
        .unwrap();
    api_error(not_an_id, StatusCode::BAD_REQUEST).await;
    let bad_query = client
        .get(format!("{sessions}/{id}?seen=many"))
        .send()
        .await
        .unwrap();
    api_error(bad_query, StatusCode::BAD_REQUEST).await;

    let good = announcement(id, 1);
    let bad_announcements = [
        SignedAnnouncement {
            body: good.body.replace(&common::endpoint(1).to_string(), "abc"),
            ..good.clone()
        },
        SignedAnnouncement {
            body: "not json".into(),
            ..good.clone()
        },
        SignedAnnouncement {
            mac: "zz".into(),
            ..good.clone()
        },
    ];
    for bad in &bad_announcements {
        let response = announce(&client, &server, id, bad).await;
        api_error(response, StatusCode::BAD_REQUEST).await;
    }
    let padded = SignedAnnouncement {
        body: good.body.replace("party1", &"p".repeat(9000)),
        ..good.clone()
    };
    let response = announce(&client, &server, id, &padded).await;
    api_error(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    let bad_endpoint = client
        .delete(format!("{sessions}/{id}/announcements/xyz"))
        .send()
        .await
        .unwrap();
    api_error(bad_endpoint, StatusCode::BAD_REQUEST).await;
    let nowhere = client.get(format!("{base}/nowhere")).send().await.unwrap();
    api_error(nowhere, StatusCode::NOT_FOUND).await;
    let wrong_method = client.put(&sessions).send().await.unwrap();
    api_error(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;

    // None of that hurt: the server still takes good requests.
    assert_eq!(
        announce(&client, &server, id, &good).await.status(),
        StatusCode::OK
    );
    create(&client, &server, 2).await;

    server.shutdown().await;
}
