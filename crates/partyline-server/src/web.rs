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
//!
//! The web app comes from a directory (`--web-dir`, streamed from disk) or,
//! in a build with the feature `embed-web`, from the binary itself
//! (`embedded`), so that an installed `partyline` serves browsers with no
//! other files.
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

#[cfg(feature = "embed-web")]
mod embedded;

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
    files: WebFiles,
    relay_http: SocketAddr,
    /// The server has a certificate browsers trust (`--tls-cert`): only then
    /// may it ask for HTTPS forever, since a self-signed one would lock
    /// browsers out for the whole `max-age`.
    hsts: bool,
}

/// Where the web app's files come from.
#[derive(Clone)]
enum WebFiles {
    Disk(Arc<PathBuf>),
    /// Built into the binary (feature `embed-web`).
    #[cfg(feature = "embed-web")]
    Embedded,
    #[cfg(not(feature = "embed-web"))]
    None,
}

/// Whether this build carries the web app inside (feature `embed-web`), so
/// that it serves browsers with no `web_dir`.
pub const EMBEDDED: bool = cfg!(feature = "embed-web");

/// Routes for the web app (served from `dir`, else from the binary if it
/// carries one) and the same-origin relay.
pub(crate) fn router(dir: Option<PathBuf>, relay_http: SocketAddr, hsts: bool) -> Router {
    let files = match dir {
        Some(dir) => WebFiles::Disk(Arc::new(dir)),
        #[cfg(feature = "embed-web")]
        None => WebFiles::Embedded,
        #[cfg(not(feature = "embed-web"))]
        None => WebFiles::None,
    };
    let web = Web {
        files,
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
    #[cfg(not(feature = "embed-web"))]
    if let WebFiles::None = web.files {
        return (
            StatusCode::NOT_FOUND,
            "This partyline server has no web app (start it with --web-dir, or use a \
             partyline built with --features embed-web). \
             Join from a terminal instead: partyline join 'INVITE' -- PROGRAM",
        )
            .into_response();
    }
    serve_file(&web, JOIN_PAGE, &headers).await
}

async fn asset(
    State(web): State<Web>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    // Only plain names below the web directory: no `..`, no absolute paths.
    if !Path::new(&path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    serve_file(&web, &path, &headers).await
}

/// A file of the web app, found on disk or in the binary.
struct Found {
    content: Content,
    len: u64,
    /// A strong ETag, different for the gzip copy.
    etag: String,
    compressed: bool,
}

enum Content {
    Disk(tokio::fs::File),
    #[cfg(feature = "embed-web")]
    Embedded(std::borrow::Cow<'static, [u8]>),
}

impl Content {
    fn into_body(self) -> Body {
        match self {
            // Streamed in small chunks, so many browsers loading Pyodide
            // (13 MB) at once cost the server little memory.
            Content::Disk(file) => {
                Body::from_stream(ReaderStream::with_capacity(file, CHUNK_BYTES))
            }
            // Already in memory, as part of the binary.
            #[cfg(feature = "embed-web")]
            Content::Embedded(bytes) => match bytes {
                std::borrow::Cow::Borrowed(bytes) => {
                    Body::from(axum::body::Bytes::from_static(bytes))
                }
                std::borrow::Cow::Owned(bytes) => Body::from(bytes),
            },
        }
    }
}

/// Finds `relative` (a plain path below the web app), or the `.gz` copy
/// scripts/build-web.sh made next to it when the browser takes gzip.
async fn find(web: &Web, relative: &str, gzip: bool) -> std::io::Result<Option<Found>> {
    match &web.files {
        WebFiles::Disk(dir) => {
            let path = dir.join(relative);
            if gzip && let Ok(found) = open_file(&gzip_copy(&path), true).await {
                return Ok(Some(found));
            }
            match open_file(&path, false).await {
                Ok(found) => Ok(Some(found)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }
        #[cfg(feature = "embed-web")]
        WebFiles::Embedded => Ok(gzip
            .then(|| embedded::find(&format!("{relative}.gz"), true))
            .flatten()
            .or_else(|| embedded::find(relative, false))),
        #[cfg(not(feature = "embed-web"))]
        WebFiles::None => Ok(None),
    }
}

/// Serves `relative`, or its gzip copy when the browser takes gzip: Pyodide
/// and our wasm shrink from 14 to about 5 MB, which matters on a phone. Its
/// ETag lets a browser that has it already get a `304`.
async fn serve_file(web: &Web, relative: &str, request: &HeaderMap) -> Response {
    let found = match find(web, relative, accepts_gzip(request)).await {
        Ok(Some(found)) => found,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(path = relative, "cannot read a web file: {e}");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = if matches_etag(request, &found.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = found.content.into_body().into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(found.len));
        if found.compressed {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(Path::new(relative))),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    // Names do not change between builds, so browsers ask every time and get
    // a 304 while the file is the same. The page runs Pyodide in a worker;
    // JSPI and wasm need no cross-origin isolation, so no COOP/COEP headers.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&found.etag) {
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
async fn open_file(path: &Path, compressed: bool) -> std::io::Result<Found> {
    let file = tokio::fs::File::open(path).await?;
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    Ok(Found {
        content: Content::Disk(file),
        len: meta.len(),
        etag: entity_tag(&meta, compressed),
        compressed,
    })
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
