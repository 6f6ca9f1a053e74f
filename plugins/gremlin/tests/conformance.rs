//! The conformance kit against the Gremlin connector, loaded from its built `.so` exactly as the
//! host loads it, talking to a **real** Gremlin Server: `WEFT_GREMLIN_URL` (e.g.
//! `ws://127.0.0.1:8182/gremlin`, from `scripts/real-servers.sh start gremlin`). Every check
//! gets a fresh, empty store: a new `namespace` on the same server. With `WEFT_JANUSGRAPH_URL`
//! set, `janusgraph_*` tests run the whole kit against that server too.
//!
//! Without `WEFT_GREMLIN_URL` every real-server test prints that it skips and passes; the
//! tests that need no server (name, capabilities, config errors, an unreachable address) always
//! run.

use std::time::{Duration, Instant};

use weft_connector_tests::loader::{self, LoadedPlugin};
use weft_connector_tests::weft_plugin_api::{Capabilities, ErrorKind, HostLogger, OpenedConnector};
use weft_connector_tests::{cdylib_path, Subject};

mod common;

const SKIP: &str =
    "skipping the real-server suite: WEFT_GREMLIN_URL is not set (scripts/real-servers.sh start gremlin)";

fn load_plugin() -> LoadedPlugin {
    loader::load(&cdylib_path("weft_gremlin")).unwrap_or_else(|e| panic!("{e}"))
}

fn env_url(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|u| !u.trim().is_empty())
}

fn open(plugin: &LoadedPlugin, config: serde_json::Value) -> Result<OpenedConnector, String> {
    plugin
        .open_connector(&config.to_string(), HostLogger::discard())
        .map_err(|e| e.to_string())
}

