//! A hostile coordinator holds neither a party's memory nor its time.
//!
//! The coordinator here is a small HTTPS server of the test's own (its
//! certificate pinned in the links and invites it hands out) that answers one
//! kind of request with 1 GiB of JSON whitespace, streamed from one static
//! buffer, or dribbles it a byte a second. `partyline join` and `partyline
//! create` stop with an error naming the server and what it did, within their
//! `--timeout`, and their peak memory stays far below the answer's size.
//! Announcing and long-polling, which a join only reaches with a relay, are
//! driven through the same client (`partyline_session`) in this process.
mod common;

use std::convert::Infallible;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::{BIN, serve_https};
use n0_future::stream;
use partyline_session::{Coordinator, SessionError, announce_and_wait};
use partyline_wire::api::{ServerInfo, SessionCreated, SessionState, SessionView, path};
use partyline_wire::{
    Announcement, CertPin, EndpointKey, Invite, InviteSecret, ServerUrl, SessionId,
    SignedAnnouncement,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// How large the hostile answers are.
const GIB: u64 = 1 << 30;
/// What every hostile answer is made of, sent again and again: valid JSON so
/// far, so a client that reads to the end before parsing never stops.
static WHITESPACE: [u8; 64 * 1024] = [b' '; 64 * 1024];
/// The most a party may hold at its peak: its own needs, not the answer's.
const PEAK_LIMIT_KIB: u64 = 100 * 1024;
/// How long after its `--timeout` a party may take to stop.
const MARGIN: Duration = Duration::from_secs(3);

/// How the coordinator answers the request it is hostile on.
#[derive(Clone, Copy, Debug)]
enum Hostility {
    /// 1 GiB, as fast as the party reads, without a length.
    Huge,
    /// 1 GiB, announced in `Content-Length`.
    HugeDeclared,
    /// Status and headers at once, then a byte a second, for ever.
    Dribble,
}

/// The request the coordinator is hostile on; it answers the others honestly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Info,
    Create,
    Announce,
    LongPoll,
}

#[derive(Clone, Copy)]
struct Hostile {
    target: Target,
    how: Hostility,
}

impl Hostile {
    fn answer(self, target: Target, honest: impl FnOnce() -> Response) -> Response {
        if target != self.target {
            return honest();
        }
        let json = [(header::CONTENT_TYPE, "application/json")];
        match self.how {
            Hostility::Huge => (json, Body::from_stream(gibibyte())).into_response(),
            Hostility::HugeDeclared => (
                json,
                [(header::CONTENT_LENGTH, GIB.to_string())],
                Body::from_stream(gibibyte()),
            )
                .into_response(),
            Hostility::Dribble => {
                let bytes = stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Some((Ok::<_, Infallible>(Bytes::from_static(b" ")), ()))
                });
                (json, Body::from_stream(bytes)).into_response()
            }
        }
    }
}

fn gibibyte() -> impl n0_future::Stream<Item = Result<Bytes, Infallible>> {
    let chunks = GIB / WHITESPACE.len() as u64;
    stream::iter((0..chunks).map(|_| Ok(Bytes::from_static(&WHITESPACE))))
}

async fn info(State(hostile): State<Hostile>) -> Response {
    hostile.answer(Target::Info, || {
        Json(ServerInfo {
            version: "hostile".into(),
            protocol: partyline_proto::PROTOCOL.into(),
            relay_url: "https://127.0.0.1:9".into(),
            relay_quic_port: None,
            stun_port: None,
            relays: Vec::new(),
            retention: None,
            coordinators: Vec::new(),
            client_ip: None,
        })
        .into_response()
    })
}

async fn create(State(hostile): State<Hostile>) -> Response {
    hostile.answer(Target::Create, || {
        Json(SessionCreated {
            session: SessionId::random(),
            expires_at: u64::MAX,
        })
        .into_response()
    })
}

