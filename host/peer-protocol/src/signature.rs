//! Signed messages between the servers of a network: a fixed profile of HTTP Message Signatures
//! (RFC 9421) with Ed25519, the body bound by `Content-Digest` (RFC 9530).
//!
//! **A request** from a server carries four headers:
//!
//! ```text
//! Content-Digest: sha-256=:<base64 of SHA-256 of the body (of nothing, without one)>:
//! Weft-Peer: alpha
//! Signature-Input: weft=("@method" "@authority" "@path" "@query" "content-digest" "weft-peer");created=1733560000;keyid="<key>";alg="ed25519";nonce="<random>"
//! Signature: weft=:<base64 of the Ed25519 signature of the signature base>:
//! ```
//!
//! `keyid` is the sender's public key (32 bytes, unpadded base64url; see [`crate::identity`]),
//! `Weft-Peer` its peer name (`genesis` for a genesis server), `nonce` 16 random bytes in
//! unpadded base64url. The signature base is RFC 9421's: one line per component,
//! `"<name>": <value>`, then `"@signature-params": <the inner list above>`, lines joined by
//! `\n`; `@authority` is the host (and port, unless the scheme's default) the request was sent
//! to, in lower case; `@query` is `?` and the query (just `?` without one).
//!
//! **The answer** to a signed request is signed by the server that answers, bound to that
//! request by covering its signature:
//!
//! ```text
//! Signature-Input: weft=("@status" "content-digest" "weft-peer" "signature";req;key="weft");created=…;keyid="…";alg="ed25519";nonce="…"
//! ```
//!
//! where the last component's value is the request's `Signature` member `weft` (`:…:`). So an
//! answer can be neither forged nor replayed for another request.
//!
//! **Checks** on receipt, each with its own refusal ([`SignatureError`]): the exact component
//! list and parameters of this profile; `created` within [`MAX_SKEW_S`] of this server's clock;
//! the body's digest; the signature under `keyid`; a `(keyid, nonce)` not seen before within the
//! skew window ([`ReplayGuard`]). Who may send what (a name bound to its key, the pinned genesis)
//! is the receiver's rule, above this module.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http::HeaderMap;
use sfv::{BareItem, Dictionary, FieldType, InnerList, Item, Key, ListEntry, Parameters, Parser};
use sha2::{Digest, Sha256};

use crate::identity::{Identity, PublicKey};

/// The label of this profile's member in `Signature-Input` and `Signature`.
pub const LABEL: &str = "weft";
/// The header naming the sender's peer name.
pub const PEER_HEADER: &str = "weft-peer";
/// The peer name a genesis server signs as.
pub const GENESIS_NAME: &str = "genesis";
/// The most a signature's `created` may differ from this server's clock, in seconds (both
/// ways); also how long a nonce is remembered.
pub const MAX_SKEW_S: i64 = 300;

const REQUEST_COMPONENTS: [&str; 6] = [
    "@method",
    "@authority",
    "@path",
    "@query",
    "content-digest",
    PEER_HEADER,
];
const RESPONSE_COMPONENTS: [&str; 3] = ["@status", "content-digest", PEER_HEADER];

/// Why a signed message is refused: one line for the sender's operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The headers do not follow this profile.
    Malformed(String),
    /// `created` is too far from this server's clock.
    Stale {
        /// The signature's time, Unix seconds.
        created: i64,
        /// This server's time.
        now: i64,
    },
    /// The body is not the one `Content-Digest` names.
    Digest,
    /// The signature does not verify under `keyid`.
    Invalid,
    /// This `(keyid, nonce)` was seen before.
    Replayed,
    /// Signed for another server (`@authority`).
    OtherServer(String),
    /// Too many signed messages to remember within the window.
    Busy,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::Malformed(m) => write!(
                f,
                "the message signature is malformed: {m}; sign as README \"Running a network across organisations\" describes"
            ),
            SignatureError::Stale { created, now } => write!(
                f,
                "the message was signed at {created} (Unix seconds), {} s from this server's clock ({now}); more than {MAX_SKEW_S} s is refused as stale: set both clocks right (NTP)",
                (now - created).abs()
            ),
            SignatureError::Digest => f.write_str(
                "the message body does not match its Content-Digest: it was changed on the way",
            ),
            SignatureError::Invalid => f.write_str(
                "the message signature does not verify under its keyid: it was changed on the way or signed with another key",
            ),
            SignatureError::Replayed => f.write_str(
                "this signed message was received before (same key and nonce): a replay is refused; sign every message anew",
            ),
            SignatureError::OtherServer(a) => write!(
                f,
                "the message was signed for {a}, not for this server: it was sent to the wrong address or replayed"
            ),
            SignatureError::Busy => f.write_str(
                "this server remembers too many signed messages right now; try again in a minute",
            ),
        }
    }
}

