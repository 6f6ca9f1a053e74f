//! The peer-facing operations under `/weaviate/v1`: `/p2p/health`, `/p2p/ping`, `/p2p/genesis`,
//! `/p2p/peers`, `/p2p/schema`, `/p2p/contextionary`, `/p2p/contextionary/{file}`, `/peers`
//! (announce), `/peers/echo`; the operator's `DELETE /p2p/peers/{name}` (root key); and the
//! browser console's `GET /p2p/network` (a key with the read right: the network page).
//!
//! A request signed by another server reaches these handlers verified (the [`crate::PeerNode`]'s
//! signing middleware answered 401 to a bad signature) and its answer is signed. Who may do what:
//! a pushed list needs the genesis's pinned key, an announcement the newcomer's key or a known
//! peer's; the reading operations (health, ping, echo, peers, schema, contextionary) answer
//! anyone who reaches the server, as the network's directory does. What they make public: this
//! peer's name, id and key, the peers it knows (names, URIs, keys, schema hashes), its ontology
//! (class and property names, no objects) and its contextionary file. Objects, keys and GraphQL
//! still need a key. When the server is no peer, every one of them answers 404.
//!
//! Owns: the operations' request and answer shapes (from [`weft_peer_protocol::wire`]). The
//! protocols are [`crate::membership`]'s.

use std::sync::Arc;

use poem::Body;
use poem_openapi::param::Path;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;
use weft_peer_protocol::signed_http;
use weft_peer_protocol::wire::{
    AnnounceAnswer, Announcement, ContextionaryOffer, Echo, ErrorBody, Pong, Refusal, SchemaAnswer,
};

use crate::config::Mode;
use crate::membership::{self, NOT_A_PEER};
use crate::network_view::NetworkView;
use crate::node::PeerNode;

/// Operation groups.
#[derive(Tags)]
enum P2pTags {
    /// The P2P network: membership operations other peers and the genesis call.
    P2P,
}

/// The errors of the membership operations: the peer protocol's refusals.
pub type MembershipError = Refusal;

type MembershipResult<T> = Result<T, MembershipError>;

/// `GET /p2p/health`.
#[derive(Object, Debug)]
pub struct P2pHealth {
    /// `healthy`.
    pub status: String,
    /// This peer's name.
    #[oai(rename = "peerName")]
    pub peer_name: String,
    /// Its public key, `ed25519:…`.
    pub identity: String,
    /// `genesis` or `bootstrapped`.
    pub mode: String,
    /// How many other peers it knows.
    pub peers: u64,
}

/// `PUT /p2p/genesis`'s answer.
#[derive(Object, Debug)]
pub struct P2pListAccepted {
    /// How many other peers the list holds now.
    pub peers: u64,
}

/// A peer this server knows.
#[derive(Object, Debug)]
pub struct P2pKnownPeer {
    /// Its id (its genesis registration's, or the one it made itself in a bootstrapped
    /// network).
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its base URL.
    pub uri: String,
    /// Its public key, `ed25519:…` (absent for a peer that cannot sign).
    #[oai(skip_serializing_if_is_none)]
    pub identity: Option<String>,
    /// The MD5 of its schema, as it last said.
    #[oai(rename = "schemaHash")]
    pub schema_hash: String,
    /// Whether its schema (at that hash) has been downloaded.
    #[oai(rename = "schemaDownloaded")]
    pub schema_downloaded: bool,
    /// Why its schema is left out of `Network`, when it is.
    #[oai(rename = "schemaError", skip_serializing_if_is_none)]
    pub schema_error: Option<String>,
    /// When it was last heard of, Unix ms: in a genesis network when a pushed list last
    /// brought news of it, in a bootstrapped one its last answered echo.
    #[oai(rename = "lastContactAt")]
    pub last_contact_at: i64,
}

/// `GET /p2p/contextionary/{file}`'s answer.
#[derive(ApiResponse)]
pub enum ContextionaryFile {
    /// The file's bytes.
    #[oai(status = 200)]
    File(
        Binary<Body>,
        /// The file's size in bytes.
        #[oai(header = "Content-Length")]
        u64,
    ),
}

/// `DELETE /p2p/peers/{name}`: done.
#[derive(ApiResponse, Debug)]
pub enum Removed {
    /// The peer is forgotten and its name freed.
    #[oai(status = 204)]
    Removed,
}

/// The membership operations; answer 404 "not part of a network" when this server is no peer.
pub struct PeerApi {
    /// The peer, when this server is one.
    pub node: Option<Arc<PeerNode>>,
}

impl PeerApi {
    /// The operations over `node`.
    pub fn new(node: Option<Arc<PeerNode>>) -> Self {
        PeerApi { node }
    }

    fn node(&self) -> MembershipResult<&Arc<PeerNode>> {
        self.node
            .as_ref()
            .ok_or_else(|| MembershipError::NotFound(ErrorBody::json(NOT_A_PEER)))
    }
}

