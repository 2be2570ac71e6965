//! Short codes: the code parser and every message of the code exchange, as
//! the host and the joiner read what the coordinator relays. Never a panic;
//! a parsed code prints back to itself; garbage never confirms or opens.
#![no_main]
use libfuzzer_sys::fuzz_target;
use partyline_wire::code_exchange::{JoinerPake, host_answer};
use partyline_wire::{Code, SessionId};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = text.parse::<Code>() {
        let again: Code = code.to_string().parse().expect("a printed code parses");
        assert_eq!(again, code);
    }
    let code: Code = "7-orbit-lamp-quiz".parse().expect("a valid code");
    let session = SessionId([1; 16]);
    // The host reads a joiner's first message.
    if let Ok((keys, _)) = host_answer(&code, session, text) {
        assert!(!keys.confirms(text));
    }
    // The joiner reads the host's answers, with keys from an honest host.
    let (pake, first) = JoinerPake::start(&code, session);
    let (_, answer) = host_answer(&code, session, &first).expect("an honest exchange");
    let _ = JoinerPake::start(&code, session).0.finish(text);
    let keys = pake.finish(&answer).expect("an honest exchange");
    assert!(keys.open(text).is_err());
});
