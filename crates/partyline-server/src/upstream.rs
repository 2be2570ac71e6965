//! A relay of its own asks its coordinator whom to admit.
//!
//! The coordinator is trusted by certificate pin, as parties trust it, and
//! the relay shows the relay token on every request (`relay_api` answers).
//! An admission is remembered for [`ADMISSION_CACHE`]: iroh opens a new relay
//! connection before the old one is gone and reconnects after every network
//! change, and each would otherwise wait a round trip to a coordinator that
//! may be on another continent. Refusals are not remembered, so a party that
//! connects just before its announcement lands is let in on its next try.
//! The cache is short next to how often [`crate::relay_only`] asks which
//! sessions are still live, so it cannot keep an ended session in.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use partyline_proto::pin::{PinnedCertVerifier, crypto_provider};
use partyline_wire::api::{LiveSessions, RelayAdmission, RelayAdmitted, answer_limit, path};
use partyline_wire::{CertPin, EndpointKey, RelayToken, ServerUrl, SessionId};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::relay::error_chain;

/// How long an admission is taken as given.
pub(crate) const ADMISSION_CACHE: Duration = Duration::from_secs(10);
/// How long one question to the coordinator may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The most admissions remembered: a few per connection a relay holds.
const CACHE_ENTRIES: usize = 4096;

type Admission = (EndpointKey, Option<String>);

/// The coordinator, as a relay of its own reaches it.
pub(crate) struct Upstream {
    url: ServerUrl,
    http: reqwest::Client,
    bearer: String,
    admitted: Mutex<HashMap<Admission, (Instant, RelayAdmitted)>>,
}

impl Upstream {
    pub(crate) fn new(url: ServerUrl, pin: CertPin, token: &RelayToken) -> Self {
        let provider = crypto_provider();
        let verifier = Arc::new(PinnedCertVerifier::new(pin, &provider));
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("a client with a preconfigured rustls backend always builds");
        Self {
            url,
            http,
            bearer: token.bearer(),
            admitted: Mutex::default(),
        }
    }

    /// The live session that admits `endpoint` showing `token`, if any; a
    /// coordinator that cannot be asked admits no one.
    pub(crate) async fn admit(
        &self,
        endpoint: EndpointKey,
        token: Option<String>,
    ) -> Option<(SessionId, u16)> {
        let key = (endpoint, token);
        let now = Instant::now();
        if let Some((at, admitted)) = self.cache().get(&key)
            && now.duration_since(*at) < ADMISSION_CACHE
        {
            return Some((admitted.session, admitted.parties));
        }
        let asked = RelayAdmission {
            endpoint,
            token: key.1.clone(),
        };
        let admitted: RelayAdmitted = match self.post(path::RELAY_ADMISSIONS, &asked).await {
            Ok(Some(admitted)) => admitted,
            Ok(None) => return None,
            Err(reason) => {
                tracing::warn!(
                    "cannot ask the coordinator {} whom to admit: {reason}",
                    self.url
                );
                return None;
            }
        };
        let mut cache = self.cache();
        cache.retain(|_, (at, _)| now.duration_since(*at) < ADMISSION_CACHE);
        if cache.len() < CACHE_ENTRIES {
            cache.insert(key, (now, admitted.clone()));
        }
        Some((admitted.session, admitted.parties))
    }

    /// Those of `sessions` the coordinator still has live; `None` if it
    /// does not take our relay token.
    pub(crate) async fn live(
        &self,
        sessions: Vec<SessionId>,
    ) -> Result<Option<Vec<SessionId>>, String> {
        let asked = LiveSessions { sessions };
        let live: Option<LiveSessions> = self.post(path::RELAY_LIVE, &asked).await?;
        Ok(live.map(|live| live.sessions))
    }

    pub(crate) fn url(&self) -> &ServerUrl {
        &self.url
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Admission, (Instant, RelayAdmitted)>> {
        self.admitted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Posts `body`; `None` when the coordinator answers 404 (nothing found,
    /// or a relay token it does not know).
    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Option<T>, String> {
        let mut response = self
            .http
            .post(format!("{}{path}", self.url))
            .header(reqwest::header::AUTHORIZATION, &self.bearer)
            .json(body)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
            if bytes.len() + chunk.len() > answer_limit::RELAY {
                return Err(format!(
                    "its answer is longer than {} bytes",
                    answer_limit::RELAY
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(format!(
                "it answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("its answer is not what a partyline coordinator sends: {e}"))
    }
}
