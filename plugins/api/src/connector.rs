//! The connector contract: what a storage plugin must do.
//!
//! Plugin authors implement the safe, idiomatic [`Connector`] trait and export it with
//! [`export_connector!`](crate::export_connector). The macro wraps the type in [`Guarded`], which
//! implements the ABI-stable [`ConnectorFfi`] trait the host calls, running every call (and every
//! poll of every returned future) under `catch_unwind`, so a panic costs one call an
//! [`ErrorKind::Internal`](crate::ErrorKind::Internal) error and never the host process.
//!
//! # Rules every method follows
//!
//! * **Atomic per object.** A write either happens completely or not at all; after an error
//!   nothing has changed.
//! * **Futures are `'static` and `Send`** and must not use the host's runtime: a connector that
//!   does I/O owns its own runtime (see `CONNECTORS.md`).
//! * **Missing things.** `get_*` answer `None`; update, delete and history of a missing object
//!   or key answer [`ErrorKind::NotFound`](crate::ErrorKind::NotFound).
//! * **Capabilities.** An operation whose [`Capabilities`](crate::Capabilities) flag is not
//!   declared answers [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
//!
//! # Added in 1.2: versioned object writes
//!
//! [`Connector::get_object_versioned`] and [`Connector::update_object_if`] (capability
//! [`VERSIONED_WRITES`](crate::Capabilities::VERSIONED_WRITES)) cannot be methods of
//! [`ConnectorFfi`] (a 1.1 plugin's vtable would be refused), so they cross the boundary as a
//! second ABI object, [`ObjectVersionsFfi`], over the **same** connector instance. The root
//! module's `new_connector_parts` (added in 1.2) answers both objects as [`ConnectorParts`];
//! the host reaches them through `LoadedPlugin::open_connector` of its loader (the crate
//! `weft-plugin-loader`), which answers an [`OpenedConnector`] whose `versions` is `None` for a plugin built before 1.2.
//!
//! # Added in 1.3: maintenance (backup)
//!
//! [`Connector::backup`] (capability [`BACKUP`](crate::Capabilities::BACKUP)) crosses as a third
//! ABI object, [`MaintenanceFfi`], again over the same instance; the root module's
//! `new_connector_parts_1_3` answers all three as [`ConnectorParts13`], and
//! [`OpenedConnector::maintenance`] is `None` for a plugin built before 1.3.
//!
//! # Added in 1.4: moving a store (export and import)
//!
//! [`Connector::export_objects`] and [`Connector::import_objects`] (capability
//! [`MIGRATE`](crate::Capabilities::MIGRATE)) cross as a fourth ABI object, [`MigrationFfi`];
//! the root module's `new_connector_parts_1_4` answers all four as [`ConnectorParts14`], and
//! [`OpenedConnector::migration`] is `None` for a plugin built before 1.4.
//!
//! # Added in 1.5: object vectors and search by meaning
//!
//! The writes that carry a vector ([`Connector::create_object_with_vector`],
//! [`Connector::update_object_with_vector`], [`Connector::update_object_if_with_vector`]),
//! [`Connector::get_vector`] and the nearest-neighbour question [`Connector::search_vectors`]
//! (capability [`VECTOR_SEARCH`](crate::Capabilities::VECTOR_SEARCH)) cross as a fifth ABI
//! object, [`VectorsFfi`]; the root module's `new_connector_parts_1_5` answers all five as
//! [`ConnectorParts15`], and [`OpenedConnector::vectors`] is `None` for a plugin built before
//! 1.5. The reference semantics (distance, order, exact search) are in [`crate::vector`].

