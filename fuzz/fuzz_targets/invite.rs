//! The invite decoder: any text, never a panic; whatever parses prints back
//! to the same invite.
#![no_main]
use libfuzzer_sys::fuzz_target;
use partyline_wire::Invite;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(invite) = text.parse::<Invite>() {
        let again: Invite = invite.to_string().parse().expect("a printed invite parses");
        assert_eq!(again, invite);
    }
});
