//! An HTTPS client for the coordinator API (see `partyline_wire::api`).
//!
//! The coordinator is not trusted with a party's memory or time: every
//! answer is read in chunks and dropped once it passes its
//! [`answer_limit`], and every request ends by a time limit, at the latest
//! by the caller's deadline (`--timeout`), however slowly the server sends.
//!
//! A server that restarts while parties wait keeps their announcements (its
//! database survives), so reading the session and announcing, which is
//! idempotent, are asked again with back-off while the server cannot be
//! reached, until the deadline. Nothing else is: an answer, even a refusal or
//! a misbehaving one, is final.
//!
//! Several servers may share one database (PostgreSQL) and one certificate;
//! the server information names the others ([`ServerInfo::coordinators`]).
//! Those retries then go to the next address in turn, so parties whose
//! server died go on through another. Only servers showing the pinned
//! certificate are ever talked to, so a coordinator naming strangers there
//! gains nothing.
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use partyline_proto::pin::find_pin_mismatch;
use partyline_proto::transport::LONG_POLL;
use partyline_proto::{CodeRelay, CoordinatorApi};
use partyline_wire::api::{
    AllocateNameplate, ApiError, AttemptId, AttemptOpened, AttemptView, CodeMessage, CreateSession,
    NameplateAllocated, NameplateInfo, NameplateView, ServerInfo, SessionCreated, SessionView,
    answer_limit, path,
};
use partyline_wire::{
    CertPin, EndpointKey, Nameplate, ServerUrl, SessionId, SignedAnnouncement, WriteToken,
};
use serde::de::DeserializeOwned;
use tokio::time::timeout_at;

use crate::SessionError;
use crate::tls::pinned_http_client;

/// The longest a request other than a long poll may take, however far the
/// deadline is: a partyline server answers those in milliseconds.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(30);
/// How much longer than the hold it asked for a long poll may take to answer.
pub const LONG_POLL_GRACE: Duration = Duration::from_secs(10);
/// The limit of withdrawing and of reporting the end. Both come after the
/// deadline may have passed (a wait that timed out withdraws; the end follows
/// the program), so they have a short limit of their own instead.
pub const CLEANUP_LIMIT: Duration = Duration::from_secs(5);

/// The first pause before asking a server that cannot be reached again; it
/// doubles with every failed attempt up to [`RETRY_PAUSE_MAX`].
pub const RETRY_PAUSE_FIRST: Duration = Duration::from_millis(250);
/// The longest pause between attempts to reach a server that is down: a
/// restarted server is found within this of coming back.
pub const RETRY_PAUSE_MAX: Duration = Duration::from_secs(4);

/// The most addresses of one coordinator kept (see the module doc).
pub const MAX_ADDRESSES: usize = 8;

/// A coordinator we trust by certificate pin.
#[derive(Clone, Debug)]
pub struct Coordinator {
    http: reqwest::Client,
    /// Its addresses, the one requests go to first; shared by clones, so
    /// that what one learns and where it turned, all use.
    addresses: Arc<Mutex<Addresses>>,
    /// Shown with every change of the session (`partyline_wire::write_token`).
    write_token: Option<WriteToken>,
    /// No answer is awaited past it, but for withdrawing, reporting the end
    /// and the head of a long poll (see [`Coordinator::session`]).
    deadline: Option<Instant>,
}

/// What an answer is, for its size limit and for the error that names it.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Info,
    Created,
    Session,
    /// Anything about a nameplate (short codes).
    Code,
    /// Withdrawing and reporting the end answer with no body.
    Empty,
}

impl Answer {
    fn limit(self) -> usize {
        match self {
            Answer::Info => answer_limit::INFO,
            Answer::Created => answer_limit::CREATED,
            Answer::Session => answer_limit::SESSION,
            Answer::Code => answer_limit::CODE,
            Answer::Empty => answer_limit::ERROR,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Answer::Info => "its server information",
            Answer::Created => "the new session",
            Answer::Session => "the session",
            Answer::Code => "the code exchange",
            Answer::Empty => "its acknowledgement",
        }
    }
}

/// By when an exchange must be over.
#[derive(Clone, Copy, Debug)]
enum Limits {
    /// The head and the whole body by this instant.
    Total(Instant),
    /// A long poll: the head by this instant; then the body within
    /// [`REQUEST_LIMIT`] and by the deadline.
    LongPoll { head: Instant },
}

/// The addresses of one coordinator: the one given, then the ones its server
/// information named.
#[derive(Debug)]
struct Addresses {
    list: Vec<ServerUrl>,
    current: usize,
}