use std::fmt;
use std::future::{ready, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use abi_stable::sabi_trait;
use abi_stable::std_types::{RBox, ROption, RResult, RString, RVec};
use async_ffi::{FfiFuture, FutureExt};

use crate::error::{PluginError, PluginResult, PANIC_MESSAGE_PREFIX};
use crate::types::*;

/// The future every connector call returns across the boundary.
pub type FfiResult<T> = FfiFuture<RResult<T, PluginError>>;

/// The ABI-stable connector interface the host calls. Do not implement it by hand: implement
/// [`Connector`] and export with [`export_connector!`](crate::export_connector).
///
/// Methods are never appended to this trait within a major interface version (an older plugin's
/// vtable would be refused); additions go into new root-module fields instead.
#[sabi_trait]
pub trait ConnectorFfi: Send + Sync {
    /// See [`Connector::create_object`].
    fn create_object(&self, object: StoredObject) -> FfiResult<()>;
    /// See [`Connector::get_object`].
    fn get_object(&self, kind: ObjectKind, id: Id) -> FfiResult<ROption<StoredObject>>;
    /// See [`Connector::get_objects`].
    fn get_objects(
        &self,
        kind: ObjectKind,
        ids: RVec<Id>,
    ) -> FfiResult<RVec<ROption<StoredObject>>>;
    /// See [`Connector::query_objects`].
    fn query_objects(&self, query: ObjectQuery) -> FfiResult<ObjectPage>;
    /// See [`Connector::update_object`].
    fn update_object(&self, object: StoredObject) -> FfiResult<()>;
    /// See [`Connector::delete_object`].
    fn delete_object(&self, kind: ObjectKind, id: Id) -> FfiResult<()>;
    /// See [`Connector::object_history`].
    fn object_history(&self, kind: ObjectKind, id: Id) -> FfiResult<ObjectHistory>;
    /// See [`Connector::aggregate`].
    fn aggregate(&self, query: ObjectQuery, request_json: RString) -> FfiResult<RString>;
    /// See [`Connector::add_key`].
    fn add_key(&self, key: StoredKey) -> FfiResult<()>;
    /// See [`Connector::get_key`].
    fn get_key(&self, id: Id) -> FfiResult<ROption<StoredKey>>;
    /// See [`Connector::key_children`].
    fn key_children(&self, id: Id) -> FfiResult<RVec<StoredKey>>;
    /// See [`Connector::root_keys`].
    fn root_keys(&self) -> FfiResult<RVec<StoredKey>>;
    /// See [`Connector::update_key`].
    fn update_key(&self, key: StoredKey) -> FfiResult<()>;
    /// See [`Connector::delete_key`].
    fn delete_key(&self, id: Id) -> FfiResult<RVec<Id>>;
    /// See [`Connector::get_document`].
    fn get_document(&self, document: DocumentName) -> FfiResult<VersionedDocument>;
    /// See [`Connector::put_document`].
    fn put_document(
        &self,
        document: DocumentName,
        json: RString,
        expected_version: u64,
    ) -> FfiResult<u64>;
}

/// An owned connector object as the host holds it.
pub type ConnectorBox = ConnectorFfi_TO<'static, RBox<()>>;

/// **Added in 1.2.** The ABI-stable versioned-write calls of a connector
/// ([`VERSIONED_WRITES`](crate::Capabilities::VERSIONED_WRITES)): a second object over the same
/// connector instance as its [`ConnectorBox`], made by the root module's `new_connector_parts`.
/// Do not implement it by hand: implement [`Connector::get_object_versioned`] and
/// [`Connector::update_object_if`] and export with
/// [`export_connector!`](crate::export_connector).
///
/// Like [`ConnectorFfi`], it never gains methods within a major version; later additions get
/// new root-module fields.
#[sabi_trait]
pub trait ObjectVersionsFfi: Send + Sync {
    /// See [`Connector::get_object_versioned`].
    fn get_object_versioned(&self, kind: ObjectKind, id: Id)
        -> FfiResult<ROption<VersionedObject>>;
    /// See [`Connector::update_object_if`].
    fn update_object_if(&self, object: StoredObject, expected_version: u64) -> FfiResult<u64>;
}

/// **Added in 1.2.** An owned versioned-writes object as the host holds it.
pub type ObjectVersionsBox = ObjectVersionsFfi_TO<'static, RBox<()>>;

/// **Added in 1.2.** What the root module's `new_connector_parts` answers: two ABI objects over
/// **one** connector instance, so a write through either is seen by both.
#[repr(C)]
#[derive(abi_stable::StableAbi)]
pub struct ConnectorParts {
    /// The connector contract ([`ConnectorFfi`]).
    pub connector: ConnectorBox,
    /// Its versioned writes ([`ObjectVersionsFfi`]); they answer `Unsupported` when the
    /// connector does not declare [`VERSIONED_WRITES`](crate::Capabilities::VERSIONED_WRITES).
    pub versions: ObjectVersionsBox,
}

/// **Added in 1.3.** The maintenance calls of a connector
/// ([`BACKUP`](crate::Capabilities::BACKUP)): a third object over the same connector instance,
/// made by the root module's `new_connector_parts_1_3`. Do not implement it by hand: implement
/// [`Connector::backup`] and export with [`export_connector!`](crate::export_connector).
#[sabi_trait]
pub trait MaintenanceFfi: Send + Sync {
    /// See [`Connector::backup`].
    fn backup(&self, to: RString) -> FfiResult<BackupReport>;
}

/// **Added in 1.3.** An owned maintenance object as the host holds it.
pub type MaintenanceBox = MaintenanceFfi_TO<'static, RBox<()>>;

/// **Added in 1.4.** The calls that move a whole store between connectors
/// ([`MIGRATE`](crate::Capabilities::MIGRATE)): a fourth object over the same connector
/// instance, made by the root module's `new_connector_parts_1_4`. Do not implement it by hand:
/// implement [`Connector::export_objects`] and [`Connector::import_objects`] and export with
/// [`export_connector!`](crate::export_connector).
#[sabi_trait]
pub trait MigrationFfi: Send + Sync {
    /// See [`Connector::export_objects`].
    fn export_objects(
        &self,
        kind: ObjectKind,
        cursor: RString,
        limit: u64,
    ) -> FfiResult<RecordPage>;
    /// See [`Connector::import_objects`].
    fn import_objects(&self, records: RVec<ObjectRecord>) -> FfiResult<()>;
}

/// **Added in 1.4.** An owned migration object as the host holds it.
pub type MigrationBox = MigrationFfi_TO<'static, RBox<()>>;

/// **Added in 1.5.** Object vectors and the search over them
/// ([`VECTOR_SEARCH`](crate::Capabilities::VECTOR_SEARCH)): a fifth object over the same
/// connector instance, made by the root module's `new_connector_parts_1_5`. Do not implement it
/// by hand: implement the `Connector` methods it names and export with
/// [`export_connector!`](crate::export_connector).
#[sabi_trait]
pub trait VectorsFfi: Send + Sync {
    /// See [`Connector::create_object_with_vector`].
    fn create_object_with_vector(&self, object: StoredObject, vector: RVec<f32>) -> FfiResult<()>;
    /// See [`Connector::update_object_with_vector`].
    fn update_object_with_vector(&self, object: StoredObject, vector: RVec<f32>) -> FfiResult<()>;
    /// See [`Connector::update_object_if_with_vector`].
    fn update_object_if_with_vector(
        &self,
        object: StoredObject,
        expected_version: u64,
        vector: RVec<f32>,
    ) -> FfiResult<u64>;
    /// See [`Connector::get_vector`].
    fn get_vector(&self, kind: ObjectKind, id: Id) -> FfiResult<ROption<RVec<f32>>>;
    /// See [`Connector::search_vectors`].
    fn search_vectors(&self, query: VectorQuery) -> FfiResult<RVec<VectorHit>>;
}

/// **Added in 1.5.** An owned vectors object as the host holds it.
pub type VectorsBox = VectorsFfi_TO<'static, RBox<()>>;

/// **Added in 1.5.** What the root module's `new_connector_parts_1_5` answers: five ABI
/// objects over **one** connector instance.
#[repr(C)]
#[derive(abi_stable::StableAbi)]
pub struct ConnectorParts15 {
    /// The connector contract ([`ConnectorFfi`]).
    pub connector: ConnectorBox,
    /// Its versioned writes ([`ObjectVersionsFfi`]).
    pub versions: ObjectVersionsBox,
    /// Its maintenance calls ([`MaintenanceFfi`]).
    pub maintenance: MaintenanceBox,
    /// Its export and import calls ([`MigrationFfi`]).
    pub migration: MigrationBox,
    /// Its vectors ([`VectorsFfi`]); they answer `Unsupported` when the connector does not
    /// declare [`VECTOR_SEARCH`](crate::Capabilities::VECTOR_SEARCH).
    pub vectors: VectorsBox,
}

/// **Added in 1.4.** What the root module's `new_connector_parts_1_4` answers: four ABI
/// objects over **one** connector instance.
#[repr(C)]
#[derive(abi_stable::StableAbi)]
pub struct ConnectorParts14 {
    /// The connector contract ([`ConnectorFfi`]).
    pub connector: ConnectorBox,
    /// Its versioned writes ([`ObjectVersionsFfi`]).
    pub versions: ObjectVersionsBox,
    /// Its maintenance calls ([`MaintenanceFfi`]).
    pub maintenance: MaintenanceBox,
    /// Its export and import calls ([`MigrationFfi`]); they answer `Unsupported` when the
    /// connector does not declare [`MIGRATE`](crate::Capabilities::MIGRATE).
    pub migration: MigrationBox,
}

/// **Added in 1.3.** What the root module's `new_connector_parts_1_3` answers: three ABI
/// objects over **one** connector instance.
#[repr(C)]
#[derive(abi_stable::StableAbi)]
pub struct ConnectorParts13 {
    /// The connector contract ([`ConnectorFfi`]).
    pub connector: ConnectorBox,
    /// Its versioned writes ([`ObjectVersionsFfi`]).
    pub versions: ObjectVersionsBox,
    /// Its maintenance calls ([`MaintenanceFfi`]); they answer `Unsupported` when the connector
    /// does not declare [`BACKUP`](crate::Capabilities::BACKUP).
    pub maintenance: MaintenanceBox,
}

/// **Added in 1.2.** A connector as the host opens it
/// (`LoadedPlugin::open_connector` of the host's loader, `weft-plugin-loader`, or
/// [`connector_parts`] for a statically linked one). A plain Rust value, never passed to a
/// plugin.
pub struct OpenedConnector {
    /// The connector contract.
    pub connector: ConnectorBox,
    /// Its versioned writes over the same instance; `None` for a plugin built against an
    /// interface older than 1.2, which has no such object.
    pub versions: Option<ObjectVersionsBox>,
    /// **Added in 1.3.** Its maintenance calls over the same instance; `None` for a plugin
    /// built against an interface older than 1.3.
    pub maintenance: Option<MaintenanceBox>,
    /// **Added in 1.4.** Its export and import calls over the same instance; `None` for a
    /// plugin built against an interface older than 1.4.
    pub migration: Option<MigrationBox>,
    /// **Added in 1.5.** Its vectors over the same instance; `None` for a plugin built against
    /// an interface older than 1.5.
    pub vectors: Option<VectorsBox>,
}

impl From<ConnectorParts15> for OpenedConnector {
    fn from(parts: ConnectorParts15) -> Self {
        OpenedConnector {
            connector: parts.connector,
            versions: Some(parts.versions),
            maintenance: Some(parts.maintenance),
            migration: Some(parts.migration),
            vectors: Some(parts.vectors),
        }
    }
}

impl From<ConnectorParts14> for OpenedConnector {
    fn from(parts: ConnectorParts14) -> Self {
        OpenedConnector {
            connector: parts.connector,
            versions: Some(parts.versions),
            maintenance: Some(parts.maintenance),
            migration: Some(parts.migration),
            vectors: None,
        }
    }
}

impl From<ConnectorParts13> for OpenedConnector {
    fn from(parts: ConnectorParts13) -> Self {
        OpenedConnector {
            connector: parts.connector,
            versions: Some(parts.versions),
            maintenance: Some(parts.maintenance),
            migration: None,
            vectors: None,
        }
    }
}

/// The objects of a plugin built against 1.2 (no maintenance object).
impl From<ConnectorParts> for OpenedConnector {
    fn from(parts: ConnectorParts) -> Self {
        OpenedConnector {
            connector: parts.connector,
            versions: Some(parts.versions),
            maintenance: None,
            migration: None,
            vectors: None,
        }
    }
}

/// A connector without a versions object (as from a plugin built before 1.2).
impl From<ConnectorBox> for OpenedConnector {
    fn from(connector: ConnectorBox) -> Self {
        OpenedConnector {
            connector,
            versions: None,
            maintenance: None,
            migration: None,
            vectors: None,
        }
    }
}

impl fmt::Debug for OpenedConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedConnector")
            .field("connector", &"ConnectorBox")
            .field(
                "versions",
                &self.versions.as_ref().map(|_| "ObjectVersionsBox"),
            )
            .field(
                "maintenance",
                &self.maintenance.as_ref().map(|_| "MaintenanceBox"),
            )
            .field(
                "migration",
                &self.migration.as_ref().map(|_| "MigrationBox"),
            )
            .field("vectors", &self.vectors.as_ref().map(|_| "VectorsBox"))
            .finish()
    }
}

