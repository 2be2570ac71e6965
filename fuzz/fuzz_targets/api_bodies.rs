//! Every JSON body of the coordinator API, decoded as the server (requests)
//! and the parties (answers) decode them: never a panic, and what decodes
//! encodes back to an equal value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use partyline_wire::SignedAnnouncement;
use partyline_wire::api::{
    AllocateNameplate, ApiError, AttemptOpened, AttemptView, CodeMessage, CreateSession,
    NameplateAllocated, NameplateInfo, NameplateView, ServerInfo, SessionCreated, SessionView,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let json = serde_json::to_vec(&value).expect("decoded values encode");
        let again: T = serde_json::from_slice(&json).expect("encoded values decode");
        assert_eq!(again, value);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<CreateSession>(data);
    round_trip::<SignedAnnouncement>(data);
    round_trip::<SessionCreated>(data);
    round_trip::<SessionView>(data);
    round_trip::<ServerInfo>(data);
    round_trip::<ApiError>(data);
    round_trip::<AllocateNameplate>(data);
    round_trip::<NameplateAllocated>(data);
    round_trip::<NameplateInfo>(data);
    round_trip::<CodeMessage>(data);
    round_trip::<AttemptOpened>(data);
    round_trip::<AttemptView>(data);
    round_trip::<NameplateView>(data);
});
