//! The adapter as the host meets it: a store's calls through `OnRuntime` and the ABI objects
//! `export_connector!` makes (`connector_parts`), awaited with no runtime around them (as on the
//! host's threads and in the conformance kit).
use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::executor::block_on;
use weft_connector_sdk::{Call, OnRuntime, PluginRuntime, Run, RuntimeOptions, Store};
use weft_plugin_api::{
    connector_parts, Connector, DocumentName, ErrorKind, Id, ObjectHistory, ObjectKind, ObjectPage,
    ObjectQuery, PluginContext, PluginError, PluginResult, StoredKey, StoredObject,
    VersionedDocument,
};

const PLUGIN: &str = "sdk-probe";

/// Records which calls finished, and on which thread.
#[derive(Default)]
struct Probe {
    finished: Mutex<Vec<(&'static str, Option<String>)>>,
}

impl Probe {
    fn finish(&self, call: &'static str) {
        let thread = std::thread::current().name().map(String::from);
        self.finished.lock().unwrap().push((call, thread));
    }
}

fn finished(conn: &OnRuntime<Probe>, call: &str) -> Vec<Option<String>> {
    let finished = conn.store().finished.lock().unwrap();
    finished
        .iter()
        .filter(|(c, _)| *c == call)
        .map(|(_, thread)| thread.clone())
        .collect()
}

fn not_here<T>() -> PluginResult<T> {
    Err(PluginError::internal("not in this test"))
}

impl Store for Probe {
    /// One call of each kind of run.
    fn run(call: Call) -> Run {
        match call {
            Call::CreateObject => Run::TaskToCompletion,
            Call::GetKey => Run::Blocking,
            Call::RootKeys => Run::Inline,
            _ => Run::Task,
        }
    }

    async fn create_object(&self, _: StoredObject) -> PluginResult<()> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.finish("create_object");
        Ok(())
    }

    async fn get_object(&self, _: ObjectKind, _: Id) -> PluginResult<Option<StoredObject>> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.finish("get_object");
        Ok(None)
    }

    async fn get_objects(
        &self,
        _: ObjectKind,
        ids: Vec<Id>,
    ) -> PluginResult<Vec<Option<StoredObject>>> {
        self.finish("get_objects");
        Ok(vec![None; ids.len()])
    }

    async fn query_objects(&self, _: ObjectQuery) -> PluginResult<ObjectPage> {
        not_here()
    }

    async fn update_object(&self, _: StoredObject) -> PluginResult<()> {
        Err(PluginError::unavailable("the probe's store is down"))
    }

    async fn delete_object(&self, _: ObjectKind, _: Id) -> PluginResult<()> {
        not_here()
    }

    async fn object_history(&self, _: ObjectKind, _: Id) -> PluginResult<ObjectHistory> {
        not_here()
    }

    async fn aggregate(&self, _: ObjectQuery, _: String) -> PluginResult<String> {
        not_here()
    }

    async fn add_key(&self, _: StoredKey) -> PluginResult<()> {
        not_here()
    }

    async fn get_key(&self, _: Id) -> PluginResult<Option<StoredKey>> {
        self.finish("get_key");
        Ok(None)
    }

    async fn key_children(&self, id: Id) -> PluginResult<Vec<StoredKey>> {
        assert_ne!(id, Id([0xEE; 16]), "deliberate panic in a task");
        Ok(Vec::new())
    }

    async fn root_keys(&self) -> PluginResult<Vec<StoredKey>> {
        self.finish("root_keys");
        Ok(Vec::new())
    }

    async fn update_key(&self, _: StoredKey) -> PluginResult<()> {
        not_here()
    }

    async fn delete_key(&self, _: Id) -> PluginResult<Vec<Id>> {
        not_here()
    }

    async fn get_document(&self, _: DocumentName) -> PluginResult<VersionedDocument> {
        not_here()
    }

    async fn put_document(&self, _: DocumentName, _: String, _: u64) -> PluginResult<u64> {
        not_here()
    }
}