/// The two documents a connector keeps for the host.
#[repr(u8)]
#[derive(abi_stable::StableAbi, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DocumentName {
    /// The ontology (schema of Things and Actions), written by the host.
    Ontology,
    /// Opaque state the host keeps in the connector (so several hosts share it).
    ConnectorState,
}

/// The connector contract, in plain Rust. Every method returns a `'static + Send` future.
///
/// Ordering: [`query_objects`](Connector::query_objects) returns objects **newest first**
/// (`created_ms` descending, ties broken by id descending: the host's ids are time-ordered, so
/// the larger id is the later object), a total order, so paging is stable
/// (`weft_connector_sdk::support::sort_newest_first`). Interface 1.3.0 and
/// earlier documented ties by id ascending; a connector that still does so lists objects made
/// in one millisecond oldest first, and fails the conformance kit. [`key_children`] and
/// [`root_keys`] answer **oldest first** (`created_ms`, then id ascending).
///
/// [`key_children`]: Connector::key_children
/// [`root_keys`]: Connector::root_keys
///
/// # Versioned writes (added in 1.2, capability `VERSIONED_WRITES`)
///
/// A connector declaring [`VERSIONED_WRITES`](crate::Capabilities::VERSIONED_WRITES) keeps a
/// version for every stored object, and lets writers replace an object by compare-and-set
/// (read, change, write back only if nobody wrote in between — as
/// [`put_document`](Connector::put_document) does for documents):
///
/// * [`create_object`](Connector::create_object) stores **version 1**;
/// * every successful [`update_object`](Connector::update_object) or
///   [`update_object_if`](Connector::update_object_if) adds 1 (a failed one changes nothing);
/// * [`get_object_versioned`](Connector::get_object_versioned) answers the current object with
///   its version;
/// * [`update_object_if`](Connector::update_object_if) replaces the object only if its stored
///   version still equals `expected_version`, comparing and writing in one atomic step against
///   every other writer.
///
/// The two methods have default bodies answering `Unsupported`, so a connector written before
/// 1.2 compiles unchanged (and does not declare the flag). A connector that declares the flag
/// overrides both.
pub trait Connector: Send + Sync + 'static {
    /// Stores a new object. [`Conflict`](crate::ErrorKind::Conflict) when an object of the same
    /// kind and id exists (or existed and was deleted: ids are never reused).
    fn create_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static;

    /// The current version of one object, `None` when missing or deleted.
    fn get_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredObject>>> + Send + 'static;

    /// Many objects at once, answer `i` for `ids[i]` (`None` when missing). Connectors with a
    /// network round trip should fetch them in one go.
    fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> impl Future<Output = PluginResult<Vec<Option<StoredObject>>>> + Send + 'static;

    /// Objects of `query.kind` matching `query`, newest first (`created_ms` descending, ties by
    /// id descending), `query.offset` skipped, at most `query.limit` returned; `total` counts
    /// every match. A non-empty `filter_json` without the
    /// [`FILTER`](crate::Capabilities::FILTER) capability (or with a reference path and without
    /// [`FILTER_REFERENCE_PATHS`](crate::Capabilities::FILTER_REFERENCE_PATHS)) answers
    /// `Unsupported`; a filter that does not parse answers `Invalid`.
    fn query_objects(
        &self,
        query: ObjectQuery,
    ) -> impl Future<Output = PluginResult<ObjectPage>> + Send + 'static;

    /// Replaces an object (same kind and id). With [`HISTORY`](crate::Capabilities::HISTORY)
    /// the previous version is archived in the same atomic step. `NotFound` when missing.
    fn update_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static;

    /// Deletes an object; with `HISTORY` its last version is archived and the history marked
    /// deleted. `NotFound` when missing.
    fn delete_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static;

    /// Earlier versions, newest first, and whether the object is deleted. `NotFound` when the
    /// object never existed; an object never changed has an empty history. `Unsupported` without
    /// `HISTORY`.
    fn object_history(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<ObjectHistory>> + Send + 'static;

    /// Aggregates the objects matching `query` (offset and limit ignored) as
    /// [`crate::aggregate::AggregateRequest`] (JSON) asks, answering
    /// [`crate::aggregate::AggregateResult`] (JSON). `Unsupported` without
    /// [`AGGREGATE`](crate::Capabilities::AGGREGATE).
    fn aggregate(
        &self,
        query: ObjectQuery,
        request_json: String,
    ) -> impl Future<Output = PluginResult<String>> + Send + 'static;

    /// Stores a new key. `Conflict` when the id exists; `NotFound` when `parent` is set and
    /// does not exist.
    fn add_key(&self, key: StoredKey) -> impl Future<Output = PluginResult<()>> + Send + 'static;

    /// One key, `None` when missing.
    fn get_key(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredKey>>> + Send + 'static;

    /// The direct children of a key (one level), oldest first (`created_ms`, then id
    /// ascending). `NotFound` when the key is missing.
    fn key_children(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static;

    /// Every key without a parent, oldest first (`created_ms`, then id ascending).
    fn root_keys(&self) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static;

    /// Replaces a key (same id; the parent cannot change: `Invalid`). `NotFound` when missing.
    fn update_key(&self, key: StoredKey)
        -> impl Future<Output = PluginResult<()>> + Send + 'static;

    /// Deletes a key and its whole subtree atomically; answers every deleted id (the key
    /// first). `NotFound` when missing.
    fn delete_key(&self, id: Id) -> impl Future<Output = PluginResult<Vec<Id>>> + Send + 'static;

    /// A stored document; version 0 and empty JSON when never written.
    fn get_document(
        &self,
        document: DocumentName,
    ) -> impl Future<Output = PluginResult<VersionedDocument>> + Send + 'static;

    /// Writes a document if its stored version is `expected_version` (compare-and-set),
    /// answering the new version (`expected_version + 1`). `Conflict` otherwise, and nothing
    /// changes.
    fn put_document(
        &self,
        document: DocumentName,
        json: String,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static;

    /// **Added in 1.2** (capability `VERSIONED_WRITES`; see the trait docs). The current version
    /// of one object with its version number, `None` when missing or deleted.
    ///
    /// The default answers `Unsupported`: override it when declaring `VERSIONED_WRITES`.
    fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<VersionedObject>>> + Send + 'static {
        let _ = (kind, id);
        ready(Err(versioned_writes_unsupported("get_object_versioned")))
    }

    /// **Added in 1.2** (capability `VERSIONED_WRITES`; see the trait docs). Replaces an object
    /// (same kind and id) only if its stored version equals `expected_version`, answering the
    /// new version (`expected_version + 1`). [`Conflict`](crate::ErrorKind::Conflict), and
    /// nothing changes, when the stored version is another (the message names the stored and
    /// the expected version); `NotFound` when the object is missing or deleted. With `HISTORY`
    /// the previous version is archived in the same atomic step, exactly as `update_object`
    /// does.
    ///
    /// The default answers `Unsupported`: override it when declaring `VERSIONED_WRITES`.
    fn update_object_if(
        &self,
        object: StoredObject,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        let _ = (object, expected_version);
        ready(Err(versioned_writes_unsupported("update_object_if")))
    }

    /// **Added in 1.3** (capability `BACKUP`). Writes a consistent copy of the whole store
    /// (objects, history, keys, documents) to the directory `to` **while the connector keeps
    /// serving**: the copy holds exactly the writes acknowledged before one moment during the
    /// call, never half of a write. A connector started on the copy (its config pointing at
    /// `to`) serves that data. `to` must not exist or be an empty directory, else `Invalid`
    /// naming it; a failed backup leaves no partial copy that could be mistaken for a good one.
    ///
    /// The default answers `Unsupported`: override it when declaring `BACKUP`.
    fn backup(
        &self,
        to: String,
    ) -> impl Future<Output = PluginResult<BackupReport>> + Send + 'static {
        let _ = to;
        ready(Err(PluginError::unsupported(
            "backup needs the backup capability, which this connector does not declare: back up its store with the store's own tools",
        )))
    }

    /// **Added in 1.4** (capability `MIGRATE`). One page of every object of `kind` the store
    /// holds, **deleted ones included**, each whole ([`ObjectRecord`]: current version or
    /// none, version number, history newest first). `cursor` is empty for the first page and
    /// otherwise the `next` of the page before; at most `limit` records come back (at least
    /// one while any remain, so a caller always progresses), and an empty `next` means the
    /// last page. Every object appears on exactly one page of a walk during which nobody
    /// writes; the order is the connector's own. The cursor is opaque text the connector
    /// chose (a key, a token, an offset) and stays valid across processes, so a walk can go
    /// on after a restart.
    ///
    /// The default answers `Unsupported`: override it when declaring `MIGRATE`.
    fn export_objects(
        &self,
        kind: ObjectKind,
        cursor: String,
        limit: u64,
    ) -> impl Future<Output = PluginResult<RecordPage>> + Send + 'static {
        let _ = (kind, cursor, limit);
        ready(Err(migrate_unsupported("export_objects")))
    }

    /// **Added in 1.4** (capability `MIGRATE`). Stores records **exactly as given**: ids,
    /// owners, creation and update times, version numbers, the history with its archive times
    /// and the deleted state — nothing new is made up, and every index, count and id
    /// reservation a normal write keeps is kept (an imported deleted id is never reused).
    /// Each record is written atomically (all of it or nothing). A record the store already
    /// holds exactly as given is left as it is, so repeating an interrupted import is safe;
    /// one it holds differently answers [`Conflict`](crate::ErrorKind::Conflict) naming the
    /// kind and id (records of the same call before it may have been written). A record
    /// failing [`ObjectRecord::check`] answers `Invalid`.
    ///
    /// The default answers `Unsupported`: override it when declaring `MIGRATE`.
    fn import_objects(
        &self,
        records: Vec<ObjectRecord>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        let _ = records;
        ready(Err(migrate_unsupported("import_objects")))
    }

    /// **Added in 1.5** (capability `VECTOR_SEARCH`). [`Connector::create_object`], storing
    /// `vector` with the object in the same atomic step (an empty `vector`: the object has
    /// none, and no search finds it). On a connector with `VECTOR_SEARCH`, the plain
    /// `create_object`, `update_object` and `update_object_if` store an object without a vector
    /// (an update drops the old one), and `delete_object` drops it.
    ///
    /// The default answers `Unsupported`: override it when declaring `VECTOR_SEARCH`.
    fn create_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        let _ = (object, vector);
        ready(Err(vectors_unsupported("create_object_with_vector")))
    }

    /// **Added in 1.5** (capability `VECTOR_SEARCH`). [`Connector::update_object`], replacing
    /// the object's vector with `vector` in the same atomic step.
    ///
    /// The default answers `Unsupported`: override it when declaring `VECTOR_SEARCH`.
    fn update_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        let _ = (object, vector);
        ready(Err(vectors_unsupported("update_object_with_vector")))
    }

    /// **Added in 1.5** (capabilities `VECTOR_SEARCH` and `VERSIONED_WRITES`).
    /// [`Connector::update_object_if`], replacing the object's vector with `vector` in the same
    /// atomic step; after a `Conflict` neither the object nor its vector has changed.
    ///
    /// The default answers `Unsupported`: override it when declaring both.
    fn update_object_if_with_vector(
        &self,
        object: StoredObject,
        expected_version: u64,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        let _ = (object, expected_version, vector);
        ready(Err(vectors_unsupported("update_object_if_with_vector")))
    }

    /// **Added in 1.5** (capability `VECTOR_SEARCH`). The vector stored with an object;
    /// `None` when the object is missing, deleted or has none.
    ///
    /// The default answers `Unsupported`: override it when declaring `VECTOR_SEARCH`.
    fn get_vector(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<Vec<f32>>>> + Send + 'static {
        let _ = (kind, id);
        ready(Err(vectors_unsupported("get_vector")))
    }

    /// **Added in 1.5** (capability `VECTOR_SEARCH`). The `query.k` current objects nearest
    /// to `query.vector` among those of `query.kind` (and `query.class`, `query.owners` and
    /// `query.filter_json` when given) that have a vector, nearest first, none farther than
    /// `query.max_distance`: filter **first**, then nearest. A connector may answer from an
    /// approximate index (the conformance kit asks a recall of 0.9 against
    /// [`crate::vector::exact_nearest`] on its data); a deleted or updated object never
    /// answers with an old vector. `Invalid` for a filter the connector cannot evaluate.
    ///
    /// The default answers `Unsupported`: override it when declaring `VECTOR_SEARCH`.
    fn search_vectors(
        &self,
        query: VectorQuery,
    ) -> impl Future<Output = PluginResult<Vec<VectorHit>>> + Send + 'static {
        let _ = query;
        ready(Err(vectors_unsupported("search_vectors")))
    }
}

