//! STUN's Binding method (RFC 8489), and nothing else of STUN: a client asks
//! from a UDP socket and is told the address and port its packets arrive
//! from (XOR-MAPPED-ADDRESS). Browser parties list this responder as their
//! ICE server, and native parties ask it for the address a NAT maps their
//! WebRTC socket to (their server-reflexive candidate).
//!
//! No TURN, no authentication, no other method: whatever is not a
//! well-formed Binding request (garbage, responses, indications, other
//! methods, a request with an attribute the responder would have to
//! understand) gets no answer. Each request gets one response of 32 bytes
//! (44 for an IPv6 client) and no more, against at least 20 bytes asked:
//! with a forged source address the responder sends at most 1.6 times (2.2
//! for IPv6) what it was sent, to one address per request, so it is no
//! useful amplifier.
use std::net::SocketAddr;

use bytecodec::{DecodeExt, EncodeExt};
use stun_codec::rfc5389::Attribute;
use stun_codec::rfc5389::attributes::XorMappedAddress;
use stun_codec::rfc5389::methods::BINDING;
use stun_codec::{Attribute as _, Message, MessageClass, MessageDecoder, MessageEncoder};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::ServerError;

/// STUN's registered port (RFC 8489): the port an operator's firewall rules
/// and a browser's tools expect.
pub const STANDARD_PORT: u16 = 3478;

/// The largest request read: a Binding request needs 20 bytes and, from
/// anyone we answer, carries a few small attributes at most. A longer
/// datagram arrives cut and then fails its length check.
const REQUEST_MAX: usize = 548;

/// Where the STUN responder listens, on UDP at the relay's IP address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StunPort {
    /// [`STANDARD_PORT`], or any free port if that one is taken (with a
    /// warning) or if the coordinator's `listen` asks for any free port.
    #[default]
    Standard,
    /// This port (0: any free one); the server does not start if it is taken.
    Port(u16),
    /// No STUN responder.
    Off,
}

/// A running STUN responder; it stops when dropped.
#[derive(Debug)]
pub(crate) struct StunResponder {
    pub(crate) port: u16,
    task: JoinHandle<()>,
}

impl Drop for StunResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StunResponder {
    /// Binds `ip` at the port `wanted` asks for; `any_port` turns
    /// [`StunPort::Standard`] into any free port. `None` for [`StunPort::Off`].
    pub(crate) async fn spawn(
        ip: std::net::IpAddr,
        wanted: StunPort,
        any_port: bool,
    ) -> Result<Option<Self>, ServerError> {
        let socket = match wanted {
            StunPort::Off => return Ok(None),
            StunPort::Standard if any_port => bind(SocketAddr::new(ip, 0)).await?,
            StunPort::Standard => match bind(SocketAddr::new(ip, STANDARD_PORT)).await {
                Ok(socket) => socket,
                Err(e) => {
                    tracing::warn!(
                        "STUN's standard port {STANDARD_PORT} is not free ({e}): STUN answers \
                         on another port, which /v1/info names; open that one in the firewall, \
                         or pass --stun-port"
                    );
                    bind(SocketAddr::new(ip, 0)).await?
                }
            },
            StunPort::Port(port) => bind(SocketAddr::new(ip, port)).await?,
        };
        let port = socket
            .local_addr()
            .map_err(|source| ServerError::Stun {
                port: 0,
                reason: source.to_string(),
            })?
            .port();
        let task = tokio::spawn(answer_until_stopped(socket));
        Ok(Some(Self { port, task }))
    }
}

async fn bind(addr: SocketAddr) -> Result<UdpSocket, ServerError> {
    UdpSocket::bind(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => ServerError::StunPortInUse { port: addr.port() },
        _ => ServerError::Stun {
            port: addr.port(),
            reason: e.to_string(),
        },
    })
}

async fn answer_until_stopped(socket: UdpSocket) {
    let mut request = [0u8; REQUEST_MAX];
    loop {
        let (len, from) = match socket.recv_from(&mut request).await {
            Ok(received) => received,
            // An ICMP error from an earlier answer, or a passing failure.
            Err(e) => {
                tracing::debug!("STUN socket: {e}");
                continue;
            }
        };
        if let Some(response) = binding_response(&request[..len], from) {
            tracing::trace!(%from, "STUN: told a client its address");
            if let Err(e) = socket.send_to(&response, from).await {
                tracing::debug!("STUN answer to {from} not sent: {e}");
            }
        }
    }
}

