//! Nameplates and the relay of short codes' PAKE messages: only a session's
//! write token takes or works a nameplate, joiners need only its number,
//! messages pass as they were sent within the size and count limits, long
//! polls wake on the other side's message, a burned nameplate says so, and
//! a nameplate goes with its session.
mod common;

use common::{api_error, create, get_json, within, write_token};
use partyline_wire::api::{
    AllocateNameplate, AttemptId, AttemptOpened, AttemptView, CodeMessage, NameplateAllocated,
    NameplateInfo, NameplateView, path,
};
use partyline_wire::{InviteSecret, Nameplate, SessionId, WriteToken};
use reqwest::{Client, Response, StatusCode};

struct Api<'a> {
    client: &'a Client,
    base: String,
}

impl Api<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn allocate(&self, session: SessionId, token: Option<WriteToken>) -> Response {
        let mut request = self
            .client
            .post(self.url(path::NAMEPLATES))
            .json(&AllocateNameplate { session });
        if let Some(token) = token {
            request = request.header("authorization", token.bearer());
        }
        request.send().await.unwrap()
    }

    async fn allocated(&self, session: SessionId) -> Nameplate {
        let response = self.allocate(session, Some(write_token())).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response
            .json::<NameplateAllocated>()
            .await
            .unwrap()
            .nameplate
    }

    async fn open(&self, nameplate: Nameplate, message: &str) -> Response {
        self.client
            .post(self.url(&path::attempts(nameplate)))
            .json(&CodeMessage {
                message: message.into(),
            })
            .send()
            .await
            .unwrap()
    }

    async fn opened(&self, nameplate: Nameplate, message: &str) -> AttemptId {
        let response = self.open(nameplate, message).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<AttemptOpened>().await.unwrap().attempt
    }

    async fn joiner(&self, nameplate: Nameplate, attempt: &AttemptId, message: &str) -> Response {
        self.client
            .post(self.url(&path::attempt_joiner(nameplate, attempt)))
            .json(&CodeMessage {
                message: message.into(),
            })
            .send()
            .await
            .unwrap()
    }

    async fn host(
        &self,
        nameplate: Nameplate,
        attempt: &AttemptId,
        token: Option<WriteToken>,
        message: &str,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(&path::attempt_host(nameplate, attempt)))
            .json(&CodeMessage {
                message: message.into(),
            });
        if let Some(token) = token {
            request = request.header("authorization", token.bearer());
        }
        request.send().await.unwrap()
    }

    async fn host_view(&self, nameplate: Nameplate, seen: u64, wait: u64) -> NameplateView {
        let url = self.url(&path::attempts_after(
            nameplate,
            seen,
            std::time::Duration::from_secs(wait),
        ));
        let response = self
            .client
            .get(url)
            .header("authorization", write_token().bearer())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn info(&self, nameplate: Nameplate) -> Response {
        self.client
            .get(self.url(&path::nameplate(nameplate)))
            .send()
            .await
            .unwrap()
    }

    async fn as_host(&self, method: reqwest::Method, path: String) -> Response {
        self.client
            .request(method, self.url(&path))
            .header("authorization", write_token().bearer())
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nameplates_relay_code_messages_within_their_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = common::start(common::config(dir.path())).await;
    let api = Api {
        client: &client,
        base: server.url().to_string(),
    };
    let session = create(&client, &server, 2).await.session;

    // Only the session's write token takes a nameplate; one per session.
    let none = api.allocate(session, None).await;
    api_error(none, StatusCode::UNAUTHORIZED).await;
    let other = WriteToken::derive(&InviteSecret([8; 16]));
    api_error(
        api.allocate(session, Some(other)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let nameplate = api.allocated(session).await;
    assert_eq!(nameplate, Nameplate(1), "the lowest free number");
    let again = api.allocate(session, Some(write_token())).await;
    assert!(
        api_error(again, StatusCode::CONFLICT)
            .await
            .contains("has a code already")
    );
    let second = create(&client, &server, 2).await.session;
    assert_eq!(api.allocated(second).await, Nameplate(2));

    // A joiner finds the session by the number alone.
    let info: NameplateInfo = get_json(&client, api.url(&path::nameplate(nameplate))).await;
    assert_eq!(info.session, session);
    let missing = api_error(api.info(Nameplate(77)).await, StatusCode::NOT_FOUND).await;
    assert!(missing.contains("no code with number 77"), "{missing}");

    // The host's long poll wakes on a joiner's first message, which passes as sent.
    let poll = api.host_view(nameplate, 0, 0).await;
    assert!(poll.attempts.is_empty());
    let waiting = api.host_view(nameplate, poll.changes, 20);
    let attempt = api.opened(nameplate, "joiner one").await;
    let view = within(10, waiting).await;
    assert_eq!(view.attempts.len(), 1);
    assert_eq!(view.attempts[0].attempt, attempt);
    assert_eq!(view.attempts[0].joiner, ["joiner one"]);

    // Only the host answers, and the joiner's long poll wakes on it.
    let stranger = api.host(nameplate, &attempt, None, "forged").await;
    api_error(stranger, StatusCode::UNAUTHORIZED).await;
    let url = api.url(&path::attempt_after(
        nameplate,
        &attempt,
        0,
        std::time::Duration::from_secs(20),
    ));
    let joiner_waits = get_json::<AttemptView>(&client, url);
    let answered = api
        .host(nameplate, &attempt, Some(write_token()), "host one")
        .await;
    assert_eq!(answered.status(), StatusCode::NO_CONTENT);
    assert_eq!(within(10, joiner_waits).await.host, ["host one"]);

    // Two messages a side, each at most 512 bytes.
    let big = api.joiner(nameplate, &attempt, &"x".repeat(513)).await;
    api_error(big, StatusCode::PAYLOAD_TOO_LARGE).await;
    let ok = api.joiner(nameplate, &attempt, "joiner two").await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    let third = api.joiner(nameplate, &attempt, "joiner three").await;
    api_error(third, StatusCode::CONFLICT).await;

    // At most 8 attempts under way on a nameplate.
    for n in 2..=8 {
        api.opened(nameplate, &format!("joiner {n}")).await;
    }
    let ninth = api_error(
        api.open(nameplate, "joiner 9").await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert!(ninth.contains("try again in a minute"), "{ninth}");

    // Burned: every later attempt, and the joiners' polls, are told so.
    let burned = api
        .as_host(reqwest::Method::POST, path::burn(nameplate))
        .await;
    assert_eq!(burned.status(), StatusCode::NO_CONTENT);
    let told = api_error(api.info(nameplate).await, StatusCode::GONE).await;
    assert!(
        told.contains("was burned") && told.contains("new code"),
        "{told}"
    );
    api_error(api.open(nameplate, "late").await, StatusCode::GONE).await;
    let url = api.url(&path::attempt_after(
        nameplate,
        &attempt,
        1,
        std::time::Duration::ZERO,
    ));
    api_error(client.get(url).send().await.unwrap(), StatusCode::GONE).await;

    // The session's end frees a nameplate that was not burned, and its
    // number is handed out again; the burned one stays burned meanwhile.
    let done = api
        .as_host(reqwest::Method::POST, path::done(&second))
        .await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    api_error(api.info(Nameplate(2)).await, StatusCode::NOT_FOUND).await;
    let third_session = create(&client, &server, 2).await.session;
    assert_eq!(api.allocated(third_session).await, Nameplate(2));
    let freed = api
        .as_host(reqwest::Method::DELETE, path::nameplate(Nameplate(2)))
        .await;
    assert_eq!(freed.status(), StatusCode::NO_CONTENT);
    api_error(api.info(Nameplate(2)).await, StatusCode::NOT_FOUND).await;
    api_error(api.info(nameplate).await, StatusCode::GONE).await;
}
