//! The connector's `database_config`: parsed strictly, every refusal naming the key.

use std::time::Duration;

use serde_json::{Map, Value};
use weft_plugin_api::{PluginError, PluginResult};

/// Help text for `weft plugins check` (and the `Invalid` messages' hint).
pub const CONFIG_HELP: &str =
    "gremlin: {\"url\": \"ws://127.0.0.1:8182/gremlin\" (required; ws:// \
only), \"username\" and \"password\" (optional, together: SASL PLAIN), \"traversal_source\": \"g\" \
(the server's traversal source to use), \"connect_timeout_ms\": 5000, \"request_timeout_ms\": \
30000, \"graph_prefix\": \"weft\" (prefix of every vertex label, edge label and property key \
the connector writes), \"namespace\": \"default\" (a value stored on everything the connector \
writes and part of every lookup: separate Weft stores in one graph)}. Data lives in the \
server's graph: TinkerGraph keeps it only as long as the server runs unless the server \
configures gremlin.tinkergraph.graphLocation; JanusGraph keeps it in its storage backend.";

/// The keys the config understands.
const KEYS: &[&str] = &[
    "url",
    "username",
    "password",
    "traversal_source",
    "connect_timeout_ms",
    "request_timeout_ms",
    "graph_prefix",
    "namespace",
];

/// A parsed config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The Gremlin Server's WebSocket endpoint, `ws://host:port/path`.
    pub url: String,
    /// SASL PLAIN credentials, when the server authenticates.
    pub credentials: Option<(String, String)>,
    /// The traversal source the scripts run against (aliased to `g`).
    pub traversal_source: String,
    /// How long one connection attempt (TCP, WebSocket handshake, authentication) may take.
    pub connect_timeout: Duration,
    /// How long one request may take (also sent as the server's `evaluationTimeout`).
    pub request_timeout: Duration,
    /// Prefix of every label and property key written.
    pub graph_prefix: String,
    /// The namespace: a property on every vertex and edge written, part of every lookup.
    pub namespace: String,
}

fn invalid(message: String) -> PluginError {
    PluginError::invalid(format!("gremlin: {message}"))
}

fn string_key(map: &Map<String, Value>, key: &str) -> PluginResult<Option<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(format!(
            "database_config.{key} must be a string, got {other}"
        ))),
    }
}

fn millis_key(map: &Map<String, Value>, key: &str, default: u64) -> PluginResult<Duration> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Duration::from_millis(default)),
        Some(v) => match v.as_u64() {
            Some(ms) if (1..=3_600_000).contains(&ms) => Ok(Duration::from_millis(ms)),
            _ => Err(invalid(format!(
                "database_config.{key} must be a whole number of milliseconds from 1 to 3600000, got {v}"
            ))),
        },
    }
}