impl std::error::Error for SignatureError {}

/// What a request is sent to, as its signature covers it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `GET`, `POST`, ….
    pub method: &'a str,
    /// `host[:port]` as addressed (see [`authority_of`]).
    pub authority: &'a str,
    /// The path, percent-encoded as sent (`/` when empty).
    pub path: &'a str,
    /// The query without `?`, if any.
    pub query: Option<&'a str>,
}

/// `host[:port]` of `url` as `@authority` covers it: lower case, the scheme's default port
/// left out.
pub fn authority_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    match url.port() {
        Some(p) if Some(p) != default_port(url.scheme()) => format!("{host}:{p}"),
        _ => host,
    }
}

/// `authority` (a `Host` header's value) as [`authority_of`] writes it for `scheme`.
pub fn normalize_authority(authority: &str, scheme: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    if let Some((host, port)) = a.rsplit_once(':') {
        if !host.is_empty()
            && !port.contains(']')
            && port.parse::<u16>().ok() == default_port(scheme)
        {
            return host.to_string();
        }
    }
    a
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The `Content-Digest` of `body`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// The headers that sign one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `Content-Digest`.
    pub content_digest: String,
    /// `Weft-Peer`.
    pub peer: String,
    /// `Signature-Input`.
    pub signature_input: String,
    /// `Signature`.
    pub signature: String,
}

impl SignatureHeaders {
    /// The headers as `(name, value)` pairs.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            ("content-digest", &self.content_digest),
            (PEER_HEADER, &self.peer),
            ("signature-input", &self.signature_input),
            ("signature", &self.signature),
        ]
    }

    /// Adds them to `headers` (replacing any there).
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (k, v) in self.pairs() {
            if let Ok(v) = http::HeaderValue::from_str(v) {
                headers.insert(http::HeaderName::from_static(k), v);
            }
        }
    }

    /// The `Signature` member's value (`:…:`), which the answer's signature covers.
    pub fn signature_value(&self) -> &str {
        self.signature
            .strip_prefix(LABEL)
            .and_then(|s| s.strip_prefix('='))
            .unwrap_or(&self.signature)
    }
}

/// A message whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The key it was signed with.
    pub key: PublicKey,
    /// The sender's peer name (`Weft-Peer`).
    pub peer: String,
    /// Its nonce.
    pub nonce: String,
    /// When it was signed, Unix seconds.
    pub created: i64,
    /// The `Signature` member's value (`:…:`).
    pub signature: String,
}

/// Whether `headers` carry a signature of this profile.
pub fn is_signed(headers: &HeaderMap) -> bool {
    headers.contains_key("signature-input") || headers.contains_key("signature")
}

fn nonce() -> String {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).expect("the operating system's random source");
    URL_SAFE_NO_PAD.encode(b)
}

fn key(s: &str) -> Key {
    Key::from_string(s.to_string()).expect("a fixed structured-field key")
}

fn string(s: &str) -> Result<BareItem, SignatureError> {
    sfv::String::from_string(s.to_string())
        .map(BareItem::String)
        .map_err(|_| SignatureError::Malformed(format!("{s:?} is not a structured-field string")))
}

