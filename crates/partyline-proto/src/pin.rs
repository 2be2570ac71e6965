//! Trusting our own server by certificate pin.
//!
//! partyline servers are self-hosted and usually have a self-signed
//! certificate, often on a bare IP address. Instead of a CA, the invite carries
//! the SHA-256 of the server's certificate: a party accepts exactly that
//! certificate, for the coordinator and for the relay, whatever the host name.
//! Handshake signatures are still checked with the certificate's key, so only
//! the holder of the pinned certificate's private key can complete the handshake.
//!
//! A browser cannot pin (it does TLS itself and hides the certificate), so
//! only native parties use this.
//!
//! A refused certificate is a typed error, [`PinMismatch`], carried the way
//! rustls carries a verifier's own errors
//! (`InvalidCertificate(CertificateError::Other(..))`); [`find_pin_mismatch`]
//! finds it again in whatever error chain an HTTP or QUIC client returns.
use std::sync::{Arc, Mutex};

use partyline_wire::CertPin;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError};
use sha2::{Digest, Sha256};

/// The crypto provider partyline uses everywhere (ring, as iroh does).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The pin of a DER-encoded certificate.
pub fn pin_of(cert_der: &[u8]) -> CertPin {
    CertPin(Sha256::digest(cert_der).into())
}

/// The server showed a certificate other than the pinned one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server's certificate (sha256 {shown}) is not the one this invite pins ({pinned}); someone may be impersonating the server"
)]
pub struct PinMismatch {
    pub shown: CertPin,
    pub pinned: CertPin,
}

/// Finds a [`PinMismatch`] in an error and its sources.
///
/// `std::io::Error` hides the error it wraps from `source()`, so it is
/// looked into explicitly: TLS libraries report handshake failures that way.
pub fn find_pin_mismatch(error: &(dyn std::error::Error + 'static)) -> Option<PinMismatch> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner)))) =
            error.downcast_ref::<rustls::Error>()
            && let Some(mismatch) = inner.downcast_ref::<PinMismatch>()
        {
            return Some(*mismatch);
        }
        if let Some(inner) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(mismatch) = find_pin_mismatch(inner)
        {
            return Some(mismatch);
        }
        next = error.source();
    }
    None
}

/// Accepts exactly the server certificate whose SHA-256 equals the pin.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    trust: Trust,
    algorithms: WebPkiSupportedAlgorithms,
}

#[derive(Debug)]
enum Trust {
    /// Any of these: the server's pin, and those of further relays it lists
    /// (iroh checks every relay of a party with one verifier).
    Pins(Vec<CertPin>),
    /// Trust on first use, for `partyline create` against a server given
    /// without a pin: any certificate is accepted and remembered. The pin it
    /// learns goes into the invite, so every joining party then checks the
    /// very certificate the creator saw.
    FirstUse(Arc<Mutex<Option<CertPin>>>),
}

impl PinnedCertVerifier {
    pub fn new(pin: CertPin, provider: &CryptoProvider) -> Self {
        Self::any_of(pin, Vec::new(), provider)
    }

    /// Accepts the certificate pinned by `pin` or by any of `more`.
    pub fn any_of(pin: CertPin, more: Vec<CertPin>, provider: &CryptoProvider) -> Self {
        let mut pins = vec![pin];
        pins.extend(more);
        Self {
            trust: Trust::Pins(pins),
            algorithms: provider.signature_verification_algorithms,
        }
    }

    /// Accepts any certificate and writes its pin into `seen`.
    pub fn first_use(seen: Arc<Mutex<Option<CertPin>>>, provider: &CryptoProvider) -> Self {
        Self {
            trust: Trust::FirstUse(seen),
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let shown = pin_of(end_entity);
        match &self.trust {
            Trust::Pins(pins) if pins.contains(&shown) => Ok(ServerCertVerified::assertion()),
            Trust::Pins(pins) => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch {
                    shown,
                    pinned: pins[0],
                })),
            ))),
            Trust::FirstUse(seen) => {
                *seen.lock().expect("never poisoned") = Some(shown);
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_certificate_is_a_typed_error_found_through_io_errors() {
        let provider = crypto_provider();
        let verifier = PinnedCertVerifier::new(CertPin([1; 32]), &provider);
        let cert = CertificateDer::from(vec![1, 2, 3]);
        let name = ServerName::try_from("example.org").unwrap();
        let refused = verifier
            .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        // How TLS streams hand a handshake failure to an HTTP client.
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, refused);
        assert_eq!(
            find_pin_mismatch(&wrapped),
            Some(PinMismatch {
                shown: pin_of(&[1, 2, 3]),
                pinned: CertPin([1; 32]),
            })
        );
        let other = std::io::Error::other("connection refused");
        assert_eq!(find_pin_mismatch(&other), None);

        let accepting = PinnedCertVerifier::new(pin_of(&[1, 2, 3]), &provider);
        assert!(
            accepting
                .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
    }
}
