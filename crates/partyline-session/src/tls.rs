//! HTTPS clients towards our own server, trusted by certificate pin
//! (`partyline_proto::pin` says why and how).
use std::sync::Arc;
use std::time::Instant;

pub use partyline_proto::pin::{PinnedCertVerifier, crypto_provider, pin_of};
use partyline_wire::{CertPin, ServerUrl};
use rustls::crypto::CryptoProvider;

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

/// Connects to the server once and returns the pin of the certificate it
/// shows, giving up at `deadline`.
pub async fn learn_pin(
    server_url: &ServerUrl,
    deadline: Instant,
) -> Result<CertPin, crate::SessionError> {
    let provider = crypto_provider();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let verifier = Arc::new(PinnedCertVerifier::first_use(seen.clone(), &provider));
    let client = http_client(client_config(verifier, provider));
    let started = Instant::now();
    let unreachable = |reason: String| crate::SessionError::Unreachable {
        url: server_url.to_string(),
        reason,
    };
    let request = client
        .get(format!("{server_url}{}", partyline_wire::api::path::INFO))
        .send();
    // Only the handshake matters: the answer is dropped unread.
    tokio::time::timeout_at(deadline.into(), request)
        .await
        .map_err(|_| crate::SessionError::TooSlow {
            url: server_url.to_string(),
            what: "its server information",
            waited: started.elapsed(),
        })?
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