/// The inner list naming `components` (the response's also the request's signature) with the
/// signature parameters, serialized as `@signature-params` and as the `Signature-Input` value.
fn params_line(
    components: &[&str],
    bind_request: bool,
    created: i64,
    keyid: &str,
    nonce: &str,
) -> Result<(String, String), SignatureError> {
    let mut items: Vec<Item> = components
        .iter()
        .map(|c| string(c).map(Item::new))
        .collect::<Result<_, _>>()?;
    if bind_request {
        let mut p = Parameters::new();
        p.insert(key("req"), BareItem::Boolean(true));
        p.insert(key("key"), string(LABEL)?);
        items.push(Item::with_params(string("signature")?, p));
    }
    let mut params = Parameters::new();
    params.insert(
        key("created"),
        BareItem::try_from(created)
            .map_err(|_| SignatureError::Malformed(format!("created {created} is out of range")))?,
    );
    params.insert(key("keyid"), string(keyid)?);
    params.insert(key("alg"), string("ed25519")?);
    params.insert(key("nonce"), string(nonce)?);
    let mut list = InnerList::new(items);
    list.params = params;
    let mut dict = Dictionary::new();
    dict.insert(key(LABEL), ListEntry::InnerList(list));
    let input = dict
        .serialize()
        .ok_or_else(|| SignatureError::Malformed("an empty signature input".into()))?;
    let line = input
        .strip_prefix(&format!("{LABEL}="))
        .unwrap_or(&input)
        .to_string();
    Ok((line, input))
}

/// One `"<component>": <value>` line; values must be one line of visible text.
fn base_line(out: &mut String, id: &str, value: &str) -> Result<(), SignatureError> {
    if value.chars().any(|c| c.is_control()) {
        return Err(SignatureError::Malformed(format!(
            "the value of {id} holds a control character"
        )));
    }
    out.push_str(id);
    out.push_str(": ");
    out.push_str(value);
    out.push('\n');
    Ok(())
}

fn request_base(
    t: &Target<'_>,
    digest: &str,
    peer: &str,
    params_line: &str,
) -> Result<String, SignatureError> {
    let mut b = String::new();
    base_line(&mut b, "\"@method\"", &t.method.to_ascii_uppercase())?;
    base_line(&mut b, "\"@authority\"", &t.authority.to_ascii_lowercase())?;
    base_line(
        &mut b,
        "\"@path\"",
        if t.path.is_empty() { "/" } else { t.path },
    )?;
    base_line(&mut b, "\"@query\"", &format!("?{}", t.query.unwrap_or("")))?;
    base_line(&mut b, "\"content-digest\"", digest)?;
    base_line(&mut b, "\"weft-peer\"", peer)?;
    b.push_str("\"@signature-params\": ");
    b.push_str(params_line);
    Ok(b)
}

fn response_base(
    status: u16,
    digest: &str,
    peer: &str,
    request_signature: &str,
    params_line: &str,
) -> Result<String, SignatureError> {
    let mut b = String::new();
    base_line(&mut b, "\"@status\"", &format!("{status:03}"))?;
    base_line(&mut b, "\"content-digest\"", digest)?;
    base_line(&mut b, "\"weft-peer\"", peer)?;
    base_line(&mut b, "\"signature\";req;key=\"weft\"", request_signature)?;
    b.push_str("\"@signature-params\": ");
    b.push_str(params_line);
    Ok(b)
}

fn signed(
    identity: &Identity,
    peer: &str,
    digest: String,
    base: impl FnOnce(&str) -> Result<String, SignatureError>,
    components: &[&str],
    bind_request: bool,
    now_s: i64,
) -> Result<SignatureHeaders, SignatureError> {
    let keyid = identity.public().key_id();
    let (line, input) = params_line(components, bind_request, now_s, &keyid, &nonce())?;
    let base = base(&line)?;
    let sig = identity.sign(base.as_bytes());
    Ok(SignatureHeaders {
        content_digest: digest,
        peer: peer.to_string(),
        signature_input: input,
        signature: format!("{LABEL}=:{}:", STANDARD.encode(sig)),
    })
}

