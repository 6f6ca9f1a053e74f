//! What the network page of the browser console shows (`GET /weaviate/v1/p2p/network`, needs a
//! key with the read right): this peer, how it joined (its genesis with the pinned key, or its
//! bootstrapped peers), the network's contextionary hash, and every peer it knows with its
//! identity, schema, last contact, liveness and classes — as this peer sees them.
//!
//! Owns: the view's shape. The facts are the directory's and the membership's.

use poem_openapi::Object;
use uuid::Uuid;
use weft_core::network::KnownPeer;
use weft_core::ontology::Ontology;

use crate::config::Mode;
use crate::directory::key_of;
use crate::membership::ECHO_FAILURES_TO_DROP;
use crate::node::PeerNode;

/// The class names of a schema.
#[derive(Object, Debug, Clone, Default)]
pub struct NetworkClasses {
    /// Classes of Things.
    pub things: Vec<String>,
    /// Classes of Actions.
    pub actions: Vec<String>,
}

impl From<&Ontology> for NetworkClasses {
    fn from(o: &Ontology) -> Self {
        let names = |s: &weft_core::ontology::SemanticSchema| {
            s.classes.iter().map(|c| c.class.clone()).collect()
        };
        NetworkClasses {
            things: names(&o.things),
            actions: names(&o.actions),
        }
    }
}

/// This server in the view.
#[derive(Object, Debug, Clone)]
pub struct NetworkSelf {
    /// Its peer name.
    pub name: String,
    /// Its id (the genesis registration's, absent while not registered; or the one it made in
    /// a bootstrapped network).
    #[oai(skip_serializing_if_is_none)]
    pub id: Option<Uuid>,
    /// Its base URL as peers reach it.
    pub uri: String,
    /// Its public key, `ed25519:…`.
    pub identity: String,
    /// The key's fingerprint (the first 8 bytes of its SHA-256, hex).
    pub fingerprint: String,
    /// The MD5 of its schema.
    #[oai(rename = "schemaHash")]
    pub schema_hash: String,
    /// Whether it has joined (registered, announced, or is the first peer).
    pub joined: bool,
    /// Its classes.
    pub classes: NetworkClasses,
}

/// The genesis a peer registers with.
#[derive(Object, Debug, Clone)]
pub struct NetworkGenesis {
    /// Its URL (`network.genesis_url`).
    pub uri: String,
    /// Its key as pinned here (absent before the first contact).
    #[oai(skip_serializing_if_is_none)]
    pub identity: Option<String>,
    /// That key's fingerprint.
    #[oai(skip_serializing_if_is_none)]
    pub fingerprint: Option<String>,
}

/// A peer this server knows, in the view.
#[derive(Object, Debug, Clone)]
pub struct NetworkPeer {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: Uuid,
    /// Its base URL.
    pub uri: String,
    /// Its public key, `ed25519:…` (absent for a peer that cannot sign).
    #[oai(skip_serializing_if_is_none)]
    pub identity: Option<String>,
    /// That key's fingerprint.
    #[oai(skip_serializing_if_is_none)]
    pub fingerprint: Option<String>,
    /// The MD5 of its schema, as it last said.
    #[oai(rename = "schemaHash")]
    pub schema_hash: String,
    /// Whether its schema (at that hash) is downloaded.
    #[oai(rename = "schemaDownloaded")]
    pub schema_downloaded: bool,
    /// Why its schema is left out of `Network`, when it is.
    #[oai(rename = "schemaError", skip_serializing_if_is_none)]
    pub schema_error: Option<String>,
    /// When it was last heard of, Unix ms (see `GET /p2p/peers`).
    #[oai(rename = "lastContactAt")]
    pub last_contact_at: i64,
    /// `alive`: listed by the genesis (which drops peers silent past its liveness timeout), or
    /// (bootstrapped) its last echo answered; `missing`: its last echo failed (it is dropped
    /// after `ECHO_FAILURES_TO_DROP` in a row).
    pub liveness: String,
    /// Bootstrapped mode: echoes failed in a row.
    #[oai(rename = "missedEchoes")]
    pub missed_echoes: u32,
    /// Its classes, once its schema is downloaded.
    #[oai(skip_serializing_if_is_none)]
    pub classes: Option<NetworkClasses>,
}

