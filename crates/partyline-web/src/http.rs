//! The coordinator client with the browser's `fetch`.
//!
//! `fetch` is looked up on the global object, so this works in a Web Worker
//! (where the party runs, next to Pyodide) as well as in a window.
use partyline_proto::CoordinatorApi;
use partyline_proto::transport::LONG_POLL;
use partyline_wire::api::{ServerInfo, SessionView, path};
use partyline_wire::{EndpointKey, ServerUrl, SessionId, SignedAnnouncement, WriteToken};
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
        let info: ServerInfo = self.get(path::INFO).await?;
        partyline_proto::check_protocol(self.base.as_str(), &info)?;
        Ok(info)
    }

    pub async fn session(&self, id: &SessionId) -> Result<SessionView, WebError> {
        self.get(&path::session(id)).await
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

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, WebError> {
        self.send("GET", path, None).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, WebError> {
        let body = serde_json::to_string(body).expect("request bodies serialize");
        self.send("POST", path, Some(body)).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<T, WebError> {
        let response = self.request(method, path, body).await?;
        let url = response.url();
        let text = JsFuture::from(response.text().map_err(|e| self.unreachable(e))?)
            .await
            .map_err(|e| self.unreachable(e))?
            .as_string()
            .unwrap_or_default();
        serde_json::from_str(&text).map_err(|e| WebError::BadResponse {
            url,
            reason: e.to_string(),
        })
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
        let text = match response.text() {
            Ok(promise) => JsFuture::from(promise)
                .await
                .ok()
                .and_then(|t| t.as_string()),
            Err(_) => None,
        };
        let message = text
            .and_then(|t| serde_json::from_str::<partyline_wire::api::ApiError>(&t).ok())
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
        self.post(&path::announcements(session), signed).await
    }

    async fn wait_for_change(
        &self,
        session: &SessionId,
        seen: usize,
    ) -> Result<SessionView, WebError> {
        self.get(&path::session_after(session, seen, LONG_POLL))
            .await
    }
}
