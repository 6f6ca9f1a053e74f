//! `database.database_config`: every key, checked; a wrong, missing or unknown key is an
//! `Invalid` error that names it and says what to write.

use std::time::Duration;

use scylla::frame::types::{Consistency, SerialConsistency};
use serde_json::{Map, Value};
use weft_plugin_api::{PluginError, PluginResult};

/// Help text for `weft plugins check`.
pub const CONFIG_HELP: &str = "cassandra: {\"contact_points\": [\"127.0.0.1:9042\"] (required: \
host:port of one or more Cassandra nodes), \"keyspace\": \"weft\" (required: created when missing; \
[a-zA-Z][a-zA-Z0-9_]{0,47}), \"replication\": {\"class\": \"SimpleStrategy\", \"factor\": 1} or \
{\"class\": \"NetworkTopologyStrategy\", \"datacenters\": {\"dc1\": 3}} (used only when the keyspace \
is created; default SimpleStrategy 1), \"consistency\": \"LOCAL_QUORUM\" (default; or ONE, TWO, \
THREE, QUORUM, ALL, LOCAL_ONE; compare-and-set writes use SERIAL, or LOCAL_SERIAL with a LOCAL_ \
level), \"username\"/\"password\" (both or neither), \"connect_timeout_ms\": 5000, \
\"request_timeout_ms\": 12000, \"max_query_objects\": 10000 (the most objects one query or \
aggregate may read; above it the query is refused as Invalid, never truncated)}. Several Weft \
hosts may share one keyspace: they share one ontology, keys and objects.";

/// The checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `host:port` of the nodes to contact first.
    pub contact_points: Vec<String>,
    /// The keyspace (validated: the only identifier ever written into CQL text).
    pub keyspace: String,
    /// How a new keyspace is replicated.
    pub replication: Replication,
    /// Consistency of every read and write (LWTs commit at it).
    pub consistency: Consistency,
    /// The serial consistency of lightweight transactions and serial reads.
    pub serial_consistency: SerialConsistency,
    /// The name `consistency` was given as, for messages.
    pub consistency_name: String,
    /// Plain-text credentials.
    pub credentials: Option<(String, String)>,
    /// Limit for opening one connection (and for the whole start-up, twice this).
    pub connect_timeout: Duration,
    /// Limit for one request.
    pub request_timeout: Duration,
    /// The most objects one query or aggregate reads.
    pub max_query_objects: usize,
}

/// The replication of a keyspace this connector creates.
#[derive(Debug, Clone, PartialEq)]
pub enum Replication {
    /// `SimpleStrategy` with a replication factor.
    Simple(u32),
    /// `NetworkTopologyStrategy` with a factor per datacenter.
    NetworkTopology(Vec<(String, u32)>),
}

impl Replication {
    /// The CQL map literal of `WITH replication = …`. Datacenter names were validated
    /// (`valid_datacenter`), factors are numbers: nothing here comes unchecked from the config.
    pub fn cql(&self) -> String {
        match self {
            Replication::Simple(n) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {n}}}")
            }
            Replication::NetworkTopology(dcs) => {
                let mut s = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, n) in dcs {
                    s.push_str(&format!(", '{dc}': {n}"));
                }
                s.push('}');
                s
            }
        }
    }
}

const KEYS: [&str; 9] = [
    "contact_points",
    "keyspace",
    "replication",
    "consistency",
    "username",
    "password",
    "connect_timeout_ms",
    "request_timeout_ms",
    "max_query_objects",
];

fn invalid(message: impl std::fmt::Display) -> PluginError {
    PluginError::invalid(format!("cassandra: database_config.{message}"))
}