/// The headers that sign a request to `target` with `body` (empty for none), sent by the peer
/// named `peer`. `Malformed` only for a peer name or target that no header can carry.
pub fn sign_request(
    identity: &Identity,
    peer: &str,
    target: &Target<'_>,
    body: &[u8],
    now_s: i64,
) -> Result<SignatureHeaders, SignatureError> {
    let digest = content_digest(body);
    signed(
        identity,
        peer,
        digest.clone(),
        |line| request_base(target, &digest, peer, line),
        &REQUEST_COMPONENTS,
        false,
        now_s,
    )
}

/// The headers that sign the answer (`status`, `body`) to a request whose `Signature` member
/// was `request_signature` (see [`SignatureHeaders::signature_value`], [`Verified::signature`]).
pub fn sign_response(
    identity: &Identity,
    peer: &str,
    status: u16,
    body: &[u8],
    request_signature: &str,
    now_s: i64,
) -> Result<SignatureHeaders, SignatureError> {
    let digest = content_digest(body);
    signed(
        identity,
        peer,
        digest.clone(),
        |line| response_base(status, &digest, peer, request_signature, line),
        &RESPONSE_COMPONENTS,
        true,
        now_s,
    )
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, SignatureError> {
    let mut values = headers.get_all(name).iter();
    let v = values
        .next()
        .ok_or_else(|| SignatureError::Malformed(format!("the {name} header is missing")))?;
    if values.next().is_some() {
        return Err(SignatureError::Malformed(format!(
            "the {name} header is given more than once"
        )));
    }
    v.to_str()
        .map(str::trim)
        .map_err(|_| SignatureError::Malformed(format!("the {name} header is not text")))
}

struct Input {
    line: String,
    created: i64,
    keyid: String,
    nonce: String,
}

/// Parses `Signature-Input` and checks it names exactly `components` (and the request's
/// signature, for an answer) with exactly this profile's parameters.
fn parse_input(
    headers: &HeaderMap,
    components: &[&str],
    bind_request: bool,
) -> Result<Input, SignatureError> {
    let raw = header(headers, "signature-input")?;
    let dict: Dictionary = Parser::new(raw)
        .parse()
        .map_err(|e| SignatureError::Malformed(format!("Signature-Input does not parse ({e})")))?;
    let Some(ListEntry::InnerList(list)) = dict.get(LABEL) else {
        return Err(SignatureError::Malformed(format!(
            "Signature-Input has no inner list labelled {LABEL:?}"
        )));
    };
    let names: Vec<(Option<&str>, usize)> = list
        .items
        .iter()
        .map(|i| (i.bare_item.as_string().map(|s| s.as_str()), i.params.len()))
        .collect();
    let plain = components.len();
    let want = plain + usize::from(bind_request);
    let fits = names.len() == want
        && names[..plain]
            .iter()
            .zip(components)
            .all(|((n, p), c)| *n == Some(*c) && *p == 0)
        && (!bind_request || {
            let last = &list.items[plain];
            last.bare_item.as_string().map(|s| s.as_str()) == Some("signature")
                && last.params.len() == 2
                && last.params.get("req").and_then(BareItem::as_boolean) == Some(true)
                && last
                    .params
                    .get("key")
                    .and_then(BareItem::as_string)
                    .map(|s| s.as_str())
                    == Some(LABEL)
        });
    if !fits {
        return Err(SignatureError::Malformed(format!(
            "Signature-Input must cover exactly ({}{})",
            components
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(" "),
            if bind_request {
                " \"signature\";req;key=\"weft\""
            } else {
                ""
            }
        )));
    }
    let p = &list.params;
    let created = p
        .get("created")
        .and_then(BareItem::as_integer)
        .map(i64::from)
        .ok_or_else(|| SignatureError::Malformed("created is missing or not an integer".into()))?;
    let text = |name: &str| -> Result<String, SignatureError> {
        p.get(name)
            .and_then(BareItem::as_string)
            .map(|s| s.as_str().to_string())
            .ok_or_else(|| SignatureError::Malformed(format!("{name} is missing or not a string")))
    };
    let keyid = text("keyid")?;
    let nonce = text("nonce")?;
    if text("alg")? != "ed25519" {
        return Err(SignatureError::Malformed("alg must be \"ed25519\"".into()));
    }
    if p.len() != 4 {
        return Err(SignatureError::Malformed(
            "the parameters must be exactly created, keyid, alg and nonce".into(),
        ));
    }
    if !(16..=64).contains(&nonce.len()) {
        return Err(SignatureError::Malformed(
            "the nonce must have 16 to 64 characters".into(),
        ));
    }
    let (line, _) = params_line(components, bind_request, created, &keyid, &nonce)?;
    Ok(Input {
        line,
        created,
        keyid,
        nonce,
    })
}

/// The `Signature` member's value and the signature bytes in it.
fn parse_signature(headers: &HeaderMap) -> Result<(String, Vec<u8>), SignatureError> {
    let raw = header(headers, "signature")?;
    let dict: Dictionary = Parser::new(raw)
        .parse()
        .map_err(|e| SignatureError::Malformed(format!("Signature does not parse ({e})")))?;
    let Some(ListEntry::Item(item)) = dict.get(LABEL) else {
        return Err(SignatureError::Malformed(format!(
            "Signature has no byte sequence labelled {LABEL:?}"
        )));
    };
    let bytes = item
        .bare_item
        .as_byte_sequence()
        .ok_or_else(|| {
            SignatureError::Malformed(format!("Signature's {LABEL:?} is not a byte sequence"))
        })?
        .to_vec();
    Ok((format!(":{}:", STANDARD.encode(&bytes)), bytes))
}

fn check_common(
    headers: &HeaderMap,
    body: &[u8],
    input: &Input,
    now_s: i64,
) -> Result<(PublicKey, String), SignatureError> {
    if (now_s - input.created).abs() > MAX_SKEW_S {
        return Err(SignatureError::Stale {
            created: input.created,
            now: now_s,
        });
    }
    let key = PublicKey::from_key_id(&input.keyid)
        .map_err(|e| SignatureError::Malformed(format!("keyid: {e}")))?;
    if header(headers, "content-digest")? != content_digest(body) {
        return Err(SignatureError::Digest);
    }
    let peer = header(headers, PEER_HEADER)?.to_string();
    Ok((key, peer))
}

/// Verifies the signature of a request received at `target` with `body` (replays are the
/// [`ReplayGuard`]'s to catch).
pub fn verify_request(
    target: &Target<'_>,
    headers: &HeaderMap,
    body: &[u8],
    now_s: i64,
) -> Result<Verified, SignatureError> {
    let input = parse_input(headers, &REQUEST_COMPONENTS, false)?;
    let (key, peer) = check_common(headers, body, &input, now_s)?;
    let (signature, sig) = parse_signature(headers)?;
    let base = request_base(
        target,
        header(headers, "content-digest")?,
        &peer,
        &input.line,
    )?;
    if !key.verifies(base.as_bytes(), &sig) {
        return Err(SignatureError::Invalid);
    }
    Ok(Verified {
        key,
        peer,
        nonce: input.nonce,
        created: input.created,
        signature,
    })
}

/// Verifies the signature of an answer (`status`, `headers`, `body`) to the request signed with
/// `request_signature`. `Ok(None)`: the answer is not signed (the caller decides whether an
/// unsigned answer will do).
pub fn verify_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    request_signature: &str,
    now_s: i64,
) -> Result<Option<Verified>, SignatureError> {
    if !is_signed(headers) {
        return Ok(None);
    }
    let input = parse_input(headers, &RESPONSE_COMPONENTS, true)?;
    let (key, peer) = check_common(headers, body, &input, now_s)?;
    let (signature, sig) = parse_signature(headers)?;
    let base = response_base(
        status,
        header(headers, "content-digest")?,
        &peer,
        request_signature,
        &input.line,
    )?;
    if !key.verifies(base.as_bytes(), &sig) {
        return Err(SignatureError::Invalid);
    }
    Ok(Some(Verified {
        key,
        peer,
        nonce: input.nonce,
        created: input.created,
        signature,
    }))
}

