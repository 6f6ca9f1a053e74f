//! Errors and capability flags.

use std::fmt;

use abi_stable::std_types::RString;
use abi_stable::StableAbi;

/// What went wrong in a plugin call. The host maps each kind to an HTTP status.
#[repr(u8)]
#[derive(StableAbi, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The object, key or document does not exist. HTTP 404.
    NotFound,
    /// The write conflicts with what is stored (id exists, stale version). HTTP 409.
    Conflict,
    /// The request is malformed for this plugin (bad filter, bad config). HTTP 422.
    Invalid,
    /// The backing store cannot be reached now; retrying may help. HTTP 503.
    Unavailable,
    /// The plugin does not implement this operation (an undeclared capability). HTTP 501.
    Unsupported,
    /// A bug or a panic inside the plugin. HTTP 500.
    Internal,
}

impl ErrorKind {
    /// The HTTP status the host answers with for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Invalid => 422,
            ErrorKind::Unavailable => 503,
            ErrorKind::Unsupported => 501,
            ErrorKind::Internal => 500,
        }
    }
}

/// The error every plugin call returns on failure.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PluginError {
    /// The category, which decides the HTTP status.
    pub kind: ErrorKind,
    /// A message for the user: what is wrong and, where possible, what to change.
    pub message: RString,
}

impl PluginError {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: RString::from(message.into()),
        }
    }
    /// [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// [`ErrorKind::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }
    /// [`ErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    /// [`ErrorKind::Unsupported`]: `what` names the operation and the capability it needs.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, what)
    }
    /// [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The operation a plugin panicked in (e.g. `"get_object"`), when this error is the one
    /// the panic-catching adapters make of a panic: kind [`ErrorKind::Internal`] and a message
    /// `"the plugin panicked in {op}: {payload}"` (see [`PANIC_MESSAGE_PREFIX`]). `None` for
    /// every other error. Plugins built against 1.0 and 1.1 produce the same message, so a host
    /// recognises their panics too.
    pub fn panicked_in(&self) -> Option<&str> {
        if self.kind != ErrorKind::Internal {
            return None;
        }
        let rest = self.message.as_str().strip_prefix(PANIC_MESSAGE_PREFIX)?;
        let op = rest.split_once(':').map_or(rest, |(op, _)| op);
        (!op.is_empty()).then_some(op)
    }
}

/// How the message of an error made from a plugin panic starts: the full message is
/// `"the plugin panicked in {op}: {payload}"`, with `op` the operation (`get_object`,
/// `new_connector`, `contains`, …) and `payload` the panic message.
/// [`PluginError::panicked_in`] reads it back.
pub const PANIC_MESSAGE_PREFIX: &str = "the plugin panicked in ";

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for PluginError {}

/// Result of every plugin call.
pub type PluginResult<T> = Result<T, PluginError>;

/// Optional behaviours a plugin declares (like Trino's `hasBehavior`). The host and the
/// conformance kit read them; an operation whose capability is not declared must answer
/// [`ErrorKind::Unsupported`], never a silent empty answer.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u64);

