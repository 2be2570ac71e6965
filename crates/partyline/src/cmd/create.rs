//! `partyline create`: register a session and print its invite, or (with
//! `--code`) a short code, then host the code until every seat is taken.
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use partyline_session::code_host::{HostEnd, HostEvent, host_code};
use partyline_session::tls::learn_pin;
use partyline_session::{Coordinator, ServerLink};
use partyline_wire::{CertPin, Code, Invite, InviteSecret, WriteToken};

use crate::cli::CreateArgs;
use crate::config::Config;
use crate::progress::spinner;

/// How long `create` waits for the server without `--timeout`.
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `create --code` hosts its code without `--timeout`.
const HOST_TIMEOUT: Duration = Duration::from_secs(3600);
/// Exit code after Ctrl-C, as shells use for SIGINT.
const INTERRUPTED: i32 = 130;

pub async fn run(args: CreateArgs, config: &Config) -> anyhow::Result<i32> {
    let Some(server) = args.server.clone().or_else(|| config.server.clone()) else {
        bail!(
            "no server given: pass --server https://HOST:PORT#sha256=PIN as `partyline serve` prints it \
             (or set PARTYLINE_SERVER); to try partyline on one machine, run `partyline demo`"
        );
    };
    let link: ServerLink = server.parse()?;
    let timeout = args
        .timeout
        .map(Duration::from_secs)
        .unwrap_or(if args.code {
            HOST_TIMEOUT
        } else {
            SERVER_TIMEOUT
        });
    let deadline = Instant::now() + timeout;
    let pin = trusted_pin(
        &link,
        deadline,
        "the full address printed by `partyline serve`",
    )
    .await?;
    let secret = InviteSecret::random();
    let coordinator = Coordinator::new(&link.url, pin)
        .with_write_token(WriteToken::derive(&secret))
        .with_deadline(deadline);
    let created = coordinator
        .create(
            args.parties,
            args.label.clone(),
            &WriteToken::derive(&secret),
        )
        .await
        .context("could not create the session")?;
    let invite = Invite::new(&link.url, created.session, args.parties, pin, secret)?;
    eprintln!(
        "Session {} for {} parties{} created; it expires in {} hours.",
        created.session,
        args.parties,
        args.label
            .as_ref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default(),
        created.expires_at.saturating_sub(now_secs()) / 3600,
    );
    if args.code {
        let server_link = format!("{}#sha256={pin}", link.url);
        return host(&coordinator, &invite, &server_link, &args, timeout).await;
    }
    eprintln!("Send this invite to every party (you too), over a channel you trust; each runs:");
    eprintln!("  partyline join '<invite>' -- PROGRAM [ARGS…]");
    eprintln!("or opens it in a browser (Chrome, Edge or Chromium 137+, also on Android).");
    if args.qr {
        // On stderr: the invite stays the last line of stdout for scripts.
        eprintln!("{}", qr_code(&invite.to_string())?);
    }
    println!("{invite}");
    Ok(0)
}

/// The link's pin; without one, the pin of the certificate the server shows
/// now, with a warning that tells to pass `full_address` instead.
pub(super) async fn trusted_pin(
    link: &ServerLink,
    deadline: Instant,
    full_address: &str,
) -> anyhow::Result<CertPin> {
    if let Some(pin) = link.pin {
        return Ok(pin);
    }
    let pin = learn_pin(&link.url, deadline).await?;
    eprintln!(
        "partyline: warning: no certificate pin given for {}; trusting the certificate it shows now (sha256 {pin}). \
         Pass {full_address} to be sure.",
        link.url
    );
    Ok(pin)
}

