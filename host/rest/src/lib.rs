//! The REST API, wire-compatible with Weaviate 0.12 (`/weaviate/v1`), written with poem-openapi
//! so that the OpenAPI document is generated from these handlers.
//!
//! Owns: HTTP shapes (models), status codes, the error body `{"error":[{"message":…}]}`, and the
//! mapping of plugin errors to statuses. Must not know: how a connector stores anything (it goes
//! through [`weft_core::ConnectorHandle`]) or schema rules (those are in [`weft_core::ontology`]).
//!
//! Layout: one module per resource holds its handlers over the [`weft_core::Core`] and takes the
//! caller from [`context`]; [`console_pages`] serves the browser console (`weft-console`);
//! [`server`] is the composition root — it alone knows every handler
//! group, and nothing imports it back.

#[macro_use]
mod object_api;
pub mod access;
pub mod actions;
pub mod admission;
pub mod backup_endpoint;
pub mod batching;
pub mod c11y;
pub mod console_pages;
pub mod context;
pub mod contract;
pub mod graphql;
pub mod keys;
pub mod meta;
pub mod models;
pub mod payload;
pub mod schema_endpoints;
pub mod server;
pub mod things;

pub use context::principal;
pub use server::{openapi_document, routes};

/// The API's base path.
pub const BASE_PATH: &str = "/weaviate/v1";

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Tags};
use weft_plugin_api::{ErrorKind, PluginError};

/// Operation groups in the OpenAPI document (the contract's tags).
#[derive(Tags)]
pub enum ApiTags {
    /// Things: the nouns of the knowledge graph.
    Things,
    /// Actions: the verbs of the knowledge graph.
    Actions,
    /// Creating many objects in one request.
    Batching,
    /// The ontology of Things and Actions.
    Schema,
    /// Information about this server.
    Meta,
    /// The key tree.
    Keys,
    /// The contextionary: words and where classes stand among them.
    Contextionary,
    /// GraphQL queries of the knowledge graph.
    Graphql,
    /// Consistent copies of the whole store (a Weft addition).
    Backups,
}

/// The error body of every 4xx and 5xx answer (`{"error":[{"message"}]}`): one type for
/// every front end and the peer protocol.
pub use weft_p2p::weft_peer_protocol::wire::{ErrorBody as ErrorResponse, ErrorMessage};

/// Every error an operation can answer, with the contract's body.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The request is malformed: a parameter or the body does not match the document (a value
    /// of another type, `null` where none is allowed, a missing field, not JSON at all), or a
    /// body that is not a JSON Patch.
    #[oai(status = 400)]
    BadRequest(Json<ErrorResponse>),
    /// Credentials are missing or wrong.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorResponse>),
    /// The credentials do not allow this.
    #[oai(status = 403)]
    Forbidden(Json<ErrorResponse>),
    /// The object, class or key does not exist.
    #[oai(status = 404)]
    NotFound(Json<ErrorResponse>),
    /// The request conflicts with what is stored.
    #[oai(status = 409)]
    Conflict(Json<ErrorResponse>),
    /// The request is over a configured limit (`limits.*`); the message names it.
    #[oai(status = 413)]
    TooLarge(Json<ErrorResponse>),
    /// The request is well-formed but invalid (e.g. against the ontology).
    #[oai(status = 422)]
    Unprocessable(Json<ErrorResponse>),
    /// A fault inside the server or a plugin.
    #[oai(status = 500)]
    Internal(Json<ErrorResponse>),
    /// The connector does not implement this.
    #[oai(status = 501)]
    NotImplemented(Json<ErrorResponse>),
    /// The storage backend cannot be reached now, or the server is too busy to take the
    /// request (`limits.max_requests_in_progress`, `limits.max_async_backlog`): then
    /// `Retry-After` says when to send it again.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorResponse>,
        /// Seconds to wait before sending the request again (when waiting helps).
        #[oai(header = "Retry-After")]
        Option<u64>,
    ),
}

