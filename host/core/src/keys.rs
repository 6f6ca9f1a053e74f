//! The key tree: who a request comes from ([`Principal`]), what it may do, and the keys
//! themselves (root key at start-up, children, expiry, renewal).
//!
//! Owns: token hashing and constant-time checks, the expiry and `ipOrigin` rules, the rights and
//! ownership rules, the short-lived key cache. Must not know: HTTP routes (the server calls
//! [`KeyTree::authenticate`] once per request), how keys are stored (the connector does).
//!
//! Rules (the source documents' "Authorisation" design):
//! * one root key with all rights that never expires; every key may create children whose
//!   rights are a subset of its own and whose expiry is not after its own;
//! * a key whose ancestor has expired is expired;
//! * a key reaches the objects and keys of its own subtree; a child never reaches its parent;
//! * tokens are stored only as SHA-256 hashes (they are random UUIDs, so a fast hash is
//!   enough) and compared in constant time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use weft_plugin_api::{now_ms, ErrorKind, Id, StoredKey};

use crate::handles::ConnectorHandle;
use crate::{Error, Result};

/// The message for a request without both headers.
pub const MISSING_HEADERS: &str = "Please provide both X-API-KEY and X-API-TOKEN headers.";

/// How long a verified key stays cached. Changes made through this server invalidate it at
/// once; changes made by another server sharing the store are seen after at most this long.
const CACHE_TTL: Duration = Duration::from_secs(2);

/// A right a key may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// GET, lists, history, GraphQL `Local`.
    Read,
    /// Create, PUT, PATCH, references, batching.
    Write,
    /// DELETE.
    Delete,
    /// GraphQL `Network` and network questions.
    Execute,
}

impl Right {
    fn name(self) -> &'static str {
        match self {
            Right::Read => "read",
            Right::Write => "write",
            Right::Delete => "delete",
            Right::Execute => "execute",
        }
    }
    fn held_by(self, k: &StoredKey) -> bool {
        match self {
            Right::Read => k.read,
            Right::Write => k.write,
            Right::Delete => k.delete,
            Right::Execute => k.execute,
        }
    }
}

/// The CIDR ranges of a key's `ipOrigin` (an unparsable entry, which creation refuses, matches
/// nothing).
fn cidrs(k: &StoredKey) -> Vec<ipnet::IpNet> {
    k.ip_origin
        .iter()
        .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
        .collect()
}

/// The token hash of a root key replaced by another: no token matches it.
pub const REVOKED_ROOT: &str = "revoked: replaced by another configured root key";

/// `sha256:<hex>` of a token.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    format!("sha256:{}", hex::encode(digest))
}

fn token_matches(stored_hash: &str, token: &str) -> bool {
    let presented = hash_token(token);
    presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Whether a key has expired at `now` (ms).
pub fn is_expired(k: &StoredKey, now: i64) -> bool {
    k.expires_ms >= 0 && k.expires_ms <= now
}

fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// The caller of a request: its key and that key's ancestors (parent first, root last).
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key.
    pub key: StoredKey,
    /// Its ancestors, parent first.
    pub ancestors: Vec<StoredKey>,
}

impl Principal {
    /// The key id.
    pub fn id(&self) -> Id {
        self.key.id
    }

    /// Whether this is a root key.
    pub fn is_root(&self) -> bool {
        self.key.parent.is_none()
    }

    /// 403 unless the key holds `right` — itself and every ancestor: a key's effective rights
    /// are its own and all of its ancestors'.
    pub fn require(&self, right: Right) -> Result<()> {
        if !right.held_by(&self.key) {
            return Err(Error::forbidden(format!(
                "key {} lacks the {} right needed here; use a key with it (its parent may create one)",
                self.key.id,
                right.name()
            )));
        }
        if let Some(a) = self.ancestors.iter().find(|a| !right.held_by(a)) {
            return Err(Error::forbidden(format!(
                "key {} may not use the {} right: its ancestor key {} lacks it, and a key has no right its ancestors lack",
                self.key.id,
                right.name(),
                a.id
            )));
        }
        Ok(())
    }

