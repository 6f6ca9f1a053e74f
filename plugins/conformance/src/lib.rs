//! `weft-connector-tests`: the conformance kit every Weft storage connector runs against itself.
//!
//! The [`Connector`](weft_plugin_api::Connector) doc comments and DESIGN §3 are the contract; this
//! crate turns them into checks. Each check is a plain `pub async fn check_xxx(&Subject)` in
//! [`checks`], and the [`conformance_tests!`] macro expands into one `#[test]` per check, so a
//! failing rule shows up by name in `cargo test` and can be run alone
//! (`cargo test --test conformance check_filter_date`).
//!
//! # Using it in a connector crate
//!
//! Add `weft-connector-tests` as a dev-dependency and write `tests/conformance.rs`:
//!
//! ```ignore
//! use weft_connector_tests::{cdylib_path, conformance_tests, Subject};
//!
//! conformance_tests!(Subject::from_library(&cdylib_path("weft_my_store"), "{}"));
//! ```
//!
//! `cargo test` builds the crate's `cdylib` before its integration tests (into
//! `target/<profile>/deps/`), and [`cdylib_path`] finds it next to the test executable (or
//! wherever `WEFT_CONNECTOR_SO` points), so the kit tests the library exactly as the host loads
//! it. A statically linked connector can be tested
//! with [`Subject::new`] and [`weft_plugin_api::connector_parts`] (or
//! [`weft_plugin_api::connector_box`]) instead.
//!
//! # How the checks run
//!
//! * A [`Subject`] is a factory of **fresh, empty** connectors (each an
//!   [`OpenedConnector`]: the connector and, for plugins built against interface 1.2 or later,
//!   its versioned-writes object) plus the capabilities the connector declares. Every check takes its own connector, so checks are independent and
//!   run in parallel threads (cargo's default). A connector backed by a shared server must make
//!   each instance empty (e.g. a new keyspace per `new_connector` call, chosen by its config).
//! * Each check runs on its own thread under `futures::executor::block_on`: there is **no tokio
//!   runtime** around the connector's futures, as in the host (which never lends its runtime to
//!   a plugin). A connector that needs a runtime must bring its own.
//! * A check that does not finish within `WEFT_CONFORMANCE_TIMEOUT_SECS` (default 300) fails
//!   with a message saying a call never completed.
//! * Checks for an optional behaviour skip themselves (printing a note) when its
//!   [`Capabilities`] flag is not declared; the `check_capability_*` checks then verify that the
//!   operation answers [`ErrorKind::Unsupported`](weft_plugin_api::ErrorKind::Unsupported)
//!   rather than a silent empty answer. `PERSISTENT` cannot be checked inside one process and is
//!   only noted.
//! * Versioned object writes (`VERSIONED_WRITES`, interface 1.2) are checked through the
//!   subject's versioned-writes object, which must then exist; without the flag,
//!   `check_capability_versioned_writes` accepts a connector without that object (built before
//!   1.2) or one whose versioned calls answer `Unsupported`.
//! * `BACKUP` (interface 1.3): declared, a backup into a new directory reports the objects and
//!   a second one into that (now full) directory is `Invalid`; undeclared, `backup` answers
//!   `Unsupported` (or the plugin, built before 1.3, has no maintenance object). Whether the
//!   copy opens as a store is the connector's own test: only it knows its config.
//! * `MIGRATE` (interface 1.4): export → import into a fresh connector → export is the
//!   identity, deleted objects included, and the target answers gets, versions, histories and
//!   listings exactly as the source; importing the same records again changes nothing, a
//!   differing record is `Conflict`, a malformed one `Invalid`. Undeclared, both calls answer
//!   `Unsupported` (or the plugin, built before 1.4, has no migration object).
//! * Failure messages start with the connector's name and say which call misbehaved, what the
//!   contract expects and what the connector answered.
#![deny(missing_docs)]

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use weft_plugin_api::{Capabilities, ConnectorBox, HostLogger, OpenedConnector, PluginKind};

pub use weft_plugin_api;
/// The host's loader (`weft-plugin-loader`), which [`Subject::from_library`] loads a library
/// with: a connector's own tests load its `.so` exactly as the host does
/// (`weft_connector_tests::loader::load`).
pub use weft_plugin_loader as loader;

pub mod checks;
mod support;

/// A connector under test: a factory of fresh, empty connectors and what the connector declares.
pub struct Subject {
    /// The connector's declared name (used in every failure message).
    pub name: String,
    /// The capabilities the connector declares; checks of undeclared behaviours expect
    /// `Unsupported`.
    pub capabilities: Capabilities,
    factory: Box<dyn Fn() -> OpenedConnector + Send + Sync>,
}

