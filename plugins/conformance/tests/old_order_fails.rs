//! The kit tells the contract's order from the one before it: a connector that lists objects of
//! one millisecond by id ascending (the order documented up to interface 1.3.0) fails
//! `check_query_newest_first`, and the same connector in the contract's order passes it.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

use weft_connector_tests::checks::check_query_newest_first;
use weft_connector_tests::weft_plugin_api::{
    connector_box, Capabilities, Connector, DocumentName, Id, ObjectHistory, ObjectKind,
    ObjectPage, ObjectQuery, PluginResult, StoredKey, StoredObject, VersionedDocument,
};
use weft_connector_tests::{run_check, Subject};
use weft_dev_memory::DevMemory;

/// dev-memory, with `query_objects` answered in the old order when `old_order` is set: newest
/// first, ties by id **ascending**. Every other call goes to dev-memory unchanged.
struct Ordered {
    inner: DevMemory,
    old_order: bool,
}

impl Connector for Ordered {
    fn create_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.inner.create_object(object)
    }
    fn get_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredObject>>> + Send + 'static {
        self.inner.get_object(kind, id)
    }
    fn get_objects(
        &self,
        kind: ObjectKind,
        ids: Vec<Id>,
    ) -> impl Future<Output = PluginResult<Vec<Option<StoredObject>>>> + Send + 'static {
        self.inner.get_objects(kind, ids)
    }
    fn query_objects(
        &self,
        query: ObjectQuery,
    ) -> impl Future<Output = PluginResult<ObjectPage>> + Send + 'static {
        let old_order = self.old_order;
        // Every match, then the page cut from them in the order this connector keeps.
        let all = self.inner.query_objects(ObjectQuery {
            offset: 0,
            limit: u64::MAX,
            ..query.clone()
        });
        async move {
            let mut page = all.await?;
            if old_order {
                page.objects
                    .sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
            }
            let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
            let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
            page.objects = page.objects.into_iter().skip(offset).take(limit).collect();
            Ok(page)
        }
    }
    fn update_object(
        &self,
        object: StoredObject,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.inner.update_object(object)
    }
    fn delete_object(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.inner.delete_object(kind, id)
    }
    fn object_history(
        &self,
        kind: ObjectKind,
        id: Id,
    ) -> impl Future<Output = PluginResult<ObjectHistory>> + Send + 'static {
        self.inner.object_history(kind, id)
    }
    fn aggregate(
        &self,
        query: ObjectQuery,
        request_json: String,
    ) -> impl Future<Output = PluginResult<String>> + Send + 'static {
        self.inner.aggregate(query, request_json)
    }
    fn add_key(&self, key: StoredKey) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.inner.add_key(key)
    }
    fn get_key(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Option<StoredKey>>> + Send + 'static {
        self.inner.get_key(id)
    }
    fn key_children(
        &self,
        id: Id,
    ) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        self.inner.key_children(id)
    }
    fn root_keys(&self) -> impl Future<Output = PluginResult<Vec<StoredKey>>> + Send + 'static {
        self.inner.root_keys()
    }
    fn update_key(
        &self,
        key: StoredKey,
    ) -> impl Future<Output = PluginResult<()>> + Send + 'static {
        self.inner.update_key(key)
    }
    fn delete_key(&self, id: Id) -> impl Future<Output = PluginResult<Vec<Id>>> + Send + 'static {
        self.inner.delete_key(id)
    }
    fn get_document(
        &self,
        document: DocumentName,
    ) -> impl Future<Output = PluginResult<VersionedDocument>> + Send + 'static {
        self.inner.get_document(document)
    }
    fn put_document(
        &self,
        document: DocumentName,
        json: String,
        expected_version: u64,
    ) -> impl Future<Output = PluginResult<u64>> + Send + 'static {
        self.inner.put_document(document, json, expected_version)
    }
}

/// `check_query_newest_first` against dev-memory in the old order (`old_order`) or the
/// contract's: the check's panic message, `None` when it passed.
fn newest_first_check(old_order: bool) -> Option<String> {
    let subject = Subject::new("ordered", Capabilities::empty(), move || {
        connector_box(Ordered {
            inner: DevMemory::new(),
            old_order,
        })
    });
    let run = catch_unwind(AssertUnwindSafe(|| {
        run_check("check_query_newest_first", async move {
            check_query_newest_first(&subject).await
        })
    }));
    run.err().map(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[test]
fn a_connector_ordering_ties_by_id_ascending_fails_the_check() {
    let message = newest_first_check(true).expect("the old order must fail the check");
    assert!(
        message.contains("equal created_ms by id descending"),
        "the check fails on the order of ties, not elsewhere: {message}"
    );
}

#[test]
fn the_same_connector_in_the_contract_order_passes_the_check() {
    assert_eq!(newest_first_check(false), None);
}
