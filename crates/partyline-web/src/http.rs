//! JSON requests to the coordinator with the browser's `fetch`.
//!
//! `fetch` is looked up on the global object, so this works in a Web Worker
//! (where the party runs, next to Pyodide) as well as in a window.
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use partyline_wire::WriteToken;

use crate::WebError;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(request: &web_sys::Request) -> js_sys::Promise;
}

/// The coordinator at one base URL (`https://host:port`).
#[derive(Clone, Debug)]
pub struct Coordinator {
    base: String,
    /// Shown with every change of the session (`partyline_wire::write_token`).
    write_token: Option<WriteToken>,
}

impl Coordinator {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
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

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, WebError> {
        self.send("GET", path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, WebError> {
        let body = serde_json::to_string(body).expect("request bodies serialize");
        self.send("POST", path, Some(body)).await
    }

    /// A request whose answer we do not need (e.g. reporting the end of a session).
    pub async fn post_empty(&self, path: &str) -> Result<(), WebError> {
        self.request("POST", path, None).await.map(drop)
    }

    pub async fn delete(&self, path: &str) -> Result<(), WebError> {
        self.request("DELETE", path, None).await.map(drop)
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
            url: self.base.clone(),
            reason,
        }
    }
}
