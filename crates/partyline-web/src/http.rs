//! The coordinator client with the browser's `fetch`.
//!
//! `fetch` is looked up on the global object, so this works in a Web Worker
//! (where the party runs, next to Pyodide) as well as in a window. Answers
//! are read chunk by chunk up to their `answer_limit`, as native parties do.
use partyline_proto::transport::LONG_POLL;
use partyline_proto::{CodeRelay, CoordinatorApi};
use partyline_wire::api::{
    AttemptId, AttemptOpened, AttemptView, CodeMessage, NameplateInfo, ServerInfo, SessionView,
    answer_limit, path,
};
use partyline_wire::{
    EndpointKey, Nameplate, ServerUrl, SessionId, SignedAnnouncement, WriteToken,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::WebError;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(request: &web_sys::Request) -> js_sys::Promise;
}

/// The coordinator of one server.
#[derive(Clone, Debug)]
pub struct Coordinator {
    base: ServerUrl,
    /// Shown with every change of the session (`partyline_wire::write_token`).
    write_token: Option<WriteToken>,
}

impl Coordinator {
    pub fn new(base: &ServerUrl) -> Self {
        Self {
            base: base.clone(),
            write_token: None,
        }
    }

    /// The same coordinator, showing `token` with every change.
    pub fn with_write_token(self, token: WriteToken) -> Self {
        Self {
            write_token: Some(token),
            ..self
        }
    }

    /// What the server is; refuses a server that speaks another peer protocol.
    pub async fn info(&self) -> Result<ServerInfo, WebError> {
        let info: ServerInfo = self.get(path::INFO, answer_limit::INFO).await?;
        partyline_proto::check_protocol(self.base.as_str(), &info)?;
        Ok(info)
    }

    pub async fn session(&self, id: &SessionId) -> Result<SessionView, WebError> {
        self.get(&path::session(id), answer_limit::SESSION).await
    }

    /// Withdraws our announcement: used when we give up before the mesh forms.
    pub async fn leave(&self, id: &SessionId, endpoint: &EndpointKey) -> Result<(), WebError> {
        self.request("DELETE", &path::announcement(id, endpoint), None)
            .await
            .map(drop)
    }

    /// Reports the end of the session.
    pub async fn done(&self, id: &SessionId) -> Result<(), WebError> {
        self.request("POST", &path::done(id), None).await.map(drop)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, limit: usize) -> Result<T, WebError> {
        self.send("GET", path, None, limit).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        limit: usize,
    ) -> Result<T, WebError> {
        let body = serde_json::to_string(body).expect("request bodies serialize");
        self.send("POST", path, Some(body), limit).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        limit: usize,
    ) -> Result<T, WebError> {
        let response = self.request(method, path, body).await?;
        let url = response.url();
        let bytes = self.read_body(&response, limit).await?;
        serde_json::from_slice(&bytes).map_err(|e| WebError::BadResponse {
            url,
            reason: e.to_string(),
        })
    }

