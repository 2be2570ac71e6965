//! `partyline create`: register a session and print its invite.
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use partyline_session::tls::learn_pin;
use partyline_session::{Coordinator, ServerLink};
use partyline_wire::{Invite, InviteSecret, WriteToken};

use crate::cli::CreateArgs;
use crate::config::Config;

pub async fn run(args: CreateArgs, config: &Config) -> anyhow::Result<i32> {
    let Some(server) = args.server.or_else(|| config.server.clone()) else {
        bail!(
            "no server given: pass --server https://HOST:PORT#sha256=PIN as `partyline serve` prints it \
             (or set PARTYLINE_SERVER); to try partyline on one machine, run `partyline demo`"
        );
    };
    let link: ServerLink = server.parse()?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let pin = match link.pin {
        Some(pin) => pin,
        None => {
            let pin = learn_pin(&link.url, deadline).await?;
            eprintln!(
                "partyline: warning: no certificate pin given for {}; trusting the certificate it shows now (sha256 {pin}). \
                 Pass the full address printed by `partyline serve` to be sure.",
                link.url
            );
            pin
        }
    };
    let coordinator = Coordinator::new(&link.url, pin).with_deadline(deadline);
    let secret = InviteSecret::random();
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
        args.label.map(|l| format!(" ({l})")).unwrap_or_default(),
        created.expires_at.saturating_sub(now_secs()) / 3600,
    );
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
