//! TLS towards our own server, trusted by certificate pin.
//!
//! partyline servers are self-hosted and usually have a self-signed
//! certificate, often on a bare IP address. Instead of a CA, the invite carries
//! the SHA-256 of the server's certificate: a party accepts exactly that
//! certificate, for the coordinator and for the relay, whatever the host name.
//! Handshake signatures are still checked with the certificate's key, so only
//! the holder of the pinned certificate's private key can complete the handshake.
use std::sync::Arc;

use partyline_wire::CertPin;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

/// The crypto provider partyline uses everywhere (ring, as iroh does).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The pin of a DER-encoded certificate.
pub fn pin_of(cert_der: &[u8]) -> CertPin {
    CertPin(Sha256::digest(cert_der).into())
}

/// Accepts exactly the server certificate whose SHA-256 equals the pin.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    trust: Trust,
    algorithms: WebPkiSupportedAlgorithms,
}

#[derive(Debug)]
enum Trust {
    Pin(CertPin),
    /// Trust on first use, for `partyline create` against a server given
    /// without a pin: any certificate is accepted and remembered. The pin it
    /// learns goes into the invite, so every joining party then checks the
    /// very certificate the creator saw.
    FirstUse(Arc<std::sync::Mutex<Option<CertPin>>>),
}

impl PinnedCertVerifier {
    pub fn new(pin: CertPin, provider: &CryptoProvider) -> Self {
        Self {
            trust: Trust::Pin(pin),
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
            Trust::Pin(pin) if *pin == shown => Ok(ServerCertVerified::assertion()),
            Trust::Pin(pin) => Err(rustls::Error::General(format!(
                "the server's certificate (sha256 {shown}) is not the one this invite pins ({pin}); someone may be impersonating the server"
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

fn client_config(
    verifier: Arc<PinnedCertVerifier>,
    provider: Arc<CryptoProvider>,
) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

fn http_client(config: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("a client with a preconfigured rustls backend always builds")
}

/// Connects to the server once and returns the pin of the certificate it shows.
pub async fn learn_pin(server_url: &str) -> Result<CertPin, crate::SessionError> {
    let provider = crypto_provider();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let verifier = Arc::new(PinnedCertVerifier {
        trust: Trust::FirstUse(seen.clone()),
        algorithms: provider.signature_verification_algorithms,
    });
    let client = http_client(client_config(verifier, provider));
    let unreachable = |reason: String| crate::SessionError::Unreachable {
        url: server_url.to_string(),
        reason,
    };
    client
        .get(format!("{server_url}/v1/info"))
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let seen = *seen.lock().expect("never poisoned");
    seen.ok_or_else(|| unreachable("the server presented no certificate".into()))
}

/// A rustls client configuration that trusts only the pinned certificate.
pub fn pinned_client_config(pin: CertPin) -> rustls::ClientConfig {
    let provider = crypto_provider();
    let verifier = Arc::new(PinnedCertVerifier::new(pin, &provider));
    client_config(verifier, provider)
}

/// An HTTP client for the coordinator that trusts only the pinned certificate.
pub fn pinned_http_client(pin: CertPin) -> reqwest::Client {
    http_client(pinned_client_config(pin))
}