impl Capabilities {
    /// Keeps earlier versions of objects on update and delete (`object_history`).
    pub const HISTORY: Capabilities = Capabilities(1 << 0);
    /// Evaluates filter trees itself in `query_class` (push-down). Without it the host filters.
    pub const FILTER: Capabilities = Capabilities(1 << 1);
    /// Filter paths through references (`["inCountry","Country","name"]`); implies `FILTER`.
    pub const FILTER_REFERENCE_PATHS: Capabilities = Capabilities(1 << 2);
    /// Computes `aggregate` itself. Without it the host aggregates.
    pub const AGGREGATE: Capabilities = Capabilities(1 << 3);
    /// Data survives a restart of the process.
    pub const PERSISTENT: Capabilities = Capabilities(1 << 4);
    /// **Added in 1.2.** Every object has a version, and the connector answers
    /// [`get_object_versioned`](crate::Connector::get_object_versioned) and the compare-and-set
    /// [`update_object_if`](crate::Connector::update_object_if) (through the root module's
    /// `new_connector_parts`). Without it both answer [`ErrorKind::Unsupported`].
    pub const VERSIONED_WRITES: Capabilities = Capabilities(1 << 5);
    /// **Added in 1.3.** The connector writes a consistent copy of its store to a directory
    /// while it keeps serving ([`backup`](crate::Connector::backup), through the root module's
    /// `new_connector_parts_1_3`); a server started on that copy has exactly the data of one
    /// moment. Without it `backup` answers [`ErrorKind::Unsupported`].
    pub const BACKUP: Capabilities = Capabilities(1 << 6);
    /// **Added in 1.4.** The connector reads every object of its store whole, deleted ones
    /// included ([`export_objects`](crate::Connector::export_objects)), and writes such records
    /// back exactly ([`import_objects`](crate::Connector::import_objects)), through the root
    /// module's `new_connector_parts_1_4`: what `weft migrate` moves a store with. Without it
    /// both answer [`ErrorKind::Unsupported`].
    pub const MIGRATE: Capabilities = Capabilities(1 << 7);
    /// **Added in 1.5.** The connector stores a vector with each object (written with it, in
    /// the same atomic step) and answers nearest-neighbour questions over them, filter first
    /// ([`search_vectors`](crate::Connector::search_vectors), through the root module's
    /// `new_connector_parts_1_5`). Without it the host searches by meaning itself, exactly,
    /// over at most `limits.max_query_objects` objects.
    pub const VECTOR_SEARCH: Capabilities = Capabilities(1 << 8);

    /// Every flag with its name, for display.
    pub const NAMED: [(Capabilities, &'static str); 9] = [
        (Self::HISTORY, "history"),
        (Self::FILTER, "filter"),
        (Self::FILTER_REFERENCE_PATHS, "filter-reference-paths"),
        (Self::AGGREGATE, "aggregate"),
        (Self::PERSISTENT, "persistent"),
        (Self::VERSIONED_WRITES, "versioned-writes"),
        (Self::BACKUP, "backup"),
        (Self::MIGRATE, "migrate"),
        (Self::VECTOR_SEARCH, "vector-search"),
    ];

    /// No capability.
    pub const fn empty() -> Self {
        Capabilities(0)
    }
    /// Both sets together.
    pub const fn union(self, other: Capabilities) -> Self {
        Capabilities(self.0 | other.0)
    }
    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }
    /// Names of the flags set, e.g. `["history","filter"]`.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMED
            .iter()
            .filter(|(c, _)| self.contains(*c))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl std::ops::BitOr for Capabilities {
    type Output = Capabilities;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Capabilities({})", self.names().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panicked_in_reads_the_operation_of_a_panic_error() {
        let e = PluginError::internal(format!("{PANIC_MESSAGE_PREFIX}get_object: boom: again"));
        assert_eq!(e.panicked_in(), Some("get_object"));
        // The exact wording 1.0 and 1.1 plugins produce.
        let old = PluginError::internal("the plugin panicked in new_connector: bad config");
        assert_eq!(old.panicked_in(), Some("new_connector"));
        // Another kind, another message, or no operation: not a panic.
        let e = PluginError::unavailable(format!("{PANIC_MESSAGE_PREFIX}get_object: x"));
        assert_eq!(e.panicked_in(), None);
        assert_eq!(PluginError::internal("disk full").panicked_in(), None);
        assert_eq!(
            PluginError::internal(PANIC_MESSAGE_PREFIX).panicked_in(),
            None
        );
    }

    #[test]
    fn versioned_writes_is_a_new_named_flag() {
        let all = Capabilities::NAMED
            .iter()
            .fold(Capabilities::empty(), |a, (c, _)| a | *c);
        assert_eq!(all.0.count_ones() as usize, Capabilities::NAMED.len());
        assert_eq!(
            Capabilities::VERSIONED_WRITES.names(),
            vec!["versioned-writes"]
        );
    }
}
