//! The logging callback every plugin writes through: its lines land in the host's log under
//! `weft::plugin`, with the plugin's name.

use abi_stable::std_types::RStr;
use weft_plugin_api::{HostLogger, LogLevel};

extern "C" fn host_log(level: LogLevel, plugin: RStr<'_>, message: RStr<'_>) {
    let (plugin, message) = (plugin.as_str(), message.as_str());
    match level {
        LogLevel::Error => tracing::error!(target: "weft::plugin", plugin, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "weft::plugin", plugin, "{message}"),
        LogLevel::Info => tracing::info!(target: "weft::plugin", plugin, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "weft::plugin", plugin, "{message}"),
        LogLevel::Trace => tracing::trace!(target: "weft::plugin", plugin, "{message}"),
    }
}

/// The callback handed to every plugin.
pub fn host_logger() -> HostLogger {
    HostLogger { log: host_log }
}
