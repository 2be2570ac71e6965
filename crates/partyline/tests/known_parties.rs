//! Identities you can keep: `partyline id`, the address book across
//! sessions (known, new, KEY CHANGED), and identity proofs no party can forge.
//! Every party is a real `partyline join` process with its own configuration
//! directory, kept between sessions as a person's would be.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use partyline_session::Coordinator;
use partyline_wire::announce::AnnouncementKey;
use partyline_wire::{Announcement, EndpointKey, Identity, Invite, SessionId};

const LIMIT: Duration = Duration::from_secs(90);

/// `partyline --config-dir DIR id ARGS…`.
fn id(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config-dir")
        .arg(dir)
        .arg("id")
        .args(args)
        .output()
        .unwrap()
}

fn id_ok(dir: &Path, args: &[&str]) -> String {
    let out = id(dir, args);
    assert!(
        out.status.success(),
        "id {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn today() -> String {
    // The book records days in UTC; `date -u` is an independent clock reading.
    let out = Command::new("date").args(["-u", "+%F"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// One party of a session: its name, configuration directory and extra flags.
struct Person<'a> {
    name: &'a str,
    dir: &'a Path,
    flags: &'a [&'a str],
}

/// Runs a session of `people`, each in its seat, and returns how each ended.
fn session(server: &Server, people: &[Person]) -> Vec<Finished> {
    let invite = server.create(people.len() as u16);
    let dirs: Vec<String> = people
        .iter()
        .map(|p| p.dir.to_string_lossy().into_owned())
        .collect();
    let flags: Vec<Vec<&str>> = people
        .iter()
        .zip(&dirs)
        .map(|(p, dir)| {
            let mut flags = vec!["--no-mpyc-flags", "--config-dir", dir.as_str()];
            flags.extend_from_slice(p.flags);
            flags
        })
        .collect();
    let program = says_started();
    let seats: Vec<(&str, &[&str], &[String])> = people
        .iter()
        .zip(&flags)
        .map(|(p, flags)| (p.name, flags.as_slice(), program.as_slice()))
        .collect();
    join_in_seat_order(&invite, &seats)
        .into_iter()
        .map(|party| party.finish(LIMIT))
        .collect()
}

fn standing_of(run: &Finished, peer: &str) -> String {
    let report = run.report.as_ref().expect("a report");
    report["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == peer)
        .unwrap_or_else(|| panic!("{peer} not in {}'s report", run.name))["standing"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn id_new_show_trust_list_forget_with_private_files() {
    let home = tempfile::tempdir().unwrap();
    let alice = home.path().join("alice");
    let bob = home.path().join("bob");

    let words = id_ok(&alice, &["new"]);
    assert_eq!(words.split_whitespace().count(), 12, "{words}");
    assert_eq!(mode(&alice), 0o700);
    assert_eq!(mode(&alice.join("identity.toml")), 0o600);
    let again = id(&alice, &["new"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(id_ok(&alice, &["show"]), words);

    // Bob records the words alice read out to him, as she typed them.
    let typed: Vec<&str> = words.split_whitespace().collect();
    let mut args = vec!["trust", "alice"];
    args.extend(&typed);
    id_ok(&bob, &args);
    assert_eq!(mode(&bob), 0o700);
    assert_eq!(mode(&bob.join("known_parties.toml")), 0o600);
    let list = id_ok(&bob, &["list"]);
    assert!(list.contains("alice: 0 sessions since"), "{list}");
    assert!(list.contains(words.trim()), "{list}");

    // Eleven words, or a word off the list, are refused.
    let short = id(&bob, &[&["trust", "carol"], &typed[..11]].concat());
    assert!(!short.status.success());
    let mut misspelt = typed.clone();
    misspelt[3] = "notaword";
    assert!(
        !id(&bob, &[&["trust", "carol"], &misspelt[..]].concat())
            .status
            .success()
    );
    // Other words for a known name need --force.
    let other = id_ok(&home.path().join("other"), &["new"]);
    let other: Vec<&str> = other.split_whitespace().collect();
    let refused = id(&bob, &[&["trust", "alice"], &other[..]].concat());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));

    let forget = id(&bob, &["forget", "alice"]);
    assert!(forget.status.success());
    assert!(!id_ok(&bob, &["list"]).contains("alice"));
    assert!(!id(&bob, &["forget", "alice"]).status.success());

    // A key file others can read is refused, as SSH refuses one.
    std::fs::set_permissions(
        alice.join("identity.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let open = id(&alice, &["show"]);
    assert!(String::from_utf8_lossy(&open.stderr).contains("chmod 600"));

    // Without --config-dir: $XDG_CONFIG_HOME/partyline.
    let xdg = home.path().join("xdg");
    let out = Command::new(BIN)
        .env_remove("PARTYLINE_CONFIG_DIR")
        .env("XDG_CONFIG_HOME", &xdg)
        .args(["id", "new"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(mode(&xdg.join("partyline/identity.toml")), 0o600);
}

#[test]
fn repeat_sessions_know_the_parties_and_a_changed_key_is_refused_unless_accepted() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let (alice, bob, carol) = (
        home.path().join("alice"),
        home.path().join("bob"),
        home.path().join("carol"),
    );
    for dir in [&alice, &bob, &carol] {
        id_ok(dir, &["new"]);
    }
    let day = today();
    let people = |alice_flags, bob_flags| {
        [
            Person {
                name: "alice",
                dir: &alice,
                flags: alice_flags,
            },
            Person {
                name: "bob",
                dir: &bob,
                flags: bob_flags,
            },
            Person {
                name: "carol",
                dir: &carol,
                flags: &[],
            },
        ]
    };

    // First session: everybody new; afterwards each address book knows the others.
    let first = session(&server, &people(&[], &[]));
    for run in &first {
        run.assert_success();
    }
    assert!(
        first[0].stderr().contains("party 1: bob (new)"),
        "{}",
        first[0].stderr()
    );
    assert!(first[0].stderr().contains("party 0: alice (you)"));
    assert_eq!(standing_of(&first[0], "carol"), "new");
    for dir in [&alice, &bob, &carol] {
        assert_eq!(mode(&dir.join("known_parties.toml")), 0o600);
    }

    // Second session, new processes reading the same files: known, and
    // --expect needs no fingerprint comparison.
    let expect: &[&str] = &["--expect", "alice,bob,carol"];
    let second = session(&server, &people(expect, &["--accept-changed", "dave"]));
    for run in &second {
        run.assert_success();
    }
    assert!(
        second[1]
            .stderr()
            .contains("--accept-changed dave: no party of that name shows a changed identity"),
        "{}",
        second[1].stderr()
    );
    let known = format!("known, 1 session since {day}");
    assert!(
        second[0]
            .stderr()
            .contains(&format!("party 2: carol ({known})")),
        "{}",
        second[0].stderr()
    );
    assert!(
        second[0]
            .stderr()
            .contains("no fingerprint comparison needed")
    );
    assert_eq!(standing_of(&second[1], "alice"), known);
    // The roster view before the program starts: seat, name, standing, path.
    assert!(
        second[1]
            .stderr()
            .contains(&format!("party 0: alice ({known}), connected via ")),
        "{}",
        second[1].stderr()
    );

    // Carol makes a new identity: alice and bob refuse before any program starts.
    id_ok(&carol, &["new", "--force"]);
    let changed = session(&server, &people(&[], &[]));
    let says =
        format!("carol's identity is not the one in the address book (KEY CHANGED since {day})");
    assert_refused(&changed[0], &[&says, "--accept-changed"]);
    assert_refused(&changed[1], &["carol"]);
    assert_refused(&changed[2], &["refused to start", "carol's identity"]);

    // Accepted by both, the session runs, and the new key is the known one.
    let accept: &[&str] = &["--accept-changed", "carol"];
    let accepted = session(&server, &people(accept, accept));
    for run in &accepted {
        run.assert_success();
    }
    assert_eq!(
        standing_of(&accepted[0], "carol"),
        format!("KEY CHANGED since {day}, accepted with --accept-changed")
    );
    assert_eq!(
        standing_of(&accepted[0], "bob"),
        format!("known, 2 sessions since {day}")
    );
    let after = session(&server, &people(&[], &[]));
    for run in &after {
        run.assert_success();
    }
    assert_eq!(standing_of(&after[1], "carol"), known);
}

/// An invite holder's own client, written with the library crates: it
/// announces `announcement` as it is, MACed with the invite.
fn announce_as_invite_holder(invite: &Invite, announcement: &Announcement) {
    let signed = AnnouncementKey::derive(invite).sign(announcement);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(
            Coordinator::new(&invite.server, invite.pin)
                .with_write_token(partyline_wire::WriteToken::derive(&invite.secret))
                .announce(&invite.session, &signed),
        )
        .unwrap();
}

#[test]
fn an_identity_its_party_cannot_prove_is_refused_by_every_party() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let bob = home.path().join("bob");
    // Bob knows alice's identity from an earlier check of her words.
    let alice = Identity::generate();
    let words = alice.key().words().to_string();
    let mut args = vec!["trust", "alice"];
    args.extend(words.split_whitespace());
    id_ok(&bob, &args);
    let bob_dir = bob.to_string_lossy().into_owned();
    let bob_flags = ["--no-mpyc-flags", "--config-dir", bob_dir.as_str()];

    let mallory = Identity::generate();
    let mallory_endpoint = EndpointKey(Identity::generate().key().0);
    let base = |invite: &Invite| Announcement {
        session: invite.session,
        name: "alice".into(),
        endpoint: mallory_endpoint,
        relay_url: None,
        addrs: Vec::new(),
        joined_at_ms: 1,
        identity: None,
        webrtc: None,
    };

    // Alice's identity key, signed by mallory's.
    let invite_text = server.create(2);
    let invite: Invite = invite_text.parse().unwrap();
    let mut forged = base(&invite).with_identity(&mallory);
    forged.identity.as_mut().unwrap().key = alice.key();
    announce_as_invite_holder(&invite, &forged);
    let honest = Party::join(&invite_text, "bob", &bob_flags, &says_started());
    assert_refused(
        &honest.finish(LIMIT),
        &[
            "announced an identity it cannot prove",
            "\"alice\"",
            "does not verify",
        ],
    );

    // Alice's real signature, from another session (as a coordinator keeps
    // announcements), replayed with mallory's endpoint.
    let invite_text = server.create(2);
    let invite: Invite = invite_text.parse().unwrap();
    let elsewhere = Announcement {
        session: SessionId([9; 16]),
        ..base(&invite)
    }
    .with_identity(&alice);
    let replayed = Announcement {
        identity: elsewhere.identity,
        ..base(&invite)
    };
    announce_as_invite_holder(&invite, &replayed);
    let honest = Party::join(&invite_text, "bob", &bob_flags, &says_started());
    assert_refused(
        &honest.finish(LIMIT),
        &["announced an identity it cannot prove", "\"alice\""],
    );
    // Nothing was recorded: alice is still known by her own words only.
    let list = id_ok(&bob, &["list"]);
    assert!(
        list.contains(&words) && list.contains("0 sessions"),
        "{list}"
    );
}
