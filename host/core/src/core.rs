//! [`Core`]: the state every front end shares — the connector, the key tree, the contextionary,
//! the ontology cache — and the ontology services (reading it, changing it under the schema
//! rules, keeping it consistent with the stored objects).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;
use tokio_util::task::TaskTracker;
use weft_plugin_api::{DocumentName, ErrorKind as PluginErrorKind, ObjectKind, ObjectQuery};

use crate::access::Visibility;
use crate::handles::{ConnectorHandle, ContextionaryHandle, WriteMode};
use crate::keys::{KeyTree, Principal};
use crate::ontology::{kind_word, Keyword, Ontology, SchemaError};
use crate::{Error, Result};

/// What a plugin the server runs with is, as `/meta` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// Declared name.
    pub name: String,
    /// `connector` or `contextionary`.
    pub kind: String,
    /// The `weft-plugin-api` version it was built against.
    pub interface_version: String,
    /// Declared capabilities.
    pub capabilities: Vec<String>,
}

/// A plugin and how it is doing now.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginStatus {
    /// What it is.
    pub info: PluginInfo,
    /// Connectors: `compare-and-set` or `serialised-by-host`.
    pub write_mode: Option<String>,
    /// `ok`, or `poisoned: panicked in <op>: …; restart the server`.
    pub status: String,
}

/// A finished backup ([`Core::backup`]). While it is held, no other backup of this server can
/// start: keep it until the copy has left the machine.
#[derive(Debug)]
pub struct Backup {
    /// The directory the copy is in (absolute).
    pub path: String,
    /// Bytes written.
    pub bytes: u64,
    /// Things and Actions in the copy.
    pub objects: u64,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
    /// This server's one backup slot.
    _slot: tokio::sync::OwnedMutexGuard<()>,
}

