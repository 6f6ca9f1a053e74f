//! A small Gremlin Server client: the WebSocket sub-protocol of TinkerPop 3 with GraphSON 3.
//!
//! * One WebSocket connection per connector, multiplexed: every request carries its own
//!   `requestId`, and a reader task hands each answer (partial `206` batches, then `200`/`204`)
//!   to the request waiting for it. The server runs requests of one connection concurrently.
//! * Requests are `eval` of a **fixed** Groovy script with **bindings**: no value is ever part
//!   of a script's text.
//! * At most [`MAX_IN_FLIGHT`] requests are sent at once; the rest wait for a place.
//! * Every connection attempt (TCP, WebSocket handshake, SASL PLAIN authentication, the probe
//!   request) runs under the connect timeout; every request under the request timeout.
//! * A lost connection fails the requests in flight with `Unavailable`; the next request
//!   reconnects. So does a request that gets no answer at all within the request timeout (the
//!   server is told a slightly shorter `evaluationTimeout`, so a slow script answers 598 first). Failed attempts back off (0.2 s doubling to 5 s): within the back-off window a
//!   request fails at once with `Unavailable`, saying when the next attempt is due.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use weft_plugin_api::{PluginError, PluginLogger};

use crate::config::Config;

/// The MIME type GraphSON 3 requests are framed with.
const MIME: &str = "application/vnd.gremlin-v3.0+json";

/// The largest answer accepted (one WebSocket message).
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Requests of one connector on the server at once. Scripts run one at a time under the graph's
/// lock, so more in flight only queue on the server, where their request timeout would run out
/// while they wait (and a request with no answer within it takes the connection down); the
/// rest wait here, outside the timeout, for one of these places.
const MAX_IN_FLIGHT: usize = 64;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A request's failure.
#[derive(Debug, Clone)]
pub enum ClientError {
    /// The server cannot be reached, the connection broke, or the request timed out.
    Unavailable(String),
    /// The server refused the credentials or asks for some (a predicate: "refused …").
    Auth(String),
    /// The server answered an error status (code, message).
    Server(u16, String),
    /// The answer could not be understood.
    Protocol(String),
}

impl ClientError {
    /// As a plugin error (`Unavailable` for what may pass, `Internal` for a server-side or
    /// protocol failure).
    pub fn into_plugin(self, url: &str) -> PluginError {
        match self {
            ClientError::Unavailable(m) => {
                PluginError::unavailable(format!("gremlin: server {url}: {m}"))
            }
            ClientError::Auth(m) => {
                PluginError::unavailable(format!("gremlin: the Gremlin Server at {url} {m}"))
            }
            // 596 (temporary failure) and 598 (evaluation timeout) may pass on a retry.
            ClientError::Server(code @ (596 | 598), m) => {
                PluginError::unavailable(format!("gremlin: server {url} answered {code}: {m}"))
            }
            ClientError::Server(code, m) => {
                PluginError::internal(format!("gremlin: server {url} answered {code}: {m}"))
            }
            ClientError::Protocol(m) => {
                PluginError::internal(format!("gremlin: server {url}: unexpected answer: {m}"))
            }
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<Value>, ClientError>>;

/// Requests waiting for their answers, by request id.
#[derive(Default)]
struct Pending {
    waiting: HashMap<String, (Vec<Value>, Reply)>,
}

/// One open connection.
struct Conn {
    outgoing: mpsc::UnboundedSender<Message>,
    pending: Arc<Mutex<Pending>>,
    alive: Arc<AtomicBool>,
}

impl Conn {
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire) && !self.outgoing.is_closed()
    }
}

struct State {
    conn: Option<Arc<Conn>>,
    /// After a failed attempt: no new attempt before this instant.
    retry_at: Option<Instant>,
    backoff: Duration,
    last_error: String,
}

/// What the probe request learnt about the server.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// The Java class of the graph behind the traversal source.
    pub graph_class: String,
    /// Whether the graph supports transactions (JanusGraph does, TinkerGraph does not).
    pub transactions: bool,
}

/// The client of one Gremlin Server endpoint.
pub struct Client {
    url: String,
    credentials: Option<(String, String)>,
    source: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    state: tokio::sync::Mutex<State>,
    in_flight: tokio::sync::Semaphore,
    log: PluginLogger,
}

/// The probe every new connection sends (it also triggers authentication): the graph's class
/// and whether it has transactions, as JSON text.
const PROBE: &str = "def gr = g.getGraph(); groovy.json.JsonOutput.toJson([gr.getClass().getName(), gr.features().graph().supportsTransactions()])";

