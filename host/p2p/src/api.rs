//! The peer-facing operations under `/weaviate/v1` (no key needed): `/p2p/health`,
//! `/p2p/ping`, `/p2p/genesis`, `/p2p/peers`, `/p2p/schema`, `/p2p/contextionary`,
//! `/p2p/contextionary/{file}`, `/peers` (announce), `/peers/echo`.
//!
//! What they make public (to anyone who reaches the server, when it is a peer): its peer name
//! and id, the peers it knows (names, URIs, schema hashes), its ontology (class and property
//! names, no objects), and its contextionary file. Nothing else: objects, keys and GraphQL still
//! need a key. When the server is no peer, every one of them answers 404.
//!
//! Owns: request and answer shapes of these operations. The protocols are
//! [`crate::membership`]'s.

use std::sync::Arc;

use poem::Body;
use poem_openapi::param::Path;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use crate::membership::{self, Announcement, Refusal, WireContextionary, WirePeer, NOT_A_PEER};
use crate::PeerNode;

/// Operation groups.
#[derive(Tags)]
enum P2pTags {
    /// The P2P network: membership operations other peers and the genesis call (no key).
    P2P,
}

/// One error message.
#[derive(Object, Debug, Clone)]
pub struct MembershipErrorMessage {
    /// What is wrong and what to change.
    pub message: String,
}

/// The error body (`{"error":[{"message"}]}`, as every other operation's).
#[derive(Object, Debug, Clone)]
pub struct MembershipErrorBody {
    /// The messages (one).
    pub error: Vec<MembershipErrorMessage>,
}

/// The errors of the membership operations.
#[derive(ApiResponse, Debug)]
pub enum MembershipError {
    /// The request is malformed, or an announced peer is not reachable.
    #[oai(status = 400)]
    BadRequest(Json<MembershipErrorBody>),
    /// A peer list from anywhere but this peer's genesis.
    #[oai(status = 403)]
    Forbidden(Json<MembershipErrorBody>),
    /// This server is no peer, or no such file.
    #[oai(status = 404)]
    NotFound(Json<MembershipErrorBody>),
    /// The request conflicts with this peer's state (a list of changes from another version,
    /// an announcement to a peer of a genesis network, a name taken).
    #[oai(status = 409)]
    Conflict(Json<MembershipErrorBody>),
    /// A field is invalid.
    #[oai(status = 422)]
    Unprocessable(Json<MembershipErrorBody>),
    /// Not healthy (yet), or a fault.
    #[oai(status = 500)]
    Internal(Json<MembershipErrorBody>),
}

fn body(m: impl Into<String>) -> Json<MembershipErrorBody> {
    Json(MembershipErrorBody {
        error: vec![MembershipErrorMessage { message: m.into() }],
    })
}

impl From<Refusal> for MembershipError {
    fn from(r: Refusal) -> Self {
        let b = body(r.message);
        match r.status {
            400 => MembershipError::BadRequest(b),
            403 => MembershipError::Forbidden(b),
            404 => MembershipError::NotFound(b),
            409 => MembershipError::Conflict(b),
            422 => MembershipError::Unprocessable(b),
            _ => MembershipError::Internal(b),
        }
    }
}

type MembershipResult<T> = Result<T, MembershipError>;

/// `GET /p2p/health`.
#[derive(Object, Debug)]
pub struct P2pHealth {
    /// `healthy`.
    pub status: String,
    /// This peer's name.
    #[oai(rename = "peerName")]
    pub peer_name: String,
    /// `genesis` or `bootstrapped`.
    pub mode: String,
    /// How many other peers it knows.
    pub peers: u64,
}

/// `GET /p2p/ping`.
#[derive(Object, Debug)]
pub struct P2pPong {
    /// This peer's name.
    #[oai(rename = "peerName")]
    pub peer_name: String,
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
    /// The MD5 of its schema, as it last said.
    #[oai(rename = "schemaHash")]
    pub schema_hash: String,
    /// Whether its schema (at that hash) has been downloaded.
    #[oai(rename = "schemaDownloaded")]
    pub schema_downloaded: bool,
    /// When it was last heard of, Unix ms: in a genesis network when a pushed list last
    /// brought news of it, in a bootstrapped one its last answered echo.
    #[oai(rename = "lastContactAt")]
    pub last_contact_at: i64,
}

/// `GET /p2p/schema`.
#[derive(Object, Debug)]
pub struct P2pSchema {
    /// This peer's ontology, `{"actions": SemanticSchema, "things": SemanticSchema}`.
    pub schema: serde_json::Value,
    /// The MD5 (hex) of that JSON: the schema hash this peer pings with.
    pub hash: String,
}