/// The `(keyid, nonce)` pairs seen within the skew window: a message seen twice is a replay.
/// Bounded: past `capacity` live entries a message is refused as [`SignatureError::Busy`].
pub struct ReplayGuard {
    seen: Mutex<HashMap<[u8; 16], i64>>,
    capacity: usize,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        ReplayGuard::new(500_000)
    }
}

impl ReplayGuard {
    /// A guard remembering at most `capacity` messages at once.
    pub fn new(capacity: usize) -> Self {
        ReplayGuard {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Records `v`; `Replayed` when its key and nonce were recorded before (and have not expired).
    pub fn check(&self, v: &Verified, now_s: i64) -> Result<(), SignatureError> {
        let mut h = Sha256::new();
        h.update(v.key.key_id().as_bytes());
        h.update([0]);
        h.update(v.nonce.as_bytes());
        let digest = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(expires) = seen.get(&id) {
            if *expires >= now_s {
                return Err(SignatureError::Replayed);
            }
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, expires| *expires >= now_s);
            if seen.len() >= self.capacity {
                return Err(SignatureError::Busy);
            }
        }
        seen.insert(id, v.created + MAX_SKEW_S + 1);
        Ok(())
    }

    /// How many messages are remembered.
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_733_560_000;

    fn target() -> Target<'static> {
        Target {
            method: "POST",
            authority: "127.0.0.1:8081",
            path: "/weaviate/v1/peers",
            query: None,
        }
    }

