//! What the Cassandra connector's test files share: the real server from
//! `WEFT_CASSANDRA_CONTACT_POINTS`, fresh keyspaces, and the clean-up of keyspaces earlier runs
//! left behind.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

use futures::TryStreamExt;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use weft_connector_tests::cdylib_path;
use weft_connector_tests::loader::{self, LoadedPlugin};
use weft_connector_tests::weft_plugin_api::{HostLogger, OpenedConnector};

pub const SKIP: &str = "skipping the real-server suite: WEFT_CASSANDRA_CONTACT_POINTS is not set (scripts/real-servers.sh start cassandra)";

/// The contact points of the real server, `None` when the variable is unset or empty.
pub fn contact_points() -> Option<Vec<String>> {
    let v = std::env::var("WEFT_CASSANDRA_CONTACT_POINTS").ok()?;
    let points: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    (!points.is_empty()).then_some(points)
}

/// The contact points, or `None` after printing that the test skips.
pub fn server_or_skip() -> Option<Vec<String>> {
    let points = contact_points();
    if points.is_none() {
        println!("{SKIP}");
    }
    points
}

pub fn load_plugin() -> LoadedPlugin {
    loader::load(&cdylib_path("weft_cassandra")).unwrap_or_else(|e| panic!("{e}"))
}

/// A runtime for the tests' own CQL (keyspace clean-up, raw reads).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime for the tests")
    })
}

/// A CQL session of the tests themselves (not the connector's).
pub fn admin(points: &[String]) -> &'static Session {
    static ADMIN: OnceLock<Session> = OnceLock::new();
    ADMIN.get_or_init(|| {
        runtime().block_on(async {
            SessionBuilder::new()
                .known_nodes(points)
                .connection_timeout(Duration::from_secs(5))
                .build()
                .await
                .unwrap_or_else(|e| panic!("the tests cannot connect to {points:?}: {e}"))
        })
    })
}

/// The keyspaces of this suite: `weft_kit_<pid>_<n>` (conformance) and `weft_it_<pid>_<n>`
/// (other tests); answers the pid.
fn test_keyspace_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix("weft_kit_")
        .or_else(|| name.strip_prefix("weft_it_"))?;
    let (pid, n) = rest.split_once('_')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Drops the test keyspaces of earlier runs (of processes that no longer exist), once per
/// process. Keyspaces of a running test process are left alone.
pub fn drop_stale_keyspaces(points: &[String]) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let session = admin(points);
        runtime().block_on(async {
            let Ok(pager) = session
                .query_iter("SELECT keyspace_name FROM system_schema.keyspaces", ())
                .await
            else {
                return;
            };
            let Ok(stream) = pager.rows_stream::<(String,)>() else {
                return;
            };
            let names: Vec<(String,)> = stream.try_collect().await.unwrap_or_default();
            for (name,) in names {
                let Some(pid) = test_keyspace_pid(&name) else {
                    continue;
                };
                if pid == std::process::id()
                    || std::path::Path::new(&format!("/proc/{pid}")).exists()
                {
                    continue;
                }
                // `name` matched weft_(kit|it)_<digits>_<digits>: safe to write into CQL.
                let _ = session
                    .query_unpaged(format!("DROP KEYSPACE IF EXISTS {name}"), ())
                    .await;
            }
        });
    });
}

/// The keyspaces made on each thread (by thread name: the kit runs each check on a thread
/// named after it), so that a test can drop what its check made.
fn made() -> &'static Mutex<HashMap<String, Vec<String>>> {
    static MADE: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    MADE.get_or_init(Mutex::default)
}

/// A keyspace name no other test or run uses: `weft_<prefix>_<pid>_<n>`, remembered under the
/// current thread's name ([`drop_keyspaces_made_by`]).
pub fn fresh_keyspace(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("weft_{prefix}_{}_{n}", std::process::id());
    let thread = std::thread::current()
        .name()
        .unwrap_or_default()
        .to_string();
    made()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(thread)
        .or_default()
        .push(name.clone());
    name
}

/// Drops the keyspaces made on the thread named `thread` (a passed check's or test's; those of
/// a failed one stay for a look until the next run starts).
pub fn drop_keyspaces_made_by(points: &[String], thread: &str) {
    let names = made()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(thread)
        .unwrap_or_default();
    let session = admin(points);
    runtime().block_on(async {
        for name in names {
            // Our own name (weft_<prefix>_<pid>_<n>): safe to write into CQL.
            let _ = session
                .query_unpaged(format!("DROP KEYSPACE IF EXISTS {name}"), ())
                .await;
        }
    });
}

/// Drops the keyspaces made on the current thread.
pub fn drop_my_keyspaces(points: &[String]) {
    let thread = std::thread::current()
        .name()
        .unwrap_or_default()
        .to_string();
    drop_keyspaces_made_by(points, &thread);
}

pub fn config(points: &[String], keyspace: &str) -> serde_json::Value {
    serde_json::json!({"contact_points": points, "keyspace": keyspace, "consistency": "QUORUM"})
}

pub fn open(plugin: &LoadedPlugin, config: &serde_json::Value) -> Result<OpenedConnector, String> {
    plugin
        .open_connector(&config.to_string(), HostLogger::discard())
        .map_err(|e| e.to_string())
}

/// Whether keyspace `name` exists on the server.
pub fn keyspace_exists(points: &[String], name: &str) -> bool {
    let session = admin(points);
    runtime().block_on(async {
        let r = session
            .query_unpaged(
                "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
                (name,),
            )
            .await
            .expect("reading system_schema.keyspaces");
        r.into_rows_result()
            .map(|rows| rows.rows_num() > 0)
            .unwrap_or(false)
    })
}
