//! Admission control of `weft serve`: the shared loop of `weft-admission` ([`serve`]) with the
//! settings of `limits.*` ([`settings`]) and the REST contract's answers ([`RestAnswers`]).
//!
//! * **Connections:** at most `limits.max_connections` open at once; a connection past it is
//!   closed as soon as it is accepted (not queued).
//! * **Header read:** a request's headers must arrive within `limits.header_read_timeout_ms` of
//!   its first byte (a TLS handshake counts as part of the first request).
//! * **Idle:** a connection with no request in progress and no byte sent or received for
//!   `limits.idle_timeout_ms` is closed.
//! * **Requests in progress:** at most `limits.max_requests_in_progress` answered at once; past
//!   it a request is answered 503 with `Retry-After` and the contract's error body at once.
//! * **Request time:** a request (body included) not answered within
//!   `limits.request_timeout_ms` is stopped and answered 503 — except `POST /backups`, which
//!   takes as long as the copy does (root only, one at a time).

use std::sync::Arc;
use std::time::Duration;

use poem::http::StatusCode;
use poem::Response;
pub use weft_admission::{serve, Admission, Answers, Names, RETRY_AFTER_S};

use crate::{ErrorResponse, BASE_PATH};

/// The settings of `limits`, with `max_connections` already settled against the open-file
/// limit ([`weft_core::Limits::connection_cap`]), answering as the REST contract does.
pub fn settings(limits: &weft_core::Limits, max_connections: usize) -> Admission {
    Admission {
        max_connections,
        max_requests_in_progress: limits.max_requests_in_progress,
        header_read_timeout: Duration::from_millis(limits.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(limits.idle_timeout_ms),
        request_timeout: Duration::from_millis(limits.request_timeout_ms),
        answers: Arc::new(RestAnswers),
    }
}

/// The REST contract's refusals: its error body, naming the `limits.*` setting to raise.
#[derive(Debug, Clone, Copy)]
pub struct RestAnswers;

impl Answers for RestAnswers {
    fn too_many_requests(&self, max_requests_in_progress: usize) -> Response {
        ErrorResponse::new(format!(
            "the server is answering limits.max_requests_in_progress = {max_requests_in_progress} requests already; send this one again after Retry-After seconds (or raise limits.max_requests_in_progress in the configuration)"
        ))
        .response(StatusCode::SERVICE_UNAVAILABLE)
    }

    fn too_slow(&self, request_timeout: Duration) -> Response {
        ErrorResponse::new(format!(
            "the request was not answered within limits.request_timeout_ms = {} ms and was stopped (a write it made may be stored in part: read before writing again); ask for less at once — a smaller batch, page or query — or raise limits.request_timeout_ms in the configuration",
            request_timeout.as_millis()
        ))
        .response(StatusCode::SERVICE_UNAVAILABLE)
    }

    /// A backup takes as long as the copy of the store does.
    fn unbounded(&self, req: &poem::Request) -> bool {
        req.method() == poem::http::Method::POST
            && req.uri().path() == format!("{BASE_PATH}/backups")
    }

    fn names(&self) -> Names {
        Names {
            max_connections: "limits.max_connections",
            header_read_timeout: "limits.header_read_timeout_ms",
            idle_timeout: "limits.idle_timeout_ms",
        }
    }
}
