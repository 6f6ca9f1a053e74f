//! What the real-server tests share: fresh namespaces, and the clean-up of old ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use weft_connector_tests::weft_plugin_api::{HostLogger, PluginContext};

/// Test namespaces start with this, then the creation time in Unix ms.
const PREFIX: &str = "test-";

/// Test namespaces older than this are deleted by [`purge_old_namespaces`].
const MAX_AGE: Duration = Duration::from_secs(3600);

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A namespace no other test, check or run uses: `test-<unix ms>-<pid>-<tag>-<n>`.
pub fn fresh_namespace(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{PREFIX}{}-{}-{tag}-{}",
        now_ms(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes the test namespaces (of the default graph prefix) that earlier runs left on the
/// server at `url` more than an hour ago, so a long-lived (or persisted) test server does not
/// fill up; runs of other processes within the hour are left alone. Once per process and URL;
/// a failure only prints a note.
pub fn purge_old_namespaces(url: &str) {
    static DONE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    {
        let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
        if done.iter().any(|u| u == url) {
            return;
        }
        done.push(url.to_string());
    }
    let config = serde_json::json!({"url": url, "namespace": fresh_namespace("purge")}).to_string();
    let result = PluginContext::parse("gremlin", &config, HostLogger::discard())
        .and_then(weft_gremlin::open)
        .and_then(|g| {
            let cutoff = now_ms().saturating_sub(MAX_AGE.as_millis());
            let old: Vec<String> = g
                .block_on("namespaces", |s| async move { s.namespaces(PREFIX).await })??
                .into_iter()
                .filter(|ns| {
                    ns[PREFIX.len()..]
                        .split('-')
                        .next()
                        .and_then(|t| t.parse::<u128>().ok())
                        .is_some_and(|t| t < cutoff)
                })
                .collect();
            let n = old.len();
            let vertices = g.block_on("drop_namespaces", move |s| async move {
                s.drop_namespaces(old).await
            })??;
            Ok((n, vertices))
        });
    match result {
        Ok((0, _)) => {}
        Ok((n, vertices)) => {
            println!(
                "deleted {n} test namespaces older than an hour ({vertices} vertices) on {url}"
            )
        }
        Err(e) => println!("could not delete old test namespaces on {url}: {e}"),
    }
}