impl Client {
    /// A client for `config`; connects on [`Client::connect`] or the first request.
    pub fn new(config: &Config, log: PluginLogger) -> Client {
        Client {
            url: config.url.clone(),
            credentials: config.credentials.clone(),
            source: config.traversal_source.clone(),
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            state: tokio::sync::Mutex::new(State {
                conn: None,
                retry_at: None,
                backoff: FIRST_BACKOFF,
                last_error: String::new(),
            }),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            log,
        }
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connects now (the constructor's check), answering what the probe learnt.
    pub async fn connect(&self) -> Result<ServerInfo, ClientError> {
        let mut state = self.state.lock().await;
        let (conn, info) = self.open().await?;
        state.conn = Some(Arc::new(conn));
        state.retry_at = None;
        state.backoff = FIRST_BACKOFF;
        Ok(info)
    }

    /// The live connection, reconnecting when there is none (and the back-off allows).
    async fn conn(&self) -> Result<Arc<Conn>, ClientError> {
        let mut state = self.state.lock().await;
        if let Some(c) = &state.conn {
            if c.is_alive() {
                return Ok(Arc::clone(c));
            }
            state.conn = None;
        }
        if let Some(at) = state.retry_at {
            let now = Instant::now();
            if now < at {
                return Err(ClientError::Unavailable(format!(
                    "cannot connect ({}); the next attempt is in {} ms",
                    state.last_error,
                    (at - now).as_millis()
                )));
            }
        }
        match self.open().await {
            Ok((conn, _)) => {
                if state.retry_at.is_some() {
                    self.log.info(&format!("reconnected to {}", self.url));
                }
                let conn = Arc::new(conn);
                state.conn = Some(Arc::clone(&conn));
                state.retry_at = None;
                state.backoff = FIRST_BACKOFF;
                Ok(conn)
            }
            Err(e) => {
                let message = match &e {
                    ClientError::Unavailable(m) | ClientError::Auth(m) => m.clone(),
                    ClientError::Server(code, m) => format!("{code}: {m}"),
                    ClientError::Protocol(m) => m.clone(),
                };
                if state.retry_at.is_none() {
                    self.log
                        .warn(&format!("lost the server {}: {message}", self.url));
                }
                state.retry_at = Some(Instant::now() + state.backoff);
                state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
                state.last_error = message;
                Err(e)
            }
        }
    }

    /// Opens a connection: WebSocket handshake, probe (with authentication when asked), then
    /// the reader and writer tasks. All under the connect timeout.
    async fn open(&self) -> Result<(Conn, ServerInfo), ClientError> {
        let timeout = self.connect_timeout;
        match tokio::time::timeout(timeout, self.open_inner()).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Unavailable(format!(
                "no connection within the connect timeout of {} ms (is a Gremlin Server listening there?)",
                timeout.as_millis()
            ))),
        }
    }

    async fn open_inner(&self) -> Result<(Conn, ServerInfo), ClientError> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(self.url.as_str(), Some(config), true)
                .await
                .map_err(|e| ClientError::Unavailable(format!("cannot connect: {e}")))?;
        // The probe, answered before anything else is sent on this connection.
        let probe_id = uuid::Uuid::new_v4().to_string();
        ws.send(request_frame(
            &probe_id,
            PROBE,
            &Map::new(),
            &self.source,
            None,
        ))
        .await
        .map_err(|e| ClientError::Unavailable(format!("cannot send: {e}")))?;
        let mut data = Vec::new();
        loop {
            let Some(msg) = ws.next().await else {
                return Err(ClientError::Unavailable(
                    "the server closed the connection during the handshake".into(),
                ));
            };
            let msg =
                msg.map_err(|e| ClientError::Unavailable(format!("connection failed: {e}")))?;
            let Some(answer) = parse_frame(msg)? else {
                continue;
            };
            match answer.code {
                407 => {
                    let Some((user, password)) = &self.credentials else {
                        return Err(ClientError::Auth(
                            "requires authentication: set database_config.username and password"
                                .into(),
                        ));
                    };
                    let token = base64::engine::general_purpose::STANDARD
                        .encode(format!("\0{user}\0{password}"));
                    let auth = json!({
                        "requestId": {"@type": "g:UUID", "@value": answer.request_id},
                        "op": "authentication",
                        "processor": "",
                        "args": {"sasl": token, "saslMechanism": "PLAIN"},
                    });
                    ws.send(frame(&auth))
                        .await
                        .map_err(|e| ClientError::Unavailable(format!("cannot send: {e}")))?;
                }
                401 => {
                    return Err(ClientError::Auth(format!(
                        "refused the credentials of user {:?}: {}",
                        self.credentials.as_ref().map_or("", |c| c.0.as_str()),
                        answer.message
                    )))
                }
                206 => data.extend(answer.data),
                200 | 204 => {
                    data.extend(answer.data);
                    break;
                }
                code => {
                    let hint = if answer.message.contains("alias") {
                        format!(
                            " (is {:?} a traversal source of this server? see database_config.traversal_source)",
                            self.source
                        )
                    } else {
                        String::new()
                    };
                    return Err(ClientError::Server(
                        code,
                        format!("{}{hint}", answer.message),
                    ));
                }
            }
        }
        let info = match data.first().and_then(Value::as_str).map(serde_json::from_str::<Value>) {
            Some(Ok(Value::Array(v))) if v.len() == 2 => ServerInfo {
                graph_class: v[0].as_str().unwrap_or_default().to_string(),
                transactions: v[1].as_bool().unwrap_or(false),
            },
            _ => {
                return Err(ClientError::Protocol(format!(
                    "the probe answered {data:?}; is this a Gremlin Server with the gremlin-groovy script engine?"
                )))
            }
        };