    /// The body of `response`, read chunk by chunk and given up (the rest
    /// cancelled) as soon as it passes `limit` bytes.
    async fn read_body(
        &self,
        response: &web_sys::Response,
        limit: usize,
    ) -> Result<Vec<u8>, WebError> {
        let too_large = || WebError::TooLarge {
            url: self.base.to_string(),
            limit,
        };
        let declared = response.headers().get("content-length").ok().flatten();
        if declared
            .and_then(|length| length.parse::<u64>().ok())
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large());
        }
        let Some(stream) = response.body() else {
            return Ok(Vec::new());
        };
        let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
        let mut body = Vec::new();
        loop {
            let read = JsFuture::from(reader.read())
                .await
                .map_err(|e| self.unreachable(e))?;
            let field = |name: &str| js_sys::Reflect::get(&read, &JsValue::from_str(name));
            if field("done").map_err(|e| self.unreachable(e))?.is_truthy() {
                return Ok(body);
            }
            let chunk: js_sys::Uint8Array = field("value")
                .map_err(|e| self.unreachable(e))?
                .unchecked_into();
            let start = body.len();
            let end = start + chunk.length() as usize;
            if end > limit {
                let _ = reader.cancel();
                return Err(too_large());
            }
            body.resize(end, 0);
            chunk.copy_to(&mut body[start..]);
        }
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<web_sys::Response, WebError> {
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        let headers = web_sys::Headers::new().map_err(|e| self.unreachable(e))?;
        if let Some(body) = body {
            headers
                .set("content-type", "application/json")
                .map_err(|e| self.unreachable(e))?;
            init.set_body(&JsValue::from_str(&body));
        }
        if method != "GET"
            && let Some(token) = &self.write_token
        {
            headers
                .set("authorization", &token.bearer())
                .map_err(|e| self.unreachable(e))?;
        }
        init.set_headers(&headers);
        let url = format!("{}{path}", self.base);
        let request = web_sys::Request::new_with_str_and_init(&url, &init)
            .map_err(|e| self.unreachable(e))?;
        let response: web_sys::Response = JsFuture::from(global_fetch(&request))
            .await
            .map_err(|e| self.unreachable(e))?
            .unchecked_into();
        if response.ok() {
            return Ok(response);
        }
        let status = response.status();
        let body = self.read_body(&response, answer_limit::ERROR).await.ok();
        let message = body
            .and_then(|b| serde_json::from_slice::<partyline_wire::api::ApiError>(&b).ok())
            .map_or_else(|| response.status_text(), |e| e.error);
        Err(WebError::Api { status, message })
    }

    fn unreachable(&self, error: JsValue) -> WebError {
        let reason = error
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| error.as_string())
            .unwrap_or_else(|| format!("{error:?}"));
        WebError::Unreachable {
            url: self.base.to_string(),
            reason,
        }
    }
}

impl CoordinatorApi for Coordinator {
    type Error = WebError;

    async fn announce(
        &self,
        session: &SessionId,
        signed: &SignedAnnouncement,
    ) -> Result<SessionView, WebError> {
        self.post(&path::announcements(session), signed, answer_limit::SESSION)
            .await
    }

    async fn wait_for_change(
        &self,
        session: &SessionId,
        seen: usize,
    ) -> Result<SessionView, WebError> {
        let path = path::session_after(session, seen, LONG_POLL);
        self.get(&path, answer_limit::SESSION).await
    }
}

impl CodeRelay for Coordinator {
    type Error = WebError;

    async fn nameplate(&self, nameplate: Nameplate) -> Result<NameplateInfo, WebError> {
        self.get(&path::nameplate(nameplate), answer_limit::CODE)
            .await
    }

    async fn open_attempt(
        &self,
        nameplate: Nameplate,
        message: &str,
    ) -> Result<AttemptId, WebError> {
        let body = CodeMessage {
            message: message.to_string(),
        };
        let opened: AttemptOpened = self
            .post(&path::attempts(nameplate), &body, answer_limit::CODE)
            .await?;
        Ok(opened.attempt)
    }

    async fn send(
        &self,
        nameplate: Nameplate,
        attempt: &AttemptId,
        message: &str,
    ) -> Result<(), WebError> {
        let body = CodeMessage {
            message: message.to_string(),
        };
        let body = serde_json::to_string(&body).expect("request bodies serialize");
        self.request(
            "POST",
            &path::attempt_joiner(nameplate, attempt),
            Some(body),
        )
        .await
        .map(drop)
    }

    async fn wait_for_host(
        &self,
        nameplate: Nameplate,
        attempt: &AttemptId,
        seen: usize,
    ) -> Result<AttemptView, WebError> {
        let path = path::attempt_after(nameplate, attempt, seen, LONG_POLL);
        self.get(&path, answer_limit::CODE).await
    }

    fn refusal_status(error: &WebError) -> Option<u16> {
        match error {
            WebError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}
