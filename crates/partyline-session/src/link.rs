//! The server link `https://host:port#sha256=<pin>` that `partyline serve` prints.
use std::fmt;
use std::str::FromStr;

use partyline_wire::{CertPin, ServerUrl};

/// How a party refers to a server before it has an invite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLink {
    pub url: ServerUrl,
    /// Without a pin, `partyline create` trusts the certificate it is shown
    /// first and puts that certificate's pin into the invite.
    pub pin: Option<CertPin>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error(
        "{0:?} is not a server address: expected https://HOST:PORT, optionally followed by #sha256=PIN as `partyline serve` prints it"
    )]
    NotHttps(String),
    #[error("the pin in {0:?} is not 64 hex digits; copy the server address again")]
    BadPin(String),
}

impl FromStr for ServerLink {
    type Err = LinkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (url, fragment) = match s.split_once('#') {
            Some((url, fragment)) => (url, Some(fragment)),
            None => (s, None),
        };
        let url: ServerUrl = url
            .parse()
            .map_err(|_| LinkError::NotHttps(s.to_string()))?;
        let pin = fragment
            .map(|f| {
                f.strip_prefix("sha256=")
                    .and_then(|hex| hex.parse().ok())
                    .ok_or_else(|| LinkError::BadPin(s.to_string()))
            })
            .transpose()?;
        Ok(Self { url, pin })
    }
}

impl fmt::Display for ServerLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pin {
            Some(pin) => write!(f, "{}#sha256={pin}", self.url),
            None => f.write_str(self.url.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_pin() {
        let pin = CertPin([0xab; 32]);
        let link: ServerLink = format!("https://127.0.0.1:7700/#sha256={pin}")
            .parse()
            .unwrap();
        assert_eq!(link.url.as_str(), "https://127.0.0.1:7700");
        assert_eq!(link.pin, Some(pin));
        assert_eq!(link.to_string().parse::<ServerLink>().unwrap(), link);
        let bare: ServerLink = "https://example.org:7700".parse().unwrap();
        assert_eq!(bare.pin, None);
    }

    #[test]
    fn rejects_bad_links() {
        assert!(matches!(
            "http://h:1".parse::<ServerLink>(),
            Err(LinkError::NotHttps(_))
        ));
        assert!(matches!(
            "https://".parse::<ServerLink>(),
            Err(LinkError::NotHttps(_))
        ));
        assert!(matches!(
            "https://h:1#sha256=zz".parse::<ServerLink>(),
            Err(LinkError::BadPin(_))
        ));
    }
}