/// Settings of the core that come from the configuration.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// This server's public URL (references to it are local).
    pub public_url: String,
    /// Default and maximum page size.
    pub limit: u64,
    /// What one request may ask.
    pub limits: crate::Limits,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`trusted_proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where this server may write temporary files (backups on their way to a client):
    /// `<data_dir>/tmp`.
    pub scratch_dir: std::path::PathBuf,
    /// The directory the connector stores in, when it is one on this machine (the embedded
    /// store): its size is what a backup needs in the scratch directory, twice (the copy and
    /// its archive).
    pub store_dir: Option<std::path::PathBuf>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            public_url: "http://127.0.0.1:8080".into(),
            limit: 100,
            limits: crate::Limits::default(),
            trusted_proxies: vec![],
            scratch_dir: std::env::temp_dir().join("weft"),
            store_dir: None,
        }
    }
}

/// Everything a front end needs, shared by all of them.
pub struct Core {
    /// The storage connector.
    pub conn: ConnectorHandle,
    /// This server's public URL (references to it are local).
    pub public_url: String,
    /// Default and maximum page size.
    pub limit: u64,
    /// What one request may ask.
    pub limits: crate::Limits,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where this server may write temporary files.
    pub scratch_dir: std::path::PathBuf,
    /// The connector's own directory on this machine, when it has one.
    pub store_dir: Option<std::path::PathBuf>,
    /// How the free space of the scratch directory is read (`statvfs`; a test replaces it).
    free_space: crate::scratch::FreeSpace,
    /// The plugins this server runs with.
    pub plugins: Vec<PluginInfo>,
    /// The key tree.
    pub keys: KeyTree,
    /// The contextionary, when one is configured (schema words are then validated).
    pub c11y: Option<ContextionaryHandle>,
    ontology: RwLock<(u64, Arc<Ontology>)>,
    /// Object writes hold it shared, schema changes exclusively: on this host no object is
    /// stored against an ontology that changed after it was validated.
    pub(crate) gate: Arc<RwLock<()>>,
    /// Held by the one backup that may run at a time (each writes a full copy of the store).
    backup_slot: Arc<tokio::sync::Mutex<()>>,
    /// `async: true` creates still running (drained at shutdown).
    pub(crate) background: TaskTracker,
    /// Objects of `async: true` creates accepted and not yet stored
    /// (`limits.max_async_backlog`).
    pub backlog: crate::backlog::Backlog,
    /// The P2P network, when this server is a peer (set once at start-up).
    network: std::sync::OnceLock<Arc<dyn crate::Network>>,
}

/// How often a read-modify-write is retried when another writer moved the object.
pub(crate) const MAX_ATTEMPTS: u32 = 64;

impl Core {
    /// A new core over `conn`.
    pub fn new(conn: ConnectorHandle, config: CoreConfig, plugins: Vec<PluginInfo>) -> Self {
        Core {
            keys: KeyTree::new(conn.clone()),
            c11y: None,
            conn,
            public_url: config.public_url,
            limit: config.limit,
            limits: config.limits,
            trusted_proxies: config.trusted_proxies,
            scratch_dir: config.scratch_dir,
            store_dir: config.store_dir,
            free_space: crate::scratch::free_space,
            plugins,
            ontology: RwLock::new((u64::MAX, Arc::new(Ontology::default()))),
            gate: Arc::new(RwLock::new(())),
            backup_slot: Arc::new(tokio::sync::Mutex::new(())),
            background: TaskTracker::new(),
            backlog: Default::default(),
            network: std::sync::OnceLock::new(),
        }
    }

    /// Joins this server to a network (once; a second call is ignored and answers `false`).
    pub fn set_network(&self, network: Arc<dyn crate::Network>) -> bool {
        self.network.set(network).is_ok()
    }

    /// The network, when this server is a peer.
    pub fn network(&self) -> Option<&Arc<dyn crate::Network>> {
        self.network.get()
    }

    /// Runs with `c` as the contextionary.
    pub fn with_contextionary(mut self, c: ContextionaryHandle) -> Self {
        self.c11y = Some(c);
        self
    }

    /// Reads the free space of the scratch directory with `f` instead of `statvfs`.
    pub fn with_free_space(mut self, f: crate::scratch::FreeSpace) -> Self {
        self.free_space = f;
        self
    }

    /// The scratch directory a backup works in (root key only), once the free space for a copy
    /// of the store and its archive is checked: 507 naming the space needed and free when it is
    /// short. The directory is removed when the answer is dropped, however the backup ends.
    pub fn backup_scratch(&self, p: &Principal) -> Result<crate::scratch::ScratchDir> {
        use crate::scratch::{check_free_space, dir_size, ScratchDir, BACKUP_PREFIX};
        crate::Access::Root.check(p, "make a backup")?;
        std::fs::create_dir_all(&self.scratch_dir).map_err(|e| {
            Error::internal(format!(
                "cannot create the scratch directory {} for the backup: {e}; check that the data directory is writable",
                self.scratch_dir.display()
            ))
        })?;
        let store = self.store_dir.as_deref().map(dir_size).unwrap_or(0);
        check_free_space(
            &self.scratch_dir,
            2 * store + crate::scratch::SPACE_MARGIN_BYTES,
            &format!("a backup (a copy of the store, now {store} bytes, and its archive)"),
            self.free_space,
        )?;
        ScratchDir::create(&self.scratch_dir, BACKUP_PREFIX)
    }

    /// `Ok` when `needed` bytes are free in the scratch directory for `what`, else the 507.
    pub fn check_scratch_space(&self, needed: u64, what: &str) -> Result<()> {
        crate::scratch::check_free_space(
            &self.scratch_dir,
            needed + crate::scratch::SPACE_MARGIN_BYTES,
            what,
            self.free_space,
        )
    }

    /// Writes a consistent copy of the whole store (objects, history, keys, ontology) to the
    /// directory `to` on this server's machine while the server keeps serving: root key only.
    /// Schema changes of this host wait until it is done (object writes do not), so the copy
    /// never holds an object of a class its ontology lacks. Restore is starting a server on
    /// the copy. One backup at a time (each needs the disk space of a whole copy): another
    /// request meanwhile is a `Conflict` saying so.
    pub async fn backup(&self, p: &Principal, to: &str) -> Result<Backup> {
        crate::Access::Root.check(p, "make a backup")?;
        let slot = self.backup_slot.clone().try_lock_owned().map_err(|_| {
            Error::new(
                crate::ErrorKind::Conflict,
                "a backup of this server is already running (one at a time: each writes a whole copy of the store); wait until it has finished, then ask again",
            )
        })?;
        let started = std::time::Instant::now();
        let _gate = self.gate.read().await;
        let report = self.conn.backup(to).await?;
        tracing::info!(
            "backup of {} objects ({} bytes) written to {}",
            report.objects,
            report.bytes,
            report.path
        );
        Ok(Backup {
            path: report.path.into_string(),
            bytes: report.bytes,
            objects: report.objects,
            took_ms: started.elapsed().as_millis() as u64,
            _slot: slot,
        })
    }

    /// The plugins and how each is doing (for `/meta`).
    pub fn plugin_status(&self) -> Vec<PluginStatus> {
        self.plugins
            .iter()
            .map(|p| {
                let is_conn = p.kind == "connector" && *p.name == *self.conn.name;
                PluginStatus {
                    info: p.clone(),
                    write_mode: is_conn.then(|| self.conn.write_mode().as_str().to_string()),
                    status: match (is_conn, self.conn.poisoned()) {
                        (true, Some(why)) => format!("poisoned: {why}; restart the server"),
                        _ => "ok".into(),
                    },
                }
            })
            .collect()
    }

    /// How object writes are kept atomic.
    pub fn write_mode(&self) -> WriteMode {
        self.conn.write_mode()
    }

    /// Waits (at most `timeout`) until every `async: true` create accepted so far is stored or
    /// has failed (failures are logged with the object id). Answers how many were still running
    /// when the time ran out.
    pub async fn drain(&self, timeout: Duration) -> usize {
        self.background.close();
        let _ = tokio::time::timeout(timeout, self.background.wait()).await;
        self.background.len()
    }

    /// What the caller sees: every object for a root key, otherwise the objects owned by its
    /// key and its descendants. The only way to make a [`Visibility`].
    pub async fn visibility(&self, p: &Principal) -> Result<Visibility> {
        if p.is_root() {
            return Ok(Visibility::everything_for_root(p));
        }
        let owners = self.keys.subtree(p.id()).await?;
        Ok(Visibility::owners(p.id(), owners))
    }

    /// What the network may see: the objects visible to the key `id` (`network.share_key`),
    /// as if that key asked. Refused when the key does not exist, has expired (or an ancestor
    /// has) or lacks the read right, each with the reason.
    pub async fn shared_visibility(&self, id: weft_plugin_api::Id) -> Result<Visibility> {
        let not_shared = |why: String| {
            Error::forbidden(format!(
                "this peer shares no objects: network.share_key {id} {why}; its operator sets network.share_key to a key with the read right"
            ))
        };
        let Some(key) = self.keys.key(id).await? else {
            return Err(not_shared("is not a key of this server".into()));
        };
        let ancestors = self.keys.ancestors(&key).await?;
        let now = weft_plugin_api::now_ms();
        if let Some(k) = std::iter::once(&key)
            .chain(ancestors.iter())
            .find(|k| crate::keys::is_expired(k, now))
        {
            return Err(not_shared(format!("has expired (key {} expired)", k.id)));
        }
        let p = Principal { key, ancestors };
        p.require(crate::keys::Right::Read)
            .map_err(|e| not_shared(format!("cannot read ({})", e.message)))?;
        self.visibility(&p).await
    }

    /// 403 unless the caller reaches objects owned by `owner` (its own or its descendants').
    pub async fn check_owner(&self, p: &Principal, owner: weft_plugin_api::Id) -> Result<()> {
        if self.keys.reaches(p, owner).await? {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "key {} may not access this object: it belongs to key {owner}, which is not in its subtree",
                p.id()
            )))
        }
    }

    /// The address a request comes from: the connection's peer, or — when that peer is a
    /// trusted proxy — the right-most address of `X-Forwarded-For` that is not a trusted proxy
    /// (the one the nearest untrusted hop connected from; addresses left of it could be forged).
    pub fn client_address(
        &self,
        peer: Option<std::net::IpAddr>,
        forwarded_for: &[&str],
    ) -> Option<std::net::IpAddr> {
        let peer = peer?;
        let trusted = |ip: &std::net::IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return Some(peer);
        }
        let hops: Vec<std::net::IpAddr> = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .map_while(|h| h.parse().ok())
            .collect();
        hops.iter()
            .rev()
            .find(|ip| !trusted(ip))
            .or(hops.first())
            .copied()
            .or(Some(peer))
    }

    /// Whether a reference's `locationUrl` names this server: the contract's
    /// `http://localhost/`, this server's public URL, or its own port on a loopback name
    /// (`127.0.0.1`, `localhost`, `[::1]`) — in any spelling (host case, trailing slash, an
    /// explicit default port).
    pub fn is_local(&self, url: &str) -> bool {
        let Some(u) = SimpleUrl::parse(url) else {
            return false;
        };
        if SimpleUrl::parse(crate::ontology::LOCALHOST_URL).as_ref() == Some(&u) {
            return true;
        }
        let Some(own) = SimpleUrl::parse(&self.public_url) else {
            return false;
        };
        u == own
            || (u.is_loopback()
                && u.port == own.port
                && u.scheme == own.scheme
                && u.path.is_empty())
    }

    /// Checks a reference's `locationUrl`: this server, or a peer the network knows; anything
    /// else is refused with 422 (so the server is never made to call an address nobody
    /// configured). Answers whether it is local.
    pub fn check_location(&self, property: &str, url: &str) -> Result<bool> {
        if self.is_local(url) {
            return Ok(true);
        }
        if self.network().is_some_and(|n| n.knows_url(url)) {
            return Ok(false);
        }
        Err(Error::unprocessable(format!(
            "property {property:?} refers to locationUrl {url:?}, which is neither this server nor a peer it knows; allowed are {}, {} (or this server's port on 127.0.0.1 or localhost){}",
            crate::ontology::LOCALHOST_URL,
            self.public_url,
            if self.network().is_some() {
                " and the URL of a known peer (GET /p2p/peers lists them)"
            } else {
                "; this server is not part of a network, so no peer is known"
            }
        )))
    }

    /// The current ontology (re-read from the connector when its version changed, so several
    /// hosts sharing one store see each other's changes).
    pub async fn ontology(&self) -> Result<Arc<Ontology>> {
        Ok(self.ontology_versioned().await?.1)
    }

    /// The ontology last read, without asking the connector (for `/meta` while the connector
    /// is unavailable or poisoned).
    pub async fn cached_ontology(&self) -> Arc<Ontology> {
        self.ontology.read().await.1.clone()
    }

    /// [`Core::ontology`] with the version of the stored document it was read from (what
    /// caches derived from the ontology, such as the GraphQL schema, are keyed by).
    pub async fn ontology_versioned(&self) -> Result<(u64, Arc<Ontology>)> {
        let doc = self.conn.get_document(DocumentName::Ontology).await?;
        {
            let cached = self.ontology.read().await;
            if cached.0 == doc.version {
                return Ok((doc.version, cached.1.clone()));
            }
        }
        let parsed = Arc::new(Ontology::from_json(&doc.json).map_err(Error::internal)?);
        *self.ontology.write().await = (doc.version, parsed.clone());
        Ok((doc.version, parsed))
    }

    /// Applies `change` to the ontology and stores it with compare-and-set, retrying when
    /// another host changed it meanwhile. Nothing is stored when `change` refuses. Holds the
    /// schema gate, so no object write of this host interleaves. With `empty`, the change is
    /// made only while the class has no objects, checked before and again after storing (an
    /// object stored meanwhile by another host sharing the store makes it undo the change).
    async fn change_ontology<F>(&self, change: F, empty: Option<Empty<'_>>) -> Result<Arc<Ontology>>
    where
        F: Fn(&mut Ontology) -> Result<(), SchemaError>,
    {
        let _gate = self.gate.write().await;
        if let Some(e) = &empty {
            self.refuse_if_instances(e).await?;
        }
        for _ in 0..8 {
            let doc = self.conn.get_document(DocumentName::Ontology).await?;
            let before = Ontology::from_json(&doc.json).map_err(Error::internal)?;
            let mut o = before.clone();
            change(&mut o).map_err(|e| match e {
                SchemaError::Invalid(m) => Error::unprocessable(m),
                SchemaError::NotFound(m) => Error::not_found(m),
            })?;
            if let Some(c) = &self.c11y {
                crate::c11y::annotate(c, &before, &mut o).await?;
            }
            match self
                .conn
                .put_document(DocumentName::Ontology, o.to_json(), doc.version)
                .await
            {
                Ok(v) => {
                    if let Some(e) = &empty {
                        if let Err(err) = self.refuse_if_instances(e).await {
                            // Another host stored an object of the class meanwhile: undo.
                            match self
                                .conn
                                .put_document(DocumentName::Ontology, doc.json.to_string(), v)
                                .await
                            {
                                Ok(_) => return Err(err),
                                Err(undo) => {
                                    tracing::error!(
                                        "the schema change could not be undone after objects of {} appeared: {undo}",
                                        e.class
                                    );
                                    return Err(err);
                                }
                            }
                        }
                    }
                    let o = Arc::new(o);
                    *self.ontology.write().await = (v, o.clone());
                    return Ok(o);
                }
                Err(e) if e.kind == PluginErrorKind::Conflict => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::conflict(
            "the ontology kept changing under this request; try again",
        ))
    }

    /// How many objects of `class` are stored.
    async fn instances(&self, kind: ObjectKind, class: &str) -> Result<u64> {
        let mut q = ObjectQuery::all(kind, 0);
        q.class = class.into();
        Ok(self.conn.query_objects(q).await?.total)
    }

    async fn refuse_if_instances(&self, e: &Empty<'_>) -> Result<()> {
        let n = self.instances(e.kind, e.class).await?;
        if n > 0 {
            return Err(Error::unprocessable(format!(
                "cannot {}: class {} has {n} stored {}{}; delete them first (changing the schema under stored objects would orphan their data)",
                e.what,
                e.class,
                kind_word(e.kind),
                if n == 1 { "" } else { "s" }
            )));
        }
        Ok(())
    }

    /// Adds a class.
    pub async fn add_class(&self, kind: ObjectKind, c: crate::ontology::Class) -> Result<()> {
        self.change_ontology(|o| o.add_class(kind, c.clone()), None)
            .await
            .map(drop)
    }

    /// Renames a class (refused while it has objects) or replaces its keywords.
    pub async fn update_class(
        &self,
        kind: ObjectKind,
        name: &str,
        new_name: Option<String>,
        keywords: Option<Vec<Keyword>>,
    ) -> Result<()> {
        let what = format!("rename class {name}");
        let empty = new_name
            .as_deref()
            .is_some_and(|n| n != name)
            .then_some(Empty {
                kind,
                class: name,
                what: &what,
            });
        self.change_ontology(
            |o| o.update_class(kind, name, new_name.clone(), keywords.clone()),
            empty,
        )
        .await
        .map(drop)
    }

    /// Deletes a class (refused while it has objects or another class refers to it): 400.
    pub async fn delete_class(&self, kind: ObjectKind, name: &str) -> Result<()> {
        if self.ontology().await?.class(kind, name).is_none() {
            return Err(Error::bad_request(format!(
                "there is no {} class {name:?} to delete",
                kind_word(kind)
            )));
        }
        let what = format!("delete class {name}");
        self.change_ontology(
            |o| o.delete_class(kind, name),
            Some(Empty {
                kind,
                class: name,
                what: &what,
            }),
        )
        .await
        .map_err(|e| match e.kind {
            crate::ErrorKind::Invalid | crate::ErrorKind::NotFound => {
                e.with_kind(crate::ErrorKind::BadRequest)
            }
            _ => e,
        })
        .map(drop)
    }

    /// Adds a property to a class.
    pub async fn add_property(
        &self,
        kind: ObjectKind,
        class: &str,
        p: crate::ontology::Property,
    ) -> Result<()> {
        self.change_ontology(|o| o.add_property(kind, class, p.clone()), None)
            .await
            .map(drop)
    }

    /// Renames a property (refused while its class has objects) or replaces its keywords.
    pub async fn update_property(
        &self,
        kind: ObjectKind,
        class: &str,
        name: &str,
        new_name: Option<String>,
        keywords: Option<Vec<Keyword>>,
    ) -> Result<()> {
        let what = format!("rename property {class}.{name}");
        let empty = new_name
            .as_deref()
            .is_some_and(|n| n != name)
            .then_some(Empty {
                kind,
                class,
                what: &what,
            });
        self.change_ontology(
            |o| o.update_property(kind, class, name, new_name.clone(), keywords.clone()),
            empty,
        )
        .await
        .map(drop)
    }

    /// Deletes a property (refused while its class has objects).
    pub async fn delete_property(&self, kind: ObjectKind, class: &str, name: &str) -> Result<()> {
        let what = format!("delete property {class}.{name}");
        self.change_ontology(
            |o| o.delete_property(kind, class, name),
            Some(Empty {
                kind,
                class,
                what: &what,
            }),
        )
        .await
        .map(drop)
    }

    /// Whether writes of this connector are compare-and-set.
    pub(crate) fn cas(&self) -> bool {
        self.conn.write_mode() == WriteMode::CompareAndSet
    }
}

/// The parts of an `http(s)` URL that say which server it names, normalised: scheme and host
/// lower-cased, the default port made explicit, trailing slashes dropped from the path.
#[derive(Debug, PartialEq, Eq)]
struct SimpleUrl {
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

impl SimpleUrl {
    fn parse(url: &str) -> Option<SimpleUrl> {
        let (scheme, rest) = url.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') || path.contains(['?', '#']) {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(']') => (h, p.parse().ok()?),
            _ => (authority, default_port),
        };
        if host.is_empty() {
            return None;
        }
        Some(SimpleUrl {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    fn is_loopback(&self) -> bool {
        matches!(self.host.as_str(), "localhost" | "[::1]")
            || self
                .host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// A schema change that needs a class without objects.
struct Empty<'a> {
    kind: ObjectKind,
    class: &'a str,
    what: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backup whose copy and archive would not fit in the scratch directory's free space is
    /// refused with a 507 naming both numbers, before anything is written there. (The free
    /// space is injected: a real file system cannot be made that small here.)
    #[tokio::test]
    async fn a_backup_without_the_free_space_is_a_507_and_writes_nothing() {
        fn four_mib(_: &std::path::Path) -> std::io::Result<u64> {
            Ok(4 << 20)
        }
        let tmp = std::env::temp_dir().join(format!("weft-core-test-{}", uuid::Uuid::new_v4()));
        let (scratch, store) = (tmp.join("tmp"), tmp.join("store"));
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("weft.redb"), vec![0u8; 3 << 20]).unwrap();
        let conn = ConnectorHandle::from_box(
            weft_plugin_api::connector_box(weft_dev_memory::DevMemory::new()),
            "dev-memory",
            weft_dev_memory::CAPABILITIES,
        );
        let core = Core::new(
            conn,
            CoreConfig {
                scratch_dir: scratch.clone(),
                store_dir: Some(store.clone()),
                ..CoreConfig::default()
            },
            vec![],
        )
        .with_free_space(four_mib);
        let root: weft_plugin_api::Id = "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000009".parse().unwrap();
        core.keys
            .ensure_root(Some((root, "t".into())))
            .await
            .unwrap();
        let p = core
            .keys
            .authenticate(Some(&root.to_string()), Some("t"), None)
            .await
            .unwrap();
        let e = core.backup_scratch(&p).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::InsufficientStorage);
        assert_eq!(e.kind.http_status(), 507);
        // Twice the store (copy and archive) and the margin; what is free.
        let needed = 2 * (3u64 << 20) + crate::scratch::SPACE_MARGIN_BYTES;
        assert!(
            e.message.contains(&format!("{needed} bytes")),
            "{}",
            e.message
        );
        assert!(
            e.message.contains(&format!("{} bytes", 4u64 << 20)),
            "{}",
            e.message
        );
        assert!(
            e.message.contains(&scratch.display().to_string()),
            "{}",
            e.message
        );
        assert!(
            std::fs::read_dir(&scratch).unwrap().next().is_none(),
            "nothing written in the scratch directory"
        );
        // With the space, the scratch directory is made, and removed with its guard.
        let core = core.with_free_space(|_| Ok(u64::MAX));
        let work = core.backup_scratch(&p).unwrap();
        let path = work.path().to_path_buf();
        assert!(path.is_dir());
        assert!(path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(crate::scratch::BACKUP_PREFIX));
        drop(work);
        assert!(!path.exists());
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    fn core(public_url: &str) -> Core {
        Core::new(
            ConnectorHandle::unavailable(),
            CoreConfig {
                public_url: public_url.into(),
                ..CoreConfig::default()
            },
            vec![],
        )
    }

    #[test]
    fn this_server_is_local_in_any_spelling_and_nothing_else_is() {
        let c = core("http://127.0.0.1:8081");
        for local in [
            "http://localhost/",
            "http://localhost",
            "HTTP://LOCALHOST:80/",
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8081/",
            "http://localhost:8081",
            "http://LocalHost:8081//",
            "http://[::1]:8081",
        ] {
            assert!(c.is_local(local), "{local}");
        }
        for other in [
            "http://127.0.0.1:8082",
            "https://127.0.0.1:8081",
            "http://10.0.0.1:8081",
            "http://example.org/",
            "http://localhost:8081/elsewhere",
            "http://user@localhost/",
            "ftp://localhost/",
            "localhost",
            "",
        ] {
            assert!(!c.is_local(other), "{other}");
        }
        let c = core("https://Weft.Example.org/base/");
        assert!(c.is_local("https://weft.example.org:443/base"));
        assert!(!c.is_local("https://weft.example.org/"));
    }

    #[test]
    fn a_reference_elsewhere_is_refused_naming_the_url_and_what_is_allowed() {
        let c = core("http://127.0.0.1:8081");
        assert!(c
            .check_location("inCity", "http://localhost:8081/")
            .unwrap());
        let e = c
            .check_location("inCity", "http://169.254.169.254/")
            .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Invalid);
        assert!(
            e.message.contains("http://169.254.169.254/")
                && e.message.contains("http://localhost/")
                && e.message.contains("http://127.0.0.1:8081")
                && e.message.contains("inCity"),
            "{e}"
        );
    }

    /// A network that knows one peer.
    struct OnePeer;

    impl crate::Network for OnePeer {
        fn peers(&self) -> (u64, Vec<crate::network::KnownPeer>) {
            (0, vec![])
        }
        fn knows_url(&self, url: &str) -> bool {
            url.trim_end_matches('/') == "http://127.0.0.1:9000"
        }
        fn query_peer(
            &self,
            _: &str,
            _: String,
            _: Duration,
            _: Option<crate::network::CallerKey>,
        ) -> futures::future::BoxFuture<'static, Result<serde_json::Value>> {
            Box::pin(async { Err(Error::unsupported("no")) })
        }
        fn ask(
            &self,
            _: crate::network::Question,
            _: Duration,
        ) -> futures::future::BoxFuture<'static, Vec<crate::network::PeerAnswer>> {
            Box::pin(async { vec![] })
        }
    }

    #[test]
    fn a_reference_to_a_known_peer_is_allowed_and_not_local() {
        let c = core("http://127.0.0.1:8081");
        assert!(c.check_location("p", "http://127.0.0.1:9000/").is_err());
        c.set_network(Arc::new(OnePeer));
        assert!(!c.check_location("p", "http://127.0.0.1:9000/").unwrap());
        let e = c.check_location("p", "http://127.0.0.1:9001/").unwrap_err();
        assert!(e.message.contains("known peer"), "{e}");
    }
}
