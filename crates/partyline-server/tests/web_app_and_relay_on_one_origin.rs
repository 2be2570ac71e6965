//! A browser party talks to one origin: the coordinator serves the web app
//! and passes relay requests through to the relay it runs.
mod common;

use partyline_server::ServerConfig;
use reqwest::StatusCode;

/// What the page and its worker are sent with: they may load and connect
/// only to this origin, not be framed or sniffed, send no referrer; HSTS only
/// with a certificate browsers trust.
fn assert_security_headers(response: &reqwest::Response, hsts: bool) {
    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp} lacks {directive}");
    }
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers.contains_key("strict-transport-security"), hsts);
}

#[tokio::test]
async fn join_page_assets_and_relay_share_the_coordinator_origin() {
    let dir = tempfile::tempdir().unwrap();
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("index.html"), "<title>join</title>").unwrap();
    std::fs::create_dir(web.path().join("pkg")).unwrap();
    std::fs::write(web.path().join("pkg/party.wasm"), b"\0asm").unwrap();
    let config = ServerConfig {
        web_dir: Some(web.path().to_path_buf()),
        ..common::config(dir.path())
    };
    let (server, client) = common::start(config).await;
    let get = |path: &str| client.get(format!("{}{path}", server.url())).send();

    let page = get("/join").await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_security_headers(&page, false);
    assert!(page.text().await.unwrap().contains("join"));
    std::fs::write(web.path().join("worker.js"), "// worker").unwrap();
    let worker = get("/web/worker.js").await.unwrap();
    assert_eq!(worker.status(), StatusCode::OK);
    assert_eq!(
        worker.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_security_headers(&worker, false);

    let wasm = get("/web/pkg/party.wasm").await.unwrap();
    assert_eq!(wasm.status(), StatusCode::OK);
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    // A browser that takes gzip gets the compressed copy build-web.sh made.
    std::fs::write(web.path().join("pkg/party.wasm.gz"), b"gzipped").unwrap();
    let gzipped = client
        .get(format!("{}/web/pkg/party.wasm", server.url()))
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["content-type"], "application/wasm");
    assert_eq!(gzipped.bytes().await.unwrap().as_ref(), b"gzipped");
    assert_eq!(
        get("/web/missing.js").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // A browser that has the file already gets a 304 for its ETag.
    let etag = wasm.headers()["etag"].clone();
    let again = client
        .get(format!("{}/web/pkg/party.wasm", server.url()))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        get("/web/%2e%2e/%2e%2e/etc/passwd").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // iroh's latency probe and the relay's WebSocket upgrade, on the coordinator's port.
    assert_eq!(get("/ping").await.unwrap().status(), StatusCode::OK);
    let upgrade = client
        .get(format!("{}/relay", server.url()))
        .version(reqwest::Version::HTTP_11)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "iroh-relay-v1")
        .send()
        .await
        .unwrap();
    assert_eq!(upgrade.status(), StatusCode::SWITCHING_PROTOCOLS);

    server.shutdown().await;
}

/// Paths that try to leave the web directory, sent raw (an HTTP client
/// would tidy `..` and `%2e%2e` away before sending), find nothing.
#[tokio::test]
async fn raw_path_traversal_finds_nothing_outside_the_web_dir() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    std::fs::create_dir_all(web.join("pkg")).unwrap();
    std::fs::write(web.join("index.html"), "<title>join</title>").unwrap();
    std::fs::write(web.join("pkg/party.js"), "// party").unwrap();
    let secret = "secret outside the web directory";
    std::fs::write(dir.path().join("secret.txt"), secret).unwrap();
    let config = ServerConfig {
        web_dir: Some(web.clone()),
        ..common::config(&dir.path().join("data"))
    };
    let (server, _client) = common::start(config).await;
    let absolute = dir.path().join("secret.txt");
    let absolute = absolute.display();
    let targets = [
        "/web/../secret.txt".to_string(),
        "/web/..%2fsecret.txt".to_string(),
        "/web/..%2Fsecret.txt".to_string(),
        "/web/%2e%2e/secret.txt".to_string(),
        "/web/%2e%2e%2fsecret.txt".to_string(),
        "/web/pkg/..%2f..%2fsecret.txt".to_string(),
        "/web/pkg/%2e%2e/%2e%2e/secret.txt".to_string(),
        "/web/..\\secret.txt".to_string(),
        "/web/pkg\\..\\..\\secret.txt".to_string(),
        "/web/..%5csecret.txt".to_string(),
        format!("/web/{absolute}"),
        format!("/web/%2f{}", absolute.to_string().trim_start_matches('/')),
        format!("/web//{}", absolute.to_string().trim_start_matches('/')),
        "/web/%00/../secret.txt".to_string(),
        "/join/../secret.txt".to_string(),
        "/../secret.txt".to_string(),
        "..%2fsecret.txt".to_string(),
    ];
    for target in &targets {
        let (status, answer) = common::raw_get(&server, target).await;
        assert!(
            status == 404 || status == 400,
            "{target}: {status} {answer}"
        );
        assert!(!answer.contains(secret), "{target} read the secret");
    }
    // The same connection style does reach files inside.
    let (status, answer) = common::raw_get(&server, "/web/pkg/party.js").await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("// party"));
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_web_dir_the_join_page_says_how_to_join() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = common::start(common::config(dir.path())).await;
    let page = client
        .get(format!("{}/join", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap().contains("partyline join"));
    server.shutdown().await;
}

/// `--tls-cert/--tls-key`: a certificate browsers can trust (here: made by
/// the test) replaces the self-signed one, and invites pin it.
#[tokio::test]
async fn a_given_certificate_is_served_and_pinned() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = dir.path().join("fullchain.pem");
    let key = dir.path().join("privkey.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let web = dir.path().join("web");
    std::fs::create_dir(&web).unwrap();
    std::fs::write(web.join("index.html"), "<title>join</title>").unwrap();
    let config = ServerConfig {
        tls_files: Some((cert, key)),
        web_dir: Some(web),
        ..common::config(&dir.path().join("data"))
    };
    let (server, client) = common::start(config).await;
    let expected: [u8; 32] = sha2::Sha256::digest(made.cert.der()).into();
    assert_eq!(server.pin().0, expected);
    let info = client
        .get(format!("{}/v1/info", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::OK);
    // A certificate browsers trust: the page asks them to stay on HTTPS.
    let page = client
        .get(format!("{}/join", server.url()))
        .send()
        .await
        .unwrap();
    assert_security_headers(&page, true);
    server.shutdown().await;
}
