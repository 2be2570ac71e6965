//! The seat rules every peer stream passes (partyline_wire::seat): any order
//! of local connections, peer streams and first bytes, checked against what
//! MPyC's connection pattern allows. Never a panic, and never more than one
//! stream each way, in MPyC's direction, carrying the sender's own party id.
#![no_main]
use libfuzzer_sys::fuzz_target;
use partyline_wire::seat::{IncomingCheck, PeerSeat, StreamRules};

fuzz_target!(|data: &[u8]| {
    let [mode, own, peer, steps @ ..] = data else {
        return;
    };
    let (own, peer) = (usize::from(own % 8), usize::from(peer % 8));
    if own == peer {
        return;
    }
    let rules = if mode % 2 == 0 {
        StreamRules::Mpyc
    } else {
        StreamRules::Generic
    };
    let mut seat = PeerSeat::new(rules, own, peer);
    let (mut local, mut incoming) = (0, 0);
    for step in steps.chunks(3) {
        match step {
            [0, ..] => {
                if seat.admit_local().is_ok() {
                    local += 1;
                }
            }
            [_, a, b] => {
                let Ok(check) = seat.admit_incoming() else {
                    continue;
                };
                incoming += 1;
                let passed = check.check([*a, *b]).is_ok();
                match check {
                    IncomingCheck::PartyId(id) => {
                        assert_eq!(id, peer);
                        assert_eq!(passed, u16::from_le_bytes([*a, *b]) as usize == peer);
                    }
                    IncomingCheck::None => assert!(passed),
                }
            }
            _ => {}
        }
    }
    if rules == StreamRules::Mpyc {
        assert!(local <= 1 && incoming <= 1);
        assert!(local == 0 || peer > own, "our program dialled a lower seat");
        assert!(incoming == 0 || peer < own, "a higher seat opened a stream");
    }
});
