//! This server's means of talking to other servers: its identity, the client every call goes
//! through, and the peer names bound to keys.

use std::sync::Arc;
use std::time::Duration;

use weft_peer_protocol::bindings::Bindings;
use weft_peer_protocol::{Identity, PeerClient};

use crate::config::P2pConfig;

/// This server's means of talking to others, made before it serves (the start-up contextionary
/// check already talks to the network): its identity, the client, the bound peer names.
pub struct Transport {
    /// This server's key.
    pub identity: Arc<Identity>,
    /// Every call to another server goes through it.
    pub client: PeerClient,
    /// Peer names bound to keys, and the pinned genesis key (`<data_dir>/peer-keys.json`).
    pub bindings: Bindings,
}

impl Transport {
    /// Loads (or makes) the identity in `config.data_dir`, opens the bindings, makes the client
    /// (reading at most `max_answer_bytes` of an answer, keeping at most `max_peers` bindings).
    pub fn open(
        config: &P2pConfig,
        max_answer_bytes: usize,
        max_peers: usize,
    ) -> anyhow::Result<Transport> {
        let (identity, made) = Identity::load_or_create(&config.data_dir)?;
        if made {
            tracing::info!(
                "made this server's identity {} in {}",
                identity.public(),
                config
                    .data_dir
                    .join(weft_peer_protocol::identity::IDENTITY_FILE)
                    .display()
            );
        }
        let identity = Arc::new(identity);
        let http = weft_peer_protocol::tls::http_client(&config.ca, Duration::from_secs(5))
            .map_err(anyhow::Error::msg)?;
        Ok(Transport {
            client: PeerClient::new(
                http,
                identity.clone(),
                config.peer_name.clone(),
                max_answer_bytes,
            ),
            bindings: Bindings::open(&config.data_dir, max_peers).map_err(anyhow::Error::msg)?,
            identity,
        })
    }
}
