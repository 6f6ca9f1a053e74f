//! The JSON shapes that travel between servers, one type each, used by the side that sends and
//! the side that receives (serde) and by the OpenAPI documents (poem-openapi). Names follow
//! Weaviate 0.12 (`peerName`, `peerUri`, `schemaHash`); `identity` is Weft's extension: the
//! sender's public key (`ed25519:…`), which 0.12 servers ignore.

use poem_openapi::Object;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One error message.
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "ErrorMessage")]
pub struct ErrorMessage {
    /// What is wrong and what to change.
    pub message: String,
}

/// The error body every operation answers with (`{"error":[{"message"}]}`).
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "ErrorResponse")]
pub struct ErrorBody {
    /// The messages (one).
    pub error: Vec<ErrorMessage>,
}

impl ErrorBody {
    /// A body of one message.
    pub fn new(message: impl Into<String>) -> Self {
        ErrorBody {
            error: vec![ErrorMessage {
                message: message.into(),
            }],
        }
    }

    /// The payload of an operation's error answer.
    pub fn json(message: impl Into<String>) -> poem_openapi::payload::Json<ErrorBody> {
        poem_openapi::payload::Json(ErrorBody::new(message))
    }

    /// A whole answer with this body, for errors answered outside an operation's handler (an
    /// unknown path, a refused key, a body poem could not parse).
    pub fn response(&self, status: poem::http::StatusCode) -> poem::Response {
        poem::Response::builder()
            .status(status)
            .content_type("application/json")
            .body(serde_json::to_string(self).unwrap_or_default())
    }

    /// The first message of `body` when it is an error body.
    pub fn message_in(body: &[u8]) -> Option<String> {
        let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
        parsed.error.into_iter().next().map(|m| m.message)
    }
}

/// A content hash.
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[oai(rename = "ContextionaryHash")]
pub struct ContentHash {
    /// `md5`.
    #[serde(default)]
    #[oai(default)]
    pub algorithm: String,
    /// The hex digest of the contextionary's content.
    #[serde(default)]
    #[oai(default)]
    pub value: String,
}

/// A contextionary offered for download: where, and its hash (the genesis contract's
/// `Contextionary`, with the extension `indexUrl`). Both `null` when there is none.
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[oai(rename = "ContextionaryOffer")]
pub struct ContextionaryOffer {
    /// Where to download its finalfusion file.
    #[serde(default)]
    pub url: Option<String>,
    /// Its content hash.
    #[serde(default)]
    pub hash: Option<ContentHash>,
    /// Where to download its nearest-neighbour index.
    #[serde(rename = "indexUrl", default, skip_serializing_if = "Option::is_none")]
    #[oai(rename = "indexUrl", skip_serializing_if_is_none)]
    pub index_url: Option<String>,
}

/// A peer in a list (0.12's `PeerUpdate`): its id, name, base URL, schema hash and key.
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "P2pPeer")]
pub struct ListedPeer {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its base URL.
    pub uri: String,
    /// The MD5 of its schema.
    #[serde(rename = "schemaHash", default)]
    #[oai(rename = "schemaHash", default)]
    pub schema_hash: String,
    /// Its public key, `ed25519:…` (absent for a peer that cannot sign).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub identity: Option<String>,
}

/// `POST /weaviate/v1/peers`: a peer announcing itself, or a known peer announcing a newcomer
/// (bootstrapped networks).
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "PeerAnnouncement")]
pub struct Announcement {
    /// The peer's name, a DNS label unique in the network.
    #[serde(rename = "peerName")]
    #[oai(rename = "peerName")]
    pub peer_name: String,
    /// Its base URL as peers reach it (e.g. `https://10.0.0.5:8080`, without `/weaviate/v1`).
    #[serde(rename = "peerUri")]
    #[oai(rename = "peerUri")]
    pub peer_uri: String,
    /// Its id (extension; the echo's answer is what is stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub id: Option<Uuid>,
    /// The MD5 of its schema (extension).
    #[serde(
        rename = "schemaHash",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[oai(rename = "schemaHash", skip_serializing_if_is_none)]
    pub schema_hash: Option<String>,
    /// Its public key (extension): a newcomer's echo must be signed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub identity: Option<String>,
}

