//! The handles through which the core reaches its plugins: [`ConnectorHandle`] (storage) and
//! [`ContextionaryHandle`] (word embeddings). Nothing else in the host calls a plugin.
//!
//! Owns:
//! * **Poisoning.** A connector that panicked may hold broken state (a half-done write, a lock
//!   it never released), so after the first panic — answered as that call's error — the handle
//!   is poisoned: every later call answers `Unavailable` naming the plugin and the operation that
//!   panicked and saying the server must be restarted (as Arrow ADBC treats a driver fault).
//! * **Write mode.** A connector that declares `versioned-writes` (interface 1.2) gets
//!   compare-and-set updates; for any other (e.g. built against 1.1) the handle serialises the
//!   writes of each object itself ([`ConnectorHandle::object_lock`]).
//! * **Off the async workers.** Contextionary searches are CPU-heavy and blocking: they run on
//!   tokio's blocking pool.
//!
//! Must not know: HTTP, the ontology, keys.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use abi_stable::std_types::{ROption, RStr, RString, RVec};
use weft_plugin_api::*;
use weft_plugin_loader::LoadedPlugin;

/// How a connector's read-modify-write operations are kept atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The connector compares versions itself (`update_object_if`, interface 1.2).
    CompareAndSet,
    /// The connector cannot (built against interface 1.1, or it does not declare
    /// `versioned-writes`): this host serialises the writes of each object. Safe for one host per
    /// store only.
    SerialisedByHost,
}

impl WriteMode {
    /// `compare-and-set` or `serialised-by-host`, as `/meta` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::CompareAndSet => "compare-and-set",
            WriteMode::SerialisedByHost => "serialised-by-host",
        }
    }
}

/// Why a plugin is poisoned.
#[derive(Debug, Clone)]
struct Poison {
    op: String,
    message: String,
}

/// Shared poisoning state of one plugin.
#[derive(Default)]
struct PoisonState(Mutex<Option<Poison>>);

impl PoisonState {
    fn get(&self) -> Option<Poison> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    fn set(&self, p: Poison) {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if g.is_none() {
            *g = Some(p);
        }
    }
}

/// Number of lock stripes for hosts that serialise object writes themselves.
const STRIPES: usize = 256;

struct ConnInner {
    conn: Option<ConnectorBox>,
    versions: Option<ObjectVersionsBox>,
    maintenance: Option<MaintenanceBox>,
    vectors: Option<VectorsBox>,
    poison: PoisonState,
    stripes: Vec<Arc<tokio::sync::Mutex<()>>>,
}

/// A connector as the host uses it: the ABI objects plus what the plugin declared. Cheap to
/// clone; clones share the poisoning state.
#[derive(Clone)]
pub struct ConnectorHandle {
    inner: Arc<ConnInner>,
    /// The plugin's declared name.
    pub name: Arc<str>,
    /// Its declared capabilities.
    pub capabilities: Capabilities,
}

/// A guard that keeps other writers of one object out (only in
/// [`WriteMode::SerialisedByHost`]).
pub type ObjectLock = tokio::sync::OwnedMutexGuard<()>;

impl ConnectorHandle {
    /// Builds a connector from a loaded plugin and its JSON config.
    pub fn open(plugin: &LoadedPlugin, config: &serde_json::Value) -> anyhow::Result<Self> {
        let opened = plugin
            .open_connector(&config.to_string(), crate::plugin_log::host_logger())
            .map_err(|e| {
                anyhow::anyhow!(
                    "connector {:?} refused its database_config: {}",
                    plugin.name,
                    e.message
                )
            })?;
        Ok(Self::from_opened(opened, &plugin.name, plugin.capabilities))
    }

    /// Wraps ABI objects (e.g. of a connector linked statically).
    pub fn from_opened(o: OpenedConnector, name: &str, capabilities: Capabilities) -> Self {
        Self::build(
            Some(o.connector),
            o.versions,
            o.maintenance,
            o.vectors,
            name,
            capabilities,
        )
    }

    /// Wraps a connector without versioned writes (e.g. one linked statically).
    pub fn from_box(conn: ConnectorBox, name: &str, capabilities: Capabilities) -> Self {
        Self::build(Some(conn), None, None, None, name, capabilities)
    }

