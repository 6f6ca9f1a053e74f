//! [`PeerClient`]: every call from one server to another. Each request is signed
//! ([`crate::signature`]), each answer's signature checked against that request and reported
//! ([`Answer::signer`]), each answer read up to a byte limit, each call bounded in time. Whether
//! the signer is the one expected is the caller's rule.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;

use crate::identity::{Identity, PublicKey};
use crate::signature::{self, SignatureError, Target, Verified};

/// The current time, Unix seconds.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Why a call to another server failed. [`CallError::public`] is what may be told to whoever
/// made this server call (never the other side's words); `Display` has the detail for this
/// server's log.
#[derive(Debug, Clone)]
pub enum CallError {
    /// No answer within the time.
    Timeout(Duration),
    /// No connection (refused, unknown host, reset, …).
    Unreachable(String),
    /// The TLS certificate is not trusted.
    Certificate(String),
    /// The answer is larger than the limit (bytes).
    TooLarge(usize),
    /// The answer's signature is wrong.
    Signature(SignatureError),
    /// The answer could not be read or is not what was expected.
    Answer(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout(d) => write!(f, "did not answer within {:.1} s", d.as_secs_f64()),
            CallError::Unreachable(d) => write!(f, "could not be reached: {d}"),
            CallError::Certificate(d) => write!(
                f,
                "its TLS certificate is not trusted ({d}): give the CA that signed it with network.ca_file (--ca-file, WEFT_CA_FILE)"
            ),
            CallError::TooLarge(n) => write!(
                f,
                "answered more than {n} bytes (limits.max_peer_response_bytes); the answer was not read"
            ),
            CallError::Signature(e) => write!(f, "answered with a bad signature: {e}"),
            CallError::Answer(d) => write!(f, "answered something unexpected: {d}"),
        }
    }
}

impl std::error::Error for CallError {}

impl CallError {
    /// A short reason that carries nothing the other side wrote.
    pub fn public(&self) -> String {
        match self {
            CallError::Timeout(d) => format!("did not answer within {:.1} s", d.as_secs_f64()),
            CallError::Unreachable(_) => "could not be reached".into(),
            CallError::Certificate(_) => "its TLS certificate is not trusted by this server".into(),
            CallError::TooLarge(n) => {
                format!("answered more than {n} bytes (limits.max_peer_response_bytes)")
            }
            CallError::Signature(_) => "answered with a bad signature".into(),
            CallError::Answer(_) => "answered something unexpected".into(),
        }
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

/// One call: method, URL, optional JSON body, extra headers, time limit.
#[derive(Debug, Clone)]
pub struct Call {
    method: Method,
    url: String,
    body: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
    timeout: Duration,
}

impl Call {
    /// `method url`, 10 s.
    pub fn new(method: Method, url: impl Into<String>) -> Call {
        Call {
            method,
            url: url.into(),
            body: None,
            headers: vec![],
            timeout: Duration::from_secs(10),
        }
    }

    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Call {
        Call::new(Method::GET, url)
    }

    /// `DELETE url`.
    pub fn delete(url: impl Into<String>) -> Call {
        Call::new(Method::DELETE, url)
    }

    /// `method url` with `body` as JSON.
    pub fn json<T: serde::Serialize + ?Sized>(
        method: Method,
        url: impl Into<String>,
        body: &T,
    ) -> Call {
        let mut c = Call::new(method, url);
        c.body = Some(serde_json::to_vec(body).unwrap_or_default());
        c
    }

    /// With `body` (already JSON).
    pub fn body(mut self, json: Vec<u8>) -> Call {
        self.body = Some(json);
        self
    }

    /// With one more header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Call {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Bounded by `timeout` in all.
    pub fn timeout(mut self, timeout: Duration) -> Call {
        self.timeout = timeout;
        self
    }

    /// The URL called.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (at most the client's limit).
    pub body: Bytes,
    /// Who signed it, when it was signed (its signature verified against the request).
    pub signer: Option<Verified>,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether it was signed by `key`.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        self.signer.as_ref().is_some_and(|v| v.key == *key)
    }

    /// The body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, CallError> {
        serde_json::from_slice(&self.body).map_err(|e| CallError::Answer(e.to_string()))
    }

    /// The message of an `{"error":[{"message"}]}` body (else the start of the body), for this
    /// server's own log and for answers between peers that trust each other.
    pub fn error_message(&self) -> String {
        crate::wire::ErrorBody::message_in(&self.body).unwrap_or_else(|| {
            String::from_utf8_lossy(&self.body)
                .chars()
                .take(200)
                .collect()
        })
    }
}

/// The client every call to another server goes through.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    identity: Arc<Identity>,
    name: String,
    max_answer_bytes: usize,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerClient({} {})", self.name, self.identity.public())
    }
}

impl PeerClient {
    /// A client signing as `name` with `identity`, over `http` (see [`crate::tls::http_client`]),
    /// reading at most `max_answer_bytes` of any answer.
    pub fn new(
        http: reqwest::Client,
        identity: Arc<Identity>,
        name: impl Into<String>,
        max_answer_bytes: usize,
    ) -> PeerClient {
        PeerClient {
            http,
            identity,
            name: name.into(),
            max_answer_bytes,
        }
    }

    /// The HTTP client underneath (for streamed downloads checked by their hash).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// This server's identity.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// The name it signs as.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The most bytes read of an answer.
    pub fn max_answer_bytes(&self) -> usize {
        self.max_answer_bytes
    }

    /// Sends `call` signed; the answer's signature (if any) is checked against it.
    pub async fn send(&self, call: Call) -> Result<Answer, CallError> {
        let timeout = call.timeout;
        match tokio::time::timeout(timeout, self.send_inner(call)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout(timeout)),
        }
    }

    async fn send_inner(&self, call: Call) -> Result<Answer, CallError> {
        let url = reqwest::Url::parse(&call.url)
            .map_err(|e| CallError::Unreachable(format!("{:?} is not a URL ({e})", call.url)))?;
        let body = call.body.unwrap_or_default();
        let authority = signature::authority_of(&url);
        let target = Target {
            method: call.method.as_str(),
            authority: &authority,
            path: url.path(),
            query: url.query(),
        };
        let signed = signature::sign_request(&self.identity, &self.name, &target, &body, now_s())
            .map_err(CallError::Signature)?;
        let mut req = self
            .http
            .request(call.method.clone(), url.clone())
            .timeout(call.timeout);
        for (k, v) in signed.pairs() {
            req = req.header(k, v);
        }
        for (k, v) in &call.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if !body.is_empty() || call.method == Method::POST || call.method == Method::PUT {
            req = req
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                return CallError::Timeout(call.timeout);
            }
            if let Some(why) = crate::tls::certificate_problem(&e) {
                return CallError::Certificate(why);
            }
            CallError::Unreachable(chain(&e.without_url()))
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_answer_bytes as u64)
        {
            return Err(CallError::TooLarge(self.max_answer_bytes));
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            if e.is_timeout() {
                CallError::Timeout(call.timeout)
            } else {
                CallError::Answer(chain(&e.without_url()))
            }
        })? {
            if buf.len() + chunk.len() > self.max_answer_bytes {
                return Err(CallError::TooLarge(self.max_answer_bytes));
            }
            buf.extend_from_slice(&chunk);
        }
        let body = buf.freeze();
        let signer =
            signature::verify_response(status, &headers, &body, signed.signature_value(), now_s())
                .map_err(CallError::Signature)?;
        Ok(Answer {
            status,
            headers,
            body,
            signer,
        })
    }
}
