//! How this server takes part in a network, as configured: the settings ([`P2pConfig`]), the
//! credentials it uses at peers, and the mode they make (a genesis, or bootstrapped peers).

use std::path::PathBuf;
use std::time::Duration;

use weft_peer_protocol::{PeerUri, PublicKey};

/// The default time between pings (and, in bootstrapped mode, echo rounds).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(10);

/// Credentials this server uses at one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The peer's URL.
    pub url: String,
    /// `X-API-KEY` there.
    pub api_key: String,
    /// `X-API-TOKEN` there.
    pub api_token: String,
}

/// How this server takes part in a network.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// This peer's name (`network.peer_name`).
    pub peer_name: String,
    /// The URL other servers reach this one at (`network.public_url`).
    pub public_url: String,
    /// The genesis server, if the network has one (`network.genesis_url`).
    pub genesis_url: Option<String>,
    /// The genesis's public key, when the operator pins it (`network.genesis_key`); otherwise
    /// it is pinned at first contact.
    pub genesis_key: Option<PublicKey>,
    /// Peers to announce to when there is no genesis (`P2P.bootstrappedPeers`).
    pub bootstrapped_peers: Vec<String>,
    /// Download the network's contextionary when it differs from this one's
    /// (`P2P.requestContextionary`).
    pub request_contextionary: bool,
    /// Take unsigned messages from Weaviate 0.12 peers (`P2P.acceptUnsignedPeers`).
    pub accept_unsigned: bool,
    /// Between pings to the genesis (`network.ping_interval_s`, default 10 s).
    pub ping_interval: Duration,
    /// Keys for network queries, per peer URL (`network.peers`).
    pub credentials: Vec<Credentials>,
    /// Forward the caller's key to peers without configured credentials.
    pub forward_caller_key: bool,
    /// The key whose objects network questions are answered over (`network.share_key`).
    pub share_key: Option<uuid::Uuid>,
    /// Where this server keeps its identity and the peers' keys (`data_dir`).
    pub data_dir: PathBuf,
    /// Extra CAs trusted when calling other servers (`network.ca_file`).
    pub ca: Vec<reqwest::Certificate>,
}

/// How a peer takes part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Registered at a genesis.
    Genesis(PeerUri),
    /// Announced to bootstrapped peers (none: the first peer of its network).
    Bootstrapped(Vec<PeerUri>),
}

/// The mode of `config`; an address that is no base URL is an error naming its setting.
pub fn try_mode(config: &P2pConfig) -> Result<Mode, String> {
    match &config.genesis_url {
        Some(g) => PeerUri::parse(g)
            .map(Mode::Genesis)
            .map_err(|e| format!("network.genesis_url: {e}")),
        None => config
            .bootstrapped_peers
            .iter()
            .map(|b| PeerUri::parse(b).map_err(|e| format!("P2P.bootstrappedPeers: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Mode::Bootstrapped),
    }
}

/// The mode of a configuration checked at start ([`try_mode`]); addresses that do not parse
/// are left out.
pub fn mode(config: &P2pConfig) -> Mode {
    match &config.genesis_url {
        Some(g) => match PeerUri::parse(g) {
            Ok(u) => Mode::Genesis(u),
            Err(_) => Mode::Bootstrapped(vec![]),
        },
        None => Mode::Bootstrapped(
            config
                .bootstrapped_peers
                .iter()
                .filter_map(|b| PeerUri::parse(b).ok())
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mode_names_the_setting_of_an_address_that_does_not_parse() {
        let mut c = P2pConfig {
            peer_name: "a".into(),
            public_url: "http://127.0.0.1:1".into(),
            genesis_url: Some("ftp://g".into()),
            genesis_key: None,
            bootstrapped_peers: vec![],
            request_contextionary: false,
            accept_unsigned: false,
            ping_interval: DEFAULT_PING_INTERVAL,
            credentials: vec![],
            forward_caller_key: false,
            share_key: None,
            data_dir: std::path::PathBuf::from("data"),
            ca: vec![],
        };
        assert!(try_mode(&c).unwrap_err().starts_with("network.genesis_url"));
        c.genesis_url = None;
        c.bootstrapped_peers = vec!["http://p:1/weaviate/v1/".into()];
        assert_eq!(
            try_mode(&c).unwrap(),
            Mode::Bootstrapped(vec![PeerUri::parse("http://p:1").unwrap()])
        );
    }
}