/// `GET /p2p/network`: the network as this peer sees it.
#[derive(Object, Debug, Clone)]
pub struct NetworkView {
    /// `genesis` (registered at a genesis) or `bootstrapped`.
    pub mode: String,
    /// This server.
    #[oai(rename = "self")]
    pub this: NetworkSelf,
    /// The genesis, in a genesis network.
    #[oai(skip_serializing_if_is_none)]
    pub genesis: Option<NetworkGenesis>,
    /// The bootstrapped peers, in a bootstrapped network (empty: the network's first peer).
    #[oai(rename = "bootstrappedPeers", skip_serializing_if_is_none)]
    pub bootstrapped_peers: Option<Vec<String>>,
    /// The MD5 of the network's contextionary, which this peer checked its own against at
    /// start (`null`: it has none).
    #[oai(rename = "contextionaryHash")]
    pub contextionary_hash: Option<String>,
    /// Between pings to the genesis, or echo rounds (ms).
    #[oai(rename = "pingIntervalMs")]
    pub ping_interval_ms: u64,
    /// Bootstrapped mode: how long a silent peer stays listed at most, `ECHO_FAILURES_TO_DROP`
    /// echo rounds (ms). Absent in a genesis network: the genesis's `--liveness-timeout`.
    #[oai(rename = "livenessWindowMs", skip_serializing_if_is_none)]
    pub liveness_window_ms: Option<u64>,
    /// The version of the directory (moves on every change).
    #[oai(rename = "listVersion")]
    pub list_version: u64,
    /// Every peer this server knows (not itself), by name.
    pub peers: Vec<NetworkPeer>,
}

impl PeerNode {
    /// The network as this peer sees it now.
    pub async fn network_view(&self) -> NetworkView {
        let (ontology, schema_hash) = self.schema().await;
        let mode = self.mode();
        let ping = self.config.ping_interval;
        let (version, known) = self.directory.snapshot();
        let peer = |k: &KnownPeer| {
            let missed = self.missed_echoes(&k.peer.name);
            NetworkPeer {
                name: k.peer.name.clone(),
                id: k.peer.id,
                uri: k.peer.uri.clone(),
                identity: k.peer.identity.clone(),
                fingerprint: key_of(&k.peer).map(|key| key.fingerprint()),
                schema_hash: k.peer.schema_hash.clone(),
                schema_downloaded: self.schema_current(k),
                schema_error: self.schema_error(&k.peer.name),
                last_contact_at: k.peer.last_contact_ms,
                liveness: if missed == 0 { "alive" } else { "missing" }.into(),
                missed_echoes: missed,
                classes: k.schema.as_deref().map(NetworkClasses::from),
            }
        };
        let identity = self.identity();
        NetworkView {
            mode: match mode {
                Mode::Genesis(_) => "genesis".into(),
                Mode::Bootstrapped(_) => "bootstrapped".into(),
            },
            this: NetworkSelf {
                name: self.config.peer_name.clone(),
                id: self.peer_id(),
                uri: self.public_uri.to_string(),
                identity: identity.to_string(),
                fingerprint: identity.fingerprint(),
                schema_hash,
                joined: self.is_joined(),
                classes: NetworkClasses::from(&*ontology),
            },
            genesis: match &mode {
                Mode::Genesis(g) => {
                    let pinned = self.transport.bindings.pinned_genesis(g);
                    Some(NetworkGenesis {
                        uri: g.to_string(),
                        identity: pinned.map(|k| k.to_string()),
                        fingerprint: pinned.map(|k| k.fingerprint()),
                    })
                }
                Mode::Bootstrapped(_) => None,
            },
            bootstrapped_peers: match &mode {
                Mode::Bootstrapped(b) => Some(b.iter().map(ToString::to_string).collect()),
                Mode::Genesis(_) => None,
            },
            contextionary_hash: self.contextionary().map(|c| c.md5.clone()),
            ping_interval_ms: ping.as_millis() as u64,
            liveness_window_ms: match mode {
                Mode::Bootstrapped(_) => Some((ping * ECHO_FAILURES_TO_DROP).as_millis() as u64),
                Mode::Genesis(_) => None,
            },
            list_version: version,
            peers: known.iter().map(peer).collect(),
        }
    }
}