fn probe() -> OnRuntime<Probe> {
    let ctx = PluginContext::empty(PLUGIN);
    let runtime = PluginRuntime::get(ctx.name, RuntimeOptions::DEFAULT).unwrap();
    OnRuntime::new(runtime, Probe::default(), ctx.log)
}

fn object() -> StoredObject {
    StoredObject {
        kind: ObjectKind::Thing,
        id: Id([1; 16]),
        class: "City".into(),
        context: "".into(),
        owner: Id([2; 16]),
        created_ms: 1,
        updated_ms: 1,
        properties_json: "{}".into(),
    }
}

/// Polls `f` once, as a host does before it gives up on the call.
fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    let mut f = pin!(f);
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn calls_run_where_the_store_says() {
    let conn = probe();
    let thread = Some(format!("weft-{PLUGIN}"));
    // Task: on the runtime's workers (the timer of tokio works there).
    assert_eq!(
        block_on(conn.get_object(ObjectKind::Thing, Id([1; 16]))),
        Ok(None)
    );
    assert_eq!(finished(&conn, "get_object"), vec![thread.clone()]);
    // Blocking: on the runtime's blocking pool, whose threads carry the plugin's name too.
    assert_eq!(block_on(conn.get_key(Id([1; 16]))), Ok(None));
    assert_eq!(finished(&conn, "get_key"), vec![thread]);
    // Inline: right where the host polls, no runtime involved.
    assert_eq!(block_on(conn.root_keys()), Ok(Vec::new()));
    assert_eq!(
        finished(&conn, "root_keys"),
        vec![std::thread::current().name().map(String::from)]
    );
}

#[test]
fn a_read_the_host_gives_up_on_is_aborted_a_write_finishes() {
    let conn = probe();
    assert!(poll_once(conn.get_object(ObjectKind::Thing, Id([1; 16]))).is_pending());
    assert!(poll_once(conn.create_object(object())).is_pending());
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        finished(&conn, "get_object").is_empty(),
        "the read was aborted"
    );
    assert_eq!(
        finished(&conn, "create_object").len(),
        1,
        "the write ran to its end"
    );
}

#[test]
fn a_panic_in_a_task_is_the_contracts_panic_error_through_the_abi() {
    let opened = connector_parts(probe());
    let e = block_on(opened.connector.key_children(Id([0xEE; 16]))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal);
    assert_eq!(e.panicked_in(), Some("key_children"), "{e}");
    assert!(e.message.contains("deliberate panic in a task"), "{e}");
    // The runtime lives on: the next call is answered.
    assert_eq!(
        block_on(
            opened
                .connector
                .get_objects(ObjectKind::Thing, vec![Id([1; 16])].into())
        )
        .unwrap()
        .len(),
        1
    );
    // A store's own failure comes back as it is.
    let e = block_on(opened.connector.update_object(object())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert_eq!(e.message.as_str(), "the probe's store is down");
}

#[test]
fn optional_calls_a_store_leaves_out_are_unsupported_naming_the_capability() {
    let opened = connector_parts(probe());
    let versions = opened
        .versions
        .expect("a 1.3 connector has versioned writes");
    let e = block_on(versions.get_object_versioned(ObjectKind::Thing, Id([1; 16]))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(
        e.message.contains("get_object_versioned") && e.message.contains("versioned-writes"),
        "{e}"
    );
    let e = block_on(versions.update_object_if(object(), 1)).unwrap_err();
    assert!(e.message.contains("update_object_if"), "{e}");
    let maintenance = opened.maintenance.expect("and a maintenance object");
    let e = block_on(maintenance.backup("/nowhere".into())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("backup capability"), "{e}");
}

#[test]
fn maintenance_runs_on_the_runtime_and_blocks_the_caller() {
    let conn = probe();
    let n = conn
        .block_on("counting", |s| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            s.get_objects(ObjectKind::Thing, vec![Id([1; 16]); 3])
                .await
                .map(|v| v.len())
        })
        .unwrap();
    assert_eq!(n, Ok(3));
}