/// The success response to `request` if it is a well-formed Binding request,
/// telling `from` its own address; `None` for anything else.
pub(crate) fn binding_response(request: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    let request = MessageDecoder::<Attribute>::new()
        .decode_from_bytes(request)
        .ok()?
        .ok()?;
    let must_understand = request
        .unknown_attributes()
        .any(|a| a.get_type().is_comprehension_required());
    if request.class() != MessageClass::Request || request.method() != BINDING || must_understand {
        return None;
    }
    let mut response = Message::<Attribute>::new(
        MessageClass::SuccessResponse,
        BINDING,
        request.transaction_id(),
    );
    let from = SocketAddr::new(from.ip().to_canonical(), from.port());
    response.add_attribute(XorMappedAddress::new(from));
    MessageEncoder::new().encode_into_bytes(response).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use stun_codec::TransactionId;
    use stun_codec::rfc5389::attributes::Software;

    use super::*;

    fn encode(message: Message<Attribute>) -> Vec<u8> {
        MessageEncoder::new().encode_into_bytes(message).unwrap()
    }

    fn mapped(response: &[u8]) -> (TransactionId, SocketAddr) {
        let message = MessageDecoder::<Attribute>::new()
            .decode_from_bytes(response)
            .unwrap()
            .unwrap();
        assert_eq!(message.class(), MessageClass::SuccessResponse);
        assert_eq!(message.attributes().count(), 1, "nothing but the address");
        let address = message.get_attribute::<XorMappedAddress>().unwrap();
        (message.transaction_id(), address.address())
    }

    #[test]
    fn a_binding_request_is_told_its_address_and_nothing_more() {
        let id = TransactionId::new([7; 12]);
        let request = encode(Message::new(MessageClass::Request, BINDING, id));
        assert_eq!(request.len(), 20);
        for from in ["192.0.2.1:32853", "[2001:db8::1]:40000"] {
            let from: SocketAddr = from.parse().unwrap();
            let response = binding_response(&request, from).unwrap();
            assert_eq!(mapped(&response), (id, from));
            assert_eq!(response.len(), if from.is_ipv4() { 32 } else { 44 });
        }
        // A dual-stack socket sees IPv4 clients as mapped IPv6 addresses.
        let v4_mapped: SocketAddr = "[::ffff:192.0.2.1]:5".parse().unwrap();
        let response = binding_response(&request, v4_mapped).unwrap();
        assert_eq!(mapped(&response).1, "192.0.2.1:5".parse().unwrap());
    }

    #[test]
    fn optional_attributes_are_no_reason_to_refuse() {
        let mut request = Message::new(MessageClass::Request, BINDING, TransactionId::new([1; 12]));
        request.add_attribute(Software::new("a browser".to_string()).unwrap());
        let from = "192.0.2.1:1".parse().unwrap();
        assert!(binding_response(&encode(request), from).is_some());
    }

    #[test]
    fn everything_but_a_binding_request_is_ignored() {
        let from = "192.0.2.1:1".parse().unwrap();
        let id = TransactionId::new([2; 12]);
        for class in [
            MessageClass::Indication,
            MessageClass::SuccessResponse,
            MessageClass::ErrorResponse,
        ] {
            let message = encode(Message::new(class, BINDING, id));
            assert_eq!(binding_response(&message, from), None, "{class:?}");
        }
        // TURN's Allocate (0x003).
        let allocate = stun_codec::Method::new(0x003).unwrap();
        let message = encode(Message::new(MessageClass::Request, allocate, id));
        assert_eq!(binding_response(&message, from), None);
        // A comprehension-required attribute we do not know (0x0026).
        let mut unknown = encode(Message::new(MessageClass::Request, BINDING, id));
        unknown[3] = 8;
        unknown.extend([0x00, 0x26, 0x00, 0x04, 1, 2, 3, 4]);
        assert_eq!(binding_response(&unknown, from), None);
        // Cut short, too long, or not STUN at all.
        let request = encode(Message::new(MessageClass::Request, BINDING, id));
        assert_eq!(binding_response(&request[..19], from), None);
        assert_eq!(
            binding_response(&[request.clone(), vec![0]].concat(), from),
            None
        );
        assert_eq!(binding_response(b"GET / HTTP/1.1\r\n\r\n..", from), None);
        let mut no_cookie = request;
        no_cookie[4] ^= 1;
        assert_eq!(binding_response(&no_cookie, from), None);
    }

    proptest! {
        #[test]
        fn any_bytes_are_answered_at_most_once_and_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..REQUEST_MAX),
        ) {
            let from = "192.0.2.1:1".parse().unwrap();
            if let Some(response) = binding_response(&bytes, from) {
                prop_assert!(response.len() <= 44);
            }
        }

        #[test]
        fn well_formed_headers_with_any_attributes_never_panic(
            attributes in proptest::collection::vec(any::<u8>(), 0..64),
            class_and_method in any::<u16>(),
        ) {
            let mut bytes = (class_and_method & 0x3fff).to_be_bytes().to_vec();
            bytes.extend(u16::try_from(attributes.len()).unwrap().to_be_bytes());
            bytes.extend([0x21, 0x12, 0xa4, 0x42]);
            bytes.extend([9; 12]);
            bytes.extend(attributes);
            let _ = binding_response(&bytes, "192.0.2.1:1".parse().unwrap());
        }
    }
}