    fn build(
        conn: Option<ConnectorBox>,
        versions: Option<ObjectVersionsBox>,
        maintenance: Option<MaintenanceBox>,
        vectors: Option<VectorsBox>,
        name: &str,
        capabilities: Capabilities,
    ) -> Self {
        ConnectorHandle {
            inner: Arc::new(ConnInner {
                conn,
                versions,
                maintenance,
                vectors,
                poison: PoisonState::default(),
                stripes: (0..STRIPES)
                    .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                    .collect(),
            }),
            name: Arc::from(name),
            capabilities,
        }
    }

    /// A handle with no connector behind it: every call answers `Unavailable`. Used where
    /// state is needed only for its shape (printing the OpenAPI document).
    pub fn unavailable() -> Self {
        Self::build(None, None, None, None, "none", Capabilities::empty())
    }

    /// Whether the connector declared `c`.
    pub fn has(&self, c: Capabilities) -> bool {
        self.capabilities.contains(c)
    }

    /// How read-modify-write operations are kept atomic with this connector.
    pub fn write_mode(&self) -> WriteMode {
        if self.inner.versions.is_some() && self.has(Capabilities::VERSIONED_WRITES) {
            WriteMode::CompareAndSet
        } else {
            WriteMode::SerialisedByHost
        }
    }

    /// Why the connector is poisoned, if it is: `panicked in <op>: <message>`.
    pub fn poisoned(&self) -> Option<String> {
        self.inner
            .poison
            .get()
            .map(|p| format!("panicked in {}: {}", p.op, p.message))
    }

    fn poisoned_error(&self, p: &Poison) -> PluginError {
        PluginError::unavailable(format!(
            "the connector plugin {:?} panicked earlier in {} ({}) and may hold broken state, so it is no longer called; restart the server",
            self.name, p.op, p.message
        ))
    }

    /// The connector, unless poisoned or absent.
    fn conn(&self) -> PluginResult<&ConnectorBox> {
        if let Some(p) = self.inner.poison.get() {
            return Err(self.poisoned_error(&p));
        }
        self.inner
            .conn
            .as_ref()
            .ok_or_else(|| PluginError::unavailable("no connector is loaded"))
    }

    /// Poisons the handle when `r` is a panic; answers `r` unchanged otherwise.
    fn watch<T>(&self, r: PluginResult<T>) -> PluginResult<T> {
        if let Err(e) = &r {
            if let Some(op) = e.panicked_in() {
                let payload = e
                    .message
                    .strip_prefix(&format!("{PANIC_MESSAGE_PREFIX}{op}: "))
                    .unwrap_or(e.message.as_str());
                let p = Poison {
                    op: op.to_string(),
                    message: payload.to_string(),
                };
                tracing::error!(
                    plugin = %self.name,
                    "connector plugin {:?} panicked in {}: {}; it is poisoned: every later storage call answers 503 until the server is restarted",
                    self.name, p.op, p.message
                );
                self.inner.poison.set(p);
                return Err(PluginError::internal(format!(
                    "{}; the connector plugin {:?} is now disabled and the server must be restarted",
                    e.message, self.name
                )));
            }
        }
        r
    }