impl Addresses {
    fn current(&self) -> &ServerUrl {
        &self.list[self.current]
    }
}

impl Coordinator {
    pub fn new(server: &ServerUrl, pin: CertPin) -> Self {
        Self {
            http: pinned_http_client(pin),
            addresses: Arc::new(Mutex::new(Addresses {
                list: vec![server.clone()],
                current: 0,
            })),
            write_token: None,
            deadline: None,
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

    /// The same coordinator, giving up on any answer still missing at
    /// `deadline` (withdrawing and reporting the end excepted: [`CLEANUP_LIMIT`]).
    pub fn with_deadline(self, deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            ..self
        }
    }

    /// The address requests go to now.
    pub fn url(&self) -> ServerUrl {
        self.addresses().current().clone()
    }

    /// Every address known, the one given first.
    pub fn urls(&self) -> Vec<ServerUrl> {
        self.addresses().list.clone()
    }

    fn addresses(&self) -> std::sync::MutexGuard<'_, Addresses> {
        self.addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds the addresses a server's information names, up to [`MAX_ADDRESSES`].
    fn learn(&self, urls: &[String]) {
        let mut addresses = self.addresses();
        for url in urls {
            let Ok(url) = url.parse::<ServerUrl>() else {
                tracing::debug!("the coordinator names {url:?}, which is no server address");
                continue;
            };
            if addresses.list.len() < MAX_ADDRESSES && !addresses.list.contains(&url) {
                addresses.list.push(url);
            }
        }
    }

    /// Turns to the next address, if there is another; returns it.
    fn fail_over(&self) -> Option<ServerUrl> {
        let mut addresses = self.addresses();
        if addresses.list.len() < 2 {
            return None;
        }
        addresses.current = (addresses.current + 1) % addresses.list.len();
        Some(addresses.current().clone())
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// What the server is; refuses a server that speaks another peer protocol.
    pub async fn info(&self) -> Result<ServerInfo, SessionError> {
        let request = self.http.get(self.path(path::INFO));
        let info: ServerInfo = self.send(request, Answer::Info, self.plain()).await?;
        partyline_proto::check_protocol(self.url().as_str(), &info)?;
        self.learn(&info.coordinators);
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
        let request = self.http.post(self.path(path::SESSIONS)).json(&body);
        self.send(request, Answer::Created, self.plain()).await
    }

    /// The session as the server sees it. With `seen`, the server holds the
    /// answer back until the number of announcements differs from it (long
    /// poll), at most [`LONG_POLL`] and not past the deadline.
    ///
    /// A long poll's head may come up to [`LONG_POLL_GRACE`] after the hold:
    /// until the head comes, a slow server cannot be told from a session
    /// where nothing happens, which the caller's own wait ends
    /// (`partyline_proto::join`). Its body must come by the deadline.
    ///
    /// While the server cannot be reached (it restarts), asks again with
    /// back-off until the deadline; see [`Coordinator::retrying`].
    pub async fn session(
        &self,
        id: &SessionId,
        seen: Option<usize>,
    ) -> Result<SessionView, SessionError> {
        self.retrying(|| self.session_once(id, seen)).await
    }

    async fn session_once(
        &self,
        id: &SessionId,
        seen: Option<usize>,
    ) -> Result<SessionView, SessionError> {
        let Some(seen) = seen else {
            let request = self.http.get(self.path(&path::session(id)));
            return self.send(request, Answer::Session, self.plain()).await;
        };
        let hold = self.hold();
        let request = self
            .http
            .get(self.path(&path::session_after(id, seen, hold)));
        let head = Instant::now() + hold + LONG_POLL_GRACE;
        self.send(request, Answer::Session, Limits::LongPoll { head })
            .await
    }

    /// Announces us; announcing is idempotent, so it is asked again while
    /// the server cannot be reached, like [`Coordinator::session`].
    pub async fn announce(
        &self,
        id: &SessionId,
        signed: &SignedAnnouncement,
    ) -> Result<SessionView, SessionError> {
        self.retrying(|| {
            let url = self.path(&path::announcements(id));
            let request = self.authorized(self.http.post(url)).json(signed);
            self.send(request, Answer::Session, self.plain())
        })
        .await
    }

    /// Withdraws our announcement: used when a party gives up before the mesh forms.
    pub async fn leave(&self, id: &SessionId, endpoint: &EndpointKey) -> Result<(), SessionError> {
        let url = self.path(&path::announcement(id, endpoint));
        let request = self.authorized(self.http.delete(url));
        self.exchange(request, Answer::Empty, cleanup())
            .await
            .map(drop)
    }

    pub async fn done(&self, id: &SessionId) -> Result<(), SessionError> {
        let url = self.path(&path::done(id));
        let request = self.authorized(self.http.post(url));
        self.exchange(request, Answer::Empty, cleanup())
            .await
            .map(drop)
    }

    /// Takes a nameplate for our session (the host of a short code).
    pub async fn allocate_nameplate(
        &self,
        session: &SessionId,
    ) -> Result<NameplateAllocated, SessionError> {
        let body = AllocateNameplate { session: *session };
        let request = self
            .authorized(self.http.post(self.path(path::NAMEPLATES)))
            .json(&body);
        self.send(request, Answer::Code, self.plain()).await
    }

    /// Frees our nameplate: its code stops working.
    pub async fn release_nameplate(&self, nameplate: Nameplate) -> Result<(), SessionError> {
        let request = self.authorized(self.http.delete(self.path(&path::nameplate(nameplate))));
        self.exchange(request, Answer::Empty, cleanup())
            .await
            .map(drop)
    }

    /// Burns our nameplate: every later attempt is refused, and told so.
    pub async fn burn_nameplate(&self, nameplate: Nameplate) -> Result<(), SessionError> {
        let request = self.authorized(self.http.post(self.path(&path::burn(nameplate))));
        self.exchange(request, Answer::Empty, self.plain())
            .await
            .map(drop)
    }

    /// Our nameplate's attempts once the joiners' messages differ from
    /// `seen` changes (long poll, as [`Coordinator::session`]).
    pub async fn attempts(
        &self,
        nameplate: Nameplate,
        seen: u64,
    ) -> Result<NameplateView, SessionError> {
        let hold = self.hold();
        self.retrying(|| {
            let url = self.path(&path::attempts_after(nameplate, seen, hold));
            let request = self.authorized(self.http.get(url));
            let head = Instant::now() + hold + LONG_POLL_GRACE;
            self.send(request, Answer::Code, Limits::LongPoll { head })
        })
        .await
    }

    /// Sends the host's next message of an attempt.
    pub async fn host_message(
        &self,
        nameplate: Nameplate,
        attempt: &AttemptId,
        message: &str,
    ) -> Result<(), SessionError> {
        let url = self.path(&path::attempt_host(nameplate, attempt));
        self.post_message(self.authorized(self.http.post(url)), message)
            .await
    }

    /// Posts one message of a code exchange.
    async fn post_message(
        &self,
        request: reqwest::RequestBuilder,
        message: &str,
    ) -> Result<(), SessionError> {
        let body = CodeMessage {
            message: message.to_string(),
        };
        self.exchange(request.json(&body), Answer::Empty, self.plain())
            .await
            .map(drop)
    }

    /// How long a long poll asks to be held: [`LONG_POLL`], not past the deadline.
    fn hold(&self) -> Duration {
        match self.deadline {
            Some(deadline) => LONG_POLL.min(whole_seconds(left_until(deadline))),
            None => LONG_POLL,
        }
    }

    /// Runs `attempt` until it ends with anything but a failure to reach the
    /// server (refused, reset, closed before the answer), pausing
    /// [`RETRY_PAUSE_FIRST`] doubling to [`RETRY_PAUSE_MAX`] in between and
    /// turning to the coordinator's next address if it has another, and
    /// says so once per outage or address. Without a deadline, or when the next attempt
    /// would start past it, the failure is returned.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, SessionError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SessionError>>,
    {
        let mut pause = RETRY_PAUSE_FIRST;
        let mut said = false;
        loop {
            let (url, reason) = match attempt().await {
                Err(SessionError::Unreachable { url, reason }) => (url, reason),
                answered => {
                    if said {
                        tracing::warn!("the coordinator at {} answers again", self.url());
                    }
                    return answered;
                }
            };
            let deadline = match self.deadline {
                Some(deadline) if Instant::now() + pause < deadline => deadline,
                _ => return Err(SessionError::Unreachable { url, reason }),
            };
            if let Some(next) = self.fail_over() {
                tracing::warn!(
                    "the coordinator at {url} is not answering ({reason}); trying its other address {next}"
                );
            } else if !said {
                tracing::warn!(
                    "the coordinator at {url} is not answering ({reason}); retrying until --timeout runs out in {}s",
                    left_until(deadline).as_secs()
                );
            }
            said = true;
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_PAUSE_MAX);
        }
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.write_token {
            Some(token) => request.header(reqwest::header::AUTHORIZATION, token.bearer()),
            None => request,
        }
    }

    fn path(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    /// `limit`, or less if the deadline comes sooner.
    fn time_left(&self, limit: Duration) -> Duration {
        match self.deadline {
            Some(deadline) => limit.min(left_until(deadline)),
            None => limit,
        }
    }

    /// The limits of a request that is not a long poll: head and body
    /// together within [`REQUEST_LIMIT`] and the deadline.
    fn plain(&self) -> Limits {
        Limits::Total(Instant::now() + self.time_left(REQUEST_LIMIT))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        answer: Answer,
        limits: Limits,
    ) -> Result<T, SessionError> {
        let body = self.exchange(request, answer, limits).await?;
        serde_json::from_slice(&body).map_err(|e| SessionError::BadResponse {
            url: self.url().to_string(),
            reason: e.to_string(),
        })
    }

    /// Sends `request` and reads its answer within `limits` and the size
    /// limit of `answer`; a refusal becomes [`SessionError::Api`].
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        answer: Answer,
        limits: Limits,
    ) -> Result<Vec<u8>, SessionError> {
        let started = Instant::now();
        let too_slow = |what: &'static str| SessionError::TooSlow {
            url: self.url().to_string(),
            what,
            waited: started.elapsed(),
        };
        let head_until = match limits {
            Limits::Total(until) | Limits::LongPoll { head: until } => until,
        };
        let response = timeout_at(head_until.into(), request.send())
            .await
            .map_err(|_| too_slow(answer.what()))?
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let (limit, what) = if status.is_success() {
            (answer.limit(), answer.what())
        } else {
            (answer_limit::ERROR, "its refusal")
        };
        let body_until = match limits {
            Limits::Total(until) => until,
            Limits::LongPoll { .. } => Instant::now() + self.time_left(REQUEST_LIMIT),
        };
        let body = timeout_at(body_until.into(), self.read_body(response, limit, what))
            .await
            .map_err(|_| too_slow(what))??;
        if status.is_success() {
            return Ok(body);
        }
        let message = match serde_json::from_slice::<ApiError>(&body) {
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

    /// The body of `response`, read chunk by chunk and given up as soon as
    /// it passes `limit` bytes.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        limit: usize,
        what: &'static str,
    ) -> Result<Vec<u8>, SessionError> {
        let too_large = || SessionError::TooLarge {
            url: self.url().to_string(),
            what,
            limit,
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, error: reqwest::Error) -> SessionError {
        let url = self.url().to_string();
        match find_pin_mismatch(&error) {
            Some(mismatch) => SessionError::WrongCertificate { url, mismatch },
            None => SessionError::Unreachable {
                url,
                reason: error_chain(&error),
            },
        }
    }
}

/// The limits of withdrawing and reporting the end: [`CLEANUP_LIMIT`] in all.
fn cleanup() -> Limits {
    Limits::Total(Instant::now() + CLEANUP_LIMIT)
}

fn left_until(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// `duration` rounded up to whole seconds, the long poll's unit: a hold that
/// ends a little after the deadline rather than a burst of zero-second polls
/// before it.
fn whole_seconds(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs() + u64::from(duration.subsec_nanos() > 0))
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

impl CodeRelay for Coordinator {
    type Error = SessionError;

    async fn nameplate(&self, nameplate: Nameplate) -> Result<NameplateInfo, SessionError> {
        let request = self.http.get(self.path(&path::nameplate(nameplate)));
        self.send(request, Answer::Code, self.plain()).await
    }

    async fn open_attempt(
        &self,
        nameplate: Nameplate,
        message: &str,
    ) -> Result<AttemptId, SessionError> {
        let body = CodeMessage {
            message: message.to_string(),
        };
        let request = self
            .http
            .post(self.path(&path::attempts(nameplate)))
            .json(&body);
        let opened: AttemptOpened = self.send(request, Answer::Code, self.plain()).await?;
        Ok(opened.attempt)
    }

    async fn send(
        &self,
        nameplate: Nameplate,
        attempt: &AttemptId,
        message: &str,
    ) -> Result<(), SessionError> {
        let url = self.path(&path::attempt_joiner(nameplate, attempt));
        self.post_message(self.http.post(url), message).await
    }

    async fn wait_for_host(
        &self,
        nameplate: Nameplate,
        attempt: &AttemptId,
        seen: usize,
    ) -> Result<AttemptView, SessionError> {
        let hold = self.hold();
        let url = self.path(&path::attempt_after(nameplate, attempt, seen, hold));
        let head = Instant::now() + hold + LONG_POLL_GRACE;
        self.send(self.http.get(url), Answer::Code, Limits::LongPoll { head })
            .await
    }

    fn refusal_status(error: &SessionError) -> Option<u16> {
        match error {
            SessionError::Api { status, .. } => Some(*status),
            _ => None,
        }
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
