//! The server's TLS identity: one self-signed certificate for the coordinator
//! and the relay.
//!
//! Parties do not trust the server through a CA but through the SHA-256 of its
//! certificate, the pin every invite carries. The certificate is therefore made
//! once, on first start, and kept in the data directory: a new certificate
//! means a new pin, and every invite and server link in circulation would stop
//! working.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use partyline_wire::CertPin;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::ServerError;

/// The certificate, PEM. Written last, so its presence means the pair is complete.
const CERT_FILE: &str = "cert.pem";
/// The private key, PEM (PKCS#8), readable only by the server's user.
const KEY_FILE: &str = "key.pem";

/// The certificate and key the server presents on every TLS port.
pub(crate) struct Identity {
    cert: CertificateDer<'static>,
    /// The rest of the chain of a certificate given with `--tls-cert`.
    intermediates: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pub(crate) pin: CertPin,
}

impl Identity {
    /// Loads the certificate from `data_dir`, or makes one valid for
    /// `localhost`, the loopback addresses and `public_hosts`.
    ///
    /// The names only matter to clients that check them; partyline's clients
    /// check the pin instead, so a certificate made for an old public host
    /// keeps working after the host changes.
    pub(crate) fn load_or_create(
        data_dir: &Path,
        public_hosts: &[String],
    ) -> Result<Self, ServerError> {
        let cert_path = data_dir.join(CERT_FILE);
        let key_path = data_dir.join(KEY_FILE);
        // A key without a certificate is left over from a first start that
        // stopped half way; its certificate was never served, so replacing
        // the pair cannot break an invite.
        let identity = if cert_path.exists() {
            Self::load(&cert_path, &key_path)?
        } else {
            let identity = Self::create(public_hosts, data_dir)?;
            let unusable = |e: std::io::Error| certificate_error(data_dir, e);
            write_file(&key_path, identity.key_pem().as_bytes(), true).map_err(unusable)?;
            let cert_pem = pem("CERTIFICATE", &identity.cert);
            write_file(&cert_path, cert_pem.as_bytes(), false).map_err(unusable)?;
            tracing::info!(pin = %identity.pin, dir = %data_dir.display(), "made a new TLS certificate");
            identity
        };
        Ok(identity)
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<Self, ServerError> {
        let dir = cert_path.parent().unwrap_or(Path::new("."));
        let cert = CertificateDer::from_pem_file(cert_path)
            .map_err(|e| certificate_error(dir, format!("{}: {e}", cert_path.display())))?;
        let key = PrivateKeyDer::from_pem_file(key_path)
            .map_err(|e| certificate_error(dir, format!("{}: {e}", key_path.display())))?;
        Ok(Self::new(cert, key))
    }

    /// Loads a certificate chain (leaf first) and key given by the operator,
    /// e.g. one a public CA issued so that browsers trust the server. The pin
    /// is the leaf's: invites made while it is served pin it.
    pub(crate) fn from_files(cert_path: &Path, key_path: &Path) -> Result<Self, ServerError> {
        let dir = cert_path.parent().unwrap_or(Path::new("."));
        let unusable = |path: &Path, e: &dyn std::fmt::Display| {
            certificate_error(dir, format!("{}: {e}", path.display()))
        };
        let mut chain = CertificateDer::pem_file_iter(cert_path)
            .map_err(|e| unusable(cert_path, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unusable(cert_path, &e))?
            .into_iter();
        let leaf = chain
            .next()
            .ok_or_else(|| unusable(cert_path, &"it holds no certificate"))?;
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| unusable(key_path, &e))?;
        let mut identity = Self::new(leaf, key);
        identity.intermediates = chain.collect();
        Ok(identity)
    }

    fn create(public_hosts: &[String], data_dir: &Path) -> Result<Self, ServerError> {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        for host in public_hosts {
            if !names.contains(host) {
                names.push(host.clone());
            }
        }
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| certificate_error(data_dir, format!("cannot make one: {e}")))?;
        let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
        Ok(Self::new(made.cert.der().clone(), key.into()))
    }

    fn new(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> Self {
        let pin = partyline_proto::pin::pin_of(&cert);
        Self {
            cert,
            intermediates: Vec::new(),
            key,
            pin,
        }
    }

    fn key_pem(&self) -> String {
        pem("PRIVATE KEY", self.key.secret_der())
    }

    /// A rustls server configuration presenting this certificate, with TLS 1.3
    /// and 1.2 (some HTTP tooling still speaks only 1.2) and the given ALPN
    /// protocols.
    pub(crate) fn server_config(&self, alpn: &[&[u8]]) -> Result<rustls::ServerConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(
                std::iter::once(self.cert.clone())
                    .chain(self.intermediates.iter().cloned())
                    .collect(),
                self.key.clone_key(),
            )
            .map_err(|e| format!("the key does not fit the certificate: {e}"))?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

pub(crate) fn certificate_error(dir: &Path, reason: impl ToString) -> ServerError {
    ServerError::Certificate {
        dir: PathBuf::from(dir),
        reason: reason.to_string(),
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let base64 = data_encoding::BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes to a temporary file and renames it into place, so that a crash
/// never leaves a truncated key or certificate behind.
fn write_file(path: &Path, contents: &[u8], secret: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_is_made_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let made = Identity::load_or_create(dir.path(), &["example.org".into()]).unwrap();
        let loaded = Identity::load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(made.pin, loaded.pin);
        assert!(loaded.server_config(&[b"http/1.1"]).is_ok());
    }

    #[test]
    fn lone_key_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "left over").unwrap();
        let made = Identity::load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(
            Identity::load_or_create(dir.path(), &[]).unwrap().pin,
            made.pin
        );
    }

    #[test]
    fn missing_key_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path(), &[]).unwrap();
        fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        let err = Identity::load_or_create(dir.path(), &[]).err().unwrap();
        assert!(err.to_string().contains("delete both"), "{err}");
    }
}