fn vectors_unsupported(op: &str) -> PluginError {
    PluginError::unsupported(format!(
        "{op} needs the vector-search capability, which this connector does not declare"
    ))
}

fn migrate_unsupported(op: &str) -> PluginError {
    PluginError::unsupported(format!(
        "{op} needs the migrate capability, which this connector does not declare: move its data through the REST API instead"
    ))
}

fn versioned_writes_unsupported(op: &str) -> PluginError {
    PluginError::unsupported(format!(
        "{op} needs the versioned-writes capability, which this connector does not declare"
    ))
}

/// A shared connector is a connector: every call goes to the one instance. This is how
/// [`connector_parts`] (and `export_connector!`) give the [`ConnectorBox`] and the
/// [`ObjectVersionsBox`] of [`ConnectorParts`] one instance.
impl<T: Connector> Connector for Arc<T> {
    fn create_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        (**self).create_object(object)
    }
    fn get_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredObject>>> + Send + 'static {
        (**self).get_object(kind, id)
    }
    fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> impl Future<Output = PluginResult<Vec<Option<StoredObject>>>> + Send + 'static {
        (**self).get_objects(kind, ids)
    }
    fn query_objects(
        &self,
        query: ObjectQuery,
    ) -> impl Future<Output = PluginResult<ObjectPage>> + Send + 'static {
        (**self).query_objects(query)
    }
    fn update_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        (**self).update_object(object)
    }
    fn delete_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        (**self).delete_object(kind, id)
    }
    fn object_history(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<ObjectHistory>> + Send + 'static {
        (**self).object_history(kind, id)
    }
    fn aggregate(
        &self,
        query: ObjectQuery,
        request_json: String,
    ) -> impl Future<Output = PluginResult<String>> + Send + 'static {
        (**self).aggregate(query, request_json)
    }
    fn add_key(&self, key: StoredKey) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        (**self).add_key(key)
    }
    fn get_key(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredKey>>> + Send + 'static {
        (**self).get_key(id)
    }
    fn key_children(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        (**self).key_children(id)
    }
    fn root_keys(&self) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        (**self).root_keys()
    }
    fn update_key(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        (**self).update_key(key)
    }
    fn delete_key(&self, id: Id) -> impl Future<Output = PluginResult<Vec<Id>>> + Send + 'static {
        (**self).delete_key(id)
    }
    fn get_document(
        &self,
        document: DocumentName,
    ) -> impl Future<Output = PluginResult<VersionedDocument>> + Send + 'static {
        (**self).get_document(document)
    }
    fn put_document(
        &self,
        document: DocumentName,
        json: String,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        (**self).put_document(document, json, expected_version)
    }
    fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<VersionedObject>>> + Send + 'static {
        (**self).get_object_versioned(kind, id)
    }
    fn update_object_if(
        &self,
        object: StoredObject,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        (**self).update_object_if(object, expected_version)
    }
    fn backup(
        &self,
        to: String,
    ) -> impl Future<Output = PluginResult<BackupReport>> + Send + 'static {
        (**self).backup(to)
    }
    fn export_objects(
        &self,
        kind: ObjectKind,
        cursor: String,
        limit: u64,
    ) -> impl Future<Output = PluginResult<RecordPage>> + Send + 'static {
        (**self).export_objects(kind, cursor, limit)
    }
    fn import_objects(
        &self,
        records: Vec<ObjectRecord>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        (**self).import_objects(records)
    }
    fn create_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        (**self).create_object_with_vector(object, vector)
    }
    fn update_object_with_vector(
        &self,
        object: StoredObject,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        (**self).update_object_with_vector(object, vector)
    }
    fn update_object_if_with_vector(
        &self,
        object: StoredObject,
        expected_version: u64,
        vector: Vec<f32>,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        (**self).update_object_if_with_vector(object, expected_version, vector)
    }
    fn get_vector(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<Vec<f32>>>> + Send + 'static {
        (**self).get_vector(kind, id)
    }
    fn search_vectors(
        &self,
        query: VectorQuery,
    ) -> impl Future<Output = PluginResult<Vec<VectorHit>>> + Send + 'static {
        (**self).search_vectors(query)
    }
}

