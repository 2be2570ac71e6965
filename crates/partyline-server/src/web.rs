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
use tokio_util::io::ReaderStream;

/// The page a browser opens: the invite link is `https://HOST:PORT/join#pl1.…`.
const JOIN_PAGE: &str = "index.html";

/// What the page and its worker may do: load code and connect (fetch, the
/// relay's WebSocket) only from this server, compile WebAssembly (Pyodide,
/// partyline's own wasm) but not evaluate strings as JavaScript, and not be
/// framed by another site. The favicon is an empty `data:` URL.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";
/// Browsers that saw it once reach this server over HTTPS only, for a year.
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

#[derive(Clone)]
struct Web {
    dir: Option<Arc<PathBuf>>,
    relay_http: SocketAddr,
    /// The server has a certificate browsers trust (`--tls-cert`): only then
    /// may it ask for HTTPS forever, since a self-signed one would lock
    /// browsers out for the whole `max-age`.
    hsts: bool,
}

/// Routes for the web app (served from `dir`, if any) and the same-origin relay.
pub(crate) fn router(dir: Option<PathBuf>, relay_http: SocketAddr, hsts: bool) -> Router {
    let web = Web {
        dir: dir.map(Arc::new),
        relay_http,
        hsts,
    };
    Router::new()
        .route("/join", get(join_page))
        .route("/web/{*path}", get(asset))
        .route("/relay", get(relay))
        // iroh measures its latency to a relay with `/ping` before choosing it.
        .route("/ping", get(relay))
        .with_state(web)
}

async fn join_page(State(web): State<Web>, headers: HeaderMap) -> Response {
    match &web.dir {
        Some(dir) => serve_file(&web, &dir.join(JOIN_PAGE), &headers).await,
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
    serve_file(&web, &dir.join(relative), &headers).await
}

/// Serves `path`, or the `path.gz` that scripts/build-web.sh made next to it
/// when the browser takes gzip: Pyodide and our wasm shrink from 14 to about
/// 5 MB, which matters on a phone.
///
/// The file is streamed from disk in small chunks, so many browsers loading
/// Pyodide (13 MB) at once cost the server little memory. Its ETag (size and
/// modification time) lets a browser that has it already get a `304`.
async fn serve_file(web: &Web, path: &Path, request: &HeaderMap) -> Response {
    let opened = match accepts_gzip(request) {
        true => open_file(&gzip_copy(path))
            .await
            .ok()
            .map(|(file, meta)| (file, meta, true)),
        false => None,
    };
    let (file, meta, compressed) = match opened {
        Some(opened) => opened,
        None => match open_file(path).await {
            Ok((file, meta)) => (file, meta, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return StatusCode::NOT_FOUND.into_response();
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read a web file: {e}");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        },
    };
    let etag = entity_tag(&meta, compressed);
    let mut response = if matches_etag(request, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = Body::from_stream(ReaderStream::with_capacity(file, CHUNK_BYTES));
        let mut response = body.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
        if compressed {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    // Names do not change between builds, so browsers ask every time and get
    // a 304 while the file is the same. The page runs Pyodide in a worker;
    // JSPI and wasm need no cross-origin isolation, so no COOP/COEP headers.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // For browsers that predate `frame-ancestors`.
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if web.hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    response
}

/// How much of a file is read at a time.
const CHUNK_BYTES: usize = 16 * 1024;

fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|coding| coding.trim().starts_with("gzip")))
}

fn gzip_copy(path: &Path) -> PathBuf {
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    PathBuf::from(gz)
}

/// Opens a regular file (a directory is "not found").
async fn open_file(path: &Path) -> std::io::Result<(tokio::fs::File, std::fs::Metadata)> {
    let file = tokio::fs::File::open(path).await?;
    let meta = file.metadata().await?;
    if meta.is_file() {
        Ok((file, meta))
    } else {
        Err(std::io::ErrorKind::NotFound.into())
    }
}

/// A strong ETag from the file's size and modification time, different for
/// the gzip copy.
fn entity_tag(meta: &std::fs::Metadata, compressed: bool) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    let coding = if compressed { "-gz" } else { "" };
    format!("\"{:x}-{modified:x}{coding}\"", meta.len())
}

fn matches_etag(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
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
