//! The plugin's own tokio runtime.
//!
//! A plugin has its own copy of tokio, whose thread-locals the host's threads never set, so a
//! connector that does I/O brings a runtime of its own (the host never lends its runtime to a
//! plugin). [`PluginRuntime::get`] builds it the first time a plugin asks and hands the same one
//! to every later caller: built under a lock, so two connectors opened at once never build two;
//! never dropped (a dropped runtime would stop tasks still in flight, and dropping one inside
//! an async context panics); its threads named after the plugin (`weft-<name>`).

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use tokio::runtime::{Builder, Handle, Runtime};
use weft_plugin_api::{PluginError, PluginResult};

/// How large a plugin's runtime is. Only the call that builds the runtime uses it; later
/// [`PluginRuntime::get`]s of the same plugin share that runtime as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Threads running tasks: async work such as a database driver's I/O (at least 1).
    pub worker_threads: usize,
    /// At most this many threads for blocking work ([`Run::Blocking`](crate::Run::Blocking)
    /// calls, `spawn_blocking`), started as needed (at least 1).
    pub max_blocking_threads: usize,
}

impl RuntimeOptions {
    /// For a store whose calls are async I/O (a database driver, a client): two worker
    /// threads, at most eight blocking ones.
    pub const ASYNC_IO: RuntimeOptions = RuntimeOptions {
        worker_threads: 2,
        max_blocking_threads: 8,
    };

    /// For a store whose calls are synchronous (files, an embedded database: [`Run::Blocking`]
    /// calls): one worker thread, at most eight blocking ones, so at most eight such calls run
    /// at once.
    ///
    /// [`Run::Blocking`]: crate::Run::Blocking
    pub const BLOCKING_IO: RuntimeOptions = RuntimeOptions {
        worker_threads: 1,
        max_blocking_threads: 8,
    };

    /// [`ASYNC_IO`](RuntimeOptions::ASYNC_IO).
    pub const DEFAULT: RuntimeOptions = RuntimeOptions::ASYNC_IO;

    /// These options with `n` worker threads.
    pub const fn worker_threads(self, n: usize) -> Self {
        RuntimeOptions {
            worker_threads: n,
            ..self
        }
    }

    /// These options with at most `n` blocking threads.
    pub const fn max_blocking_threads(self, n: usize) -> Self {
        RuntimeOptions {
            max_blocking_threads: n,
            ..self
        }
    }
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions::DEFAULT
    }
}

/// A plugin's own runtime: cheap to copy, valid for the life of the process.
#[derive(Clone, Copy)]
pub struct PluginRuntime {
    plugin: &'static str,
    runtime: &'static Runtime,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

/// Every runtime built in this copy of the SDK (one per plugin name: a plugin library holds
/// one connector, but a test binary may link several).
static BUILT: Mutex<Vec<PluginRuntime>> = Mutex::new(Vec::new());

impl PluginRuntime {
    /// The runtime of `plugin` (its declared name, [`PluginContext::name`]): built with
    /// `options` by the first call, the same one for every later call. A runtime that cannot
    /// be built (no threads left) is `Unavailable`, naming the plugin.
    ///
    /// [`PluginContext::name`]: weft_plugin_api::PluginContext::name
    pub fn get(plugin: &'static str, options: RuntimeOptions) -> PluginResult<PluginRuntime> {
        // Checked and built under one lock: two connectors opened at once never build two.
        let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = built.iter().find(|r| r.plugin == plugin) {
            return Ok(*found);
        }
        let runtime = Builder::new_multi_thread()
            .worker_threads(options.worker_threads.max(1))
            .max_blocking_threads(options.max_blocking_threads.max(1))
            .thread_name(format!("weft-{plugin}"))
            .enable_all()
            .build()
            .map_err(|e| {
                PluginError::unavailable(format!("{plugin}: cannot start its runtime: {e}"))
            })?;
        // Never dropped: tasks in flight keep running, and no runtime is dropped inside an
        // async context.
        let found = PluginRuntime {
            plugin,
            runtime: Box::leak(Box::new(runtime)),
        };
        built.push(found);
        Ok(found)
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    /// The runtime's handle, to spawn on it.
    pub fn handle(&self) -> &Handle {
        self.runtime.handle()
    }

    /// Whether two values are the same runtime.
    pub fn same(&self, other: &PluginRuntime) -> bool {
        std::ptr::eq(self.runtime, other.runtime)
    }

    /// Runs `work` as a task on the runtime and blocks the calling thread until it is done:
    /// how a constructor, which is synchronous, connects at start-up (bound the connect with a
    /// timeout inside `work`: some drivers wait forever for an unreachable node). Never call it
    /// on one of the runtime's own threads. `Internal`, naming the plugin and `what`, when the
    /// task panicked.
    pub fn block_on<T: Send + 'static>(
        &self,
        what: &str,
        work: impl Future<Output = T> + Send + 'static,
    ) -> PluginResult<T> {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = answer.send(work.await);
        });
        answered.recv().map_err(|_| {
            PluginError::internal(format!(
                "{}: {what} did not finish: its task panicked",
                self.plugin
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_gets_one_runtime_however_many_ask_at_once() {
        let first: Vec<PluginRuntime> = std::thread::scope(|s| {
            let askers: Vec<_> = (0..8)
                .map(|_| s.spawn(|| PluginRuntime::get("sdk-race", RuntimeOptions::DEFAULT)))
                .collect();
            askers
                .into_iter()
                .map(|a| a.join().unwrap().unwrap())
                .collect()
        });
        assert!(first.iter().all(|r| r.same(&first[0])));
        let later = PluginRuntime::get("sdk-race", RuntimeOptions::DEFAULT.worker_threads(7));
        assert!(later.unwrap().same(&first[0]));
        let other = PluginRuntime::get("sdk-other", RuntimeOptions::DEFAULT).unwrap();
        assert!(!other.same(&first[0]));
        // Threads named after the plugin.
        let name = other
            .block_on("naming", async {
                std::thread::current().name().map(String::from)
            })
            .unwrap();
        assert_eq!(name.as_deref(), Some("weft-sdk-other"));
    }

    #[test]
    fn block_on_reports_a_panicking_task_naming_the_plugin() {
        let rt = PluginRuntime::get("sdk-block-on", RuntimeOptions::DEFAULT).unwrap();
        assert_eq!(rt.block_on("adding", async { 1 + 1 }).unwrap(), 2);
        let e = rt
            .block_on("connecting", async move {
                if rt.plugin().is_empty() {
                    return 0;
                }
                panic!("deliberate panic in a test")
            })
            .unwrap_err();
        assert_eq!(e.kind, weft_plugin_api::ErrorKind::Internal);
        assert!(
            e.message
                .contains("sdk-block-on: connecting did not finish"),
            "{e}"
        );
    }
}