/// Adapts a [`Connector`] to [`ConnectorFfi`], catching panics in every call and every poll.
pub struct Guarded<T> {
    inner: T,
}

impl<T: Connector> Guarded<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Guarded { inner }
    }
}

/// Wraps a connector into the boxed ABI object the host uses, without going through a
/// library. Used by tests and benchmarks that link a connector statically.
pub fn connector_box<T: Connector>(connector: T) -> ConnectorBox {
    ConnectorFfi_TO::from_value(Guarded::new(connector), abi_stable::sabi_trait::TD_Opaque)
}

/// **Added in 1.2.** The ABI objects of one connector instance, both panic-guarded: what
/// `export_connector!`'s `new_connector_parts` answers. Statically linked use (tests,
/// benchmarks) gets the same [`OpenedConnector`] the loader answers for a library; `versions`
/// is always `Some` (answering `Unsupported` when the connector does not implement versioned
/// writes).
pub fn connector_parts<T: Connector>(connector: T) -> OpenedConnector {
    ConnectorParts15::of(connector).into()
}

impl ConnectorParts {
    /// Both ABI objects over one instance of `connector`.
    pub fn of<T: Connector>(connector: T) -> Self {
        let ConnectorParts13 {
            connector,
            versions,
            maintenance: _,
        } = ConnectorParts13::of(connector);
        ConnectorParts {
            connector,
            versions,
        }
    }
}

