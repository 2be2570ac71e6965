//! A coordinator that lies: every honest party refuses to start and says why.
//!
//! The liar is a man in the middle with the server's own certificate and key
//! (as a malicious operator has them): it forwards every request to a real
//! `partyline serve` and rewrites the roster it hands out.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use partyline_wire::announce::AnnouncementKey;
use partyline_wire::api::SessionView;
use partyline_wire::{
    Announcement, CertPin, EndpointKey, Invite, InviteSecret, SignedAnnouncement,
};

/// How the liar rewrites a full roster.
type Tamper = Arc<dyn Fn(&mut SessionView) + Send + Sync>;

/// Starts the liar in front of `server` and returns its server link.
async fn start_liar(server: &Server, tamper: Tamper) -> String {
    let rewrite: Rewrite = Arc::new(move |_method, _path, leg, bytes| {
        if leg != Leg::Answer {
            return;
        }
        if let Ok(mut view) = serde_json::from_slice::<SessionView>(bytes)
            && view.announcements.len() == usize::from(view.parties)
        {
            tamper(&mut view);
            *bytes = serde_json::to_vec(&view).unwrap();
        }
    });
    start_middle(server, rewrite)
}

/// Runs a 3-party session through a liar and checks every party refused with `reason`.
async fn every_party_refuses(tamper: Tamper, reason: &str) {
    let server = Server::start();
    let link = start_liar(&server, tamper).await;
    let invite = tokio::task::spawn_blocking(move || create(&link, 3))
        .await
        .unwrap();
    let runs = tokio::task::spawn_blocking(move || {
        let program = vec!["sh".to_string(), "-c".into(), "echo program-started".into()];
        let parties: Vec<Party> = ["alice", "bob", "carol"]
            .iter()
            .map(|name| Party::join(&invite, name, &["--no-mpyc-flags"], &program))
            .collect();
        parties
            .into_iter()
            .map(|p| p.finish(Duration::from_secs(60)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for run in runs {
        assert!(!run.out.status.success(), "{} started", run.name);
        assert!(
            !run.stdout().contains("program-started"),
            "{} ran its program",
            run.name
        );
        assert!(
            run.stderr().contains(reason),
            "{} did not say {reason:?}: {}",
            run.name,
            run.stderr()
        );
        assert!(
            run.stderr().contains("refuses to start"),
            "{}: {}",
            run.name,
            run.stderr()
        );
    }
}

fn announcement(invite: &Invite, name: &str) -> Announcement {
    Announcement {
        session: invite.session,
        name: name.into(),
        endpoint: EndpointKey([7; 32]),
        relay_url: None,
        addrs: vec![],
        joined_at_ms: 0,
        identity: None,
        webrtc: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn swapped_endpoint_id_is_refused() {
    let tamper: Tamper = Arc::new(|view: &mut SessionView| {
        let last = view.announcements.last_mut().unwrap();
        let body: serde_json::Value = serde_json::from_str(&last.body).unwrap();
        let real = body["endpoint"].as_str().unwrap().to_string();
        last.body = last.body.replace(&real, &EndpointKey([9; 32]).to_string());
    });
    every_party_refuses(tamper, "not from a holder of this invite").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn added_seat_is_refused() {
    let tamper: Tamper = Arc::new(|view: &mut SessionView| {
        // The liar does not know the secret: its extra party is signed with another.
        let guess = Invite::new(
            &"https://x:1".parse().unwrap(),
            view.session,
            view.parties,
            CertPin([0; 32]),
            InviteSecret::random(),
        )
        .unwrap();
        let forged = AnnouncementKey::derive(&guess).sign(&announcement(&guess, "mallory"));
        view.announcements.push(forged);
    });
    every_party_refuses(tamper, "not from a holder of this invite").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn announcement_replayed_from_another_session_is_refused() {
    // A genuine announcement of another session, as the server saw it there.
    let server = Server::start();
    let other: Invite = tokio::task::spawn_blocking({
        let link = server.link.clone();
        move || create(&link, 2)
    })
    .await
    .unwrap()
    .parse()
    .unwrap();
    let replayed: SignedAnnouncement =
        AnnouncementKey::derive(&other).sign(&announcement(&other, "alice"));
    let tamper: Tamper = Arc::new(move |view: &mut SessionView| {
        view.announcements[0] = replayed.clone();
    });
    every_party_refuses(tamper, "not from a holder of this invite").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn swapped_webrtc_fingerprint_is_refused() {
    // The liar's own DTLS certificate in place of a party's, to sit in the
    // middle of the data channels browsers open to it.
    let tamper: Tamper = Arc::new(|view: &mut SessionView| {
        let last = view.announcements.last_mut().unwrap();
        let body: serde_json::Value = serde_json::from_str(&last.body).unwrap();
        let real = body["webrtc"]["fingerprint"]
            .as_str()
            .expect("a native party announces its WebRTC fingerprint")
            .to_string();
        let liars = format!("sha-256 {}", vec!["5A"; 32].join(":"));
        last.body = last.body.replace(&real, &liars);
    });
    every_party_refuses(tamper, "not from a holder of this invite").await;
}
