//! A finished or expired session is deleted from the disk, not only marked:
//! within the time `/v1/info` states, no byte of its rows, announcements or
//! short-code exchanges is left in the database or its write-ahead log.
//! On PostgreSQL, which reuses the space of deleted rows rather than
//! overwriting it at once (README says so), the test checks that no row holds
//! any of it.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{announce, announcement, create, write_token};
use partyline_wire::api::{ServerInfo, path};
use partyline_wire::{Nameplate, SessionId};
use reqwest::StatusCode;

/// The database and the files SQLite keeps beside it, read whole; on
/// PostgreSQL, every row of the tables that hold sessions, as text. Blocks.
fn database_bytes(dir: &Path, postgres: Option<&str>) -> Vec<u8> {
    if let Some(url) = postgres {
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        let rows: String = client
            .query_one(
                "SELECT COALESCE(string_agg(t, ' '), '') FROM (
                     SELECT s::text AS t FROM sessions s UNION ALL
                     SELECT a::text FROM announcements a UNION ALL
                     SELECT n::text FROM nameplates n UNION ALL
                     SELECT x::text FROM attempts x) AS all_rows",
                &[],
            )
            .unwrap()
            .get(0);
        return rows.into_bytes();
    }
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::read(dir.join(format!("partyline.sqlite3{suffix}"))).ok())
        .flatten()
        .collect()
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// What of `session` could be found on the disk: its id, its announcements'
/// MACs and the messages of a code exchange on its nameplate.
fn traces(session: SessionId) -> Vec<String> {
    let mut traces = vec![session.to_string()];
    traces.extend((1..=2).map(|n| announcement(session, n).mac));
    traces.extend(code_messages(session));
    traces
}

/// A joiner's and the host's message of a code exchange in `session`.
fn code_messages(session: SessionId) -> [String; 2] {
    let marker = session.to_string().to_uppercase();
    [format!("JOINER-{marker}"), format!("HOST-{marker}")]
}

/// Takes a nameplate for `session` and relays one message each way on it,
/// as its host (with the write token) and a joiner.
async fn exchange_code_messages(client: &reqwest::Client, base: &str, session: SessionId) {
    let post = |path: String, host: bool, body: serde_json::Value| {
        let request = client.post(format!("{base}{path}")).json(&body);
        let request = match host {
            true => request.header("authorization", write_token().bearer()),
            false => request,
        };
        async move {
            let response = request.send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            response
                .json::<serde_json::Value>()
                .await
                .unwrap_or_default()
        }
    };
    let allocated = post(
        path::NAMEPLATES.into(),
        true,
        serde_json::json!({ "session": session }),
    )
    .await;
    let nameplate = Nameplate(allocated["nameplate"].as_u64().unwrap() as u32);
    let [joiner, host] = code_messages(session);
    let opened = post(
        path::attempts(nameplate),
        false,
        serde_json::json!({ "message": joiner }),
    )
    .await;
    let attempt = opened["attempt"].as_str().unwrap().parse().unwrap();
    post(
        path::attempt_host(nameplate, &attempt),
        true,
        serde_json::json!({ "message": host }),
    )
    .await;
}

/// Waits until no trace of `session` is on the disk; fails after `limit`.
fn wait_until_gone(
    dir: &Path,
    postgres: Option<&str>,
    session: SessionId,
    since: Instant,
    limit: Duration,
) -> Duration {
    loop {
        let bytes = database_bytes(dir, postgres);
        let left: Vec<String> = traces(session)
            .into_iter()
            .filter(|trace| holds(&bytes, trace))
            .collect();
        if left.is_empty() {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < limit,
            "after {:?}, the database still holds {left:?}",
            since.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn done_and_expired_sessions_leave_no_trace_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.session_ttl = Duration::from_secs(4);
    config.done_ttl = Duration::from_secs(2);
    let database = config.database_url.clone();
    let (server, client) = common::start(config).await;

    let info: ServerInfo =
        common::get_json(&client, format!("{}{}", server.url(), path::INFO)).await;
    let retention = info.retention.expect("the server says what it keeps");
    assert_eq!((retention.session_secs, retention.done_secs), (4, 2));
    assert!(retention.keeps.contains("announcement"), "{retention:?}");
    let sweep = Duration::from_secs(retention.sweep_secs);

    // One session both parties announce in and end; one nobody ends.
    let done = create(&client, &server, 2).await.session;
    let abandoned = create(&client, &server, 2).await.session;
    for session in [done, abandoned] {
        for n in 1..=2 {
            let response = announce(&client, &server, session, &announcement(session, n)).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
        exchange_code_messages(&client, server.url().as_str(), session).await;
    }
    let created = Instant::now();
    let bytes = {
        let (dir, database) = (dir.path().to_path_buf(), database.clone());
        tokio::task::spawn_blocking(move || database_bytes(&dir, database.as_deref()))
            .await
            .unwrap()
    };
    for trace in traces(done).into_iter().chain(traces(abandoned)) {
        assert!(holds(&bytes, &trace), "{trace} was never on disk");
    }
    let ended = client
        .post(format!("{}{}", server.url(), path::done(&done)))
        .header("authorization", write_token().bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let ended_at = Instant::now();

    // Stated time: the grace, then at most one sweep; plus a second of slack.
    let slack = Duration::from_secs(1);
    let dir_path = dir.path().to_path_buf();
    let (done_took, abandoned_took) = tokio::task::spawn_blocking(move || {
        let limit = Duration::from_secs(2) + sweep + slack;
        let database = database.as_deref();
        let done_took = wait_until_gone(&dir_path, database, done, ended_at, limit);
        let limit = Duration::from_secs(4) + sweep + slack;
        let abandoned_took = wait_until_gone(&dir_path, database, abandoned, created, limit);
        (done_took, abandoned_took)
    })
    .await
    .unwrap();
    eprintln!(
        "done session gone {done_took:?} after done, abandoned one {abandoned_took:?} after creation"
    );
    assert!(
        done_took >= Duration::from_secs(2),
        "deleted before its grace"
    );
    let gone = client
        .get(format!("{}{}", server.url(), path::session(&abandoned)))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}