impl ConnectorParts13 {
    /// All three ABI objects over one instance of `connector`.
    pub fn of<T: Connector>(connector: T) -> Self {
        let ConnectorParts14 {
            connector,
            versions,
            maintenance,
            migration: _,
        } = ConnectorParts14::of(connector);
        ConnectorParts13 {
            connector,
            versions,
            maintenance,
        }
    }
}

impl ConnectorParts14 {
    /// All four ABI objects over one instance of `connector`.
    pub fn of<T: Connector>(connector: T) -> Self {
        let ConnectorParts15 {
            connector,
            versions,
            maintenance,
            migration,
            vectors: _,
        } = ConnectorParts15::of(connector);
        ConnectorParts14 {
            connector,
            versions,
            maintenance,
            migration,
        }
    }
}

impl ConnectorParts15 {
    /// All five ABI objects over one instance of `connector`.
    pub fn of<T: Connector>(connector: T) -> Self {
        let shared = Arc::new(connector);
        ConnectorParts15 {
            connector: connector_box(Arc::clone(&shared)),
            versions: ObjectVersionsFfi_TO::from_value(
                Guarded::new(Arc::clone(&shared)),
                abi_stable::sabi_trait::TD_Opaque,
            ),
            maintenance: MaintenanceFfi_TO::from_value(
                Guarded::new(Arc::clone(&shared)),
                abi_stable::sabi_trait::TD_Opaque,
            ),
            migration: MigrationFfi_TO::from_value(
                Guarded::new(Arc::clone(&shared)),
                abi_stable::sabi_trait::TD_Opaque,
            ),
            vectors: VectorsFfi_TO::from_value(
                Guarded::new(shared),
                abi_stable::sabi_trait::TD_Opaque,
            ),
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

pub(crate) fn panic_error(op: &str, payload: &(dyn std::any::Any + Send)) -> PluginError {
    PluginError::internal(format!(
        "{PANIC_MESSAGE_PREFIX}{op}: {}",
        panic_message(payload)
    ))
}

/// A future that turns a panic during `poll` into an `Internal` error.
struct CatchPanic<F> {
    op: &'static str,
    inner: Pin<Box<F>>,
}

impl<F, T> Future for CatchPanic<F>
where
    F: Future<Output = PluginResult<T>>,
{
    type Output = RResult<T, PluginError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let op = self.op;
        let inner = self.inner.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(r)) => Poll::Ready(r.into()),
            Err(p) => Poll::Ready(RResult::RErr(panic_error(op, &*p))),
        }
    }
}