    fn headers(s: &SignatureHeaders) -> HeaderMap {
        let mut h = HeaderMap::new();
        s.apply(&mut h);
        h
    }

    #[test]
    fn a_signed_request_verifies_and_names_its_key_and_sender() {
        let id = Identity::generate();
        let s = sign_request(&id, "alpha", &target(), b"{\"a\":1}", NOW).unwrap();
        assert!(s.signature_input.starts_with(
            "weft=(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\" \"weft-peer\");created=1733560000;keyid=\""
        ), "{}", s.signature_input);
        let v = verify_request(&target(), &headers(&s), b"{\"a\":1}", NOW + 10).unwrap();
        assert_eq!(v.key, id.public());
        assert_eq!(v.peer, "alpha");
        assert_eq!(v.signature, s.signature_value());
    }

    #[test]
    fn tampering_a_wrong_key_staleness_and_replays_are_each_refused() {
        let id = Identity::generate();
        let s = sign_request(&id, "alpha", &target(), b"{\"a\":1}", NOW).unwrap();
        let h = headers(&s);
        // Another body.
        assert_eq!(
            verify_request(&target(), &h, b"{\"a\":2}", NOW),
            Err(SignatureError::Digest)
        );
        // Another body with its own digest: the signature covers the digest.
        let mut h2 = h.clone();
        h2.insert(
            "content-digest",
            content_digest(b"{\"a\":2}").parse().unwrap(),
        );
        assert_eq!(
            verify_request(&target(), &h2, b"{\"a\":2}", NOW),
            Err(SignatureError::Invalid)
        );
        // Another path, method, authority or sender name.
        for t in [
            Target {
                path: "/weaviate/v1/peers/questions",
                ..target()
            },
            Target {
                method: "PUT",
                ..target()
            },
            Target {
                authority: "127.0.0.1:8082",
                ..target()
            },
            Target {
                query: Some("x=1"),
                ..target()
            },
        ] {
            assert_eq!(
                verify_request(&t, &h, b"{\"a\":1}", NOW),
                Err(SignatureError::Invalid)
            );
        }
        let mut h3 = h.clone();
        h3.insert(PEER_HEADER, "beta".parse().unwrap());
        assert_eq!(
            verify_request(&target(), &h3, b"{\"a\":1}", NOW),
            Err(SignatureError::Invalid)
        );
        // A key claimed that did not sign.
        let other = Identity::generate().public().key_id();
        let mut h4 = h.clone();
        let forged = s.signature_input.replace(&id.public().key_id(), &other);
        h4.insert("signature-input", forged.parse().unwrap());
        assert_eq!(
            verify_request(&target(), &h4, b"{\"a\":1}", NOW),
            Err(SignatureError::Invalid)
        );
        // Stale, both ways.
        assert!(matches!(
            verify_request(&target(), &h, b"{\"a\":1}", NOW + MAX_SKEW_S + 1),
            Err(SignatureError::Stale { .. })
        ));
        assert!(matches!(
            verify_request(&target(), &h, b"{\"a\":1}", NOW - MAX_SKEW_S - 1),
            Err(SignatureError::Stale { .. })
        ));
        // Replayed.
        let guard = ReplayGuard::new(10);
        let v = verify_request(&target(), &h, b"{\"a\":1}", NOW).unwrap();
        guard.check(&v, NOW).unwrap();
        assert_eq!(guard.check(&v, NOW + 1), Err(SignatureError::Replayed));
        // Another component list is not this profile.
        let mut h5 = h.clone();
        h5.insert(
            "signature-input",
            s.signature_input
                .replace(" \"weft-peer\"", "")
                .parse()
                .unwrap(),
        );
        assert!(matches!(
            verify_request(&target(), &h5, b"{\"a\":1}", NOW),
            Err(SignatureError::Malformed(_))
        ));
        // Without headers.
        assert!(matches!(
            verify_request(&target(), &HeaderMap::new(), b"", NOW),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn an_answer_is_bound_to_its_request() {
        let asker = Identity::generate();
        let answerer = Identity::generate();
        let req = sign_request(&asker, "alpha", &target(), b"", NOW).unwrap();
        let resp =
            sign_response(&answerer, "beta", 200, b"{}", req.signature_value(), NOW).unwrap();
        let h = headers(&resp);
        let v = verify_response(200, &h, b"{}", req.signature_value(), NOW)
            .unwrap()
            .unwrap();
        assert_eq!(v.key, answerer.public());
        assert_eq!(v.peer, "beta");
        // Another request's answer, another status, another body: refused.
        let req2 = sign_request(&asker, "alpha", &target(), b"", NOW).unwrap();
        assert_eq!(
            verify_response(200, &h, b"{}", req2.signature_value(), NOW),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify_response(404, &h, b"{}", req.signature_value(), NOW),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify_response(200, &h, b"{\"x\":1}", req.signature_value(), NOW),
            Err(SignatureError::Digest)
        );
        // An unsigned answer is reported as such.
        assert_eq!(
            verify_response(200, &HeaderMap::new(), b"{}", req.signature_value(), NOW),
            Ok(None)
        );
    }

    #[test]
    fn authorities_leave_out_default_ports() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(
            authority_of(&u("https://Peer.Example:443/x")),
            "peer.example"
        );
        assert_eq!(authority_of(&u("http://127.0.0.1:8080")), "127.0.0.1:8080");
        assert_eq!(authority_of(&u("http://[::1]:9/")), "[::1]:9");
        assert_eq!(
            normalize_authority("Peer.Example:443", "https"),
            "peer.example"
        );
        assert_eq!(
            normalize_authority("127.0.0.1:8080", "http"),
            "127.0.0.1:8080"
        );
        assert_eq!(normalize_authority("[::1]:80", "http"), "[::1]");
    }

    #[test]
    fn the_replay_guard_is_bounded() {
        let id = Identity::generate();
        let guard = ReplayGuard::new(2);
        let v = |n: i64| {
            let s = sign_request(&id, "alpha", &target(), b"", n).unwrap();
            verify_request(&target(), &headers(&s), b"", n).unwrap()
        };
        guard.check(&v(NOW), NOW).unwrap();
        guard.check(&v(NOW), NOW).unwrap();
        assert_eq!(guard.check(&v(NOW), NOW), Err(SignatureError::Busy));
        // Expired entries make room.
        let later = NOW + 2 * MAX_SKEW_S + 2;
        guard.check(&v(later), later).unwrap();
        assert_eq!(guard.len(), 1);
    }
}