impl Subject {
    /// A subject from a factory of connectors. `factory` must return a **fresh, empty**
    /// connector on every call (checks run in parallel, each on its own connector), either an
    /// [`OpenedConnector`] (from [`LoadedPlugin::open_connector`](loader::LoadedPlugin::open_connector)
    /// or [`weft_plugin_api::connector_parts`]: with its versioned-writes object) or a plain
    /// [`ConnectorBox`] (then without one, as a plugin built before interface 1.2; a subject
    /// declaring `VERSIONED_WRITES` needs the former).
    ///
    /// ```ignore
    /// Subject::new("my-store", Capabilities::HISTORY, || connector_parts(MyStore::default()))
    /// ```
    pub fn new<C: Into<OpenedConnector>>(
        name: impl Into<String>,
        capabilities: Capabilities,
        factory: impl Fn() -> C + Send + Sync + 'static,
    ) -> Subject {
        Subject {
            name: name.into(),
            capabilities,
            factory: Box::new(move || factory().into()),
        }
    }

    /// Loads the connector library at `path` the way the host does
    /// ([`loader::load`]) and opens one connector per check with
    /// `config_json` ([`LoadedPlugin::open_connector`](loader::LoadedPlugin::open_connector)).
    /// Name and capabilities are the ones the library declares.
    ///
    /// # Panics
    ///
    /// With the loader's one-line error when the file cannot be loaded, or when it is a
    /// contextionary rather than a connector. A failing `new_connector` panics in each check
    /// that asks for a connector.
    pub fn from_library(path: &Path, config_json: &str) -> Subject {
        let plugin = match loader::load(path) {
            Ok(p) => p,
            Err(e) if !path.exists() => panic!(
                "{e} (this is where the conformance kit looked for the connector's cdylib; WEFT_CONNECTOR_SO overrides the path)"
            ),
            Err(e) => panic!("{e}"),
        };
        if plugin.kind != PluginKind::Connector {
            panic!(
                "plugin {}: is a {} named {:?}, not a connector; the conformance kit tests connectors",
                path.display(),
                plugin.kind,
                plugin.name
            );
        }
        let name = plugin.name.clone();
        let capabilities = plugin.capabilities;
        let config = config_json.to_string();
        Subject {
            name,
            capabilities,
            factory: Box::new(move || {
                plugin
                    .open_connector(&config, HostLogger::discard())
                    .unwrap_or_else(|e| {
                        panic!(
                            "connector {:?} ({}): opening it with config {config:?} failed: {e}",
                            plugin.name,
                            plugin.path.display()
                        )
                    })
            }),
        }
    }

    /// A fresh, empty connector with its versioned-writes object (when it has one).
    pub fn open(&self) -> OpenedConnector {
        (self.factory)()
    }

    /// A fresh, empty connector.
    pub fn connector(&self) -> ConnectorBox {
        self.open().connector
    }

