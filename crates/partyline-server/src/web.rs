//! The browser side of the server: the web app at `/join` and `/web/…`, and
//! the relay on the coordinator's own origin at `/relay`.
//!
//! A browser party may talk to one origin only (the page must not reach any
//! other server, and a browser would not accept the relay's self-signed
//! certificate on a second port anyway). The relay already runs on a port of
//! its own for native parties; rather than a second relay, which would split
//! the parties between two servers that cannot forward to each other, the
//! coordinator passes `/relay` upgrades through to the same relay service on a
//! loopback port, without TLS (the coordinator has already terminated it).
//! Native parties keep using the relay port; the relay routes packets by
//! endpoint id, so parties on either entrance reach each other.
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The page a browser opens: the invite link is `https://HOST:PORT/join#pl1.…`.
const JOIN_PAGE: &str = "index.html";

#[derive(Clone)]
struct Web {
    dir: Option<Arc<PathBuf>>,
    relay_http: SocketAddr,
}

/// Routes for the web app (served from `dir`, if any) and the same-origin relay.
pub(crate) fn router(dir: Option<PathBuf>, relay_http: SocketAddr) -> Router {
    let web = Web {
        dir: dir.map(Arc::new),
        relay_http,
    };
    Router::new()
        .route("/join", get(join_page))
        .route("/web/{*path}", get(asset))
        .route("/relay", get(relay))
        // iroh measures its latency to a relay with `/ping` before choosing it.
        .route("/ping", get(relay))
        .with_state(web)
}

async fn join_page(State(web): State<Web>) -> Response {
    match &web.dir {
        Some(dir) => serve_file(&dir.join(JOIN_PAGE), false).await,
        None => (
            StatusCode::NOT_FOUND,
            "This partyline server has no web app (start it with --web-dir). \
             Join from a terminal instead: partyline join 'INVITE' -- PROGRAM",
        )
            .into_response(),
    }
}

async fn asset(
    State(web): State<Web>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(dir) = &web.dir else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Only plain names below the web directory: no `..`, no absolute paths.
    let relative = Path::new(&path);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|coding| coding.trim().starts_with("gzip")));
    serve_file(&dir.join(relative), gzip).await
}

/// Serves `path`, or the `path.gz` that scripts/build-web.sh made next to it
/// when the browser takes gzip: Pyodide and our wasm shrink from 14 to about
/// 5 MB, which matters on a phone.
async fn serve_file(path: &Path, gzip: bool) -> Response {
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    let compressed = match gzip {
        true => tokio::fs::read(&gz).await.ok(),
        false => None,
    };
    let is_compressed = compressed.is_some();
    let read = match compressed {
        Some(bytes) => Ok(bytes),
        None => tokio::fs::read(path).await,
    };
    match read {
        Ok(bytes) => {
            let mut response = (
                [
                    (header::CONTENT_TYPE, content_type(path)),
                    (header::VARY, "accept-encoding"),
                    // The page runs Pyodide in a worker; JSPI and wasm need no
                    // cross-origin isolation, so no COOP/COEP headers are set.
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                bytes,
            )
                .into_response();
            if is_compressed {
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            response
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot read a web file: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Browsers compile wasm while it downloads only when it is labelled as such,
/// and run module scripts only with a JavaScript type.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "css" => "text/css; charset=utf-8",
        "py" | "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// Passes a relay request (a WebSocket upgrade, or a latency probe) through
/// to the relay service.
async fn relay(State(web): State<Web>, mut request: Request) -> Response {
    let downstream = hyper::upgrade::on(&mut request);
    let upstream = match TcpStream::connect(web.relay_http).await {
        Ok(tcp) => tcp,
        Err(e) => {
            tracing::warn!("cannot reach the relay service on {}: {e}", web.relay_http);
            return StatusCode::BAD_GATEWAY.into_response();
        }
    };
    // The relay sends many small packets; never let Nagle hold them back.
    let _ = upstream.set_nodelay(true);
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!("relay handshake failed: {e}");
                return StatusCode::BAD_GATEWAY.into_response();
            }
        };
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!("relay pass-through ended: {e}");
        }
    });
    let (parts, _body) = request.into_parts();
    let mut response = match sender
        .send_request(Request::from_parts(parts, Body::empty()))
        .await
    {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!("relay request failed: {e}");
            return StatusCode::BAD_GATEWAY.into_response();
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            match tokio::try_join!(downstream, upstream) {
                Ok((down, up)) => {
                    let _ = tokio::io::copy_bidirectional(
                        &mut TokioIo::new(down),
                        &mut TokioIo::new(up),
                    )
                    .await;
                }
                Err(e) => tracing::debug!("relay upgrade failed: {e}"),
            }
        });
    }
    response.map(Body::new)
}