/// Whether `name` is a keyspace name this connector accepts: `[a-zA-Z][a-zA-Z0-9_]{0,47}`.
pub fn valid_keyspace(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 48
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` may be written into the replication map as a datacenter name.
fn valid_datacenter(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn positive_ms(map: &Map<String, Value>, key: &str, default: u64) -> PluginResult<Duration> {
    match map.get(key) {
        None => Ok(Duration::from_millis(default)),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 && n <= 3_600_000 => Ok(Duration::from_millis(n)),
            _ => Err(invalid(format_args!(
                "{key} must be a whole number of milliseconds between 1 and 3600000, got {v}"
            ))),
        },
    }
}

fn parse_consistency(v: &Value) -> PluginResult<(Consistency, SerialConsistency, String)> {
    let Some(name) = v.as_str() else {
        return Err(invalid(format_args!(
            "consistency must be a string such as \"LOCAL_QUORUM\", got {v}"
        )));
    };
    let upper = name.trim().to_ascii_uppercase();
    let (c, serial) = match upper.as_str() {
        "ONE" => (Consistency::One, SerialConsistency::Serial),
        "TWO" => (Consistency::Two, SerialConsistency::Serial),
        "THREE" => (Consistency::Three, SerialConsistency::Serial),
        "QUORUM" => (Consistency::Quorum, SerialConsistency::Serial),
        "ALL" => (Consistency::All, SerialConsistency::Serial),
        "LOCAL_QUORUM" => (Consistency::LocalQuorum, SerialConsistency::LocalSerial),
        "LOCAL_ONE" => (Consistency::LocalOne, SerialConsistency::LocalSerial),
        "ANY" | "EACH_QUORUM" | "SERIAL" | "LOCAL_SERIAL" => {
            return Err(invalid(format_args!(
                "consistency {name:?} cannot be used for both reads and writes; use LOCAL_QUORUM, QUORUM, ONE, LOCAL_ONE, TWO, THREE or ALL"
            )))
        }
        _ => {
            return Err(invalid(format_args!(
                "consistency {name:?} is not a Cassandra consistency level; use LOCAL_QUORUM, QUORUM, ONE, LOCAL_ONE, TWO, THREE or ALL"
            )))
        }
    };
    Ok((c, serial, upper))
}

fn parse_replication(v: &Value) -> PluginResult<Replication> {
    let Some(map) = v.as_object() else {
        return Err(invalid(format_args!(
            "replication must be an object such as {{\"class\": \"SimpleStrategy\", \"factor\": 1}}, got {v}"
        )));
    };
    let factor = |v: &Value, what: &str| match v.as_u64() {
        Some(n) if (1..=100).contains(&n) => Ok(n as u32),
        _ => Err(invalid(format_args!(
            "{what} must be a whole number from 1 to 100, got {v}"
        ))),
    };
    match map.get("class").and_then(Value::as_str) {
        Some("SimpleStrategy") => {
            if let Some(k) = map.keys().find(|k| !matches!(k.as_str(), "class" | "factor")) {
                return Err(invalid(format_args!(
                    "replication.{k} is not a key of SimpleStrategy replication (its keys: class, factor)"
                )));
            }
            let n = match map.get("factor") {
                Some(f) => factor(f, "replication.factor")?,
                None => {
                    return Err(invalid(
                        "replication.factor is missing: SimpleStrategy needs a replication factor, e.g. {\"class\": \"SimpleStrategy\", \"factor\": 1}",
                    ))
                }
            };
            Ok(Replication::Simple(n))
        }
        Some("NetworkTopologyStrategy") => {
            if let Some(k) = map
                .keys()
                .find(|k| !matches!(k.as_str(), "class" | "datacenters"))
            {
                return Err(invalid(format_args!(
                    "replication.{k} is not a key of NetworkTopologyStrategy replication (its keys: class, datacenters)"
                )));
            }
            let Some(dcs) = map.get("datacenters").and_then(Value::as_object) else {
                return Err(invalid(
                    "replication.datacenters is missing: NetworkTopologyStrategy needs a factor per datacenter, e.g. {\"class\": \"NetworkTopologyStrategy\", \"datacenters\": {\"dc1\": 3}}",
                ));
            };
            if dcs.is_empty() {
                return Err(invalid(
                    "replication.datacenters is empty: name at least one datacenter",
                ));
            }
            let mut out = Vec::new();
            for (dc, n) in dcs {
                if !valid_datacenter(dc) {
                    return Err(invalid(format_args!(
                        "replication.datacenters has the name {dc:?}; a datacenter name has 1 to 64 letters, digits, '_', '-' or '.'"
                    )));
                }
                out.push((dc.clone(), factor(n, &format!("replication.datacenters.{dc}"))?));
            }
            Ok(Replication::NetworkTopology(out))
        }
        Some(other) => Err(invalid(format_args!(
            "replication.class {other:?} is not supported; use \"SimpleStrategy\" or \"NetworkTopologyStrategy\""
        ))),
        None => Err(invalid(
            "replication.class is missing: write \"SimpleStrategy\" or \"NetworkTopologyStrategy\"",
        )),
    }
}

impl Config {
    /// Checks `database.database_config`.
    pub fn parse(config: &Value) -> PluginResult<Config> {
        let Some(map) = config.as_object() else {
            return Err(PluginError::invalid(format!(
                "cassandra: database_config must be a JSON object such as {{\"contact_points\": [\"127.0.0.1:9042\"], \"keyspace\": \"weft\"}}, got {config}"
            )));
        };
        if let Some(k) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(invalid(format_args!(
                "{k} is not a key of this connector's config; its keys are {}",
                KEYS.join(", ")
            )));
        }
        let contact_points = match map.get("contact_points") {
            None => return Err(invalid(
                "contact_points is missing: give the nodes to contact, e.g. [\"127.0.0.1:9042\"]",
            )),
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut out = Vec::new();
                for item in items {
                    match item.as_str().map(str::trim) {
                        Some(s) if !s.is_empty() && !s.chars().any(char::is_whitespace) => {
                            out.push(s.to_string())
                        }
                        _ => {
                            return Err(invalid(format_args!(
                                "contact_points must hold \"host:port\" strings, got {item}"
                            )))
                        }
                    }
                }
                out
            }
            Some(v) => {
                return Err(invalid(format_args!(
                    "contact_points must be a non-empty list of \"host:port\" strings, got {v}"
                )))
            }
        };
        let keyspace = match map.get("keyspace") {
            None => {
                return Err(invalid(
                    "keyspace is missing: name the keyspace to keep the data in, e.g. \"weft\"",
                ))
            }
            Some(Value::String(s)) if valid_keyspace(s) => s.clone(),
            Some(v) => {
                return Err(invalid(format_args!(
                    "keyspace must be a name of 1 to 48 letters, digits and '_' starting with a letter, got {v}"
                )))
            }
        };
        let replication = match map.get("replication") {
            None => Replication::Simple(1),
            Some(v) => parse_replication(v)?,
        };
        let (consistency, serial_consistency, consistency_name) = match map.get("consistency") {
            None => (
                Consistency::LocalQuorum,
                SerialConsistency::LocalSerial,
                "LOCAL_QUORUM".to_string(),
            ),
            Some(v) => parse_consistency(v)?,
        };
        let text = |key: &str| -> PluginResult<Option<String>> {
            match map.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(invalid(format_args!("{key} must be a string, got {v}"))),
            }
        };
        let credentials = match (text("username")?, text("password")?) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "password is missing: a username needs its password",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "username is missing: a password needs its username",
                ))
            }
        };
        let connect_timeout = positive_ms(map, "connect_timeout_ms", 5_000)?;
        let request_timeout = positive_ms(map, "request_timeout_ms", 12_000)?;
        let max_query_objects = match map.get("max_query_objects") {
            None => 10_000,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=10_000_000).contains(&n) => n as usize,
                _ => {
                    return Err(invalid(format_args!(
                        "max_query_objects must be a whole number from 1 to 10000000, got {v}"
                    )))
                }
            },
        };
        Ok(Config {
            contact_points,
            keyspace,
            replication,
            consistency,
            serial_consistency,
            consistency_name,
            credentials,
            connect_timeout,
            request_timeout,
            max_query_objects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keyspace_names() {
        for ok in ["weft", "w", "Weft_2", &"a".repeat(48)] {
            assert!(valid_keyspace(ok), "{ok}");
        }
        for bad in [
            "",
            "1weft",
            "_weft",
            "weft-x",
            "weft x",
            "weft;DROP",
            "wéft",
            &"a".repeat(49),
        ] {
            assert!(!valid_keyspace(bad), "{bad}");
        }
    }

    #[test]
    fn defaults_and_replication_literal() {
        let c = Config::parse(&json!({"contact_points": ["127.0.0.1:9042"], "keyspace": "weft"}))
            .unwrap();
        assert_eq!(c.replication, Replication::Simple(1));
        assert_eq!(c.consistency, Consistency::LocalQuorum);
        assert_eq!(c.connect_timeout, Duration::from_millis(5000));
        assert_eq!(
            c.replication.cql(),
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        );
        let nts = Config::parse(&json!({
            "contact_points": ["a:1"], "keyspace": "k",
            "replication": {"class": "NetworkTopologyStrategy", "datacenters": {"dc1": 3}},
            "consistency": "quorum"
        }))
        .unwrap();
        assert_eq!(
            nts.replication.cql(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
        );
        assert_eq!(nts.serial_consistency, SerialConsistency::Serial);
    }
}