/// Whether `s` is a safe name part: ASCII letters, digits and `_`, starting with a letter.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Config {
    /// Parses `database_config`: `Invalid`, naming the key, for an unknown key, a missing `url`
    /// or a value of the wrong type or shape.
    pub fn parse(config: &Value) -> PluginResult<Config> {
        let Some(map) = config.as_object() else {
            return Err(invalid(format!(
                "database_config must be a JSON object, got {config}; {CONFIG_HELP}"
            )));
        };
        if let Some(unknown) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(invalid(format!(
                "database_config.{unknown} is not a key this connector understands (known: {})",
                KEYS.join(", ")
            )));
        }
        let url = match string_key(map, "url")? {
            Some(u) if !u.trim().is_empty() => u.trim().to_string(),
            _ => {
                return Err(invalid(
                    "database_config.url is missing: give the Gremlin Server's WebSocket endpoint, e.g. {\"url\": \"ws://127.0.0.1:8182/gremlin\"}".into(),
                ))
            }
        };
        if url.starts_with("wss://") {
            return Err(invalid(format!(
                "database_config.url {url:?}: wss:// (TLS) is not supported by this build; use ws:// (e.g. behind a local TLS terminator)"
            )));
        }
        let Some(rest) = url.strip_prefix("ws://") else {
            return Err(invalid(format!(
                "database_config.url {url:?} must start with ws://, e.g. \"ws://127.0.0.1:8182/gremlin\""
            )));
        };
        if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
            return Err(invalid(format!(
                "database_config.url {url:?} has no host, e.g. \"ws://127.0.0.1:8182/gremlin\""
            )));
        }
        let credentials = match (string_key(map, "username")?, string_key(map, "password")?) {
            (None, None) => None,
            (Some(u), Some(p)) if !u.is_empty() => Some((u, p)),
            (Some(_), Some(_)) => {
                return Err(invalid("database_config.username is empty".into()));
            }
            (Some(_), None) => {
                return Err(invalid(
                    "database_config.password is missing: username and password go together".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "database_config.username is missing: username and password go together".into(),
                ))
            }
        };
        let traversal_source = string_key(map, "traversal_source")?.unwrap_or_else(|| "g".into());
        if !is_identifier(&traversal_source) {
            return Err(invalid(format!(
                "database_config.traversal_source {traversal_source:?} must be the name of a traversal source of the server (letters, digits and _), e.g. \"g\""
            )));
        }
        let graph_prefix = string_key(map, "graph_prefix")?.unwrap_or_else(|| "weft".into());
        if !is_identifier(&graph_prefix) || graph_prefix.len() > 32 {
            return Err(invalid(format!(
                "database_config.graph_prefix {graph_prefix:?} must be 1 to 32 letters, digits and _, starting with a letter, e.g. \"weft\""
            )));
        }
        let namespace = string_key(map, "namespace")?.unwrap_or_else(|| "default".into());
        if namespace.is_empty() || namespace.len() > 200 {
            return Err(invalid(format!(
                "database_config.namespace must be a non-empty string of at most 200 bytes, got {namespace:?}"
            )));
        }
        Ok(Config {
            url,
            credentials,
            traversal_source,
            connect_timeout: millis_key(map, "connect_timeout_ms", 5_000)?,
            request_timeout: millis_key(map, "request_timeout_ms", 30_000)?,
            graph_prefix,
            namespace,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weft_plugin_api::ErrorKind;

    fn err(v: Value) -> String {
        let e = Config::parse(&v).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
        e.message.into_string()
    }

    #[test]
    fn defaults() {
        let c = Config::parse(&json!({"url": "ws://127.0.0.1:8182/gremlin"})).unwrap();
        assert_eq!(c.traversal_source, "g");
        assert_eq!(c.connect_timeout, Duration::from_millis(5000));
        assert_eq!(c.request_timeout, Duration::from_millis(30000));
        assert_eq!(
            (c.graph_prefix.as_str(), c.namespace.as_str()),
            ("weft", "default")
        );
        assert_eq!(c.credentials, None);
    }

    #[test]
    fn every_refusal_names_its_key() {
        assert!(err(json!({})).contains("database_config.url is missing"));
        assert!(err(json!({"url": 5})).contains("database_config.url must be a string"));
        assert!(err(json!({"url": "http://x"})).contains("database_config.url"));
        assert!(err(json!({"url": "wss://x/gremlin"})).contains("wss://"));
        assert!(err(json!({"url": "ws://x", "hosts": 1})).contains("database_config.hosts"));
        assert!(err(json!({"url": "ws://x", "username": "u"})).contains("database_config.password"));
        assert!(err(json!({"url": "ws://x", "password": "p"})).contains("database_config.username"));
        assert!(err(json!({"url": "ws://x", "connect_timeout_ms": "5"}))
            .contains("database_config.connect_timeout_ms"));
        assert!(err(json!({"url": "ws://x", "request_timeout_ms": 0}))
            .contains("database_config.request_timeout_ms"));
        assert!(err(json!({"url": "ws://x", "traversal_source": "g.V()"}))
            .contains("database_config.traversal_source"));
        assert!(err(json!({"url": "ws://x", "graph_prefix": "a b"}))
            .contains("database_config.graph_prefix"));
        assert!(
            err(json!({"url": "ws://x", "namespace": ""})).contains("database_config.namespace")
        );
        assert!(err(json!([1])).contains("JSON object"));
    }
}