    /// In [`WriteMode::SerialisedByHost`], waits until no other writer of this host holds the
    /// object and answers the guard; `None` in [`WriteMode::CompareAndSet`].
    pub async fn object_lock(&self, kind: ObjectKind, id: Id) -> Option<ObjectLock> {
        if self.write_mode() == WriteMode::CompareAndSet {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (kind, id).hash(&mut h);
        let stripe = self.inner.stripes[(h.finish() as usize) % STRIPES].clone();
        Some(stripe.lock_owned().await)
    }

    /// The object with its version ([`WriteMode::CompareAndSet`]), or with version 0 (the
    /// connector keeps none; the caller holds [`ConnectorHandle::object_lock`]).
    pub async fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> PluginResult<Option<VersionedObject>> {
        match (&self.inner.versions, self.write_mode()) {
            (Some(v), WriteMode::CompareAndSet) => {
                self.conn()?;
                let r = v.get_object_versioned(kind, id).await.into_result();
                Ok(self.watch(r)?.into_option())
            }
            _ => Ok(self
                .get_object(kind, id)
                .await?
                .map(|object| VersionedObject { object, version: 0 })),
        }
    }

    /// Replaces the object if it is still at `expected_version` ([`WriteMode::CompareAndSet`];
    /// `Conflict` otherwise), or replaces it (the caller holds the object lock).
    pub async fn update_object_if(
        &self,
        object: StoredObject,
        expected_version: u64,
    ) -> PluginResult<()> {
        match (&self.inner.versions, self.write_mode()) {
            (Some(v), WriteMode::CompareAndSet) => {
                self.conn()?;
                let r = v
                    .update_object_if(object, expected_version)
                    .await
                    .into_result();
                self.watch(r).map(|_| ())
            }
            _ => self.update_object(object).await,
        }
    }

    /// [`Connector::backup`] (interface 1.3, capability `backup`): a consistent copy of the
    /// store in the directory `to`. `Unsupported`, naming the plugin, when it cannot.
    pub async fn backup(&self, to: &str) -> PluginResult<BackupReport> {
        self.conn()?;
        match &self.inner.maintenance {
            Some(m) if self.has(Capabilities::BACKUP) => {
                let r = m.backup(to.into()).await.into_result();
                self.watch(r)
            }
            _ => Err(PluginError::unsupported(format!(
                "the connector {:?} cannot make a backup (it does not declare the backup capability); back up its store with the store's own tools, or run on the embedded connector",
                self.name
            ))),
        }
    }

    /// The connector's vectors object, when it stores vectors and searches them itself
    /// (`vector-search`, interface 1.5).
    fn vectors(&self) -> Option<&VectorsBox> {
        self.inner
            .vectors
            .as_ref()
            .filter(|_| self.has(Capabilities::VECTOR_SEARCH))
    }

    /// Whether the connector stores vectors and answers `search_vectors` itself; otherwise the
    /// host searches by meaning over the objects (see `crate::explore`).
    pub fn searches_vectors(&self) -> bool {
        self.vectors().is_some()
    }

    /// Creates `o` with its vector where the connector keeps vectors; a plain create otherwise
    /// (the host then makes vectors when it searches).
    pub async fn create_object_with(
        &self,
        o: StoredObject,
        vector: Option<Vec<f32>>,
    ) -> PluginResult<()> {
        match self.vectors() {
            Some(x) => {
                self.conn()?;
                let r = x
                    .create_object_with_vector(o, vector.unwrap_or_default().into())
                    .await
                    .into_result();
                self.watch(r)
            }
            None => self.create_object(o).await,
        }
    }

    /// [`Self::update_object`] with the object's vector (see [`Self::create_object_with`]).
    pub async fn update_object_with(
        &self,
        o: StoredObject,
        vector: Option<Vec<f32>>,
    ) -> PluginResult<()> {
        match self.vectors() {
            Some(x) => {
                self.conn()?;
                let r = x
                    .update_object_with_vector(o, vector.unwrap_or_default().into())
                    .await
                    .into_result();
                self.watch(r)
            }
            None => self.update_object(o).await,
        }
    }

    /// [`Self::update_object_if`] with the object's vector (see [`Self::create_object_with`]).
    pub async fn update_object_if_with(
        &self,
        object: StoredObject,
        expected_version: u64,
        vector: Option<Vec<f32>>,
    ) -> PluginResult<()> {
        let Some(x) = self.vectors() else {
            return self.update_object_if(object, expected_version).await;
        };
        match self.write_mode() {
            WriteMode::CompareAndSet => {
                self.conn()?;
                let r = x
                    .update_object_if_with_vector(
                        object,
                        expected_version,
                        vector.unwrap_or_default().into(),
                    )
                    .await
                    .into_result();
                self.watch(r).map(|_| ())
            }
            WriteMode::SerialisedByHost => self.update_object_with(object, vector).await,
        }
    }

    /// [`Connector::search_vectors`]; `Unsupported` when the connector does not search
    /// vectors itself.
    pub async fn search_vectors(&self, q: VectorQuery) -> PluginResult<Vec<VectorHit>> {
        let Some(x) = self.vectors() else {
            return Err(PluginError::unsupported(format!(
                "the connector {:?} does not search vectors itself",
                self.name
            )));
        };
        self.conn()?;
        let r = x.search_vectors(q).await.into_result();
        self.watch(r).map(RVec::into_vec)
    }

    /// [`Connector::get_vector`]; `None` when the connector keeps no vectors.
    pub async fn get_vector(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<Vec<f32>>> {
        let Some(x) = self.vectors() else {
            return Ok(None);
        };
        self.conn()?;
        let r = x.get_vector(kind, id).await.into_result();
        Ok(self.watch(r)?.into_option().map(RVec::into_vec))
    }

    /// [`Connector::create_object`].
    pub async fn create_object(&self, o: StoredObject) -> PluginResult<()> {
        let r = self.conn()?.create_object(o).await.into_result();
        self.watch(r)
    }
    /// [`Connector::get_object`].
    pub async fn get_object(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<StoredObject>> {
        let r = self.conn()?.get_object(kind, id).await.into_result();
        Ok(self.watch(r)?.into_option())
    }
    /// [`Connector::get_objects`].
    pub async fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> PluginResult<Vec<Option<StoredObject>>> {
        let r = self
            .conn()?
            .get_objects(kind, RVec::from(ids))
            .await
            .into_result();
        Ok(self
            .watch(r)?
            .into_iter()
            .map(|o| o.into_option())
            .collect())
    }
    /// [`Connector::query_objects`].
    pub async fn query_objects(&self, q: ObjectQuery) -> PluginResult<ObjectPage> {
        let r = self.conn()?.query_objects(q).await.into_result();
        self.watch(r)
    }
    /// [`Connector::update_object`].
    pub async fn update_object(&self, o: StoredObject) -> PluginResult<()> {
        let r = self.conn()?.update_object(o).await.into_result();
        self.watch(r)
    }
    /// [`Connector::delete_object`].
    pub async fn delete_object(&self, kind: ObjectKind, id: Id) -> PluginResult<()> {
        let r = self.conn()?.delete_object(kind, id).await.into_result();
        self.watch(r)
    }
    /// [`Connector::object_history`].
    pub async fn object_history(&self, kind: ObjectKind, id: Id) -> PluginResult<ObjectHistory> {
        let r = self.conn()?.object_history(kind, id).await.into_result();
        self.watch(r)
    }
    /// [`Connector::aggregate`].
    pub async fn aggregate(&self, q: ObjectQuery, request_json: String) -> PluginResult<String> {
        let r = self
            .conn()?
            .aggregate(q, RString::from(request_json))
            .await
            .into_result();
        Ok(self.watch(r)?.into_string())
    }
    /// [`Connector::add_key`].
    pub async fn add_key(&self, k: StoredKey) -> PluginResult<()> {
        let r = self.conn()?.add_key(k).await.into_result();
        self.watch(r)
    }
    /// [`Connector::get_key`].
    pub async fn get_key(&self, id: Id) -> PluginResult<Option<StoredKey>> {
        let r = self.conn()?.get_key(id).await.into_result();
        Ok(self.watch(r)?.into_option())
    }
    /// [`Connector::key_children`].
    pub async fn key_children(&self, id: Id) -> PluginResult<Vec<StoredKey>> {
        let r = self.conn()?.key_children(id).await.into_result();
        Ok(self.watch(r)?.into_vec())
    }
    /// [`Connector::root_keys`].
    pub async fn root_keys(&self) -> PluginResult<Vec<StoredKey>> {
        let r = self.conn()?.root_keys().await.into_result();
        Ok(self.watch(r)?.into_vec())
    }
    /// [`Connector::update_key`].
    pub async fn update_key(&self, k: StoredKey) -> PluginResult<()> {
        let r = self.conn()?.update_key(k).await.into_result();
        self.watch(r)
    }
    /// [`Connector::delete_key`].
    pub async fn delete_key(&self, id: Id) -> PluginResult<Vec<Id>> {
        let r = self.conn()?.delete_key(id).await.into_result();
        Ok(self.watch(r)?.into_vec())
    }
    /// [`Connector::get_document`].
    pub async fn get_document(&self, d: DocumentName) -> PluginResult<VersionedDocument> {
        let r = self.conn()?.get_document(d).await.into_result();
        self.watch(r)
    }
    /// [`Connector::put_document`].
    pub async fn put_document(
        &self,
        d: DocumentName,
        json: String,
        expected: u64,
    ) -> PluginResult<u64> {
        let r = self
            .conn()?
            .put_document(d, RString::from(json), expected)
            .await
            .into_result();
        self.watch(r)
    }
}

struct C11yInner {
    c: ContextionaryBox,
    lookups: Option<WordLookupBox>,
    words: Option<WordVectorsBox>,
}

/// A contextionary as the host uses it. Cheap to clone.
///
/// A panic in the plugin is an error of the request that caused it — never an answer that
/// means something else (an unknown word, no vector). With a contextionary built against
/// interface 1.1, which has no fallible word lookups, the plugin's own guard answers "unknown"
/// for a panicking lookup; that limitation is logged at start-up.
#[derive(Clone)]
pub struct ContextionaryHandle {
    inner: Arc<C11yInner>,
    /// The plugin's declared name.
    pub name: Arc<str>,
}

impl ContextionaryHandle {
    /// Builds a contextionary from a loaded plugin and its JSON config.
    pub fn open(plugin: &LoadedPlugin, config: &serde_json::Value) -> anyhow::Result<Self> {
        let c = plugin
            .open_contextionary(&config.to_string(), crate::plugin_log::host_logger())
            .map_err(|e| {
                anyhow::anyhow!(
                    "contextionary {:?} refused its config: {}",
                    plugin.name,
                    e.message
                )
            })?;
        if c.lookups.is_none() {
            tracing::warn!(
                "contextionary {} was built against interface {}: a panic in its word lookups reads as an unknown word; rebuild it against weft-plugin-api 1.2",
                plugin.name,
                plugin.interface_version
            );
        }
        Ok(Self::from_opened(c, &plugin.name))
    }

    /// Wraps ABI objects (e.g. of a contextionary linked statically).
    pub fn from_opened(c: OpenedContextionary, name: &str) -> Self {
        ContextionaryHandle {
            inner: Arc::new(C11yInner {
                c: c.contextionary,
                lookups: c.lookups,
                words: c.words,
            }),
            name: Arc::from(name),
        }
    }

    fn panicked(&self, e: PluginError) -> crate::Error {
        crate::Error::internal(format!(
            "the contextionary plugin {:?}: {}",
            self.name, e.message
        ))
    }

    /// Length of every vector.
    pub fn dimensions(&self) -> u32 {
        self.inner.c.dimensions()
    }
    /// Number of known words.
    pub fn vocabulary_size(&self) -> u64 {
        self.inner.c.vocabulary_size()
    }
    /// Whether `word` is known (looked up lower-cased); an error when the plugin failed.
    pub fn contains(&self, word: &str) -> crate::Result<bool> {
        let w = word.to_lowercase();
        match &self.inner.lookups {
            Some(l) => l
                .try_contains(RStr::from_str(&w))
                .into_result()
                .map_err(|e| self.panicked(e)),
            None => Ok(self.inner.c.contains(RStr::from_str(&w))),
        }
    }
    /// The vector of `word` (lower-cased), `None` if unknown; an error when the plugin failed.
    pub fn vector(&self, word: &str) -> crate::Result<Option<Vec<f32>>> {
        let w = word.to_lowercase();
        match &self.inner.lookups {
            Some(l) => l
                .try_vector(RStr::from_str(&w))
                .into_result()
                .map(|v| v.into_option().map(RVec::into_vec))
                .map_err(|e| self.panicked(e)),
            None => Ok(self
                .inner
                .c
                .vector(RStr::from_str(&w))
                .into_option()
                .map(RVec::into_vec)),
        }
    }
    /// Each word's vector and frequency rank (words as given: the caller lower-cases), `None`
    /// for an unknown word; one call into the plugin for all of them (interface 1.5; a
    /// contextionary built before it answers no ranks).
    pub fn word_vectors(&self, words: &[String]) -> crate::Result<Vec<Option<WordVector>>> {
        match &self.inner.words {
            Some(w) => w
                .word_vectors(words.iter().map(|w| RString::from(w.as_str())).collect())
                .into_result()
                .map(|v| v.into_iter().map(ROption::into_option).collect())
                .map_err(|e| self.panicked(e)),
            None => words
                .iter()
                .map(|w| {
                    Ok(self.vector(w)?.map(|v| WordVector {
                        vector: v.into(),
                        rank: ROption::RNone,
                    }))
                })
                .collect(),
        }
    }
    /// The `k` words nearest to `word` (lower-cased), searched on the blocking pool.
    pub async fn nearest_to_word(&self, word: &str, k: u32) -> PluginResult<Vec<WordDistance>> {
        let (me, w) = (self.clone(), word.to_lowercase());
        blocking(move || {
            me.inner
                .c
                .nearest_to_word(RStr::from_str(&w), k, false)
                .into_result()
                .map(RVec::into_vec)
        })
        .await
    }
    /// The `k` words nearest to `vector`, searched on the blocking pool.
    pub async fn nearest_to_vector(
        &self,
        vector: Vec<f32>,
        k: u32,
    ) -> PluginResult<Vec<WordDistance>> {
        let me = self.clone();
        blocking(move || {
            me.inner
                .c
                .nearest_to_vector(abi_stable::std_types::RSlice::from_slice(&vector), k, false)
                .into_result()
                .map(RVec::into_vec)
        })
        .await
    }
    /// A hex digest of the embeddings (`md5` or `sha256`), computed on the blocking pool.
    pub async fn content_hash(&self, algorithm: &str) -> PluginResult<String> {
        let (me, a) = (self.clone(), algorithm.to_string());
        blocking(move || {
            me.inner
                .c
                .content_hash(RStr::from_str(&a))
                .into_result()
                .map(RString::into_string)
        })
        .await
    }
}

/// Runs `f` on tokio's blocking pool when inside a runtime (inline otherwise).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> PluginResult<T> + Send + 'static,
) -> PluginResult<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h
            .spawn_blocking(f)
            .await
            .unwrap_or_else(|e| Err(PluginError::internal(format!("a search task failed: {e}")))),
        Err(_) => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A contextionary whose every word lookup panics.
    struct Panicky;

    impl Contextionary for Panicky {
        fn dimensions(&self) -> u32 {
            2
        }
        fn vocabulary_size(&self) -> u64 {
            1
        }
        fn contains(&self, _: &str) -> bool {
            panic!("contains exploded")
        }
        fn vector(&self, _: &str) -> Option<Vec<f32>> {
            panic!("vector exploded")
        }
        fn nearest_to_vector(&self, _: &[f32], _: u32, _: bool) -> PluginResult<Vec<WordDistance>> {
            panic!("search exploded")
        }
        fn nearest_to_word(&self, _: &str, _: u32, _: bool) -> PluginResult<Vec<WordDistance>> {
            panic!("search exploded")
        }
        fn content_hash(&self, _: &str) -> PluginResult<String> {
            Ok("0".into())
        }
    }

    #[tokio::test]
    async fn a_contextionary_panic_is_an_error_of_the_request_never_an_unknown_word() {
        let c = ContextionaryHandle::from_opened(contextionary_parts(Panicky), "panicky");
        let e = c.contains("city").unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Internal);
        assert!(
            e.message.contains("panicky") && e.message.contains("contains exploded"),
            "{e}"
        );
        let e = c.vector("city").unwrap_err();
        assert!(e.message.contains("vector exploded"), "{e}");
        let e = c.nearest_to_word("city", 3).await.unwrap_err();
        assert!(e.message.contains("search exploded"), "{e}");
        // Placing a class by such a contextionary fails as an internal error, not as a
        // refusal of the class name.
        let e = crate::c11y::place(&c, "class City", "City", &[])
            .await
            .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Internal, "{e}");
    }
}
