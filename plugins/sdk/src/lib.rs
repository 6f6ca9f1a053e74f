//! `weft-connector-sdk`: what helps a connector author and never crosses the plugin boundary —
//! the "driver framework" beside `weft-plugin-api`'s "header", after Arrow ADBC's split.
//!
//! # What it owns
//!
//! * [`support`]: what most connectors implement alike, written once — filter parsing, owner
//!   and class matching, newest-first paging, the key-deletion cascade, version bookkeeping
//!   and the common error messages.
//! * [`Store`] and [`OnRuntime`]: the one way a connector that does I/O runs its calls. A
//!   connector implements [`Store`] (the contract's calls as `async fn`s over its store) and
//!   exports `OnRuntime<TheStore>`, which implements [`weft_plugin_api::Connector`] (with the
//!   versioned-writes and backup calls, where the store has them) by running each call on the
//!   plugin's own runtime — as a task, on the blocking pool, or inline, as [`Store::run`]
//!   says — and awaiting it; a task the host gives up on is aborted.
//! * [`PluginRuntime`]: that runtime, one per plugin, built once under a lock, named after the
//!   plugin, never dropped.
//!
//! A connector whose every call completes at once (dev-memory) needs no runtime: it implements
//! [`weft_plugin_api::Connector`] directly, returning ready futures, and may still use
//! [`support`].
//!
//! ```ignore
//! weft_plugin_api::export_connector! {
//!     name: "mystore",
//!     capabilities: CAPABILITIES,
//!     config_help: CONFIG_HELP,
//!     new: open, // fn(PluginContext) -> PluginResult<OnRuntime<MyStore>>
//! }
//! ```
//!
//! # What it must not know
//!
//! The host: it never loads a library, never sees the host's runtime, and depends on
//! `weft-plugin-api` alone (no host crate, no loader — `tests/dependency_tree.rs` checks every
//! plugin's tree). Nothing here changes the interface: the SDK has its own version, and a plugin
//! built with any SDK version speaks the `weft-plugin-api` version it was built against.
#![deny(missing_docs)]

mod runtime;
mod store;
pub mod support;

pub use runtime::{PluginRuntime, RuntimeOptions};
pub use store::{Call, OnRuntime, Run, Store};
pub use weft_plugin_api;