/// What a peer answers an announcement with.
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "PeerAnnounceAnswer")]
pub struct AnnounceAnswer {
    /// The MD5 of the network's (this peer's) contextionary; `null` without one. A newcomer
    /// with another one refuses to start (or downloads it, with `P2P.requestContextionary`).
    #[serde(rename = "contextionaryMD5", default)]
    #[oai(rename = "contextionaryMD5")]
    pub contextionary_md5: Option<String>,
    /// Where to download that contextionary.
    #[serde(default)]
    pub contextionary: Option<ContextionaryOffer>,
    /// The announced peer, as stored.
    pub peer: ListedPeer,
    /// The peers this peer knows, itself included and the announced one not: what a newcomer
    /// stores.
    #[serde(default)]
    #[oai(default)]
    pub peers: Vec<ListedPeer>,
}

/// `GET /weaviate/v1/peers/echo`: who answers at this address.
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "PeerEcho")]
pub struct Echo {
    /// This peer's name.
    #[serde(rename = "peerName")]
    #[oai(rename = "peerName")]
    pub peer_name: String,
    /// Its id.
    pub id: Uuid,
    /// The MD5 of its schema.
    #[serde(rename = "schemaHash", default)]
    #[oai(rename = "schemaHash", default)]
    pub schema_hash: String,
    /// Its public key (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub identity: Option<String>,
    /// Whether the peer that signed the echo request is one this peer knows, by that key
    /// (extension; absent for an unsigned request): a peer that is not known any more (its old
    /// key was removed by an operator) announces itself again.
    #[serde(rename = "knowsYou", default, skip_serializing_if = "Option::is_none")]
    #[oai(rename = "knowsYou", skip_serializing_if_is_none)]
    pub knows_you: Option<bool>,
}

/// `GET /weaviate/v1/p2p/ping`: what a genesis checks before it registers a peer.
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "P2pPong")]
pub struct Pong {
    /// This peer's name.
    #[serde(rename = "peerName")]
    #[oai(rename = "peerName")]
    pub peer_name: String,
}

/// `GET /weaviate/v1/p2p/schema`: a peer's ontology and its MD5.
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[oai(rename = "P2pSchema")]
pub struct SchemaAnswer {
    /// The ontology, `{"actions": SemanticSchema, "things": SemanticSchema}`.
    pub schema: serde_json::Value,
    /// The MD5 (hex) of that JSON: the schema hash the peer pings with.
    pub hash: String,
}

/// `POST /peers/register` at a genesis (the genesis contract's `PeerUpdate`).
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "PeerUpdate")]
pub struct Registration {
    /// The peer's name, a DNS label.
    #[serde(rename = "peerName", default)]
    #[oai(rename = "peerName")]
    pub peer_name: Option<String>,
    /// Its base URL as the genesis reaches it.
    #[serde(rename = "peerUri", default)]
    #[oai(rename = "peerUri")]
    pub peer_uri: Option<String>,
}

/// A registered peer, as a genesis lists it (the genesis contract's `Peer`).
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "Peer")]
pub struct RegisteredPeer {
    /// Its registration id.
    pub id: Uuid,
    /// Its name.
    #[serde(rename = "peerName")]
    #[oai(rename = "peerName")]
    pub peer_name: String,
    /// Its base URL.
    #[serde(rename = "peerUri")]
    #[oai(rename = "peerUri")]
    pub peer_uri: String,
    /// When it was last heard from, Unix ms.
    #[serde(default)]
    #[oai(default)]
    pub last_contact_at: i64,
    /// The MD5 of its schema, as it last said.
    #[serde(default)]
    #[oai(default)]
    pub schema_hash: String,
    /// Its public key (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub identity: Option<String>,
}

/// What a genesis answers a registration with.
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "PeerRegistrationResponse")]
pub struct RegistrationAnswer {
    /// The peer as registered.
    pub peer: RegisteredPeer,
    /// The network's contextionary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub contextionary: Option<ContextionaryOffer>,
}

/// `POST /peers/{peerId}/ping` at a genesis.
#[derive(Object, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[oai(rename = "PeerPing")]
pub struct Ping {
    /// The MD5 of the peer's schema.
    #[serde(
        rename = "schemaHash",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[oai(rename = "schemaHash")]
    pub schema_hash: Option<String>,
    /// The version of the peer list it holds (extension; see the versioned list).
    #[serde(
        rename = "peerListVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[oai(rename = "peerListVersion")]
    pub peer_list_version: Option<u64>,
}