/// Runs `call` (which builds the future) and the future itself under `catch_unwind`.
pub(crate) fn guard<T, Fut, M>(op: &'static str, call: impl FnOnce() -> Fut, map: M) -> FfiResult<T>
where
    T: Send + 'static,
    Fut: Future + Send + 'static,
    M: FnOnce(Fut::Output) -> PluginResult<T> + Send + 'static,
{
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(fut) => CatchPanic {
            op,
            inner: Box::pin(async move { map(fut.await) }),
        }
        .into_ffi(),
        Err(p) => {
            let e = panic_error(op, &*p);
            async move { RResult::RErr(e) }.into_ffi()
        }
    }
}

fn same<T>(r: PluginResult<T>) -> PluginResult<T> {
    r
}

impl<T: Connector> ConnectorFfi for Guarded<T> {
    fn create_object(&self, object: StoredObject) -> FfiResult<()> {
        guard("create_object", || self.inner.create_object(object), same)
    }
    fn get_object(&self, kind: ObjectKind, id: Id) -> FfiResult<ROption<StoredObject>> {
        guard(
            "get_object",
            || self.inner.get_object(kind, id),
            |r| r.map(ROption::from),
        )
    }
    fn get_objects(
        &self,
        kind: ObjectKind,
        ids: RVec<Id>,
    ) -> FfiResult<RVec<ROption<StoredObject>>> {
        guard(
            "get_objects",
            || self.inner.get_objects(kind, ids.into_vec()),
            |r| r.map(|v| v.into_iter().map(ROption::from).collect()),
        )
    }
    fn query_objects(&self, query: ObjectQuery) -> FfiResult<ObjectPage> {
        guard("query_objects", || self.inner.query_objects(query), same)
    }
    fn update_object(&self, object: StoredObject) -> FfiResult<()> {
        guard("update_object", || self.inner.update_object(object), same)
    }
    fn delete_object(&self, kind: ObjectKind, id: Id) -> FfiResult<()> {
        guard("delete_object", || self.inner.delete_object(kind, id), same)
    }
    fn object_history(&self, kind: ObjectKind, id: Id) -> FfiResult<ObjectHistory> {
        guard(
            "object_history",
            || self.inner.object_history(kind, id),
            same,
        )
    }
    fn aggregate(&self, query: ObjectQuery, request_json: RString) -> FfiResult<RString> {
        guard(
            "aggregate",
            || self.inner.aggregate(query, request_json.into_string()),
            |r| r.map(RString::from),
        )
    }
    fn add_key(&self, key: StoredKey) -> FfiResult<()> {
        guard("add_key", || self.inner.add_key(key), same)
    }
    fn get_key(&self, id: Id) -> FfiResult<ROption<StoredKey>> {
        guard(
            "get_key",
            || self.inner.get_key(id),
            |r| r.map(ROption::from),
        )
    }
    fn key_children(&self, id: Id) -> FfiResult<RVec<StoredKey>> {
        guard(
            "key_children",
            || self.inner.key_children(id),
            |r| r.map(RVec::from),
        )
    }
    fn root_keys(&self) -> FfiResult<RVec<StoredKey>> {
        guard(
            "root_keys",
            || self.inner.root_keys(),
            |r| r.map(RVec::from),
        )
    }
    fn update_key(&self, key: StoredKey) -> FfiResult<()> {
        guard("update_key", || self.inner.update_key(key), same)
    }
    fn delete_key(&self, id: Id) -> FfiResult<RVec<Id>> {
        guard(
            "delete_key",
            || self.inner.delete_key(id),
            |r| r.map(RVec::from),
        )
    }
    fn get_document(&self, document: DocumentName) -> FfiResult<VersionedDocument> {
        guard("get_document", || self.inner.get_document(document), same)
    }
    fn put_document(
        &self,
        document: DocumentName,
        json: RString,
        expected_version: u64,
    ) -> FfiResult<u64> {
        guard(
            "put_document",
            || {
                self.inner
                    .put_document(document, json.into_string(), expected_version)
            },
            same,
        )
    }
}