/// Answers an announcement with a session of two that holds only it.
async fn announce(
    State(hostile): State<Hostile>,
    Path(id): Path<String>,
    Json(signed): Json<SignedAnnouncement>,
) -> Response {
    hostile.answer(Target::Announce, || {
        Json(view(id.parse().unwrap(), vec![signed])).into_response()
    })
}

async fn session(State(hostile): State<Hostile>, Path(id): Path<String>, uri: Uri) -> Response {
    let long_poll = uri.query().is_some_and(|q| q.contains("seen="));
    if long_poll {
        hostile.answer(Target::LongPoll, || {
            unreachable!("only long polls are hostile here")
        })
    } else {
        Json(view(id.parse().unwrap(), Vec::new())).into_response()
    }
}

fn view(session: SessionId, announcements: Vec<SignedAnnouncement>) -> SessionView {
    SessionView {
        session,
        parties: 2,
        label: None,
        state: SessionState::Open,
        expires_at: u64::MAX,
        announcements,
    }
}

/// Starts the hostile coordinator; returns its URL and certificate pin.
fn start(hostile: Hostile) -> (ServerUrl, CertPin) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let pin = partyline_proto::pin::pin_of(generated.cert.der());
    let cert = CertificateDer::from(generated.cert.der().to_vec());
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let app = axum::Router::new()
        .route(path::INFO, get(info))
        .route(path::SESSIONS, post(create))
        .route(path::ANNOUNCEMENTS, post(announce))
        .route(path::SESSION, get(session))
        .with_state(hostile);
    let addr = serve_https(app, cert, key);
    (format!("https://{addr}").parse().unwrap(), pin)
}

fn invite(url: &ServerUrl, pin: CertPin) -> Invite {
    Invite::new(url, SessionId::random(), 2, pin, InviteSecret::random()).unwrap()
}

/// How a `partyline` process ended.
struct Run {
    success: bool,
    stderr: String,
    took: Duration,
    /// Its peak resident memory: the kernel's `ru_maxrss`, which is the
    /// `VmHWM` of `/proc/PID/status` at its exit.
    peak_kib: u64,
}

/// Runs `partyline ARGS` to its end.
#[expect(
    clippy::zombie_processes,
    reason = "wait4 reaps the child, which std's wait cannot do with its rusage"
)]
fn run_partyline(args: &[&str]) -> Run {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("PARTYLINE_INVITE")
        .env_remove("PARTYLINE_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        stderr_pipe.read_to_string(&mut text).unwrap();
        text
    });
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain integers, for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not reaped yet; the pointers are
        // to live locals. WNOHANG: 0 while it runs.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            break;
        }
        assert_eq!(reaped, 0, "wait4 failed");
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("partyline {args:?} did not stop");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Run {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stderr: stderr.join().unwrap(),
        took: started.elapsed(),
        peak_kib: u64::try_from(usage.ru_maxrss).unwrap(),
    }
}

/// Checks that a run with `--timeout TIMEOUT` failed within `within`, with
/// small memory, saying `says` about the server at `url`.
fn assert_stopped(run: &Run, timeout: Duration, within: Duration, url: &ServerUrl, says: &str) {
    eprintln!(
        "stopped after {:.1}s (--timeout {}s), peak {} KiB:\n{}",
        run.took.as_secs_f64(),
        timeout.as_secs(),
        run.peak_kib,
        run.stderr
    );
    assert!(!run.success, "it succeeded: {}", run.stderr);
    assert!(
        run.took < within,
        "it took {:?} with --timeout {timeout:?}: {}",
        run.took,
        run.stderr
    );
    assert!(
        run.stderr.contains(says) && run.stderr.contains(url.as_str()),
        "it did not say {says:?} about {url}: {}",
        run.stderr
    );
    assert!(run.peak_kib > 0, "its memory was never read");
    assert!(
        run.peak_kib < PEAK_LIMIT_KIB,
        "its peak memory was {} KiB",
        run.peak_kib
    );
}

fn join(url: &ServerUrl, pin: CertPin, timeout: Duration) -> Run {
    let invite = invite(url, pin).to_string();
    let timeout = timeout.as_secs().to_string();
    run_partyline(&[
        "join",
        &invite,
        "--name",
        "alice",
        "--timeout",
        &timeout,
        "--no-mpyc-flags",
        "--",
        "true",
    ])
}

