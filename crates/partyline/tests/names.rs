//! Party names that could mislead a person reading the roster are refused,
//! by `join` itself and by every honest party, before any program starts.
mod common;

use std::time::Duration;

use common::*;
use partyline_session::Coordinator;
use partyline_wire::announce::AnnouncementKey;
use partyline_wire::{Announcement, EndpointKey, Invite};

const LIMIT: Duration = Duration::from_secs(90);

#[test]
fn two_parties_with_the_same_name_are_both_refused() {
    let server = Server::start();
    let invite = server.create(2);
    let parties = [
        Party::join(&invite, "alice", &["--no-mpyc-flags"], &says_started()),
        Party::join(&invite, "alice", &["--no-mpyc-flags"], &says_started()),
    ];
    for party in parties {
        assert_refused(
            &party.finish(LIMIT),
            &[
                "two parties joined with the name \"alice\"",
                "distinct names",
            ],
        );
    }
}

#[test]
fn join_refuses_zero_width_and_bidi_names_before_announcing() {
    let server = Server::start();
    let invite = server.create(2);
    for (name, code_point) in [
        ("al\u{200B}ice", "U+200B"),
        ("\u{202E}ecila", "U+202E"),
        ("bob\u{2066}", "U+2066"),
        ("\u{FEFF}carol", "U+FEFF"),
    ] {
        let run = Party::join(&invite, name, &["--no-mpyc-flags"], &says_started()).finish(LIMIT);
        assert_refused(&run, &["--name", code_point, "letters, digits"]);
    }
    // None of them announced: the session still waits for both seats.
    let invite: Invite = invite.parse().unwrap();
    let view = tokio_runtime()
        .block_on(Coordinator::new(&invite.server, invite.pin).session(&invite.session, None))
        .unwrap();
    assert!(view.announcements.is_empty(), "{view:?}");
}

#[test]
fn an_invite_holder_announcing_a_zero_width_name_is_refused_by_every_honest_party() {
    let server = Server::start();
    let invite_text = server.create(2);
    let invite: Invite = invite_text.parse().unwrap();
    // The invite holder's own client signs whatever it likes.
    let mallory = AnnouncementKey::derive(&invite).sign(&Announcement {
        session: invite.session,
        name: "al\u{200B}ice".into(),
        endpoint: EndpointKey([7; 32]),
        relay_url: None,
        addrs: Vec::new(),
        joined_at_ms: 1,
        identity: None,
        webrtc: None,
    });
    tokio_runtime()
        .block_on(
            Coordinator::new(&invite.server, invite.pin)
                .with_write_token(partyline_wire::WriteToken::derive(&invite.secret))
                .announce(&invite.session, &mallory),
        )
        .unwrap();

    let honest = Party::join(&invite_text, "alice", &["--no-mpyc-flags"], &says_started());
    assert_refused(
        &honest.finish(LIMIT),
        &["announced a name partyline refuses", "U+200B"],
    );
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
