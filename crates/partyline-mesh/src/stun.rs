//! Our question to the server's STUN responder: from which address and port
//! do our WebRTC socket's packets reach it? Behind a NAT that maps our socket
//! to the same public port whoever we send to, that is where a browser party
//! outside can reach us (our server-reflexive candidate).
//!
//! One Binding request (RFC 8489), no authentication, asked once. The answer
//! is not authenticated either: a forged one only adds a candidate that
//! leads nowhere, and the browser then falls back on our other candidates
//! or the relay. It cannot put anyone in the middle: the browser accepts
//! only the DTLS certificate in our MAC'd announcement.
use std::net::SocketAddr;

use bytecodec::{DecodeExt, EncodeExt};
use stun_codec::rfc5389::Attribute;
use stun_codec::rfc5389::attributes::XorMappedAddress;
use stun_codec::rfc5389::methods::BINDING;
use stun_codec::{Message, MessageClass, MessageDecoder, MessageEncoder, TransactionId};

/// A Binding request with a fresh transaction id, as bytes to send.
pub(crate) fn binding_request() -> (TransactionId, Vec<u8>) {
    // 96 random bits: a stranger who does not see our request cannot answer it.
    let id = TransactionId::new(rand::random());
    let request = Message::<Attribute>::new(MessageClass::Request, BINDING, id);
    let bytes = MessageEncoder::new()
        .encode_into_bytes(request)
        .expect("a Binding request without attributes encodes");
    (id, bytes)
}

/// The address a Binding success response to request `id` reports, if
/// `datagram` is one.
pub(crate) fn mapped_address(datagram: &[u8], id: TransactionId) -> Option<SocketAddr> {
    let response = MessageDecoder::<Attribute>::new()
        .decode_from_bytes(datagram)
        .ok()?
        .ok()?;
    let ours = response.class() == MessageClass::SuccessResponse
        && response.method() == BINDING
        && response.transaction_id() == id;
    ours.then(|| response.get_attribute::<XorMappedAddress>())
        .flatten()
        .map(XorMappedAddress::address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(class: MessageClass, id: TransactionId, addr: SocketAddr) -> Vec<u8> {
        let mut message = Message::<Attribute>::new(class, BINDING, id);
        message.add_attribute(XorMappedAddress::new(addr));
        MessageEncoder::new().encode_into_bytes(message).unwrap()
    }

    #[test]
    fn only_the_answer_to_our_request_counts() {
        let (id, request) = binding_request();
        assert_eq!(request.len(), 20);
        let (other, _) = binding_request();
        assert_ne!(id, other);
        let addr: SocketAddr = "198.51.100.7:40000".parse().unwrap();
        assert_eq!(
            mapped_address(&response(MessageClass::SuccessResponse, id, addr), id),
            Some(addr)
        );
        assert_eq!(
            mapped_address(&response(MessageClass::SuccessResponse, other, addr), id),
            None
        );
        assert_eq!(
            mapped_address(&response(MessageClass::ErrorResponse, id, addr), id),
            None
        );
        assert_eq!(mapped_address(&request, id), None);
        assert_eq!(mapped_address(b"not stun", id), None);
    }
}
