//! A connector as a store: implement [`Store`] (the contract's calls as `async fn`s over your
//! store), and [`OnRuntime`] is the [`Connector`] the host calls — each call spawned on the
//! plugin's own runtime ([`PluginRuntime`]) as the store says ([`Store::run`]), awaited, its
//! task aborted when the host gives up on the call, failures logged through the host.
//!
//! ```ignore
//! use weft_connector_sdk::{OnRuntime, PluginRuntime, RuntimeOptions, Store};
//!
//! struct MyStore { /* a client, a pool, a directory … */ }
//!
//! impl Store for MyStore {
//!     async fn get_object(&self, kind: ObjectKind, id: Id) -> PluginResult<Option<StoredObject>> {
//!         /* ask your store */
//!     }
//!     // and every other call of the contract
//! }
//!
//! fn open(ctx: PluginContext) -> PluginResult<OnRuntime<MyStore>> {
//!     let runtime = PluginRuntime::get(ctx.name, RuntimeOptions::ASYNC_IO)?;
//!     let store = runtime.block_on("connecting", connect(ctx.config.clone()))??;
//!     Ok(OnRuntime::new(runtime, store, ctx.log))
//! }
//!
//! weft_plugin_api::export_connector! {
//!     name: "mystore",
//!     capabilities: CAPABILITIES,
//!     config_help: CONFIG_HELP,
//!     new: open,
//! }
//! ```
//!
//! What a call costs (DESIGN §2): a spawned task and its answer ≈ 25 µs, which is why
//! [`Run::Inline`] exists for calls that need no runtime at all.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::task::{JoinError, JoinHandle};
use weft_plugin_api::{
    BackupReport, Connector, DocumentName, ErrorKind, Id, ObjectHistory, ObjectKind, ObjectPage,
    ObjectQuery, ObjectRecord, PluginError, PluginLogger, PluginResult, RecordPage, StoredKey,
    StoredObject, VectorHit, VectorQuery, VersionedDocument, VersionedObject, PANIC_MESSAGE_PREFIX,
};

use crate::runtime::PluginRuntime;

/// One call of the connector contract: it names the call in logs and errors, and lets a store
/// choose how each call runs ([`Store::run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// [`Connector::create_object`].
    CreateObject,
    /// [`Connector::get_object`].
    GetObject,
    /// [`Connector::get_objects`].
    GetObjects,
    /// [`Connector::query_objects`].
    QueryObjects,
    /// [`Connector::update_object`].
    UpdateObject,
    /// [`Connector::delete_object`].
    DeleteObject,
    /// [`Connector::object_history`].
    ObjectHistory,
    /// [`Connector::aggregate`].
    Aggregate,
    /// [`Connector::add_key`].
    AddKey,
    /// [`Connector::get_key`].
    GetKey,
    /// [`Connector::key_children`].
    KeyChildren,
    /// [`Connector::root_keys`].
    RootKeys,
    /// [`Connector::update_key`].
    UpdateKey,
    /// [`Connector::delete_key`].
    DeleteKey,
    /// [`Connector::get_document`].
    GetDocument,
    /// [`Connector::put_document`].
    PutDocument,
    /// [`Connector::get_object_versioned`].
    GetObjectVersioned,
    /// [`Connector::update_object_if`].
    UpdateObjectIf,
    /// [`Connector::backup`].
    Backup,
    /// [`Connector::export_objects`].
    ExportObjects,
    /// [`Connector::import_objects`].
    ImportObjects,
    /// [`Connector::create_object_with_vector`].
    CreateObjectWithVector,
    /// [`Connector::update_object_with_vector`].
    UpdateObjectWithVector,
    /// [`Connector::update_object_if_with_vector`].
    UpdateObjectIfWithVector,
    /// [`Connector::get_vector`].
    GetVector,
    /// [`Connector::search_vectors`].
    SearchVectors,
}