/// A content hash.
#[derive(Object, Debug, Clone)]
pub struct P2pContentDigest {
    /// `md5`.
    pub algorithm: String,
    /// The hex digest of the contextionary's content (`content_hash("md5")`).
    pub value: String,
}

/// `GET /p2p/contextionary`: this peer's contextionary (both `null` without one).
#[derive(Object, Debug, Clone)]
pub struct P2pContextionary {
    /// Where to download its file (`GET /weaviate/v1/p2p/contextionary/{file}` of this peer).
    pub url: Option<String>,
    /// Its content hash.
    pub hash: Option<P2pContentDigest>,
    /// Where to download its nearest-neighbour index (absent without one).
    #[oai(rename = "indexUrl", skip_serializing_if_is_none)]
    pub index_url: Option<String>,
}

impl From<WireContextionary> for P2pContextionary {
    fn from(w: WireContextionary) -> Self {
        P2pContextionary {
            url: w.url,
            hash: w.hash.map(|h| P2pContentDigest {
                algorithm: h.algorithm,
                value: h.value,
            }),
            index_url: w.index_url,
        }
    }
}

/// `POST /peers`: a peer announcing itself (or a newcomer, announced by the peer that took it).
#[derive(Object, Debug)]
pub struct PeerAnnouncement {
    /// The peer's name, a DNS label unique in the network.
    #[oai(rename = "peerName")]
    pub peer_name: String,
    /// Its base URL as peers reach it (e.g. `http://10.0.0.5:8080`, without `/weaviate/v1`).
    #[oai(rename = "peerUri")]
    pub peer_uri: String,
    /// Its id (extension; the echo's answer is what is stored).
    pub id: Option<Uuid>,
    /// The MD5 of its schema (extension).
    #[oai(rename = "schemaHash")]
    pub schema_hash: Option<String>,
}

/// A peer on the wire (0.12's `PeerUpdate`).
#[derive(Object, Debug)]
pub struct P2pPeer {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its base URL.
    pub uri: String,
    /// The MD5 of its schema.
    #[oai(rename = "schemaHash")]
    pub schema_hash: String,
}

impl From<WirePeer> for P2pPeer {
    fn from(p: WirePeer) -> Self {
        P2pPeer {
            id: p.id,
            name: p.name,
            uri: p.uri,
            schema_hash: p.schema_hash,
        }
    }
}

/// `POST /peers`'s answer.
#[derive(Object, Debug)]
pub struct PeerAnnounceAnswer {
    /// The MD5 of the network's (this peer's) contextionary; `null` without one. A newcomer
    /// with another one refuses to start (or downloads it, with `P2P.requestContextionary`).
    #[oai(rename = "contextionaryMD5")]
    pub contextionary_md5: Option<String>,
    /// Where to download that contextionary.
    pub contextionary: Option<P2pContextionary>,
    /// The announced peer, as stored.
    pub peer: P2pPeer,
    /// The peers this peer knows, itself included and the announced one not: what a newcomer
    /// stores.
    pub peers: Vec<P2pPeer>,
}