fn create_session(url: &ServerUrl, pin: CertPin, timeout: Duration) -> Run {
    let link = format!("{url}#sha256={pin}");
    let timeout = timeout.as_secs().to_string();
    run_partyline(&[
        "create",
        "--parties",
        "2",
        "--server",
        &link,
        "--timeout",
        &timeout,
    ])
}

/// Runs `command` against a coordinator hostile on `target`, which the
/// command's error calls `what`: once with a huge answer, once dribbled.
async fn command_stops(
    target: Target,
    what: &str,
    command: fn(&ServerUrl, CertPin, Duration) -> Run,
) {
    let dribbled = Duration::from_secs(4);
    let cases = [
        // The limit stops it at once, long before its timeout.
        (
            Hostility::Huge,
            Duration::from_secs(60),
            MARGIN,
            format!("sent more than 64 KiB as {what}"),
        ),
        (
            Hostility::Dribble,
            dribbled,
            dribbled + MARGIN,
            format!("did not send {what} in time"),
        ),
    ];
    for (how, timeout, within, says) in cases {
        let (url, pin) = start(Hostile { target, how });
        let server = url.clone();
        let run = tokio::task::spawn_blocking(move || command(&server, pin, timeout))
            .await
            .unwrap();
        assert_stopped(&run, timeout, within, &url, &says);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn join_stops_on_huge_or_dribbled_server_information() {
    command_stops(Target::Info, "its server information", join).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_stops_on_a_huge_or_dribbled_new_session() {
    command_stops(Target::Create, "the new session", create_session).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_huge_length_is_refused_before_reading() {
    let (url, pin) = start(Hostile {
        target: Target::Info,
        how: Hostility::HugeDeclared,
    });
    let error = Coordinator::new(&url, pin).info().await.unwrap_err();
    assert!(
        matches!(error, SessionError::TooLarge { limit, .. } if limit == 64 * 1024),
        "{error}"
    );
}

/// Announces in a session of the hostile coordinator the way `join` does,
/// with a deadline `timeout` from now; returns the error and when it came.
async fn announce_and_wait_against(
    hostile: Hostile,
    timeout: Duration,
) -> (SessionError, Duration) {
    let (url, pin) = start(hostile);
    let invite = invite(&url, pin);
    let started = Instant::now();
    let coordinator = Coordinator::new(&url, pin).with_deadline(started + timeout);
    let own = Announcement {
        session: invite.session,
        name: "alice".into(),
        endpoint: EndpointKey([5; 32]),
        relay_url: None,
        addrs: Vec::new(),
        joined_at_ms: 0,
        identity: None,
        webrtc: None,
    };
    let error = announce_and_wait(&coordinator, &invite, &own, timeout, |_| {})
        .await
        .unwrap_err();
    (error, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_answers_to_announcing_and_long_polling_are_refused() {
    for target in [Target::Announce, Target::LongPoll] {
        let hostile = Hostile {
            target,
            how: Hostility::Huge,
        };
        let (error, took) = announce_and_wait_against(hostile, Duration::from_secs(60)).await;
        let refused =
            matches!(&error, SessionError::TooLarge { what, .. } if *what == "the session");
        assert!(refused, "{target:?}: {error}");
        assert!(took < Duration::from_secs(20), "{target:?} took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dribbled_answers_to_announcing_and_long_polling_end_at_the_deadline() {
    for target in [Target::Announce, Target::LongPoll] {
        let hostile = Hostile {
            target,
            how: Hostility::Dribble,
        };
        let timeout = Duration::from_secs(3);
        let (error, took) = announce_and_wait_against(hostile, timeout).await;
        let cut = matches!(&error, SessionError::TooSlow { what, .. } if *what == "the session");
        assert!(cut, "{target:?}: {error}");
        assert!(took < timeout + MARGIN, "{target:?} took {took:?}");
    }
}