impl Call {
    /// The contract's name of the call (`"get_object"`), as logs and errors say it.
    pub fn name(self) -> &'static str {
        match self {
            Call::CreateObject => "create_object",
            Call::GetObject => "get_object",
            Call::GetObjects => "get_objects",
            Call::QueryObjects => "query_objects",
            Call::UpdateObject => "update_object",
            Call::DeleteObject => "delete_object",
            Call::ObjectHistory => "object_history",
            Call::Aggregate => "aggregate",
            Call::AddKey => "add_key",
            Call::GetKey => "get_key",
            Call::KeyChildren => "key_children",
            Call::RootKeys => "root_keys",
            Call::UpdateKey => "update_key",
            Call::DeleteKey => "delete_key",
            Call::GetDocument => "get_document",
            Call::PutDocument => "put_document",
            Call::GetObjectVersioned => "get_object_versioned",
            Call::UpdateObjectIf => "update_object_if",
            Call::Backup => "backup",
            Call::ExportObjects => "export_objects",
            Call::ImportObjects => "import_objects",
            Call::CreateObjectWithVector => "create_object_with_vector",
            Call::UpdateObjectWithVector => "update_object_with_vector",
            Call::UpdateObjectIfWithVector => "update_object_if_with_vector",
            Call::GetVector => "get_vector",
            Call::SearchVectors => "search_vectors",
        }
    }

    /// Whether the call changes the store: the creates, updates and deletes of objects and
    /// keys (also those with a vector), `put_document`, `update_object_if` and
    /// `import_objects`. (`backup` and
    /// `export_objects` read the store.)
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Call::CreateObject
                | Call::UpdateObject
                | Call::DeleteObject
                | Call::AddKey
                | Call::UpdateKey
                | Call::DeleteKey
                | Call::PutDocument
                | Call::UpdateObjectIf
                | Call::ImportObjects
                | Call::CreateObjectWithVector
                | Call::UpdateObjectWithVector
                | Call::UpdateObjectIfWithVector
        )
    }
}

/// How [`OnRuntime`] runs one call of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// As a task on the runtime's worker threads (async I/O: a database driver, a client),
    /// aborted when the host drops the call's future (a request timeout): the host no longer
    /// waits, so the store stops working on it at its next `.await`.
    Task,
    /// As a task on the worker threads that runs to completion even when the host drops the
    /// future: a write of several steps (index entries, a conditional write, a clean-up) is
    /// never cut short between them.
    TaskToCompletion,
    /// On the runtime's blocking pool, for synchronous work (files, an embedded database):
    /// the method's future is driven to its end on a blocking thread. It runs to completion
    /// even when the host drops the future; a write is then done or not started, never half
    /// done.
    Blocking,
    /// In the host's own poll of the future, without the runtime: for a call that completes
    /// at once or only waits on the store's own threads (an answer from a writer thread). Its
    /// future must not need the runtime (no tokio I/O or timers).
    Inline,
}

