//! Logging across the boundary.
//!
//! A plugin has its own copy of `tracing` (and of every other crate), so its log lines would never
//! reach the host's subscriber. Instead the host hands a [`HostLogger`] (a plain C function) to the
//! plugin's constructor; the plugin writes through a [`PluginLogger`], and the host logs each line
//! under the plugin's name.

use abi_stable::std_types::RStr;
use abi_stable::StableAbi;

/// Severity of a log line.
#[repr(u8)]
#[derive(StableAbi, Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something looks wrong.
    Warn,
    /// Normal operation worth telling the operator.
    Info,
    /// Detail for debugging.
    Debug,
    /// Very detailed tracing.
    Trace,
}

/// The host's logging callback, passed to a plugin at construction.
#[repr(C)]
#[derive(StableAbi, Copy, Clone)]
pub struct HostLogger {
    /// Writes one line. `plugin` is the plugin's declared name.
    pub log: extern "C" fn(level: LogLevel, plugin: RStr<'_>, message: RStr<'_>),
}

impl HostLogger {
    /// A logger that drops every line (for tests and tools that do not care).
    pub fn discard() -> Self {
        extern "C" fn discard(_: LogLevel, _: RStr<'_>, _: RStr<'_>) {}
        HostLogger { log: discard }
    }
}

/// What a plugin uses to log: the host callback plus the plugin's name.
#[derive(Copy, Clone)]
pub struct PluginLogger {
    host: HostLogger,
    plugin: &'static str,
}

impl PluginLogger {
    /// A logger writing to `host` as `plugin`.
    pub fn new(host: HostLogger, plugin: &'static str) -> Self {
        PluginLogger { host, plugin }
    }
    /// Writes one line at `level`.
    pub fn log(&self, level: LogLevel, message: &str) {
        (self.host.log)(level, RStr::from_str(self.plugin), RStr::from_str(message));
    }
    /// [`LogLevel::Error`].
    pub fn error(&self, message: &str) {
        self.log(LogLevel::Error, message)
    }
    /// [`LogLevel::Warn`].
    pub fn warn(&self, message: &str) {
        self.log(LogLevel::Warn, message)
    }
    /// [`LogLevel::Info`].
    pub fn info(&self, message: &str) {
        self.log(LogLevel::Info, message)
    }
    /// [`LogLevel::Debug`].
    pub fn debug(&self, message: &str) {
        self.log(LogLevel::Debug, message)
    }
}

impl std::fmt::Debug for PluginLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PluginLogger({})", self.plugin)
    }
}