        let (mut sink, mut stream) = ws.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Message>();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let alive = Arc::new(AtomicBool::new(true));
        let (writer_alive, writer_pending) = (Arc::clone(&alive), Arc::clone(&pending));
        tokio::spawn(async move {
            while let Some(msg) = queue.recv().await {
                if let Err(e) = sink.send(msg).await {
                    fail_all(&writer_alive, &writer_pending, format!("cannot send: {e}"));
                    return;
                }
            }
            // The client is gone: close politely.
            let _ = sink.close().await;
        });
        let (reader_alive, reader_pending) = (Arc::clone(&alive), Arc::clone(&pending));
        tokio::spawn(async move {
            let reason = loop {
                match stream.next().await {
                    None => break "the server closed the connection".to_string(),
                    Some(Err(e)) => break format!("the connection failed: {e}"),
                    Some(Ok(msg)) => match parse_frame(msg) {
                        Ok(Some(answer)) => deliver(&reader_pending, answer),
                        Ok(None) => {}
                        Err(e) => break format!("{e:?}"),
                    },
                }
            };
            fail_all(&reader_alive, &reader_pending, reason);
        });
        Ok((
            Conn {
                outgoing,
                pending,
                alive,
            },
            info,
        ))
    }

    /// Evaluates `script` (fixed text) with `bindings`, answering every result item.
    pub async fn eval(
        &self,
        script: &str,
        bindings: Map<String, Value>,
    ) -> Result<Vec<Value>, ClientError> {
        let _place = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| ClientError::Unavailable("the client is closing".into()))?;
        let conn = self.conn().await?;
        let id = uuid::Uuid::new_v4().to_string();
        let (reply, answer) = oneshot::channel();
        conn.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting
            .insert(id.clone(), (Vec::new(), reply));
        // Forget the request if this future is dropped or times out.
        let _forget = Forget {
            pending: Arc::clone(&conn.pending),
            id: id.clone(),
        };
        let timeout = self.request_timeout;
        // The server gives up a little earlier (answering 598), so that a slow script is told
        // apart from a connection that answers nothing at all.
        let server_timeout = timeout - (timeout / 10).min(Duration::from_secs(1));
        let msg = request_frame(&id, script, &bindings, &self.source, Some(server_timeout));
        if conn.outgoing.send(msg).is_err() {
            return Err(ClientError::Unavailable("the connection is closed".into()));
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Unavailable("the connection was lost".into())),
            Err(_) => {
                // No answer, not even the server's own timeout: the connection is presumed
                // dead (half open); the next request opens a new one.
                conn.alive.store(false, Ordering::Release);
                Err(ClientError::Unavailable(format!(
                    "no answer within the request timeout of {} ms",
                    timeout.as_millis()
                )))
            }
        }
    }
}

/// Removes a request from the waiting list when its future ends, however it ends.
struct Forget {
    pending: Arc<Mutex<Pending>>,
    id: String,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting
            .remove(&self.id);
    }
}

fn fail_all(alive: &AtomicBool, pending: &Mutex<Pending>, reason: String) {
    alive.store(false, Ordering::Release);
    let waiting = std::mem::take(
        &mut pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting,
    );
    for (_, (_, reply)) in waiting {
        let _ = reply.send(Err(ClientError::Unavailable(reason.clone())));
    }
}

fn deliver(pending: &Mutex<Pending>, answer: Answer) {
    let mut p = pending.lock().unwrap_or_else(PoisonError::into_inner);
    match answer.code {
        206 => {
            if let Some((data, _)) = p.waiting.get_mut(&answer.request_id) {
                data.extend(answer.data);
            }
        }
        code => {
            if let Some((mut data, reply)) = p.waiting.remove(&answer.request_id) {
                let result = match code {
                    200 | 204 => {
                        data.extend(answer.data);
                        Ok(data)
                    }
                    401 | 407 => Err(ClientError::Auth(format!(
                        "asked for authentication again ({code}): {}",
                        answer.message
                    ))),
                    _ => Err(ClientError::Server(code, answer.message)),
                };
                let _ = reply.send(result);
            }
        }
    }
}