fn subject_for(url: String) -> Subject {
    common::purge_old_namespaces(&url);
    let plugin = load_plugin();
    Subject::new(plugin.name.clone(), plugin.capabilities, move || {
        let config = serde_json::json!({"url": url, "namespace": common::fresh_namespace("kit")});
        open(&plugin, config).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// One `#[test]` per conformance check, run against the enclosing module's `subject()`, or
/// printing its `SKIP_MESSAGE` and passing when that is `None`.
macro_rules! kit_tests {
    ($($check:ident)*) => {
        $(
            #[test]
            fn $check() {
                let Some(s) = subject() else {
                    println!("{SKIP_MESSAGE}");
                    return;
                };
                weft_connector_tests::run_check(
                    stringify!($check),
                    weft_connector_tests::checks::$check(s),
                );
            }
        )*
    };
}

/// Calls `$m!` with every check of the kit (the order of `conformance_tests!`).
macro_rules! every_check {
    ($m:ident) => {
        $m! {
            check_create_then_get check_create_duplicate_is_conflict check_get_missing_is_none
            check_get_objects_order_and_missing check_update_replaces
            check_update_missing_is_not_found check_delete_removes
            check_delete_missing_is_not_found check_ids_not_reused_after_delete
            check_things_and_actions_are_separate check_history_missing_is_not_found
            check_history_of_unchanged_object_is_empty check_history_after_updates
            check_history_after_delete check_query_newest_first check_query_paging
            check_query_owner_filter check_query_class_filter check_filter_int
            check_filter_number check_filter_string check_filter_text check_filter_boolean
            check_filter_date check_filter_missing_property_never_matches
            check_filter_type_mismatch_never_matches check_filter_and_or_not
            check_filter_reference_path check_filter_reference_array_and_hops
            check_filter_malformed_is_invalid check_filter_with_paging_owner_and_class
            check_aggregate_count_and_numbers check_aggregate_strings
            check_aggregate_booleans check_aggregate_group_by
            check_aggregate_respects_query check_key_add_and_get check_key_add_errors
            check_key_children_one_level check_key_root_keys check_key_update
            check_key_delete_cascade check_versioned_create_is_version_1
            check_versioned_writes_count check_versioned_stale_is_conflict
            check_versioned_missing_is_not_found check_versioned_history
            check_document_initially_empty check_document_compare_and_set
            check_documents_are_independent check_concurrent_creates
            check_concurrent_updates_of_one_object check_concurrent_key_adds
            check_concurrent_document_writes check_concurrent_versioned_counter
            check_concurrent_versioned_appends check_concurrent_versioned_disjoint_properties
            check_large_object check_unicode_round_trip check_unicode_filters
            check_capability_history check_capability_filter
            check_capability_filter_reference_paths check_capability_aggregate
            check_capability_persistent check_capability_versioned_writes
            check_capability_backup check_capability_migrate check_migrate_round_trip
            check_migrate_import_is_idempotent check_vectors_nearest_match_exact_search
            check_vectors_filter_first check_vectors_follow_updates_and_deletes
            check_capability_vector_search
        }
    };
}

/// The kit against the Gremlin Server (TinkerGraph) of `WEFT_GREMLIN_URL`.
mod gremlin {
    use super::*;

    const SKIP_MESSAGE: &str = SKIP;

    fn subject() -> Option<&'static Subject> {
        static SUBJECT: std::sync::OnceLock<Option<Subject>> = std::sync::OnceLock::new();
        SUBJECT
            .get_or_init(|| env_url("WEFT_GREMLIN_URL").map(subject_for))
            .as_ref()
    }

    every_check!(kit_tests);
}

/// The kit against the JanusGraph server of `WEFT_JANUSGRAPH_URL`.
mod janusgraph {
    use super::*;

    const SKIP_MESSAGE: &str = "skipping the JanusGraph suite: WEFT_JANUSGRAPH_URL is not set (scripts/real-servers.sh start janusgraph)";

    fn subject() -> Option<&'static Subject> {
        static SUBJECT: std::sync::OnceLock<Option<Subject>> = std::sync::OnceLock::new();
        SUBJECT
            .get_or_init(|| env_url("WEFT_JANUSGRAPH_URL").map(subject_for))
            .as_ref()
    }

    every_check!(kit_tests);
}

/// Every check of the kit has a test above (a check added to the kit must be added here).
#[test]
fn every_kit_check_is_listed() {
    let source = include_str!("conformance.rs");
    let listed: Vec<&str> = source.split_whitespace().collect();
    let missing: Vec<&str> = weft_connector_tests::all_checks()
        .iter()
        .map(|c| c.name)
        .filter(|name| !listed.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "checks of the kit not run here: {missing:?}"
    );
}

#[test]
fn declares_name_and_capabilities() {
    let plugin = load_plugin();
    assert_eq!(plugin.name, "gremlin");
    let want = Capabilities::HISTORY
        | Capabilities::FILTER
        | Capabilities::FILTER_REFERENCE_PATHS
        | Capabilities::AGGREGATE
        | Capabilities::PERSISTENT
        | Capabilities::VERSIONED_WRITES
        | Capabilities::MIGRATE;
    assert_eq!(plugin.capabilities, want);
}

/// A refused config is `Invalid`, one line naming the key, and never touches the network.
#[test]
fn config_errors_name_the_key() {
    let plugin = load_plugin();
    let cases = [
        (serde_json::json!({}), "database_config.url"),
        (
            serde_json::json!({"url": "http://127.0.0.1:8182"}),
            "database_config.url",
        ),
        (
            serde_json::json!({"url": "ws://127.0.0.1:1/gremlin", "colour": "red"}),
            "database_config.colour",
        ),
        (
            serde_json::json!({"url": "ws://127.0.0.1:1/gremlin", "username": "u"}),
            "database_config.password",
        ),
        (
            serde_json::json!({"url": "ws://127.0.0.1:1/gremlin", "connect_timeout_ms": -1}),
            "database_config.connect_timeout_ms",
        ),
        (
            serde_json::json!({"url": "ws://127.0.0.1:1/gremlin", "request_timeout_ms": "9"}),
            "database_config.request_timeout_ms",
        ),
        (
            serde_json::json!({"url": "ws://127.0.0.1:1/gremlin", "traversal_source": "g; x"}),
            "database_config.traversal_source",
        ),
        (
            serde_json::json!({"url": "ws://127.0.0.1:1/gremlin", "namespace": 7}),
            "database_config.namespace",
        ),
        (
            serde_json::json!({"url": "ws://127.0.0.1:1/gremlin", "graph_prefix": "1x"}),
            "database_config.graph_prefix",
        ),
    ];
    for (config, key) in cases {
        let err = match plugin.open_connector(&config.to_string(), HostLogger::discard()) {
            Ok(_) => panic!("{config} was accepted"),
            Err(e) => e,
        };
        assert_eq!(err.kind, ErrorKind::Invalid, "{config}: {err}");
        assert!(
            err.message.contains(key),
            "{config}: {err} does not name {key}"
        );
        assert!(!err.message.contains('\n'), "{config}: not one line: {err}");
    }
}

/// Nothing listens on port 1: the constructor answers within the connect timeout, one line
/// naming the URL.
#[test]
fn unreachable_server_is_one_line_naming_the_url() {
    let plugin = load_plugin();
    let url = "ws://127.0.0.1:1/gremlin";
    let started = Instant::now();
    let err = match plugin.open_connector(
        &serde_json::json!({"url": url, "connect_timeout_ms": 2000}).to_string(),
        HostLogger::discard(),
    ) {
        Ok(_) => panic!("a connector on {url} opened"),
        Err(e) => e,
    };
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.message.contains(url), "{err}");
    assert!(!err.message.contains('\n'), "not one line: {err}");
}

/// A listener that accepts but never answers the WebSocket handshake: the connect timeout
/// still ends the attempt.
#[test]
fn silent_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/gremlin", listener.local_addr().unwrap());
    let plugin = load_plugin();
    let started = Instant::now();
    let err = match plugin.open_connector(
        &serde_json::json!({"url": url, "connect_timeout_ms": 500}).to_string(),
        HostLogger::discard(),
    ) {
        Ok(_) => panic!("a connector on a silent listener opened"),
        Err(e) => e,
    };
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(
        err.message.contains(&url) && err.message.contains("500 ms"),
        "{err}"
    );
    drop(listener);
}

/// The real server with a traversal source it does not have: one line naming the key.
#[test]
fn unknown_traversal_source_is_refused() {
    let Some(url) = env_url("WEFT_GREMLIN_URL") else {
        println!("{SKIP}");
        return;
    };
    let plugin = load_plugin();
    let err = open(
        &plugin,
        serde_json::json!({"url": url, "traversal_source": "no_such_source"}),
    )
    .map(|_| ())
    .expect_err("an unknown traversal source was accepted");
    assert!(
        err.contains("no_such_source") && err.contains(&url),
        "{err}"
    );
    assert!(!err.contains('\n'), "not one line: {err}");
}
