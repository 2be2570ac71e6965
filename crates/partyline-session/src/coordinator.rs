//! An HTTPS client for the coordinator API (see `partyline_wire::api`).
use std::time::Duration;

use partyline_proto::CoordinatorApi;
use partyline_proto::pin::find_pin_mismatch;
use partyline_proto::transport::LONG_POLL;
use partyline_wire::api::{ApiError, CreateSession, ServerInfo, SessionCreated, SessionView, path};
use partyline_wire::{CertPin, EndpointKey, ServerUrl, SessionId, SignedAnnouncement, WriteToken};
use serde::de::DeserializeOwned;

use crate::SessionError;
use crate::tls::pinned_http_client;

/// A coordinator we trust by certificate pin.
#[derive(Clone, Debug)]
pub struct Coordinator {
    http: reqwest::Client,
    base: ServerUrl,
    /// Shown with every change of the session (`partyline_wire::write_token`).
    write_token: Option<WriteToken>,
}

impl Coordinator {
    pub fn new(server: &ServerUrl, pin: CertPin) -> Self {
        Self {
            http: pinned_http_client(pin),
            base: server.clone(),
            write_token: None,
        }
    }

    /// The same coordinator, showing `token` with every change of a session:
    /// the token of the invite's secret.
    pub fn with_write_token(self, token: WriteToken) -> Self {
        Self {
            write_token: Some(token),
            ..self
        }
    }

    pub fn url(&self) -> &ServerUrl {
        &self.base
    }

    /// What the server is; refuses a server that speaks another peer protocol.
    pub async fn info(&self) -> Result<ServerInfo, SessionError> {
        let info: ServerInfo = self.send(self.http.get(self.path(path::INFO))).await?;
        partyline_proto::check_protocol(self.base.as_str(), &info)?;
        Ok(info)
    }

    /// Creates a session that only holders of `token` may change; the server
    /// keeps only the token's hash.
    pub async fn create(
        &self,
        parties: u16,
        label: Option<String>,
        token: &WriteToken,
    ) -> Result<SessionCreated, SessionError> {
        let body = CreateSession {
            parties,
            label,
            write_token_hash: token.hash(),
        };
        self.send(self.http.post(self.path(path::SESSIONS)).json(&body))
            .await
    }

    /// The session as the server sees it. With `seen`, the server holds the
    /// answer back until the number of announcements differs from it (long poll).
    pub async fn session(
        &self,
        id: &SessionId,
        seen: Option<usize>,
    ) -> Result<SessionView, SessionError> {
        let request = match seen {
            Some(seen) => self
                .http
                .get(self.path(&path::session_after(id, seen, LONG_POLL)))
                .timeout(LONG_POLL + Duration::from_secs(10)),
            None => self.http.get(self.path(&path::session(id))),
        };
        self.send(request).await
    }

    pub async fn announce(
        &self,
        id: &SessionId,
        signed: &SignedAnnouncement,
    ) -> Result<SessionView, SessionError> {
        let url = self.path(&path::announcements(id));
        self.send(self.authorized(self.http.post(url)).json(signed))
            .await
    }

    /// Withdraws our announcement: used when a party gives up before the mesh forms.
    pub async fn leave(&self, id: &SessionId, endpoint: &EndpointKey) -> Result<(), SessionError> {
        let url = self.path(&path::announcement(id, endpoint));
        self.send_empty(self.authorized(self.http.delete(url)))
            .await
    }

    pub async fn done(&self, id: &SessionId) -> Result<(), SessionError> {
        let url = self.path(&path::done(id));
        self.send_empty(self.authorized(self.http.post(url))).await
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.write_token {
            Some(token) => request.header(reqwest::header::AUTHORIZATION, token.bearer()),
            None => request,
        }
    }

    fn path(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, SessionError> {
        let response = self.check(request).await?;
        response
            .json()
            .await
            .map_err(|e| SessionError::BadResponse {
                url: self.base.to_string(),
                reason: e.to_string(),
            })
    }

    async fn send_empty(&self, request: reqwest::RequestBuilder) -> Result<(), SessionError> {
        self.check(request).await.map(drop)
    }

    async fn check(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SessionError> {
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let message = match response.json::<ApiError>().await {
            Ok(body) => body.error,
            Err(_) => status
                .canonical_reason()
                .unwrap_or("unknown error")
                .to_string(),
        };
        Err(SessionError::Api {
            status: status.as_u16(),
            message,
        })
    }

    fn transport_error(&self, error: reqwest::Error) -> SessionError {
        let url = self.base.to_string();
        match find_pin_mismatch(&error) {
            Some(mismatch) => SessionError::WrongCertificate { url, mismatch },
            None => SessionError::Unreachable {
                url,
                reason: error_chain(&error),
            },
        }
    }
}

impl CoordinatorApi for Coordinator {
    type Error = SessionError;

    async fn announce(
        &self,
        session: &SessionId,
        signed: &SignedAnnouncement,
    ) -> Result<SessionView, SessionError> {
        Coordinator::announce(self, session, signed).await
    }

    async fn wait_for_change(
        &self,
        session: &SessionId,
        seen: usize,
    ) -> Result<SessionView, SessionError> {
        self.session(session, Some(seen)).await
    }
}

/// The error and all its sources in one line: reqwest's own message alone
/// ("error sending request") does not say what happened.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    parts.join(": ")
}
