//! Which peer streams a session allows: one seat, one stream.
//!
//! The QUIC handshake proves which roster member is on the other end of a
//! connection, but an MPyC program learns its peer's party id only from the
//! first two bytes of a stream, and takes the secret-sharing keys that follow.
//! If partyline forwarded whatever a verified peer sent, that peer could open
//! streams claiming another party's seat and receive that party's shares.
//!
//! So in MPyC mode exactly the streams of MPyC's own connection pattern exist
//! (mpyc 0.11, `Runtime.start`): party i dials every party j > i once and
//! opens with its party id, a `u16` little endian. Towards a peer, our program
//! may connect once and only to a higher seat; from a peer, we accept one
//! stream and only from a lower seat, whose first two bytes must be that
//! seat. The checks run before a single byte reaches the program. A peer that
//! breaks them is not confused but hostile, so the session ends, naming it.
//!
//! Generic programs (`--no-mpyc-flags`) may use any number of streams in
//! either direction, and their bytes are not looked at.
//!
//! Plain data, no networking: native forwarders and the browser party apply
//! the same rules.

/// How the program uses its peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamRules {
    /// MPyC's pattern: one stream per pair of parties, opened by the lower
    /// seat, starting with its party id.
    Mpyc,
    /// Any program: streams in either direction, as many as it opens.
    Generic,
}

/// How many bytes of a stream carry MPyC's party id.
pub const PARTY_ID_LEN: usize = 2;

/// The seat rules for the streams between our seat and one peer's, with the
/// count of streams admitted so far.
#[derive(Clone, Debug)]
pub struct PeerSeat {
    rules: StreamRules,
    own: usize,
    peer: usize,
    local_admitted: usize,
    incoming_admitted: usize,
}

/// Why a connection to our local tunnel end towards a peer is refused. The
/// session goes on: the connection came from this machine, not from the peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocalRefusal {
    #[error(
        "party {peer} has the higher seat, so in MPyC's pattern it connects to us and our program never connects to it"
    )]
    PeerDials { peer: usize },
    #[error("our program already has its one connection to party {peer}")]
    AlreadyConnected { peer: usize },
}

/// What a peer did that MPyC's pattern never does. The session ends.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeatViolation {
    #[error(
        "opened a stream towards party {own}, a lower seat, although in MPyC's pattern only the lower seat opens streams"
    )]
    WrongDirection { own: usize },
    #[error("opened a second stream, although MPyC uses exactly one per pair of parties")]
    SecondStream,
    #[error("claimed MPyC party id {claimed} on its stream, but its seat is {seat}")]
    WrongPartyId { claimed: u16, seat: usize },
}

/// What to check on a stream a peer opened before its bytes reach the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncomingCheck {
    /// Its first [`PARTY_ID_LEN`] bytes must be this party id.
    PartyId(usize),
    /// Nothing: a generic program's stream.
    None,
}

impl IncomingCheck {
    /// Checks the first [`PARTY_ID_LEN`] bytes of a stream.
    pub fn check(self, first: [u8; PARTY_ID_LEN]) -> Result<(), SeatViolation> {
        match self {
            IncomingCheck::None => Ok(()),
            IncomingCheck::PartyId(seat) => {
                let claimed = u16::from_le_bytes(first);
                if usize::from(claimed) == seat {
                    Ok(())
                } else {
                    Err(SeatViolation::WrongPartyId { claimed, seat })
                }
            }
        }
    }
}

impl PeerSeat {
    pub fn new(rules: StreamRules, own: usize, peer: usize) -> Self {
        Self {
            rules,
            own,
            peer,
            local_admitted: 0,
            incoming_admitted: 0,
        }
    }

    /// Our program connected to its tunnel end towards the peer: may that
    /// connection become a stream? Counts it if so.
    pub fn admit_local(&mut self) -> Result<(), LocalRefusal> {
        if self.rules == StreamRules::Mpyc {
            if self.peer < self.own {
                return Err(LocalRefusal::PeerDials { peer: self.peer });
            }
            if self.local_admitted > 0 {
                return Err(LocalRefusal::AlreadyConnected { peer: self.peer });
            }
        }
        self.local_admitted += 1;
        Ok(())
    }

    /// The peer opened a stream: may it exist, and what must its first bytes
    /// say? Counts it if it may.
    pub fn admit_incoming(&mut self) -> Result<IncomingCheck, SeatViolation> {
        if self.rules == StreamRules::Generic {
            self.incoming_admitted += 1;
            return Ok(IncomingCheck::None);
        }
        if self.peer > self.own {
            return Err(SeatViolation::WrongDirection { own: self.own });
        }
        if self.incoming_admitted > 0 {
            return Err(SeatViolation::SecondStream);
        }
        self.incoming_admitted += 1;
        Ok(IncomingCheck::PartyId(self.peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpyc_lets_the_lower_seat_dial_once() {
        let mut towards_higher = PeerSeat::new(StreamRules::Mpyc, 1, 2);
        assert_eq!(towards_higher.admit_local(), Ok(()));
        assert_eq!(
            towards_higher.admit_local(),
            Err(LocalRefusal::AlreadyConnected { peer: 2 })
        );
        let mut towards_lower = PeerSeat::new(StreamRules::Mpyc, 1, 0);
        assert_eq!(
            towards_lower.admit_local(),
            Err(LocalRefusal::PeerDials { peer: 0 })
        );
    }

    #[test]
    fn mpyc_accepts_one_stream_from_a_lower_seat_carrying_its_id() {
        let mut from_lower = PeerSeat::new(StreamRules::Mpyc, 2, 1);
        let check = from_lower.admit_incoming().unwrap();
        assert_eq!(check, IncomingCheck::PartyId(1));
        assert_eq!(check.check(1u16.to_le_bytes()), Ok(()));
        assert_eq!(
            check.check(0u16.to_le_bytes()),
            Err(SeatViolation::WrongPartyId {
                claimed: 0,
                seat: 1
            })
        );
        // Little endian, as MPyC writes it: [1, 0] is 1, [0, 1] is 256.
        assert_eq!(
            check.check([0, 1]),
            Err(SeatViolation::WrongPartyId {
                claimed: 256,
                seat: 1
            })
        );
        assert_eq!(
            from_lower.admit_incoming(),
            Err(SeatViolation::SecondStream)
        );
    }

    #[test]
    fn mpyc_refuses_any_stream_from_a_higher_seat() {
        let mut from_higher = PeerSeat::new(StreamRules::Mpyc, 0, 1);
        assert_eq!(
            from_higher.admit_incoming(),
            Err(SeatViolation::WrongDirection { own: 0 })
        );
    }

    #[test]
    fn generic_programs_use_any_number_of_streams_either_way() {
        for (own, peer) in [(0, 1), (1, 0)] {
            let mut seat = PeerSeat::new(StreamRules::Generic, own, peer);
            for _ in 0..3 {
                assert_eq!(seat.admit_local(), Ok(()));
                let check = seat.admit_incoming().unwrap();
                assert_eq!(check, IncomingCheck::None);
                assert_eq!(check.check([7, 7]), Ok(()));
            }
        }
    }

    #[test]
    fn violations_read_as_sentences_after_the_party_name() {
        let said = format!(
            "party 1 (mallory) {}",
            SeatViolation::WrongPartyId {
                claimed: 0,
                seat: 1
            }
        );
        assert_eq!(
            said,
            "party 1 (mallory) claimed MPyC party id 0 on its stream, but its seat is 1"
        );
    }
}
