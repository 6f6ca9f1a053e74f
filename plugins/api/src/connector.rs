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

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use abi_stable::sabi_trait;
use abi_stable::std_types::{RBox, ROption, RResult, RString, RVec};
use async_ffi::{FfiFuture, FutureExt};

use crate::error::{PluginError, PluginResult};
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
/// (`created_ms` descending, ties broken by id ascending), so paging is stable.
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

    /// Objects of `query.kind` matching `query`, newest first, `query.offset` skipped, at most
    /// `query.limit` returned; `total` counts every match. A non-empty `filter_json` without the
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

    /// The direct children of a key (one level), oldest first. `NotFound` when the key is missing.
    fn key_children(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static;

    /// Every key without a parent.
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
        "the plugin panicked in {op}: {}",
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