/// `--code`: prints a short code and hosts it until every seat is taken.
async fn host(
    coordinator: &Coordinator,
    invite: &Invite,
    server_link: &str,
    args: &CreateArgs,
    timeout: Duration,
) -> anyhow::Result<i32> {
    let allocated = coordinator
        .allocate_nameplate(&invite.session)
        .await
        .context("could not get a code for the session")?;
    let code = Code::random(allocated.nameplate, args.code_words)?;
    eprintln!(
        "Tell every party (you too) this code, e.g. aloud; it is the last line of stdout:\n  {code}\n\
         Each party runs:\n  partyline join {code} --server '{server_link}' -- PROGRAM [ARGS…]\n\
         or opens {}/join in a browser (Chrome, Edge or Chromium 137+) and types the code.\n\
         This command stays running as the session's host until all {} parties have joined \
         (up to {} s); a wrong code costs its guesser one of {} tries, then the code is burned.",
        invite.server,
        invite.parties,
        timeout.as_secs(),
        args.code_attempts,
    );
    println!("{code}");
    let waiting = spinner(format!("0 of {} parties joined", invite.parties));
    let hosting = host_code(
        coordinator,
        invite,
        &code,
        args.code_attempts,
        timeout,
        |event| {
            match event {
            HostEvent::Joined(progress) => waiting.set_message(format!(
                "{} of {} parties joined: {}",
                progress.joined.len(),
                progress.expected,
                progress.joined.join(", ")
            )),
            HostEvent::Released => {
                waiting.println("a party gave the right code and was handed the invite");
            }
            HostEvent::WrongCode { failures, limit } => waiting.println(&format!(
                "someone gave a wrong code ({failures} of {limit} wrong codes allowed); no invite was handed out"
            )),
            HostEvent::Malformed(reason) => {
                waiting.println(&format!("refused a broken code exchange: {reason}"));
            }
        }
        },
    );
    let ended = tokio::select! {
        ended = hosting => ended,
        _ = tokio::signal::ctrl_c() => {
            waiting.finish_and_clear();
            let _ = coordinator.release_nameplate(code.nameplate()).await;
            eprintln!(
                "partyline: interrupted: code {} no longer works; parties who joined wait until their --timeout",
                code.nameplate()
            );
            return Ok(INTERRUPTED);
        }
    };
    waiting.finish_and_clear();
    let ended = match ended {
        Ok(ended) => ended,
        Err(error) => {
            let _ = coordinator.release_nameplate(code.nameplate()).await;
            return Err(anyhow::Error::new(error).context("stopped hosting the code"));
        }
    };
    match ended {
        HostEnd::Full(progress) => {
            let _ = coordinator.release_nameplate(code.nameplate()).await;
            eprintln!(
                "partyline: all {} parties joined ({}); the code no longer works. Done hosting.",
                progress.expected,
                progress.joined.join(", ")
            );
            Ok(0)
        }
        HostEnd::Burned { failures } => {
            let _ = coordinator.done(&invite.session).await;
            eprintln!(
                "partyline: code {}-… BURNED after {failures} wrong codes: someone may be guessing it. \
                 Nobody can join with it any more, not even with the right code, and the session is \
                 ended (parties who joined stop). Make a new one: partyline create --parties {} --code",
                code.nameplate(),
                invite.parties
            );
            Ok(1)
        }
        HostEnd::TimedOut(progress) => {
            let _ = coordinator.release_nameplate(code.nameplate()).await;
            eprintln!(
                "partyline: gave up hosting after {} s: {} of {} parties joined ({}); the code no longer works. \
                 Raise --timeout to host longer",
                timeout.as_secs(),
                progress.joined.len(),
                progress.expected,
                if progress.joined.is_empty() {
                    "none".to_string()
                } else {
                    progress.joined.join(", ")
                }
            );
            Ok(1)
        }
    }
}

/// The invite as a QR code in text, with the quiet zone scanners need. Dark
/// modules are left blank: on the usual light-on-dark terminal the code then
/// reads dark on light, as phone scanners expect.
fn qr_code(invite: &str) -> anyhow::Result<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(invite.as_bytes()).context("cannot make a QR code")?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .build())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