/// Checks a peer name: a DNS label (1 to 63 letters, digits and `-`, not starting or ending
/// with `-`). The error says how to write one.
pub fn check_peer_name(name: &str) -> Result<(), String> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if name.is_empty()
        || name.len() > 63
        || !ok_chars
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err(format!(
            "peerName {name:?} is not a DNS label; use 1 to 63 letters, digits and '-', not starting or ending with '-' (e.g. \"peer-1\")"
        ));
    }
    Ok(())
}

/// Every refusal of an operation between servers (a peer's or a genesis's): its status, the
/// error body and, for a budget, when to try again. One type for both servers, so that each
/// status means the same everywhere.
#[derive(poem_openapi::ApiResponse, Debug)]
pub enum Refusal {
    /// The request is malformed, or the address it names did not answer the echo.
    #[oai(status = 400)]
    BadRequest(poem_openapi::payload::Json<ErrorBody>),
    /// The request is not signed (or its signature does not verify), and must be.
    #[oai(status = 401)]
    Unauthorized(poem_openapi::payload::Json<ErrorBody>),
    /// Signed by a key that may not do this, or the wrong credentials.
    #[oai(status = 403)]
    Forbidden(poem_openapi::payload::Json<ErrorBody>),
    /// This server is no peer, or no such peer, id or file.
    #[oai(status = 404)]
    NotFound(poem_openapi::payload::Json<ErrorBody>),
    /// The request conflicts with the state here (a peer name bound to another key, a list of
    /// changes from another version, an announcement to a peer of a genesis network).
    #[oai(status = 409)]
    Conflict(poem_openapi::payload::Json<ErrorBody>),
    /// The request is larger than a limit, which the message names.
    #[oai(status = 413)]
    TooLarge(poem_openapi::payload::Json<ErrorBody>),
    /// A field is missing or invalid.
    #[oai(status = 422)]
    Unprocessable(poem_openapi::payload::Json<ErrorBody>),
    /// Over a budget, which the message names; try again after `Retry-After`.
    #[oai(status = 429)]
    TooMany(
        poem_openapi::payload::Json<ErrorBody>,
        /// Seconds to wait.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// A fault of this server (or not healthy yet).
    #[oai(status = 500)]
    Internal(poem_openapi::payload::Json<ErrorBody>),
}

impl Refusal {
    /// A refusal with `status` (400, 401, 403, 404, 409, 413, 422; anything else is a 500).
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        let b = poem_openapi::payload::Json(ErrorBody::new(message));
        match status {
            400 => Refusal::BadRequest(b),
            401 => Refusal::Unauthorized(b),
            403 => Refusal::Forbidden(b),
            404 => Refusal::NotFound(b),
            409 => Refusal::Conflict(b),
            413 => Refusal::TooLarge(b),
            422 => Refusal::Unprocessable(b),
            429 => Refusal::TooMany(b, 60),
            _ => Refusal::Internal(b),
        }
    }

    /// A 429 naming the budget, to be tried again in `retry_after_s` seconds.
    pub fn over_budget(message: impl Into<String>, retry_after_s: u64) -> Self {
        Refusal::TooMany(
            poem_openapi::payload::Json(ErrorBody::new(message)),
            retry_after_s,
        )
    }

    /// Its status.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::Unauthorized(_) => 401,
            Refusal::Forbidden(_) => 403,
            Refusal::NotFound(_) => 404,
            Refusal::Conflict(_) => 409,
            Refusal::TooLarge(_) => 413,
            Refusal::Unprocessable(_) => 422,
            Refusal::TooMany(..) => 429,
            Refusal::Internal(_) => 500,
        }
    }

    /// Its message.
    pub fn message(&self) -> &str {
        let (Refusal::BadRequest(b)
        | Refusal::Unauthorized(b)
        | Refusal::Forbidden(b)
        | Refusal::NotFound(b)
        | Refusal::Conflict(b)
        | Refusal::TooLarge(b)
        | Refusal::Unprocessable(b)
        | Refusal::TooMany(b, _)
        | Refusal::Internal(b)) = self;
        b.0.error.first().map_or("", |m| m.message.as_str())
    }
}
