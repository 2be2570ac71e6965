//! Short codes: `partyline create --code` hosts a session, and every party
//! joins with `partyline join CODE --server LINK`, no invite on any command
//! line, against a real `partyline serve` and real MPyC. A wrong code is
//! refused and the code burned after the configured number; a coordinator in
//! the middle that swaps the PAKE messages gets no invite.
//!
//! The coordinator's recorded traffic of a code session holds neither the
//! code nor the invite secret: `operator_sees_no_secrets.rs`.
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use partyline_wire::api::{AttemptView, CodeMessage, NameplateInfo};
use partyline_wire::code_exchange::{JoinerPake, host_answer};
use partyline_wire::{Code, SessionId};

const LIMIT: Duration = Duration::from_secs(180);

fn securesum() -> Vec<String> {
    vec![repo_file("examples/securesum.py")]
}

const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

#[test]
fn three_parties_join_by_code_and_compute_what_plain_mpyc_computes() {
    let server = Server::start();
    let host = CodeHost::start(&server.link, 3, &[]);
    assert!(!host.code.contains("pl1."), "{}", host.code);
    let parties: Vec<Party> = NAMES[..3]
        .iter()
        .map(|name| host.join(&server.link, name, &[], &securesum()))
        .collect();
    let runs: Vec<Finished> = parties.into_iter().map(|p| p.finish(LIMIT)).collect();
    let plain = run_plain_tcp(3, &securesum());
    let expected = lines_with(&plain[0].stdout, &["sum", "product", "max"]);
    assert_eq!(expected.len(), 3, "plain TCP printed {expected:?}");
    for run in &runs {
        run.assert_success();
        assert!(
            run.stderr()
                .contains("the host accepted the code and sent the invite"),
            "{}",
            run.stderr()
        );
        assert_eq!(
            run.result_lines(&["sum", "product", "max"]),
            expected,
            "{}",
            run.name
        );
    }
    host.wait_for_stderr("all 3 parties joined", LIMIT);
    assert!(host.finish(LIMIT), "the host did not exit 0");
}

#[test]
fn five_parties_join_by_code_and_draw_one_secret_santa() {
    let server = Server::start();
    let host = CodeHost::start(&server.link, 5, &["--code-words", "4"]);
    assert_eq!(host.code.split('-').count(), 5, "{}", host.code);
    let program = vec![repo_file("examples/secretsanta.py"), "8".into()];
    let parties: Vec<Party> = NAMES
        .iter()
        .map(|name| host.join(&server.link, name, &[], &program))
        .collect();
    let runs: Vec<Finished> = parties.into_iter().map(|p| p.finish(LIMIT)).collect();
    let mut draws = Vec::new();
    for run in &runs {
        run.assert_success();
        let lines = run.result_lines(&["derangement"]);
        assert_eq!(lines.len(), 1, "{}: {}", run.name, run.stdout());
        assert_derangement(&lines[0]);
        draws.push(lines[0].clone());
    }
    assert!(draws.iter().all(|d| *d == draws[0]), "{draws:?}");
    host.wait_for_stderr("all 5 parties joined", LIMIT);
    assert!(host.finish(LIMIT), "the host did not exit 0");
}

/// The code with its last word changed.
fn wrong_words(code: &str) -> String {
    let (head, last) = code.rsplit_once('-').unwrap();
    let other = if last == "abandon" {
        "ability"
    } else {
        "abandon"
    };
    format!("{head}-{other}")
}

fn join_with(code: &str, link: &str, name: &str) -> Finished {
    Party::start(name, &["--server", link], &securesum(), |command| {
        command.arg(code);
    })
    .finish(LIMIT)
}