impl<T: Connector> ObjectVersionsFfi for Guarded<T> {
    fn get_object_versioned(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> FfiResult<ROption<VersionedObject>> {
        guard(
            "get_object_versioned",
            || self.inner.get_object_versioned(kind, id),
            |r| r.map(ROption::from),
        )
    }
    fn update_object_if(&self, object: StoredObject, expected_version: u64) -> FfiResult<u64> {
        guard(
            "update_object_if",
            || self.inner.update_object_if(object, expected_version),
            same,
        )
    }
}

impl<T: Connector> MaintenanceFfi for Guarded<T> {
    fn backup(&self, to: RString) -> FfiResult<BackupReport> {
        guard("backup", || self.inner.backup(to.into_string()), same)
    }
}

impl<T: Connector> MigrationFfi for Guarded<T> {
    fn export_objects(
        &self,
        kind: ObjectKind,
        cursor: RString,
        limit: u64,
    ) -> FfiResult<RecordPage> {
        guard(
            "export_objects",
            || self.inner.export_objects(kind, cursor.into_string(), limit),
            same,
        )
    }
    fn import_objects(&self, records: RVec<ObjectRecord>) -> FfiResult<()> {
        guard(
            "import_objects",
            || self.inner.import_objects(records.into_vec()),
            same,
        )
    }
}

impl<T: Connector> VectorsFfi for Guarded<T> {
    fn create_object_with_vector(&self, object: StoredObject, vector: RVec<f32>) -> FfiResult<()> {
        guard(
            "create_object_with_vector",
            || {
                self.inner
                    .create_object_with_vector(object, vector.into_vec())
            },
            same,
        )
    }
    fn update_object_with_vector(&self, object: StoredObject, vector: RVec<f32>) -> FfiResult<()> {
        guard(
            "update_object_with_vector",
            || {
                self.inner
                    .update_object_with_vector(object, vector.into_vec())
            },
            same,
        )
    }
    fn update_object_if_with_vector(
        &self,
        object: StoredObject,
        expected_version: u64,
        vector: RVec<f32>,
    ) -> FfiResult<u64> {
        guard(
            "update_object_if_with_vector",
            || {
                self.inner
                    .update_object_if_with_vector(object, expected_version, vector.into_vec())
            },
            same,
        )
    }
    fn get_vector(&self, kind: ObjectKind, id: Id) -> FfiResult<ROption<RVec<f32>>> {
        guard(
            "get_vector",
            || self.inner.get_vector(kind, id),
            |r| r.map(|v| v.map(RVec::from).into()),
        )
    }
    fn search_vectors(&self, query: VectorQuery) -> FfiResult<RVec<VectorHit>> {
        guard(
            "search_vectors",
            || self.inner.search_vectors(query),
            |r| r.map(RVec::from),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn nope<T>() -> std::future::Ready<PluginResult<T>> {
        ready(Err(PluginError::internal("not in this test")))
    }

    /// The 16 methods every connector has, answering `Internal` (only the versioned ones and
    /// `create_object` matter here).
    macro_rules! other_methods {
        () => {
            fn get_object(
                &self,
                _: ObjectKind,
                _: Id,
            ) -> impl Future<Output = PluginResult<Option<StoredObject>>> + Send + 'static {
                nope()
            }
            fn get_objects(
                &self,
                _: ObjectKind,
                _: Vec<Id>,
            ) -> impl Future<Output = PluginResult<Vec<Option<StoredObject>>>> + Send + 'static {
                nope()
            }
            fn query_objects(
                &self,
                _: ObjectQuery,
            ) -> impl Future<Output = PluginResult<ObjectPage>> + Send + 'static {
                nope()
            }
            fn update_object(
                &self,
                _: StoredObject,
            ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
                nope()
            }
            fn delete_object(
                &self,
                _: ObjectKind,
                _: Id,
            ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
                nope()
            }
            fn object_history(
                &self,
                _: ObjectKind,
                _: Id,
            ) -> impl Future<Output = PluginResult<ObjectHistory>> + Send + 'static {
                nope()
            }
            fn aggregate(
                &self,
                _: ObjectQuery,
                _: String,
            ) -> impl Future<Output = PluginResult<String>> + Send + 'static {
                nope()
            }
            fn add_key(
                &self,
                _: StoredKey,
            ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
                nope()
            }
            fn get_key(
                &self,
                _: Id,
            ) -> impl Future<Output = PluginResult<Option<StoredKey>>> + Send + 'static {
                nope()
            }
            fn key_children(
                &self,
                _: Id,
            ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
                nope()
            }
            fn root_keys(
                &self,
            ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
                nope()
            }
            fn update_key(
                &self,
                _: StoredKey,
            ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
                nope()
            }
            fn delete_key(
                &self,
                _: Id,
            ) -> impl Future<Output = PluginResult<Vec<Id>>> + Send + 'static {
                nope()
            }
            fn get_document(
                &self,
                _: DocumentName,
            ) -> impl Future<Output = PluginResult<VersionedDocument>> + Send + 'static {
                nope()
            }
            fn put_document(
                &self,
                _: DocumentName,
                _: String,
                _: u64,
            ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
                nope()
            }
        };
    }

    /// A connector written before 1.2: no versioned methods.
    struct Before;

    impl Connector for Before {
        fn create_object(
            &self,
            _: StoredObject,
        ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
            nope()
        }
        other_methods!();
    }

    /// Counts creates, answers the count as the version, and panics in `update_object_if`.
    #[derive(Default)]
    struct Probe {
        creates: AtomicU64,
    }

    impl Connector for Probe {
        fn create_object(
            &self,
            _: StoredObject,
        ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
            self.creates.fetch_add(1, Ordering::SeqCst);
            ready(Ok(()))
        }
        other_methods!();
        fn get_object_versioned(
            &self,
            _: ObjectKind,
            _: Id,
        ) -> impl Future<Output = PluginResult<Option<VersionedObject>>> + Send + 'static {
            ready(Ok(Some(VersionedObject {
                object: object(),
                version: self.creates.load(Ordering::SeqCst),
            })))
        }
        fn update_object_if(
            &self,
            _: StoredObject,
            expected_version: u64,
        ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
            assert_ne!(expected_version, 99, "deliberate panic");
            async move {
                assert_ne!(expected_version, 98, "deliberate panic while polled");
                Ok(expected_version + 1)
            }
        }
    }

    fn object() -> StoredObject {
        StoredObject {
            kind: ObjectKind::Thing,
            id: Id([1; 16]),
            class: "City".into(),
            context: RString::new(),
            owner: Id([2; 16]),
            created_ms: 1,
            updated_ms: 1,
            properties_json: "{}".into(),
        }
    }

    fn now<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        match f.as_mut().poll(&mut Context::from_waker(waker)) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the test futures are ready at once"),
        }
    }

    #[test]
    fn default_versioned_methods_answer_unsupported_naming_the_capability() {
        let opened = connector_parts(Before);
        let versions = opened
            .versions
            .expect("parts always have a versions object");
        let e = now(versions.get_object_versioned(ObjectKind::Thing, Id([1; 16]))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported);
        assert!(e.message.contains("versioned-writes"), "{e}");
        let e = now(versions.update_object_if(object(), 1)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported);
        assert!(e.message.contains("update_object_if"), "{e}");
    }

    #[test]
    fn parts_share_one_instance_and_report_panics() {
        let opened = connector_parts(Probe::default());
        let versions = opened.versions.unwrap();
        now(opened.connector.create_object(object())).unwrap();
        now(opened.connector.create_object(object())).unwrap();
        let v = now(versions.get_object_versioned(ObjectKind::Thing, Id([1; 16])))
            .unwrap()
            .unwrap();
        assert_eq!(v.version, 2, "both objects reach the same connector");
        assert_eq!(now(versions.update_object_if(object(), 5)).unwrap(), 6);
        let e = now(versions.update_object_if(object(), 99)).unwrap_err();
        assert_eq!(e.panicked_in(), Some("update_object_if"), "{e}");
        let e = now(versions.update_object_if(object(), 98)).unwrap_err();
        assert_eq!(e.panicked_in(), Some("update_object_if"), "{e}");
        assert!(e.message.contains("while polled"), "{e}");
        // Still served after the panics.
        assert_eq!(now(versions.update_object_if(object(), 1)).unwrap(), 2);
        assert!(format!("{:?}", connector_parts(Before)).contains("ObjectVersionsBox"));
        let plain: OpenedConnector = connector_box(Before).into();
        assert!(plain.versions.is_none());
    }
}
