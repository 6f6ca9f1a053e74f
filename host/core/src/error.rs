//! The one error type of the core. Front ends map its [`ErrorKind`] to their protocol (an HTTP
//! status in `weft-rest`, a GraphQL error in `weft-graphql`); the message is for the user and
//! says what is wrong and what to change.

use std::fmt;

use weft_plugin_api::PluginError;

/// What went wrong, as a front end needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed (HTTP 400).
    BadRequest,
    /// Credentials are missing or wrong (401).
    Unauthenticated,
    /// The credentials do not allow this (403).
    Forbidden,
    /// The object, class or key does not exist, or the caller may not see it (404).
    NotFound,
    /// The request conflicts with what is stored, or contention persisted (409).
    Conflict,
    /// The request is over a configured limit (413).
    TooLarge,
    /// The request is well-formed but invalid, e.g. against the ontology (422).
    Invalid,
    /// A fault inside the server or a plugin (500).
    Internal,
    /// The connector does not implement this, or no contextionary is configured (501).
    Unsupported,
    /// The store cannot be reached now, a plugin is poisoned, or the server is too busy to take
    /// the request now (503; with [`Error::retry_after_s`] when trying again later helps).
    Unavailable,
    /// Not enough free disk space for the work (507), e.g. a backup's scratch copy.
    InsufficientStorage,
}

impl ErrorKind {
    /// The HTTP status a REST front end answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::TooLarge => 413,
            ErrorKind::Invalid => 422,
            ErrorKind::Internal => 500,
            ErrorKind::Unsupported => 501,
            ErrorKind::Unavailable => 503,
            ErrorKind::InsufficientStorage => 507,
        }
    }
}

/// An error of a core service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The category.
    pub kind: ErrorKind,
    /// What is wrong and what to change.
    pub message: String,
    /// When the request may succeed if sent again later: after how many seconds
    /// (`Retry-After`).
    pub retry_after_s: Option<u64>,
}

/// Result of a core service.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            retry_after_s: None,
        }
    }
    /// [`ErrorKind::BadRequest`].
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, m)
    }
    /// [`ErrorKind::Unauthenticated`].
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, m)
    }
    /// [`ErrorKind::Forbidden`].
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, m)
    }
    /// [`ErrorKind::NotFound`].
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, m)
    }
    /// [`ErrorKind::Conflict`].
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, m)
    }
    /// [`ErrorKind::TooLarge`].
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, m)
    }
    /// [`ErrorKind::Invalid`].
    pub fn unprocessable(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, m)
    }
    /// [`ErrorKind::Internal`].
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, m)
    }
    /// [`ErrorKind::Unsupported`].
    pub fn unsupported(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, m)
    }
    /// [`ErrorKind::Unavailable`].
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, m)
    }
    /// [`ErrorKind::Unavailable`] for a server too busy now: try again in `retry_after_s`.
    pub fn busy(m: impl Into<String>, retry_after_s: u64) -> Self {
        Error {
            retry_after_s: Some(retry_after_s),
            ..Self::new(ErrorKind::Unavailable, m)
        }
    }
    /// [`ErrorKind::InsufficientStorage`].
    pub fn insufficient_storage(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::InsufficientStorage, m)
    }
    /// The same error with another kind (the message stays).
    pub fn with_kind(self, kind: ErrorKind) -> Self {
        Error { kind, ..self }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<PluginError> for Error {
    fn from(e: PluginError) -> Self {
        use weft_plugin_api::ErrorKind as P;
        let kind = match e.kind {
            P::NotFound => ErrorKind::NotFound,
            P::Conflict => ErrorKind::Conflict,
            P::Invalid => ErrorKind::Invalid,
            P::Unavailable => ErrorKind::Unavailable,
            P::Unsupported => ErrorKind::Unsupported,
            P::Internal => ErrorKind::Internal,
        };
        Error::new(kind, e.message.to_string())
    }
}
