//! A signed announcement as the coordinator hands it out. Two attackers: the
//! coordinator, which can send any body and MAC (never verifies), and an
//! invite holder, who can sign any body text (verifies, then must be parsed
//! and checked without a panic).
#![no_main]
use libfuzzer_sys::fuzz_target;
use partyline_wire::announce::AnnouncementKey;
use partyline_wire::{CertPin, Invite, InviteSecret, SessionId, SignedAnnouncement};

fuzz_target!(|data: &[u8]| {
    let invite = Invite::new(
        &"https://127.0.0.1:7700".parse().expect("a valid server URL"),
        SessionId([1; 16]),
        3,
        CertPin([2; 32]),
        InviteSecret([3; 16]),
    )
    .expect("a valid invite");
    let key = AnnouncementKey::derive(&invite);
    let text = String::from_utf8_lossy(data).into_owned();
    let (body, mac) = text.split_once('\n').unwrap_or((&text, ""));
    let forged = SignedAnnouncement {
        body: body.to_string(),
        mac: mac.to_string(),
    };
    assert!(key.verify(&forged).is_err(), "a forged MAC verified");
    let signed = key.sign_body(text);
    if let Ok(announcement) = key.verify(&signed) {
        assert_eq!(announcement.session, invite.session);
    }
});