    /// 403 unless this is a root key.
    pub fn require_root(&self, what: &str) -> Result<()> {
        if self.is_root() {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "{what} needs the root key; key {} is not the root",
                self.key.id
            )))
        }
    }
}

/// The key tree over the connector, with a short-lived cache.
pub struct KeyTree {
    conn: ConnectorHandle,
    cache: Mutex<HashMap<Id, (Instant, StoredKey)>>,
}

impl KeyTree {
    /// A key tree stored in `conn`.
    pub fn new(conn: ConnectorHandle) -> Self {
        KeyTree {
            conn,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, id: Id) -> Option<StoredKey> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(&id)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, k)| k.clone())
    }

    /// Forgets cached keys (after they changed or were deleted).
    pub fn invalidate(&self, ids: &[Id]) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            cache.remove(id);
        }
    }

    /// One key (cached briefly). While the connector is unavailable (unreachable, or poisoned
    /// after a panic), a key this host verified before is still known, so `/meta` can say what
    /// is wrong; keys changed through this host are never served stale (changes invalidate).
    pub async fn key(&self, id: Id) -> Result<Option<StoredKey>> {
        if let Some(k) = self.cached(id) {
            return Ok(Some(k));
        }
        let k = match self.conn.get_key(id).await {
            Ok(k) => k,
            Err(e) if e.kind == ErrorKind::Unavailable => {
                let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                match cache.get(&id) {
                    Some((_, k)) => return Ok(Some(k.clone())),
                    None => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(k) = &k {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.insert(id, (Instant::now(), k.clone()));
        }
        Ok(k)
    }

    /// The ancestors of `k`, parent first.
    pub async fn ancestors(&self, k: &StoredKey) -> Result<Vec<StoredKey>> {
        let mut out = vec![];
        let mut next = k.parent.into_option();
        while let Some(pid) = next {
            if out.len() > 10_000 || pid == k.id {
                return Err(Error::internal("the key tree has a cycle"));
            }
            let p = self.key(pid).await?.ok_or_else(|| {
                Error::unauthorized(format!(
                    "key {} belongs to a deleted key; it no longer works",
                    k.id
                ))
            })?;
            next = p.parent.into_option();
            out.push(p);
        }
        Ok(out)
    }

    /// Makes sure a root key exists. With `configured` (key id, token) that key is the root
    /// (created, or its token set); otherwise, on an empty store, a root is generated and
    /// returned so the caller can print it once.
    pub async fn ensure_root(
        &self,
        configured: Option<(Id, String)>,
    ) -> anyhow::Result<Option<(Id, String)>> {
        let fail = |e: weft_plugin_api::PluginError| {
            anyhow::anyhow!("cannot set up the root key: {}", e.message)
        };
        if let Some((id, token)) = configured {
            let hash = hash_token(&token);
            match self.conn.get_key(id).await.map_err(fail)? {
                Some(k) if k.parent.is_some() => anyhow::bail!(
                    "auth.root_key / WEFT_ROOT_KEY {id} is a child key in this store, not a root; choose another id"
                ),
                Some(k) if k.token_hash.as_str() == hash => {}
                Some(mut k) => {
                    k.token_hash = hash.into();
                    self.conn.update_key(k).await.map_err(fail)?;
                }
                None => self.conn.add_key(root_key(id, &hash)).await.map_err(fail)?,
            }
            // One root: any other root key stops working (its token is revoked). Its child keys
            // keep working, and the new root reaches everything.
            for mut old in self.conn.root_keys().await.map_err(fail)? {
                if old.id == id || old.token_hash.as_str() == REVOKED_ROOT {
                    continue;
                }
                old.token_hash = REVOKED_ROOT.into();
                self.conn.update_key(old.clone()).await.map_err(fail)?;
                self.invalidate(&[old.id]);
                tracing::warn!(
                    "the configured root key is now {id}; the previous root key {} no longer works (its child keys do)",
                    old.id
                );
            }
            return Ok(None);
        }
        if !self.conn.root_keys().await.map_err(fail)?.is_empty() {
            return Ok(None);
        }
        let (id, created_ms) = crate::time_ordered_id();
        let token = Id::random().to_string();
        let root = StoredKey {
            created_ms,
            ..root_key(id, &hash_token(&token))
        };
        self.conn.add_key(root).await.map_err(fail)?;
        Ok(Some((id, token)))
    }

    /// Who sends a request with these headers from `peer`: 401 without both headers, with an
    /// unknown key, a wrong token or an expired key (or ancestor); 403 from an address outside
    /// the key's `ipOrigin`.
    pub async fn authenticate(
        &self,
        key: Option<&str>,
        token: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Result<Principal> {
        let (Some(key), Some(token)) = (key, token) else {
            return Err(Error::unauthorized(MISSING_HEADERS));
        };
        let id: Id = key.trim().parse().map_err(|_| {
            Error::unauthorized(format!("X-API-KEY {key:?} is not a key id (a UUID)"))
        })?;
        let unknown =
            || Error::unauthorized("unknown key or wrong token; check X-API-KEY and X-API-TOKEN");
        let k = self.key(id).await?.ok_or_else(unknown)?;
        if !token_matches(&k.token_hash, token.trim()) {
            return Err(unknown());
        }
        let now = now_ms();
        if is_expired(&k, now) {
            return Err(Error::unauthorized(format!(
                "key {id} expired at {}; ask its parent for a new key",
                format_ms(k.expires_ms)
            )));
        }
        let ancestors = self.ancestors(&k).await?;
        if let Some(a) = ancestors.iter().find(|a| is_expired(a, now)) {
            return Err(Error::unauthorized(format!(
                "key {id} has expired with its ancestor key {}, which expired at {}",
                a.id,
                format_ms(a.expires_ms)
            )));
        }
        // `ipOrigin` holds for the key and every ancestor: the request must come from within
        // each restricting key's ranges.
        for r in std::iter::once(&k).chain(ancestors.iter()) {
            if r.ip_origin.is_empty() {
                continue;
            }
            let allowed = cidrs(r);
            let ok = peer.is_some_and(|ip| allowed.iter().any(|net| net.contains(&ip)));
            if !ok {
                let from = peer
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "an unknown address".into());
                let whose = if r.id == k.id {
                    format!("key {id}")
                } else {
                    format!("key {id} (through its ancestor key {})", r.id)
                };
                return Err(Error::forbidden(format!(
                    "{whose} may only be used from {}; this request comes from {from}",
                    r.ip_origin
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(Principal { key: k, ancestors })
    }

    /// Whether `owner` is the caller or one of its descendants.
    pub async fn reaches(&self, p: &Principal, owner: Id) -> Result<bool> {
        if p.is_root() || owner == p.id() {
            return Ok(true);
        }
        let Some(k) = self.key(owner).await? else {
            return Ok(false);
        };
        Ok(self.ancestors(&k).await?.iter().any(|a| a.id == p.id()))
    }

    /// The caller's key and every descendant's id.
    pub async fn subtree(&self, root: Id) -> Result<Vec<Id>> {
        let mut out = vec![root];
        let mut i = 0;
        while i < out.len() {
            for c in self.conn.key_children(out[i]).await? {
                out.push(c.id);
            }
            i += 1;
        }
        Ok(out)
    }

    /// `POST /keys`: a child of the caller. Answers the key and its token (shown only now).
    pub async fn create_child(&self, p: &Principal, req: NewKey) -> Result<(StoredKey, String)> {
        let parent = &p.key;
        for (right, wanted) in [
            (Right::Read, req.read),
            (Right::Write, req.write),
            (Right::Delete, req.delete),
            (Right::Execute, req.execute),
        ] {
            if wanted && !right.held_by(parent) {
                return Err(Error::unprocessable(format!(
                    "a child cannot have the {} right: its parent key {} lacks it",
                    right.name(),
                    parent.id
                )));
            }
        }
        let now = now_ms();
        let expires = match req.expires_ms {
            None | Some(0) => -1,
            Some(t) if t <= now => {
                return Err(Error::unprocessable(format!(
                    "keyExpiresUnix {t} ({}) is in the past; give a later time in Unix milliseconds, or 0 for never",
                    format_ms(t)
                )))
            }
            Some(t) => t,
        };
        let parent_expiry = std::iter::once(parent)
            .chain(p.ancestors.iter())
            .filter(|k| k.expires_ms >= 0)
            .map(|k| k.expires_ms)
            .min();
        if let Some(pe) = parent_expiry {
            if expires < 0 || expires > pe {
                return Err(Error::unprocessable(format!(
                    "a child cannot outlive its parent: the parent expires at {} ({pe}); give keyExpiresUnix at most {pe}",
                    format_ms(pe)
                )));
            }
        }
        let mut wanted = vec![];
        for cidr in &req.ip_origin {
            wanted.push(cidr.parse::<ipnet::IpNet>().map_err(|e| {
                Error::unprocessable(format!(
                    "ipOrigin {cidr:?} is not a CIDR range ({e}); write e.g. \"127.0.0.1/32\""
                ))
            })?);
        }
        // A child's ranges lie within those of its parent and every ancestor that has some.
        for r in std::iter::once(parent).chain(p.ancestors.iter()) {
            if r.ip_origin.is_empty() {
                continue;
            }
            let allowed = cidrs(r);
            if let Some(out) = wanted
                .iter()
                .find(|w| !allowed.iter().any(|a| a.contains(*w)))
            {
                return Err(Error::unprocessable(format!(
                    "ipOrigin {out} is not within the ranges of key {} ({}); a child's ipOrigin must lie within its parent's",
                    r.id,
                    r.ip_origin.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        // Without ranges of its own, a child is shown its parent's (which it is held to anyway).
        let ip_origin: Vec<String> = if req.ip_origin.is_empty() {
            parent.ip_origin.iter().map(|c| c.to_string()).collect()
        } else {
            req.ip_origin.clone()
        };
        // Tokens stay random; the id is time-ordered and gives the creation time, so children
        // made in one millisecond list oldest first (`created_ms`, then id) in creation order.
        let token = Id::random().to_string();
        let (id, created_ms) = crate::time_ordered_id();
        let key = StoredKey {
            id,
            parent: Some(parent.id).into(),
            token_hash: hash_token(&token).into(),
            email: req.email.unwrap_or_default().into(),
            ip_origin: ip_origin.into_iter().map(Into::into).collect(),
            expires_ms: expires,
            read: req.read,
            write: req.write,
            delete: req.delete,
            execute: req.execute,
            created_ms,
        };
        self.conn.add_key(key.clone()).await?;
        Ok((key, token))
    }

    /// A key the caller may see (itself or a descendant): 404 when missing, 403 otherwise.
    pub async fn visible_key(&self, p: &Principal, id: Id) -> Result<StoredKey> {
        let k = self
            .key(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("there is no key {id}")))?;
        if !self.reaches(p, id).await? {
            return Err(Error::forbidden(format!(
                "key {} may not see key {id}: it is not in its subtree",
                p.id()
            )));
        }
        Ok(k)
    }

    /// The direct children of a visible key.
    pub async fn children(&self, p: &Principal, id: Id) -> Result<Vec<StoredKey>> {
        self.visible_key(p, id).await?;
        Ok(self.conn.key_children(id).await?)
    }

    /// The key `p` may delete (a strict descendant), or why not. Deleting goes through
    /// `Core::delete_key`, which re-owns the subtree's objects first.
    pub async fn deletable(&self, p: &Principal, id: Id) -> Result<StoredKey> {
        let k = self.visible_key(p, id).await?;
        if id == p.id() {
            return Err(Error::forbidden(
                "a key cannot delete itself; its parent (or an ancestor) may delete it",
            ));
        }
        Ok(k)
    }

    /// Deletes a key and its subtree (no rules checked, objects left as they are: use
    /// `Core::delete_key`); answers the deleted ids.
    pub(crate) async fn delete_subtree(&self, id: Id) -> Result<Vec<Id>> {
        let deleted = self.conn.delete_key(id).await.map_err(|e| match e.kind {
            ErrorKind::NotFound => Error::not_found(format!("there is no key {id}")),
            _ => e.into(),
        })?;
        self.invalidate(&deleted);
        Ok(deleted)
    }

    /// `PUT /keys/{id}/renew-token`: a descendant's token, or one's own for the root. The old
    /// token stops working at once.
    pub async fn renew(&self, p: &Principal, id: Id) -> Result<(StoredKey, String)> {
        let mut k = self.visible_key(p, id).await?;
        if k.parent.is_none() && id != p.id() {
            return Err(Error::forbidden(format!(
                "key {id} is another root key; a root key's token comes from the configuration (auth.root_key, auth.root_token)"
            )));
        }
        if id == p.id() && !p.is_root() {
            return Err(Error::forbidden(
                "a key cannot renew its own token (only the root can); ask its parent",
            ));
        }
        let token = Id::random().to_string();
        k.token_hash = hash_token(&token).into();
        self.conn.update_key(k.clone()).await?;
        self.invalidate(&[id]);
        Ok((k, token))
    }
}

fn root_key(id: Id, hash: &str) -> StoredKey {
    StoredKey {
        id,
        parent: None.into(),
        token_hash: hash.into(),
        email: "".into(),
        ip_origin: Default::default(),
        expires_ms: -1,
        read: true,
        write: true,
        delete: true,
        execute: true,
        created_ms: now_ms(),
    }
}

/// What `POST /keys` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// Read right.
    pub read: bool,
    /// Write right.
    pub write: bool,
    /// Delete right.
    pub delete: bool,
    /// Execute right.
    pub execute: bool,
    /// E-mail.
    pub email: Option<String>,
    /// CIDR ranges.
    pub ip_origin: Vec<String>,
    /// Expiry in Unix ms (0 or none: never).
    pub expires_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_matches_only_its_token() {
        let h = hash_token("a0d1c3b2-0000-4000-8000-000000000001");
        assert!(token_matches(&h, "a0d1c3b2-0000-4000-8000-000000000001"));
        assert!(!token_matches(&h, "a0d1c3b2-0000-4000-8000-000000000002"));
        assert!(!token_matches(&h, ""));
        assert!(h.starts_with("sha256:") && !h.contains("a0d1c3b2"));
    }

    #[test]
    fn never_expiring_keys_do_not_expire() {
        let mut k = root_key(Id::random(), "x");
        assert!(!is_expired(&k, i64::MAX));
        k.expires_ms = 10;
        assert!(is_expired(&k, 10));
        assert!(!is_expired(&k, 9));
    }

    /// Children made back to back (many in one millisecond) list oldest first in creation
    /// order: time-ordered ids, and `created_ms` from the id.
    #[tokio::test]
    async fn children_list_in_creation_order() {
        let conn = ConnectorHandle::from_box(
            weft_plugin_api::connector_box(weft_dev_memory::DevMemory::new()),
            "dev-memory",
            weft_dev_memory::CAPABILITIES,
        );
        let tree = KeyTree::new(conn);
        let root: Id = "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000004".parse().unwrap();
        tree.ensure_root(Some((root, "t".into()))).await.unwrap();
        let p = tree
            .authenticate(Some(&root.to_string()), Some("t"), None)
            .await
            .unwrap();
        let mut made = vec![];
        for _ in 0..100 {
            let (k, token) = tree
                .create_child(
                    &p,
                    NewKey {
                        read: true,
                        ..NewKey::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(Some(k.created_ms), k.id.unix_ms(), "{k:?}");
            let token: Id = token.parse().unwrap();
            assert_eq!(token.to_uuid().get_version_num(), 4, "tokens stay random");
            made.push(k.id);
        }
        let children: Vec<Id> = tree
            .children(&p, root)
            .await
            .unwrap()
            .iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(children, made);
    }
}