/// A GraphSON 3 request frame: binary, prefixed with the MIME type.
fn frame(message: &Value) -> Message {
    let body = message.to_string();
    let mut bytes = Vec::with_capacity(1 + MIME.len() + body.len());
    bytes.push(MIME.len() as u8);
    bytes.extend_from_slice(MIME.as_bytes());
    bytes.extend_from_slice(body.as_bytes());
    Message::binary(bytes)
}

fn request_frame(
    id: &str,
    script: &str,
    bindings: &Map<String, Value>,
    source: &str,
    timeout: Option<Duration>,
) -> Message {
    let mut args = json!({
        "gremlin": script,
        "bindings": bindings,
        "language": "gremlin-groovy",
        "aliases": {"g": source},
    });
    if let Some(t) = timeout {
        args["evaluationTimeout"] = long(t.as_millis() as i64);
    }
    frame(&json!({
        "requestId": {"@type": "g:UUID", "@value": id},
        "op": "eval",
        "processor": "",
        "args": args,
    }))
}

/// One response message.
struct Answer {
    request_id: String,
    code: u16,
    message: String,
    data: Vec<Value>,
}

fn parse_frame(msg: Message) -> Result<Option<Answer>, ClientError> {
    let text: Vec<u8> = match msg {
        Message::Text(t) => t.as_bytes().to_vec(),
        Message::Binary(b) => b.to_vec(),
        _ => return Ok(None),
    };
    let v: Value = serde_json::from_slice(&text)
        .map_err(|e| ClientError::Protocol(format!("an answer is not JSON: {e}")))?;
    let request_id = match &v["requestId"] {
        Value::String(s) => s.clone(),
        other => other["@value"].as_str().unwrap_or_default().to_string(),
    };
    let code = v["status"]["code"]
        .as_u64()
        .or_else(|| v["status"]["code"]["@value"].as_u64())
        .ok_or_else(|| {
            ClientError::Protocol(format!("an answer has no status code: {}", short(&v)))
        })?;
    let message = v["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let data = match untype(v["result"]["data"].clone()) {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        one => vec![one],
    };
    Ok(Some(Answer {
        request_id,
        code: code as u16,
        message,
        data,
    }))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(300).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

/// GraphSON 3 typed values as plain JSON (lists, sets and maps unwrapped; numbers as numbers).
pub fn untype(v: Value) -> Value {
    match v {
        Value::Object(mut o) if o.contains_key("@type") => {
            let t = o
                .get("@type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let value = o.remove("@value").unwrap_or(Value::Null);
            match (t.as_str(), value) {
                ("g:List" | "g:Set", Value::Array(items)) => {
                    Value::Array(items.into_iter().map(untype).collect())
                }
                ("g:Map", Value::Array(items)) => {
                    let mut m = Map::new();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(val)) = (it.next(), it.next()) {
                        let k = match untype(k) {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        m.insert(k, untype(val));
                    }
                    Value::Object(m)
                }
                (_, value) => untype(value),
            }
        }
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, untype(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(untype).collect()),
        other => other,
    }
}

/// A GraphSON 3 `g:Int64` binding.
pub fn long(n: i64) -> Value {
    json!({"@type": "g:Int64", "@value": n})
}

/// A GraphSON 3 `g:List` binding.
pub fn list(items: Vec<Value>) -> Value {
    json!({"@type": "g:List", "@value": items})
}

/// A GraphSON 3 `g:Map` binding with string keys.
pub fn map(entries: Vec<(&str, Value)>) -> Value {
    let mut flat = Vec::with_capacity(entries.len() * 2);
    for (k, v) in entries {
        flat.push(Value::String(k.to_string()));
        flat.push(v);
    }
    json!({"@type": "g:Map", "@value": flat})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untypes_graphson3() {
        let v = json!({"@type": "g:List", "@value": [
            "text",
            {"@type": "g:Int64", "@value": 5},
            {"@type": "g:Map", "@value": ["a", {"@type": "g:Int32", "@value": 1}, "b", true]}
        ]});
        assert_eq!(untype(v), json!(["text", 5, {"a": 1, "b": true}]));
    }

    #[test]
    fn frames_carry_the_mime_type_and_bindings() {
        let mut b = Map::new();
        b.insert("x".into(), Value::String("g.V().drop()".into()));
        let Message::Binary(bytes) = request_frame("id-1", "x", &b, "g", None) else {
            panic!("not binary")
        };
        assert_eq!(bytes[0] as usize, MIME.len());
        assert_eq!(&bytes[1..1 + MIME.len()], MIME.as_bytes());
        let v: Value = serde_json::from_slice(&bytes[1 + MIME.len()..]).unwrap();
        assert_eq!(v["args"]["gremlin"], "x");
        assert_eq!(v["args"]["bindings"]["x"], "g.V().drop()");
        assert_eq!(v["op"], "eval");
    }
}
