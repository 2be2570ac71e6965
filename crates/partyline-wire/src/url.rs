//! The address of a partyline server: `https://host[:port]`.
//!
//! One type with one rule for every place that takes a server address: the
//! invite, the server link `partyline create --server` takes, `partyline serve
//! --public-url`, and the browser's check that a page came from the invite's
//! server. A trailing slash is dropped; a path, query, fragment or user part is
//! refused, because the address is only ever joined with API paths.
use std::fmt;
use std::str::FromStr;

/// `https://host[:port]`, host in lower case, IPv6 in brackets, no trailing slash.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerUrl(String);

/// Why a string is not a server address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a server address: write it like https://example.org:7700, without a path")]
pub struct BadServerUrl(pub String);

impl ServerUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host, IPv6 addresses in brackets.
    pub fn host(&self) -> &str {
        split_authority(self.authority()).0
    }

    /// The port, if the address names one.
    pub fn port(&self) -> Option<u16> {
        split_authority(self.authority())
            .1
            .and_then(|p| p.parse().ok())
    }

    /// The same host with another port (e.g. the relay's next to the coordinator's).
    pub fn with_port(&self, port: u16) -> Self {
        Self(format!("https://{}:{port}", self.host()))
    }

    fn authority(&self) -> &str {
        &self.0["https://".len()..]
    }
}

/// Host and port text of an authority; the port without its colon.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[')
        && let Some(end) = authority.find(']')
    {
        let (host, rest) = authority.split_at(end + 1);
        let port = (!rest.is_empty()).then(|| rest.strip_prefix(':').unwrap_or(rest));
        return (host, port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

impl FromStr for ServerUrl {
    type Err = BadServerUrl;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let bad = || BadServerUrl(input.to_string());
        let trimmed = input.trim();
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let authority = trimmed
            .get(.."https://".len())
            .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
            .map(|_| &trimmed["https://".len()..])
            .ok_or_else(bad)?;
        let (host, port) = split_authority(authority);
        let host_ok = if let Some(ip6) = host.strip_prefix('[') {
            ip6.strip_suffix(']')
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        } else {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        };
        let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok());
        if !(host_ok && port_ok) {
            return Err(bad());
        }
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        Ok(Self(format!("https://{}{port}", host.to_ascii_lowercase())))
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerUrl({})", self.0)
    }
}

impl serde::Serialize for ServerUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ServerUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_are_normalised() {
        for (input, url, host, port) in [
            (
                "https://example.org:7700/",
                "https://example.org:7700",
                "example.org",
                Some(7700),
            ),
            (
                "https://[::1]:7700",
                "https://[::1]:7700",
                "[::1]",
                Some(7700),
            ),
            ("https://[::1]", "https://[::1]", "[::1]", None),
            (
                "https://example.org",
                "https://example.org",
                "example.org",
                None,
            ),
            (
                " HTTPS://Example.ORG:1 ",
                "https://example.org:1",
                "example.org",
                Some(1),
            ),
            (
                "https://127.0.0.1:1",
                "https://127.0.0.1:1",
                "127.0.0.1",
                Some(1),
            ),
        ] {
            let parsed: ServerUrl = input.parse().unwrap();
            assert_eq!(parsed.as_str(), url, "{input}");
            assert_eq!(parsed.host(), host, "{input}");
            assert_eq!(parsed.port(), port, "{input}");
        }
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "http://example.org",
            "https://",
            "https:///",
            "https://example.org/path",
            "https://example.org/join",
            "https://example.org?x=1",
            "https://example.org#x",
            "https://user@example.org",
            "https://example.org:port",
            "https://example.org:",
            "https://example.org:70000",
            "https://:7700",
            "https://::1:7700",
            "https://[::1]x",
            "https://[nonsense]:1",
            "https://exa mple.org",
            "example.org:7700",
        ] {
            assert!(bad.parse::<ServerUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn another_port_on_the_same_host() {
        let url: ServerUrl = "https://[::1]:7700".parse().unwrap();
        assert_eq!(url.with_port(7701).as_str(), "https://[::1]:7701");
    }
}