impl ApiError {
    /// 400.
    pub fn bad_request(m: impl Into<String>) -> Self {
        ApiError::BadRequest(Json(ErrorResponse::new(m)))
    }
    /// 404.
    pub fn not_found(m: impl Into<String>) -> Self {
        ApiError::NotFound(Json(ErrorResponse::new(m)))
    }
    /// 422.
    pub fn unprocessable(m: impl Into<String>) -> Self {
        ApiError::Unprocessable(Json(ErrorResponse::new(m)))
    }
    /// 500.
    pub fn internal(m: impl Into<String>) -> Self {
        ApiError::Internal(Json(ErrorResponse::new(m)))
    }
    /// 401.
    pub fn unauthorized(m: impl Into<String>) -> Self {
        ApiError::Unauthorized(Json(ErrorResponse::new(m)))
    }
    /// 403.
    pub fn forbidden(m: impl Into<String>) -> Self {
        ApiError::Forbidden(Json(ErrorResponse::new(m)))
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::TooLarge(_) => 413,
            ApiError::Unprocessable(_) => 422,
            ApiError::Internal(_) => 500,
            ApiError::NotImplemented(_) => 501,
            ApiError::Unavailable(..) => 503,
        }
    }

    /// The body.
    pub fn body(&self) -> &ErrorResponse {
        match self {
            ApiError::BadRequest(b)
            | ApiError::Unauthorized(b)
            | ApiError::Forbidden(b)
            | ApiError::NotFound(b)
            | ApiError::Conflict(b)
            | ApiError::TooLarge(b)
            | ApiError::Unprocessable(b)
            | ApiError::Internal(b)
            | ApiError::NotImplemented(b)
            | ApiError::Unavailable(b, _) => &b.0,
        }
    }
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        let body = Json(ErrorResponse::new(e.message.to_string()));
        match e.kind {
            ErrorKind::NotFound => ApiError::NotFound(body),
            ErrorKind::Conflict => ApiError::Conflict(body),
            ErrorKind::Invalid => ApiError::Unprocessable(body),
            ErrorKind::Unavailable => ApiError::Unavailable(body, None),
            ErrorKind::Unsupported => ApiError::NotImplemented(body),
            ErrorKind::Internal => ApiError::Internal(body),
        }
    }
}

impl From<weft_core::Error> for ApiError {
    fn from(e: weft_core::Error) -> Self {
        use weft_core::ErrorKind as K;
        let body = Json(ErrorResponse::new(e.message));
        match e.kind {
            K::BadRequest => ApiError::BadRequest(body),
            K::Unauthenticated => ApiError::Unauthorized(body),
            K::Forbidden => ApiError::Forbidden(body),
            K::NotFound => ApiError::NotFound(body),
            K::Conflict => ApiError::Conflict(body),
            K::TooLarge => ApiError::TooLarge(body),
            K::Invalid => ApiError::Unprocessable(body),
            K::Internal => ApiError::Internal(body),
            K::Unsupported => ApiError::NotImplemented(body),
            K::Unavailable => ApiError::Unavailable(body, e.retry_after_s),
            // Only a backup needs scratch space, and its operation answers 507 itself.
            K::InsufficientStorage => ApiError::Unavailable(body, None),
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Turns any error poem or poem-openapi answers by itself (unknown route, wrong method, a body or
/// parameter that does not parse) into the contract's error body, keeping its status.
pub async fn error_body(err: poem::Error) -> poem::Response {
    if err.is_from_response() {
        // A handler's own `ApiError`: its body is already the contract's.
        return err.into_response();
    }
    let status = err.status();
    let message = match status.as_u16() {
        404 => format!("{err}; the API is under /weaviate/v1, see /weaviate/v1/openapi.json"),
        405 => format!("{err}; see /weaviate/v1/openapi.json for the operations on this path"),
        415 => format!("{err}; send the body as JSON, with `Content-Type: application/json`"),
        _ => err.to_string(),
    };
    ErrorResponse::new(message).response(status)
}
