//! [`PeerUri`]: a server's base URL in the network, the one type every URL comparison uses.
//!
//! Written as `scheme://host[:port][/prefix]`: `http` or `https`, a host, no user, query or
//! fragment. Two spellings of one address are one `PeerUri`: the host's case, the scheme's
//! default port, trailing slashes and the API's base path (`/weaviate/v1`) do not count.

use std::fmt;
use std::net::IpAddr;

/// The peers' API base path.
pub const API_BASE: &str = "/weaviate/v1";

/// A server's base URL, normalised.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerUri(String);

impl PeerUri {
    /// Parses and normalises `s`; the error says what is wrong with it and how to write it.
    pub fn parse(s: &str) -> Result<PeerUri, String> {
        let example = "e.g. \"https://peer-1.example.org:8080\"";
        let url = reqwest::Url::parse(s.trim())
            .map_err(|e| format!("{s:?} is not a URL ({e}); give a base URL, {example}"))?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(format!(
                    "{s:?} has scheme {other:?}; give an http:// or https:// base URL, {example}"
                ))
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{s:?} has no host; give a base URL, {example}"));
        }
        if url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(format!(
                "{s:?}: give only scheme, host, port (and a path prefix if the server has one), without user, query or fragment"
            ));
        }
        let mut text = url.as_str().trim_end_matches('/').to_string();
        if let Some(stripped) = text.strip_suffix(API_BASE) {
            text = stripped.trim_end_matches('/').to_string();
        }
        Ok(PeerUri(text))
    }

    /// The normalised text, e.g. `https://peer-1.example.org:8080`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL of `path` under the API's base path (`/weaviate/v1` + `path`).
    pub fn api(&self, path: &str) -> String {
        format!("{}{API_BASE}{path}", self.0)
    }

    /// The URL of `path` right under this base (a genesis's operations).
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    fn url(&self) -> Option<reqwest::Url> {
        reqwest::Url::parse(&self.0).ok()
    }

    /// Whether it is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// `host[:port]`, as signatures cover it.
    pub fn authority(&self) -> String {
        self.url()
            .map(|u| crate::signature::authority_of(&u))
            .unwrap_or_default()
    }

    /// Whether its host is a loopback address (or `localhost`).
    pub fn is_loopback(&self) -> bool {
        let Some(url) = self.url() else {
            return false;
        };
        match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        }
    }

    /// This address with port 0 replaced by `port` (the port actually bound: a public URL may
    /// say port 0 when the listener picks its port).
    pub fn with_bound_port(&self, port: u16) -> PeerUri {
        match self.url() {
            Some(mut u) if u.port() == Some(0) => {
                let _ = u.set_port(Some(port));
                PeerUri(u.as_str().trim_end_matches('/').to_string())
            }
            _ => self.clone(),
        }
    }

    /// This address with the scheme `scheme` (`http` or `https`).
    pub fn with_scheme(&self, scheme: &str) -> PeerUri {
        let Some(mut u) = self.url() else {
            return self.clone();
        };
        if u.set_scheme(scheme).is_err() {
            return self.clone();
        }
        PeerUri(u.as_str().trim_end_matches('/').to_string())
    }
}

impl fmt::Display for PeerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PeerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerUri({})", self.0)
    }
}

impl std::str::FromStr for PeerUri {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PeerUri::parse(s)
    }
}

impl serde::Serialize for PeerUri {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for PeerUri {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PeerUri::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_address_are_one_uri() {
        let a = PeerUri::parse("HTTP://Peer.Example:80/weaviate/v1/").unwrap();
        let b = PeerUri::parse("http://peer.example").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "http://peer.example");
        assert_eq!(
            PeerUri::parse("https://p:443/").unwrap().as_str(),
            "https://p"
        );
        assert_ne!(
            PeerUri::parse("https://p").unwrap(),
            PeerUri::parse("http://p").unwrap()
        );
        assert_eq!(
            PeerUri::parse("http://h:1/prefix/").unwrap().api("/peers"),
            "http://h:1/prefix/weaviate/v1/peers"
        );
        assert_eq!(a.authority(), "peer.example");
    }

    #[test]
    fn what_is_no_base_url_is_refused_with_a_reason() {
        for bad in [
            "ftp://h",
            "http://",
            "http://u:p@h",
            "http://h/?q=1",
            "http://h/#f",
            "not a url",
        ] {
            let e = PeerUri::parse(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
    }

    #[test]
    fn loopback_and_bound_ports() {
        assert!(PeerUri::parse("http://127.0.0.1:0").unwrap().is_loopback());
        assert!(PeerUri::parse("https://[::1]:9").unwrap().is_loopback());
        assert!(PeerUri::parse("http://localhost").unwrap().is_loopback());
        assert!(!PeerUri::parse("http://10.0.0.5").unwrap().is_loopback());
        assert_eq!(
            PeerUri::parse("http://127.0.0.1:0")
                .unwrap()
                .with_bound_port(8123)
                .as_str(),
            "http://127.0.0.1:8123"
        );
    }
}
