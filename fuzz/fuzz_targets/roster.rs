//! Roster verification over announcements that invite holders signed with
//! any body text: never a panic, and an accepted roster keeps its promises.
#![no_main]
use libfuzzer_sys::fuzz_target;
use partyline_wire::announce::AnnouncementKey;
use partyline_wire::{CertPin, EndpointKey, Invite, InviteSecret, Roster, SessionId};

fuzz_target!(|data: &[u8]| {
    let Some((&parties, rest)) = data.split_first() else {
        return;
    };
    let parties = u16::from(parties % 6) + 1;
    let invite = Invite::new(
        &"https://127.0.0.1:7700".parse().expect("a valid server URL"),
        SessionId([1; 16]),
        parties,
        CertPin([2; 32]),
        InviteSecret([3; 16]),
    )
    .expect("a valid invite");
    let key = AnnouncementKey::derive(&invite);
    let text = String::from_utf8_lossy(rest);
    let signed: Vec<_> = text
        .split('\u{1e}')
        .map(|body| key.sign_body(body.to_string()))
        .collect();
    let own = EndpointKey([7; 32]);
    if let Ok(Some(roster)) = Roster::build(&invite, &own, &signed) {
        assert_eq!(roster.members.len(), usize::from(parties));
        assert_eq!(roster.own().endpoint, own);
        for (index, member) in roster.members.iter().enumerate() {
            assert_eq!(member.index, index);
        }
        // Every party computes the same seats and fingerprint, whatever order
        // the coordinator lists the announcements in.
        let last = roster
            .members
            .last()
            .expect("a roster has members")
            .endpoint;
        let reversed: Vec<_> = signed.iter().rev().cloned().collect();
        let other = Roster::build(&invite, &last, &reversed)
            .expect("the same announcements verify again")
            .expect("and are complete");
        assert_eq!(other.members, roster.members);
        assert_eq!(
            other.fingerprint().to_string(),
            roster.fingerprint().to_string()
        );
    }
});
