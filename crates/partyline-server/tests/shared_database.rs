//! Two servers on one PostgreSQL database serve the same sessions: a long
//! poll on one wakes when a party announces on the other (LISTEN/NOTIFY),
//! each names the other to clients, and a session deleted by one sweep is
//! gone for both. Always on PostgreSQL (a throw-away server, see
//! `common::postgres`), whatever `PARTYLINE_TEST_DATABASE` says.
mod common;

use std::time::{Duration, Instant};

use common::{announcement, create, within, write_token};
use partyline_server::{RunningServer, ServerConfig};
use partyline_wire::api::{ServerInfo, SessionView, path};
use reqwest::{Client, StatusCode};

/// Two servers on one fresh database, each with its own data directory,
/// started at once: both find the schema missing and migrate, one after the
/// other.
async fn two_servers(
    dirs: &[tempfile::TempDir; 2],
    tune: impl Fn(&mut ServerConfig),
) -> [(RunningServer, Client); 2] {
    let database = common::postgres::database_url(&dirs[0].path().display().to_string());
    let [first, second] = [0, 1].map(|n| {
        let mut config = common::config(dirs[n].path());
        config.database_url = Some(database.clone());
        tune(&mut config);
        config
    });
    let (first, second) = within(30, async {
        tokio::join!(common::start(first), common::start(second))
    })
    .await;
    [first, second]
}

async fn announce_on(
    (server, client): &(RunningServer, Client),
    session: partyline_wire::SessionId,
    n: u8,
) {
    let response = common::announce(client, server, session, &announcement(session, n)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_on_one_server_wakes_when_a_party_announces_on_the_other() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let [a, b] = two_servers(&dirs, |_| {}).await;
    let session = create(&a.1, &a.0, 3).await.session;

    for seen in 0..3u8 {
        // Held up to 20 s unless something wakes it.
        let poll = a.1.get(format!(
            "{}{}",
            a.0.url(),
            path::session_after(&session, usize::from(seen), Duration::from_secs(20))
        ));
        let poll = tokio::spawn(async move {
            let started = Instant::now();
            let view: SessionView = poll.send().await.unwrap().json().await.unwrap();
            (view, started.elapsed())
        });
        announce_on(&b, session, seen + 1).await;
        let (view, took) = within(30, poll).await.unwrap();
        assert_eq!(view.announcements.len(), usize::from(seen) + 1);
        assert!(
            took < Duration::from_secs(5),
            "the poll on the first server answered only after {took:?}"
        );
    }
}

/// Ends every connection to `database` but the caller's, as a PostgreSQL
/// restart would, then waits until both servers listen again.
fn cut_connections(database: &str) {
    let mut admin = postgres::Client::connect(database, postgres::NoTls).unwrap();
    let name = database.rsplit('/').next().unwrap();
    let ended: i64 = admin
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = $1 AND pid != pg_backend_pid()",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert!(ended >= 4, "only {ended} connections of the servers ended");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listening: i64 = admin
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE datname = $1 AND query LIKE 'LISTEN%'",
                &[&name],
            )
            .unwrap()
            .get(0);
        if listening == 2 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the servers did not listen again within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_connect_again_after_losing_their_database_connections() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let [a, b] = two_servers(&dirs, |_| {}).await;
    let session = create(&a.1, &a.0, 2).await.session;
    let database = common::postgres::database_url(&dirs[0].path().display().to_string());
    tokio::task::spawn_blocking(move || cut_connections(&database))
        .await
        .unwrap();

    // Each server's next request connects again, and the wake-up still
    // crosses from one to the other.
    let poll = a.1.get(format!(
        "{}{}",
        a.0.url(),
        path::session_after(&session, 0, Duration::from_secs(20))
    ));
    let poll = tokio::spawn(async move {
        let started = Instant::now();
        let response = poll.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let view: SessionView = response.json().await.unwrap();
        (view, started.elapsed())
    });
    announce_on(&b, session, 1).await;
    let (view, took) = within(30, poll).await.unwrap();
    assert_eq!(view.announcements.len(), 1);
    assert!(took < Duration::from_secs(5), "the poll took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_server_names_the_other_and_reads_what_it_stored() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let [a, b] = two_servers(&dirs, |_| {}).await;
    for ((server, client), other) in [(&a, &b.0), (&b, &a.0)] {
        let info: ServerInfo =
            common::get_json(client, format!("{}{}", server.url(), path::INFO)).await;
        assert_eq!(info.coordinators, vec![other.url().to_string()]);
    }
    let session = create(&a.1, &a.0, 2).await.session;
    announce_on(&b, session, 1).await;
    let view: SessionView =
        common::get_json(&a.1, format!("{}{}", a.0.url(), path::session(&session))).await;
    assert_eq!(view.announcements, vec![announcement(session, 1)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_one_server_ends_and_sweeps_is_gone_from_both() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let [a, b] = two_servers(&dirs, |config| {
        config.done_ttl = Duration::from_secs(1);
    })
    .await;
    let session = create(&a.1, &a.0, 2).await.session;
    announce_on(&a, session, 1).await;
    let ended =
        b.1.post(format!("{}{}", b.0.url(), path::done(&session)))
            .header("authorization", write_token().bearer())
            .send()
            .await
            .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    // Both sweep every half second (half the grace) and may both try to
    // delete it; it must go, with its announcement, and neither sweep fail.
    let database = common::postgres::database_url(&dirs[0].path().display().to_string());
    let id = session.to_string();
    let left = tokio::task::spawn_blocking(move || {
        let mut db = postgres::Client::connect(&database, postgres::NoTls).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left: i64 = db
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM sessions WHERE id = $1)
                          + (SELECT COUNT(*) FROM announcements WHERE session = $1)",
                    &[&id],
                )
                .unwrap()
                .get(0);
            if left == 0 || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    assert_eq!(left, 0, "the session's rows are still in the database");
    for (server, client) in [&a, &b] {
        let response = client
            .get(format!("{}{}", server.url(), path::session(&session)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