    /// Whether the subject declares every flag of `capability`.
    pub fn has(&self, capability: Capabilities) -> bool {
        self.capabilities.contains(capability)
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("name", &self.name)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// Where cargo put the `cdylib` of the crate under test, found from the running test executable
/// (`target/<profile>/deps/<test>-<hash>`): `target/<profile>/deps/lib<lib_name>.so`, which
/// `cargo test` builds before the integration tests, else `target/<profile>/lib<lib_name>.so`,
/// where `cargo build` also links it (with the platform's prefix and suffix). The environment
/// variable `WEFT_CONNECTOR_SO` overrides both.
///
/// `lib_name` is the crate's library name (`weft_dev_memory` for package `weft-dev-memory`).
pub fn cdylib_path(lib_name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os("WEFT_CONNECTOR_SO").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let file = format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().expect("the conformance kit cannot find the test executable");
    let dir = exe.parent().expect("the test executable has no directory");
    // `cargo test` leaves the cdylib only in deps/ (it links it up into target/<profile>/ only
    // for `cargo build`), and deps/ is never older than the copy one level up.
    let beside = dir.join(&file);
    if beside.exists() || !dir.ends_with("deps") {
        return beside;
    }
    let up = dir
        .parent()
        .map(|d| d.join(&file))
        .unwrap_or_else(|| beside.clone());
    if up.exists() {
        up
    } else {
        beside
    }
}

/// How long one check may take before it fails as hung.
fn check_timeout() -> Duration {
    let secs = std::env::var("WEFT_CONFORMANCE_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// Runs one check to completion on its own thread, without any async runtime around it (like the
/// host, which never lends its runtime to a plugin). Re-raises the check's panic; fails when the
/// check does not finish within `WEFT_CONFORMANCE_TIMEOUT_SECS` (default 300).
pub fn run_check<F>(name: &'static str, check: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let timeout = check_timeout();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            futures::executor::block_on(check);
            let _ = done_tx.send(());
        })
        .expect("the conformance kit could not start a thread");
    match done_rx.recv_timeout(timeout) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(RecvTimeoutError::Timeout) => panic!(
            "{name} did not finish within {} s: a connector call never completed (a deadlock, or a \
             future that returns Pending without arranging a wake-up?). Set \
             WEFT_CONFORMANCE_TIMEOUT_SECS to wait longer.",
            timeout.as_secs()
        ),
    }
}

/// A check's future, boxed.
pub type CheckFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// One check of the kit, by name (for tools that run the kit without the test harness).
#[derive(Clone, Copy)]
pub struct Check {
    /// The check's name, e.g. `"check_create_then_get"`.
    pub name: &'static str,
    /// Starts the check against a subject.
    pub run: fn(&'static Subject) -> CheckFuture,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Every check of the kit, in the order [`conformance_tests!`] declares them.
pub fn all_checks() -> Vec<Check> {
    __weft_check_list!(__weft_check_registry!())
}

/// Expands into one `#[test]` per conformance check, run against the [`Subject`] the argument
/// builds (once per test binary). Also defines `fn conformance_subject() -> &'static Subject`
/// for extra tests in the same file.
///
/// ```ignore
/// use weft_connector_tests::{cdylib_path, conformance_tests, Subject};
///
/// conformance_tests!(Subject::from_library(&cdylib_path("weft_dev_memory"), "{}"));
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($subject:expr $(,)?) => {
        /// The connector under test, built once for the whole test binary.
        #[allow(dead_code)]
        fn conformance_subject() -> &'static $crate::Subject {
            static SUBJECT: ::std::sync::OnceLock<$crate::Subject> = ::std::sync::OnceLock::new();
            SUBJECT.get_or_init(|| $subject)
        }
        $crate::__weft_check_list!(__weft_check_tests!(conformance_subject));
    };
}

/// The one list of checks; calls `$crate::$callback!` with `(args) check…`.
#[doc(hidden)]
#[macro_export]
macro_rules! __weft_check_list {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! { ($($args)*)
            // objects
            check_create_then_get
            check_create_duplicate_is_conflict
            check_get_missing_is_none
            check_get_objects_order_and_missing
            check_update_replaces
            check_update_missing_is_not_found
            check_delete_removes
            check_delete_missing_is_not_found
            check_ids_not_reused_after_delete
            check_things_and_actions_are_separate
            // history
            check_history_missing_is_not_found
            check_history_of_unchanged_object_is_empty
            check_history_after_updates
            check_history_after_delete
            // listing
            check_query_newest_first
            check_query_paging
            check_query_owner_filter
            check_query_class_filter
            // filters
            check_filter_int
            check_filter_number
            check_filter_string
            check_filter_text
            check_filter_boolean
            check_filter_date
            check_filter_missing_property_never_matches
            check_filter_type_mismatch_never_matches
            check_filter_and_or_not
            check_filter_reference_path
            check_filter_reference_array_and_hops
            check_filter_malformed_is_invalid
            check_filter_with_paging_owner_and_class
            // aggregates
            check_aggregate_count_and_numbers
            check_aggregate_strings
            check_aggregate_booleans
            check_aggregate_group_by
            check_aggregate_respects_query
            // keys
            check_key_add_and_get
            check_key_add_errors
            check_key_children_one_level
            check_key_root_keys
            check_key_update
            check_key_delete_cascade
            // versioned object writes
            check_versioned_create_is_version_1
            check_versioned_writes_count
            check_versioned_stale_is_conflict
            check_versioned_missing_is_not_found
            check_versioned_history
            // documents
            check_document_initially_empty
            check_document_compare_and_set
            check_documents_are_independent
            // concurrency
            check_concurrent_creates
            check_concurrent_updates_of_one_object
            check_concurrent_key_adds
            check_concurrent_document_writes
            check_concurrent_versioned_counter
            check_concurrent_versioned_appends
            check_concurrent_versioned_disjoint_properties
            // data
            check_large_object
            check_unicode_round_trip
            check_unicode_filters
            // capabilities
            check_capability_history
            check_capability_filter
            check_capability_filter_reference_paths
            check_capability_aggregate
            check_capability_persistent
            check_capability_versioned_writes
            check_capability_backup
            check_capability_migrate
            check_capability_vector_search
            // moving a store
            check_migrate_round_trip
            check_migrate_import_is_idempotent
            // search by meaning
            check_vectors_nearest_match_exact_search
            check_vectors_filter_first
            check_vectors_follow_updates_and_deletes
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weft_check_tests {
    (($subject:ident) $($check:ident)*) => {
        $(
            #[test]
            fn $check() {
                $crate::run_check(stringify!($check), $crate::checks::$check($subject()));
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weft_check_registry {
    (() $($check:ident)*) => {
        vec![$(
            $crate::Check {
                name: stringify!($check),
                run: |s| ::std::boxed::Box::pin($crate::checks::$check(s)),
            },
        )*]
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_are_unique_and_exist() {
        let checks = all_checks();
        let mut names: Vec<_> = checks.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), checks.len(), "a check is listed twice");
        assert!(names.iter().all(|n| n.starts_with("check_")));
    }

    #[test]
    fn cdylib_path_is_in_the_target_dir() {
        if std::env::var_os("WEFT_CONNECTOR_SO").is_some() {
            return;
        }
        let p = cdylib_path("weft_x");
        let file = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(file.contains("weft_x"), "{}", p.display());
        let exe = std::env::current_exe().unwrap();
        assert_eq!(p.parent(), exe.parent(), "{}", p.display());
    }
}