/// `GET /peers/echo`.
#[derive(Object, Debug)]
pub struct PeerEcho {
    /// This peer's name.
    #[oai(rename = "peerName")]
    pub peer_name: String,
    /// Its id.
    pub id: Uuid,
    /// The MD5 of its schema.
    #[oai(rename = "schemaHash")]
    pub schema_hash: String,
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
            .ok_or_else(|| MembershipError::NotFound(body(NOT_A_PEER)))
    }
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
            return Err(MembershipError::Internal(body(format!(
                "not healthy: the connector is poisoned ({why}); restart the server"
            ))));
        }
        if !n.is_joined() {
            return Err(MembershipError::Internal(body(
                "not healthy yet: this peer is still joining its network (registering at the genesis or announcing itself)",
            )));
        }
        Ok(Json(P2pHealth {
            status: "healthy".into(),
            peer_name: n.config.peer_name.clone(),
            mode: match n.mode() {
                membership::Mode::Genesis(_) => "genesis".into(),
                membership::Mode::Bootstrapped(_) => "bootstrapped".into(),
            },
            peers: n.directory.snapshot().1.len() as u64,
        }))
    }

    /// Receive the peer list from the genesis (no key needed, but accepted only from the
    /// address of the configured genesis: 403 otherwise). The body is Weaviate 0.12's
    /// `PeerUpdateList` (an array of `{id, name, uri, schemaHash}`), optionally with header
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
        let remote = req
            .remote_addr()
            .as_socket_addr()
            .map(|a| membership::canonical(a.ip()));
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let count = n.accept_genesis_list(remote, header, &peers.0).await?;
        Ok(Json(P2pListAccepted {
            peers: count as u64,
        }))
    }

    /// Whether this server answers as a peer (no key needed): what the genesis checks before
    /// it registers a peer.
    #[oai(path = "/p2p/ping", method = "get", operation_id = "weft.p2p.ping")]
    async fn ping(&self) -> MembershipResult<Json<P2pPong>> {
        let n = self.node()?;
        Ok(Json(P2pPong {
            peer_name: n.config.peer_name.clone(),
        }))
    }

    /// The peers this server knows (not itself), by name (no key needed).
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
                    schema_hash: k.peer.schema_hash.clone(),
                    schema_downloaded: n.schema_current(k),
                    last_contact_at: k.peer.last_contact_ms,
                })
                .collect(),
        ))
    }

    /// This peer's ontology and its MD5 (no key needed): what other peers download to ask it
    /// network queries. Class and property names only, never objects.
    #[oai(path = "/p2p/schema", method = "get", operation_id = "weft.p2p.schema")]
    async fn schema(&self) -> MembershipResult<Json<P2pSchema>> {
        let n = self.node()?;
        let (o, hash) = n.schema().await;
        let schema = serde_json::to_value(&*o).map_err(|e| {
            MembershipError::Internal(body(format!("cannot write the schema: {e}")))
        })?;
        Ok(Json(P2pSchema { schema, hash }))
    }

    /// This peer's contextionary: where to download it and its MD5 (no key needed); `url` and
    /// `hash` are `null` when it has none. A newcomer of a bootstrapped network compares it with
    /// its own before it starts.
    #[oai(
        path = "/p2p/contextionary",
        method = "get",
        operation_id = "weft.p2p.contextionary.get"
    )]
    async fn contextionary(&self) -> MembershipResult<Json<P2pContextionary>> {
        let n = self.node()?;
        Ok(Json(
            n.contextionary_wire()
                .map(P2pContextionary::from)
                .unwrap_or(P2pContextionary {
                    url: None,
                    hash: None,
                    index_url: None,
                }),
        ))
    }

    /// Download this peer's contextionary file, or its index `<file>.hnsw` (no key needed).
    /// Only those two names are served.
    #[oai(
        path = "/p2p/contextionary/:file",
        method = "get",
        operation_id = "weft.p2p.contextionary.download"
    )]
    async fn contextionary_file(&self, file: Path<String>) -> MembershipResult<ContextionaryFile> {
        let n = self.node()?;
        let c = n.contextionary();
        let Some((c, name)) = c.and_then(|c| c.file_name().map(|f| (c, f))) else {
            return Err(MembershipError::NotFound(body(
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
            return Err(MembershipError::NotFound(body(format!(
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
            MembershipError::Internal(body(format!("cannot read {}: {e}", path.display())))
        })?;
        let len = f
            .metadata()
            .await
            .map_err(|e| {
                MembershipError::Internal(body(format!("cannot read {}: {e}", path.display())))
            })?
            .len();
        Ok(ContextionaryFile::File(
            Binary(Body::from_async_read(f)),
            len,
        ))
    }

    /// Announce a peer to this one (no key needed; bootstrapped networks). This peer checks that
    /// the announced peer answers `GET {peerUri}/weaviate/v1/peers/echo` (400 otherwise), leaves
    /// a peer it already knows (same name and URI) as it is, otherwise stores it and announces it
    /// to every peer it knows. The answer carries this peer's contextionary MD5 and the peers it
    /// knows, so that a newcomer learns the network.
    #[oai(
        path = "/peers",
        method = "post",
        operation_id = "weaviate.peers.announce"
    )]
    async fn announce(
        &self,
        announcement: Json<PeerAnnouncement>,
    ) -> MembershipResult<Json<PeerAnnounceAnswer>> {
        let n = self.node()?;
        let a = announcement.0;
        let answer = n
            .accept_announcement(Announcement {
                peer_name: a.peer_name,
                peer_uri: a.peer_uri,
                id: a.id,
                schema_hash: a.schema_hash,
            })
            .await?;
        Ok(Json(PeerAnnounceAnswer {
            contextionary_md5: answer.contextionary_md5,
            contextionary: answer.contextionary.map(P2pContextionary::from),
            peer: answer.peer.into(),
            peers: answer.peers.into_iter().map(P2pPeer::from).collect(),
        }))
    }

    /// This peer's name, id and schema hash (no key needed): what a peer checks before it
    /// stores an announced one, and (bootstrapped networks) every ping interval after.
    #[oai(
        path = "/peers/echo",
        method = "get",
        operation_id = "weaviate.peers.echo"
    )]
    async fn echo(&self) -> MembershipResult<Json<PeerEcho>> {
        let n = self.node()?;
        let e = n.echo().await;
        Ok(Json(PeerEcho {
            peer_name: e.peer_name,
            id: e.id,
            schema_hash: e.schema_hash,
        }))
    }
}