#[test]
fn wrong_codes_are_refused_and_burn_the_code_after_the_limit() {
    let server = Server::start();
    let host = CodeHost::start(&server.link, 2, &["--code-attempts", "2"]);
    let code = host.code.clone();
    // A party with the right code takes the first seat.
    let mut alice = host.join(&server.link, "alice", &[], &securesum());
    alice.wait_for_stderr("1 of 2 parties joined", LIMIT);

    for attempt in 1..=2 {
        let guess = join_with(&wrong_words(&code), &server.link, "mallory");
        assert!(!guess.out.status.success(), "a wrong code joined");
        let said = guess.stderr();
        for text in ["the code was not accepted", "no invite was released"] {
            assert!(
                said.contains(text),
                "the guesser is not told {text:?}: {said}"
            );
        }
        assert!(!said.contains("sent the invite"), "{said}");
        host.wait_for_stderr(&format!("wrong code ({attempt} of 2"), LIMIT);
    }
    let burned = host.wait_for_stderr("BURNED", LIMIT);
    assert!(burned.contains("after 2 wrong codes"), "{burned}");
    assert!(
        !host.finish(LIMIT),
        "the host exited 0 after burning its code"
    );

    // The right code, now: told it was burned, and what to do.
    let late = join_with(&code, &server.link, "bob");
    assert!(!late.out.status.success(), "a burned code joined");
    for text in ["was burned", "Ask the host for a new code"] {
        assert!(
            late.stderr().contains(text),
            "the late joiner is not told {text:?}: {}",
            late.stderr()
        );
    }
    // A number the server lends nobody: said so, with what to check.
    let (number, words) = code.split_once('-').unwrap();
    let unknown = format!("{}-{words}", number.parse::<u32>().unwrap() + 100);
    let nobody = join_with(&unknown, &server.link, "carol");
    assert!(!nobody.out.status.success(), "an unknown code joined");
    assert!(
        nobody.stderr().contains("on this server: check the number"),
        "{}",
        nobody.stderr()
    );
    // The host ended the session: the party that joined stops too.
    let alice = alice.finish(LIMIT);
    assert!(!alice.out.status.success(), "alice exited 0");
    assert!(
        alice.stderr().contains("already finished"),
        "{}",
        alice.stderr()
    );
}

/// What the coordinator in the middle saw and did.
#[derive(Default)]
struct Seen {
    session: Option<SessionId>,
    guess: Option<Code>,
    /// The joiner's own first message, kept to answer the host with.
    joiner_first: Option<String>,
    /// How often the joiner's and the host's SPAKE2 messages were swapped.
    swapped_joiner: usize,
    swapped_host: usize,
    /// Every message of the host's that it relayed to the joiner.
    host_messages: Vec<String>,
}

/// A coordinator in the middle: answers the joiner's and the host's SPAKE2
/// messages with its own, made with a guessed code, and relays everything else.
fn swap_pake_messages(seen: Arc<Mutex<Seen>>) -> Rewrite {
    Arc::new(move |method, path, leg, body| {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut seen = seen.lock().unwrap();
        match (method, segments.as_slice(), leg) {
            ("GET", ["v1", "nameplates", number], Leg::Answer) => {
                let info: NameplateInfo = serde_json::from_slice(body).unwrap();
                seen.session = Some(info.session);
                seen.guess = Some(format!("{number}-abandon-abandon-abandon").parse().unwrap());
            }
            ("POST", ["v1", "nameplates", _, "attempts"], Leg::Request) => {
                let mut message: CodeMessage = serde_json::from_slice(body).unwrap();
                seen.joiner_first = Some(message.message.clone());
                let guess = seen.guess.clone().unwrap();
                message.message = JoinerPake::start(&guess, seen.session.unwrap()).1;
                seen.swapped_joiner += 1;
                *body = serde_json::to_vec(&message).unwrap();
            }
            ("GET", ["v1", "nameplates", _, "attempts", _], Leg::Answer) => {
                let mut view: AttemptView = serde_json::from_slice(body).unwrap();
                seen.host_messages.extend(view.host.iter().cloned());
                if let Some(first) = view.host.first_mut() {
                    let guess = seen.guess.clone().unwrap();
                    let joiner_first = seen.joiner_first.clone().unwrap();
                    *first = host_answer(&guess, seen.session.unwrap(), &joiner_first)
                        .unwrap()
                        .1;
                    seen.swapped_host += 1;
                }
                *body = serde_json::to_vec(&view).unwrap();
            }
            _ => {}
        }
    })
}

#[test]
fn a_coordinator_in_the_middle_gets_no_invite_and_the_joiner_says_so() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = runtime.enter();
    let server = Server::start();
    let host = CodeHost::start(&server.link, 2, &[]);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let middle_link = start_middle(&server, swap_pake_messages(seen.clone()));

    let run = host
        .join(&middle_link, "alice", &[], &securesum())
        .finish(LIMIT);
    assert!(
        !run.out.status.success(),
        "joined through a coordinator in the middle"
    );
    for text in ["no invite was released", "the server altered the exchange"] {
        assert!(
            run.stderr().contains(text),
            "the joiner does not say {text:?}: {}",
            run.stderr()
        );
    }
    host.wait_for_stderr("wrong code (1 of 3", LIMIT);

    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.swapped_joiner, 1,
        "the joiner's SPAKE2 message was not swapped"
    );
    assert!(
        seen.swapped_host >= 1,
        "the host's SPAKE2 message was not swapped"
    );
    assert!(
        seen.host_messages.iter().all(|m| !m.starts_with("invite.")),
        "the host released the invite: {:?}",
        seen.host_messages
    );
    assert_eq!(
        seen.host_messages.last().map(String::as_str),
        Some("refused")
    );
}
