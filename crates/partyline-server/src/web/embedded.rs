//! The web app inside the binary (feature `embed-web`): every file
//! scripts/build-web.sh wrote, gzip copies included, as build.rs found them.
use rust_embed::Embed;

use super::{Content, Found};

#[derive(Embed)]
#[folder = "$PARTYLINE_EMBEDDED_WEB_DIR"]
struct WebApp;

/// The file at `path` (`/`-separated, below the web app), if it is one.
pub(super) fn find(path: &str, compressed: bool) -> Option<Found> {
    let file = WebApp::get(path)?;
    // Its content's hash: the same build serves the same tags, whichever
    // process or machine serves it.
    let hash = file.metadata.sha256_hash();
    let coding = if compressed { "-gz" } else { "" };
    let etag = format!(
        "\"{}{coding}\"",
        data_encoding::HEXLOWER.encode(&hash[..16])
    );
    Some(Found {
        len: file.data.len() as u64,
        content: Content::Embedded(file.data),
        etag,
        compressed,
    })
}
