//! The server side of signed messages, as a poem middleware ([`Signing::serve`]): a request
//! that carries a signature is verified before any handler sees it (a bad one is answered 401
//! with the reason; a good one reaches the handler with its [`Verified`] in the request's
//! extensions), and the answer to it is signed. A request without a signature passes as it is:
//! whether it may is the handler's rule.

use std::sync::Arc;

use poem::{Body, Endpoint, IntoResponse, Request, Response};

use crate::client::now_s;
use crate::identity::Identity;
use crate::signature::{self, ReplayGuard, SignatureError, Target, Verified};
use crate::wire::ErrorBody;

/// What a server signs its answers with and checks incoming signatures against.
pub struct Signing {
    identity: Arc<Identity>,
    name: String,
    /// The authorities this server is addressed by (`host[:port]`); empty: any.
    authorities: Vec<String>,
    replay: ReplayGuard,
    max_body_bytes: usize,
}

impl Signing {
    /// Signs as `name` with `identity`; accepts messages signed for one of `authorities`
    /// (`host[:port]` as [`crate::PeerUri::authority`] writes them; empty: any); reads signed
    /// bodies up to `max_body_bytes`.
    pub fn new(
        identity: Arc<Identity>,
        name: impl Into<String>,
        authorities: Vec<String>,
        max_body_bytes: usize,
    ) -> Arc<Signing> {
        Arc::new(Signing {
            identity,
            name: name.into(),
            authorities,
            replay: ReplayGuard::default(),
            max_body_bytes,
        })
    }

    /// This server's identity.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    fn refuse(status: poem::http::StatusCode, e: impl ToString) -> Response {
        Response::builder()
            .status(status)
            .content_type("application/json")
            .body(serde_json::to_string(&ErrorBody::new(e.to_string())).unwrap_or_default())
    }

    /// Checks one request's signature; `Ok(None)` when it carries none.
    async fn check(&self, req: &mut Request) -> Result<Option<Verified>, Response> {
        if !signature::is_signed(req.headers()) {
            return Ok(None);
        }
        let declared = req
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes as u64) {
            return Err(Self::refuse(
                poem::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is over the limit limits.max_body_bytes = {} bytes; send less",
                    self.max_body_bytes
                ),
            ));
        }
        let body = match req.take_body().into_bytes_limit(self.max_body_bytes).await {
            Ok(b) => b,
            Err(poem::error::ReadBodyError::PayloadTooLarge) => {
                return Err(Self::refuse(
                    poem::http::StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request body is over the limit limits.max_body_bytes = {} bytes; send less",
                        self.max_body_bytes
                    ),
                ))
            }
            Err(e) => {
                return Err(Self::refuse(
                    poem::http::StatusCode::BAD_REQUEST,
                    format!("the request body could not be read: {e}"),
                ))
            }
        };
        let scheme = req.scheme().as_str().to_string();
        let uri = req.original_uri().clone();
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                req.headers()
                    .get(poem::http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let authority = signature::normalize_authority(&host, &scheme);
        let method = req.method().as_str().to_string();
        let target = Target {
            method: &method,
            authority: &authority,
            path: uri.path(),
            query: uri.query(),
        };
        let now = now_s();
        let unauthorized = poem::http::StatusCode::UNAUTHORIZED;
        let verified = signature::verify_request(&target, req.headers(), &body, now)
            .map_err(|e| Self::refuse(unauthorized, e))?;
        if !self.authorities.is_empty() && !self.authorities.contains(&authority) {
            return Err(Self::refuse(
                unauthorized,
                SignatureError::OtherServer(authority),
            ));
        }
        self.replay.check(&verified, now).map_err(|e| match e {
            SignatureError::Busy => Self::refuse(poem::http::StatusCode::SERVICE_UNAVAILABLE, e),
            e => Self::refuse(unauthorized, e),
        })?;
        req.set_body(body);
        Ok(Some(verified))
    }

    /// Signs `resp`, the answer to a request signed with `request_signature`. A streamed file
    /// (`application/octet-stream`) is left unsigned: its hash, announced in a signed answer,
    /// is what vouches for it.
    async fn sign(&self, resp: Response, request_signature: &str) -> Response {
        let is_file = resp
            .headers()
            .get(poem::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/octet-stream"));
        if is_file {
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let bytes = match body.into_bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Self::refuse(
                    poem::http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the answer could not be read to sign it: {e}"),
                )
            }
        };
        let mut resp = Response::from_parts(parts, Body::from(bytes.clone()));
        match signature::sign_response(
            &self.identity,
            &self.name,
            resp.status().as_u16(),
            &bytes,
            request_signature,
            now_s(),
        ) {
            Ok(h) => h.apply(resp.headers_mut()),
            Err(e) => tracing::warn!("cannot sign an answer: {e}"),
        }
        resp
    }

    /// The middleware: use as `endpoint.around(move |ep, req| signing.clone().serve(ep, req))`.
    pub async fn serve<E: Endpoint>(
        self: Arc<Self>,
        ep: Arc<E>,
        mut req: Request,
    ) -> poem::Result<Response> {
        let verified = match self.check(&mut req).await {
            Ok(v) => v,
            Err(refused) => return Ok(refused),
        };
        let Some(v) = verified else {
            return ep.call(req).await.map(IntoResponse::into_response);
        };
        let signature = v.signature.clone();
        req.extensions_mut().insert(v);
        let resp = match ep.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        Ok(self.sign(resp, &signature).await)
    }
}

/// The verified signature of `req`, when it carried one.
pub fn verified(req: &Request) -> Option<&Verified> {
    req.extensions().get::<Verified>()
}