fn remote(req: &poem::Request) -> Option<std::net::IpAddr> {
    req.remote_addr()
        .as_socket_addr()
        .map(|a| membership::canonical(a.ip()))
}

#[OpenApi(tag = "P2pTags::P2P")]
impl PeerApi {
    /// Whether this peer is alive and has joined its network (no key needed): 500 while it is
    /// still registering or announcing itself, or when its connector is poisoned.
    #[oai(
        path = "/p2p/health",
        method = "get",
        operation_id = "weaviate.p2p.health"
    )]
    async fn health(&self) -> MembershipResult<Json<P2pHealth>> {
        let n = self.node()?;
        if let Some(why) = n.core.conn.poisoned() {
            return Err(MembershipError::Internal(ErrorBody::json(format!(
                "not healthy: the connector is poisoned ({why}); restart the server"
            ))));
        }
        if !n.is_joined() {
            return Err(MembershipError::Internal(ErrorBody::json(
                "not healthy yet: this peer is still joining its network (registering at the genesis or announcing itself)",
            )));
        }
        Ok(Json(P2pHealth {
            status: "healthy".into(),
            peer_name: n.config.peer_name.clone(),
            identity: n.identity().to_string(),
            mode: match n.mode() {
                Mode::Genesis(_) => "genesis".into(),
                Mode::Bootstrapped(_) => "bootstrapped".into(),
            },
            peers: n.directory.len() as u64,
        }))
    }

    /// Receive the peer list from the genesis: accepted only signed with the genesis's pinned
    /// key (403 otherwise). The body is Weaviate 0.12's `PeerUpdateList` (an array of
    /// `{id, name, uri, schemaHash, identity}`), optionally with header
    /// `X-Weft-Peer-List-Version`; or, with header `X-Weft-Peer-List: changes`, the changes
    /// `{from, to, upserted, removed}` since the version this peer reported in its ping (409
    /// when it holds another version: its next ping says which). The schemas of new or changed
    /// peers are then downloaded.
    #[oai(
        path = "/p2p/genesis",
        method = "put",
        operation_id = "weaviate.p2p.genesis_update"
    )]
    async fn genesis_update(
        &self,
        req: &poem::Request,
        peers: Json<serde_json::Value>,
    ) -> MembershipResult<Json<P2pListAccepted>> {
        let n = self.node()?;
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let count = n
            .accept_genesis_list(signed_http::verified(req), remote(req), header, &peers.0)
            .await?;
        Ok(Json(P2pListAccepted {
            peers: count as u64,
        }))
    }

    /// Whether this server answers as a peer (no key needed; the answer to a signed request is
    /// signed): what the genesis checks before it registers a peer.
    #[oai(path = "/p2p/ping", method = "get", operation_id = "weft.p2p.ping")]
    async fn ping(&self) -> MembershipResult<Json<Pong>> {
        let n = self.node()?;
        Ok(Json(Pong {
            peer_name: n.config.peer_name.clone(),
        }))
    }

    /// The peers this server knows (not itself), by name, with their keys (no key needed).
    #[oai(
        path = "/p2p/peers",
        method = "get",
        operation_id = "weft.p2p.peers.list"
    )]
    async fn peers(&self) -> MembershipResult<Json<Vec<P2pKnownPeer>>> {
        let n = self.node()?;
        let (_, known) = n.directory.snapshot();
        Ok(Json(
            known
                .iter()
                .map(|k| P2pKnownPeer {
                    id: k.peer.id,
                    name: k.peer.name.clone(),
                    uri: k.peer.uri.clone(),
                    identity: k.peer.identity.clone(),
                    schema_hash: k.peer.schema_hash.clone(),
                    schema_downloaded: n.schema_current(k),
                    schema_error: n.schema_error(&k.peer.name),
                    last_contact_at: k.peer.last_contact_ms,
                })
                .collect(),
        ))
    }

    /// The network as this peer sees it, for the browser console's network page
    /// (`/weaviate/v1/p2p/console`): this peer (name, id, URI, key and fingerprint, schema hash,
    /// classes), its genesis with the pinned key or its bootstrapped peers, the network's
    /// contextionary hash, and every known peer with its key, schema hash, whether the schema is
    /// downloaded, last contact, liveness and classes. Needs a key with the read right (404 when
    /// this server is no peer).
    #[oai(
        path = "/p2p/network",
        method = "get",
        operation_id = "weft.p2p.network"
    )]
    async fn network(&self) -> MembershipResult<Json<NetworkView>> {
        let n = self.node()?;
        Ok(Json(n.network_view().await))
    }

    /// Forget a peer and free its name (a bootstrapped network's operator, when that peer lost
    /// its key or left for good): needs the root key. The name may then be announced with a new
    /// key. In a network with a genesis, names are the genesis's: 409 saying so.
    #[oai(
        path = "/p2p/peers/:name",
        method = "delete",
        operation_id = "weft.p2p.peers.remove"
    )]
    async fn remove(&self, name: Path<String>) -> MembershipResult<Removed> {
        let n = self.node()?;
        n.remove_peer(&name.0)?;
        Ok(Removed::Removed)
    }

    /// This peer's ontology and its MD5 (no key needed): what other peers download to ask it
    /// network queries. Class and property names only, never objects.
    #[oai(path = "/p2p/schema", method = "get", operation_id = "weft.p2p.schema")]
    async fn schema(&self) -> MembershipResult<Json<SchemaAnswer>> {
        let n = self.node()?;
        let (o, hash) = n.schema().await;
        let schema = serde_json::to_value(&*o).map_err(|e| {
            MembershipError::Internal(ErrorBody::json(format!("cannot write the schema: {e}")))
        })?;
        Ok(Json(SchemaAnswer { schema, hash }))
    }

    /// This peer's contextionary: where to download it and its MD5 (no key needed); `url` and
    /// `hash` are `null` when it has none. A newcomer of a bootstrapped network compares it with
    /// its own before it starts.
    #[oai(
        path = "/p2p/contextionary",
        method = "get",
        operation_id = "weft.p2p.contextionary.get"
    )]
    async fn contextionary(&self) -> MembershipResult<Json<ContextionaryOffer>> {
        let n = self.node()?;
        Ok(Json(n.contextionary_wire().unwrap_or_default()))
    }

    /// Download this peer's contextionary file, or its index `<file>.hnsw` (no key needed).
    /// Only those two names are served; the hash in `GET /p2p/contextionary` vouches for them.
    #[oai(
        path = "/p2p/contextionary/:file",
        method = "get",
        operation_id = "weft.p2p.contextionary.download"
    )]
    async fn contextionary_file(&self, file: Path<String>) -> MembershipResult<ContextionaryFile> {
        let n = self.node()?;
        let c = n.contextionary();
        let Some((c, name)) = c.and_then(|c| c.file_name().map(|f| (c, f))) else {
            return Err(MembershipError::NotFound(ErrorBody::json(
                "this peer has no contextionary file to serve",
            )));
        };
        let path = if file.0 == name {
            c.path.clone()
        } else if file.0 == format!("{name}.hnsw") {
            c.index_path.clone()
        } else {
            None
        };
        let Some(path) = path else {
            return Err(MembershipError::NotFound(ErrorBody::json(format!(
                "there is no file {:?} here; this peer serves {name:?}{} (see GET /weaviate/v1/p2p/contextionary)",
                file.0,
                if c.index_path.is_some() {
                    format!(" and {name}.hnsw")
                } else {
                    String::new()
                }
            ))));
        };
        let f = tokio::fs::File::open(&path).await.map_err(|e| {
            MembershipError::Internal(ErrorBody::json(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        })?;
        let len = f
            .metadata()
            .await
            .map_err(|e| {
                MembershipError::Internal(ErrorBody::json(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            })?
            .len();
        Ok(ContextionaryFile::File(
            Binary(Body::from_async_read(f)),
            len,
        ))
    }

    /// Announce a peer to this one (bootstrapped networks), signed by the newcomer itself or by
    /// a known peer passing it on. The name must not be bound to another key here (409); the
    /// newcomer must answer `GET {peerUri}/weaviate/v1/peers/echo` signed with its key (400
    /// "the peer did not answer the echo" otherwise, and nothing more). A peer already known
    /// with the same key and address is answered and nothing else happens; a new one is stored
    /// and passed on to every peer this one knows. Budget: `limits.peer_announces_per_minute`
    /// per key and per address (429). The answer carries this peer's contextionary and the
    /// peers it knows (with their keys), so that a newcomer learns the network.
    #[oai(
        path = "/peers",
        method = "post",
        operation_id = "weaviate.peers.announce"
    )]
    async fn announce(
        &self,
        req: &poem::Request,
        announcement: Json<Announcement>,
    ) -> MembershipResult<Json<AnnounceAnswer>> {
        let n = self.node()?;
        let answer = n
            .accept_announcement(signed_http::verified(req), remote(req), announcement.0)
            .await?;
        Ok(Json(answer))
    }

    /// This peer's name, id, schema hash and key (no key needed; the answer to a signed request
    /// is signed, which proves the key, and says whether this peer knows the asker by its key):
    /// what a peer checks before it stores an announced one, and (bootstrapped networks) every
    /// ping interval after — a peer that is not known any more announces itself again.
    #[oai(
        path = "/peers/echo",
        method = "get",
        operation_id = "weaviate.peers.echo"
    )]
    async fn echo(&self, req: &poem::Request) -> MembershipResult<Json<Echo>> {
        let n = self.node()?;
        Ok(Json(n.echo(signed_http::verified(req)).await))
    }
}