/// A connector's store: the calls of the contract ([`Connector`]) as methods returning
/// futures that may borrow the store, written as `async fn`s. [`OnRuntime`] turns a store into
/// the [`Connector`] `export_connector!` exports: it runs each call on the plugin's own
/// runtime as [`run`](Store::run) says and awaits it, so the store's code needs no runtime
/// plumbing, no `'static` futures and no clones of itself.
///
/// The rules of the contract hold for every method as for [`Connector`]'s (atomic per object,
/// `None` for missing things, `Unsupported` for an undeclared capability, newest first, …):
/// see its documentation and `CONNECTORS.md`. The three optional calls answer `Unsupported`
/// unless overridden, with the messages [`Connector`]'s default bodies give.
pub trait Store: Send + Sync + 'static {
    /// How [`OnRuntime`] runs `call`. The default: reads as [`Run::Task`] (aborted when the host
    /// gives up), writes as [`Run::TaskToCompletion`].
    fn run(call: Call) -> Run {
        if call.is_write() {
            Run::TaskToCompletion
        } else {
            Run::Task
        }
    }

    /// See [`Connector::create_object`].
    fn create_object(&self, object: StoredObject) -> impl Future<Output = PluginResult<()>> + Send;

    /// See [`Connector::get_object`].
    fn get_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredObject>>> + Send;

    /// See [`Connector::get_objects`].
    fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> impl Future<Output = PluginResult<Vec<Option<StoredObject>>>> + Send;

    /// See [`Connector::query_objects`].
    fn query_objects(
        &self,
        query: ObjectQuery,
    ) -> impl Future<Output = PluginResult<ObjectPage>> + Send;

    /// See [`Connector::update_object`].
    fn update_object(&self, object: StoredObject) -> impl Future<Output = PluginResult<()>> + Send;

    /// See [`Connector::delete_object`].
    fn delete_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<()>> + Send;

    /// See [`Connector::object_history`].
    fn object_history(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<ObjectHistory>> + Send;

    /// See [`Connector::aggregate`].
    fn aggregate(
        &self,
        query: ObjectQuery,
        request_json: String,
    ) -> impl Future<Output = PluginResult<String>> + Send;

    /// See [`Connector::add_key`].
    fn add_key(&self, key: StoredKey) -> impl Future<Output = PluginResult<()>> + Send;

    /// See [`Connector::get_key`].
    fn get_key(&self, id: Id) -> impl Future<Output = PluginResult<Option<StoredKey>>> + Send;

    /// See [`Connector::key_children`].
    fn key_children(&self, id: Id) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send;

    /// See [`Connector::root_keys`].
    fn root_keys(&self) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send;

    /// See [`Connector::update_key`].
    fn update_key(&self, key: StoredKey) -> impl Future<Output = PluginResult<()>> + Send;

    /// See [`Connector::delete_key`].
    fn delete_key(&self, id: Id) -> impl Future<Output = PluginResult<Vec<Id>>> + Send;

    /// See [`Connector::get_document`].
    fn get_document(
        &self,
        document: DocumentName,
    ) -> impl Future<Output = PluginResult<VersionedDocument>> + Send;

    /// See [`Connector::put_document`].
    fn put_document(
        &self,
        document: DocumentName,
        json: String,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send;

    /// See [`Connector::get_object_versioned`]; override it (and
    /// [`update_object_if`](Store::update_object_if)) when declaring `VERSIONED_WRITES`.
    fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<VersionedObject>>> + Send {
        let _ = (kind, id);
        async { Err(versioned_writes_unsupported(Call::GetObjectVersioned)) }
    }

    /// See [`Connector::update_object_if`].
    fn update_object_if(
        &self,
        object: StoredObject,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send {
        let _ = (object, expected_version);
        async { Err(versioned_writes_unsupported(Call::UpdateObjectIf)) }
    }

    /// See [`Connector::backup`]; override it when declaring `BACKUP`.
    fn backup(&self, to: String) -> impl Future<Output = PluginResult<BackupReport>> + Send {
        let _ = to;
        async {
            Err(PluginError::unsupported(
                "backup needs the backup capability, which this connector does not declare: back up its store with the store's own tools",
            ))
        }
    }

    /// See [`Connector::export_objects`]; override it when declaring `MIGRATE`.
    fn export_objects(
        &self,
        kind: ObjectKind,
        cursor: String,
        limit: u64,
    ) -> impl Future<Output = PluginResult<RecordPage>> + Send {
        let _ = (kind, cursor, limit);
        async { Err(migrate_unsupported(Call::ExportObjects)) }
    }

    /// See [`Connector::import_objects`]; override it when declaring `MIGRATE`.
    fn import_objects(
        &self,
        records: Vec<ObjectRecord>,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        let _ = records;
        async { Err(migrate_unsupported(Call::ImportObjects)) }
    }

    /// See [`Connector::create_object_with_vector`]; override it when declaring
    /// `VECTOR_SEARCH`.
    fn create_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        let _ = (object, vector);
        async { Err(vectors_unsupported(Call::CreateObjectWithVector)) }
    }

    /// See [`Connector::update_object_with_vector`]; override it when declaring
    /// `VECTOR_SEARCH`.
    fn update_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        let _ = (object, vector);
        async { Err(vectors_unsupported(Call::UpdateObjectWithVector)) }
    }

    /// See [`Connector::update_object_if_with_vector`]; override it when declaring
    /// `VECTOR_SEARCH` and `VERSIONED_WRITES`.
    fn update_object_if_with_vector(
        &self,
        object: StoredObject,
        expected_version: u64,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<u64>> + Send {
        let _ = (object, expected_version, vector);
        async { Err(vectors_unsupported(Call::UpdateObjectIfWithVector)) }
    }

    /// See [`Connector::get_vector`]; override it when declaring `VECTOR_SEARCH`.
    fn get_vector(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<Vec<f32>>>> + Send {
        let _ = (kind, id);
        async { Err(vectors_unsupported(Call::GetVector)) }
    }

    /// See [`Connector::search_vectors`]; override it when declaring `VECTOR_SEARCH`.
    fn search_vectors(
        &self,
        query: VectorQuery,
    ) -> impl Future<Output = PluginResult<Vec<VectorHit>>> + Send {
        let _ = query;
        async { Err(vectors_unsupported(Call::SearchVectors)) }
    }
}

fn vectors_unsupported(call: Call) -> PluginError {
    PluginError::unsupported(format!(
        "{} needs the vector-search capability, which this connector does not declare",
        call.name()
    ))
}

fn migrate_unsupported(call: Call) -> PluginError {
    PluginError::unsupported(format!(
        "{} needs the migrate capability, which this connector does not declare: move its data through the REST API instead",
        call.name()
    ))
}

fn versioned_writes_unsupported(call: Call) -> PluginError {
    PluginError::unsupported(format!(
        "{} needs the versioned-writes capability, which this connector does not declare",
        call.name()
    ))
}

/// A [`Store`] as a [`Connector`]: every call runs on the plugin's own runtime as
/// [`Store::run`] says, and its answer comes back through the future the host awaits.
///
/// * A task the host gives up on ([`Run::Task`]: its future dropped, e.g. at a request
///   timeout) is aborted; the others run to their end.
/// * A task that panics answers the contract's panic error (`the plugin panicked in <call>:
///   …`, as `export_connector!`'s guard words it), so the host treats it as the panic it is.
/// * Failures of the store itself (`Unavailable`, `Internal`) are logged through the host,
///   naming the call.
pub struct OnRuntime<S> {
    store: Arc<S>,
    runtime: PluginRuntime,
    log: PluginLogger,
}

impl<S: Store> OnRuntime<S> {
    /// `store` on `runtime`, logging through `log`.
    pub fn new(runtime: PluginRuntime, store: S, log: PluginLogger) -> Self {
        OnRuntime {
            store: Arc::new(store),
            runtime,
            log,
        }
    }

    /// A store the constructor already shares (with its start-up tasks) on `runtime`.
    pub fn shared(runtime: PluginRuntime, store: Arc<S>, log: PluginLogger) -> Self {
        OnRuntime {
            store,
            runtime,
            log,
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The runtime the calls run on.
    pub fn runtime(&self) -> PluginRuntime {
        self.runtime
    }

    /// Runs `work` on the store as a task on the runtime and blocks the calling thread until it
    /// is done: for maintenance outside the contract (tools and tests). Never call it on one of
    /// the runtime's threads. `what` names the work if its task panics.
    pub fn block_on<T, Fut>(&self, what: &str, work: impl FnOnce(Arc<S>) -> Fut) -> PluginResult<T>
    where
        T: Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.runtime.block_on(what, work(Arc::clone(&self.store)))
    }

    /// Starts `call` (`work` makes its future over the store) as `S::run` says, and answers the
    /// future the host awaits.
    fn call<T, Fut>(
        &self,
        call: Call,
        work: impl FnOnce(Arc<S>) -> Fut,
    ) -> impl Future<Output = PluginResult<T>> + Send + 'static
    where
        T: Send + 'static,
        Fut: Future<Output = PluginResult<T>> + Send + 'static,
    {
        let work = work(Arc::clone(&self.store));
        let handle = self.runtime.handle();
        let started = match S::run(call) {
            Run::Inline => Started::Inline(work),
            Run::Task => Started::Task(AbortOnDrop(handle.spawn(work))),
            Run::TaskToCompletion => Started::Detached(handle.spawn(work)),
            Run::Blocking => {
                let runtime = handle.clone();
                Started::Detached(handle.spawn_blocking(move || runtime.block_on(work)))
            }
        };
        let (plugin, log) = (self.runtime.plugin(), self.log);
        async move {
            let result = match started {
                Started::Inline(work) => work.await,
                Started::Task(task) => task.await.unwrap_or_else(|e| Err(ended(plugin, call, e))),
                Started::Detached(task) => {
                    task.await.unwrap_or_else(|e| Err(ended(plugin, call, e)))
                }
            };
            if let Err(e) = &result {
                if matches!(e.kind, ErrorKind::Internal | ErrorKind::Unavailable) {
                    log.error(&format!("{}: {}", call.name(), e.message));
                }
            }
            result
        }
    }
}

/// A call on its way.
enum Started<F: Future> {
    /// Polled by the host.
    Inline(F),
    /// A task aborted if the host drops the future.
    Task(AbortOnDrop<F::Output>),
    /// A task (or blocking work) that runs to its end whatever the host does.
    Detached(JoinHandle<F::Output>),
}

/// A task's handle that aborts the task when dropped before it finished.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a call's task ended without an answer: a panic is reported as the contract's panic
/// error, so the host poisons the connector as it does for a panic in the call itself.
fn ended(plugin: &str, call: Call, e: JoinError) -> PluginError {
    if !e.is_panic() {
        return PluginError::internal(format!("{plugin}: {} did not finish: {e}", call.name()));
    }
    let payload: Box<dyn Any + Send> = e.into_panic();
    let message = (payload.downcast_ref::<&str>().copied())
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload");
    PluginError::internal(format!("{PANIC_MESSAGE_PREFIX}{}: {message}", call.name()))
}

impl<S: Store> Connector for OnRuntime<S> {
    fn create_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.call(Call::CreateObject, move |s| async move {
            s.create_object(object).await
        })
    }

    fn get_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredObject>>> + Send + 'static {
        self.call(Call::GetObject, move |s| async move {
            s.get_object(kind, id).await
        })
    }

    fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> impl Future<Output = PluginResult<Vec<Option<StoredObject>>>> + Send + 'static {
        self.call(Call::GetObjects, move |s| async move {
            s.get_objects(kind, ids).await
        })
    }

    fn query_objects(
        &self,
        query: ObjectQuery,
    ) -> impl Future<Output = PluginResult<ObjectPage>> + Send + 'static {
        self.call(Call::QueryObjects, move |s| async move {
            s.query_objects(query).await
        })
    }

    fn update_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.call(Call::UpdateObject, move |s| async move {
            s.update_object(object).await
        })
    }

    fn delete_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.call(Call::DeleteObject, move |s| async move {
            s.delete_object(kind, id).await
        })
    }

    fn object_history(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<ObjectHistory>> + Send + 'static {
        self.call(Call::ObjectHistory, move |s| async move {
            s.object_history(kind, id).await
        })
    }

    fn aggregate(
        &self,
        query: ObjectQuery,
        request_json: String,
    ) -> impl Future<Output = PluginResult<String>> + Send + 'static {
        self.call(Call::Aggregate, move |s| async move {
            s.aggregate(query, request_json).await
        })
    }

    fn add_key(&self, key: StoredKey) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.call(Call::AddKey, move |s| async move { s.add_key(key).await })
    }

    fn get_key(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredKey>>> + Send + 'static {
        self.call(Call::GetKey, move |s| async move { s.get_key(id).await })
    }

    fn key_children(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        self.call(Call::KeyChildren, move |s| async move {
            s.key_children(id).await
        })
    }

    fn root_keys(&self) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        self.call(Call::RootKeys, |s| async move { s.root_keys().await })
    }

    fn update_key(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.call(
            Call::UpdateKey,
            move |s| async move { s.update_key(key).await },
        )
    }

    fn delete_key(&self, id: Id) -> impl Future<Output = PluginResult<Vec<Id>>> + Send + 'static {
        self.call(
            Call::DeleteKey,
            move |s| async move { s.delete_key(id).await },
        )
    }

    fn get_document(
        &self,
        document: DocumentName,
    ) -> impl Future<Output = PluginResult<VersionedDocument>> + Send + 'static {
        self.call(Call::GetDocument, move |s| async move {
            s.get_document(document).await
        })
    }

    fn put_document(
        &self,
        document: DocumentName,
        json: String,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        self.call(Call::PutDocument, move |s| async move {
            s.put_document(document, json, expected_version).await
        })
    }

    fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<VersionedObject>>> + Send + 'static {
        self.call(Call::GetObjectVersioned, move |s| async move {
            s.get_object_versioned(kind, id).await
        })
    }

    fn update_object_if(
        &self,
        object: StoredObject,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        self.call(Call::UpdateObjectIf, move |s| async move {
            s.update_object_if(object, expected_version).await
        })
    }

    fn backup(
        &self,
        to: String,
    ) -> impl Future<Output = PluginResult<BackupReport>> + Send + 'static {
        self.call(Call::Backup, move |s| async move { s.backup(to).await })
    }

    fn export_objects(
        &self,
        kind: ObjectKind,
        cursor: String,
        limit: u64,
    ) -> impl Future<Output = PluginResult<RecordPage>> + Send + 'static {
        self.call(Call::ExportObjects, move |s| async move {
            s.export_objects(kind, cursor, limit).await
        })
    }

    fn import_objects(
        &self,
        records: Vec<ObjectRecord>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.call(Call::ImportObjects, move |s| async move {
            s.import_objects(records).await
        })
    }

    fn create_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.call(Call::CreateObjectWithVector, move |s| async move {
            s.create_object_with_vector(object, vector).await
        })
    }

    fn update_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.call(Call::UpdateObjectWithVector, move |s| async move {
            s.update_object_with_vector(object, vector).await
        })
    }

    fn update_object_if_with_vector(
        &self,
        object: StoredObject,
        expected_version: u64,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        self.call(Call::UpdateObjectIfWithVector, move |s| async move {
            s.update_object_if_with_vector(object, expected_version, vector)
                .await
        })
    }

    fn get_vector(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<Vec<f32>>>> + Send + 'static {
        self.call(Call::GetVector, move |s| async move {
            s.get_vector(kind, id).await
        })
    }

    fn search_vectors(
        &self,
        query: VectorQuery,
    ) -> impl Future<Output = PluginResult<Vec<VectorHit>>> + Send + 'static {
        self.call(Call::SearchVectors, move |s| async move {
            s.search_vectors(query).await
        })
    }
}
