//! Configuration: the seeds' environments file, one environment chosen, overridden by the
//! command line and environment variables.
//!
//! Owns: parsing, defaults, validation with one-line errors naming the key at fault.
//! Must not know: plugins, HTTP, storage.
//!
//! Precedence: command-line flag > environment variable > config file > built-in default.
//! With no file at all, the built-in default serves the persistent `embedded` connector (data in
//! `<data_dir>/store`, i.e. `data/store`) on 127.0.0.1:8080.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The whole file: `{"environments": [...]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The environments; one is chosen with `--config NAME`.
    pub environments: Vec<Environment>,
}

/// One environment.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Its name (`--config NAME`).
    pub name: String,
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Directory holding plugin libraries; default: the directory of the `weft` executable.
    #[serde(default)]
    pub plugin_dir: Option<PathBuf>,
    /// The storage connector.
    #[serde(default)]
    pub database: Database,
    /// The contextionary plugin; absent means no contextionary.
    #[serde(default)]
    pub contextionary: Option<ContextionaryConfig>,
    /// Root key (for automation and tests; otherwise generated on first start).
    #[serde(default)]
    pub auth: Auth,
    /// How this server is reached and where the genesis server is.
    #[serde(default)]
    pub network: Option<Network>,
    /// P2P settings.
    #[serde(default, rename = "P2P")]
    pub p2p: Option<P2p>,
    /// Directory for what the server keeps on disk itself (default `data`): the network's
    /// contextionary when downloaded (`<data_dir>/network-contextionary/<md5>.fifu`).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Default page size for lists.
    #[serde(default = "default_limit")]
    pub limit: u64,
    /// What one request may ask (`limits.*`; every key optional, see weft_core::Limits).
    #[serde(default)]
    pub limits: weft_core::Limits,
    /// Reverse proxies (CIDR ranges) whose `X-Forwarded-For` header names the client; from
    /// any other address the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Serve HTTPS with this certificate and key.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Verbose logging.
    #[serde(default)]
    pub debug: bool,
}

/// The default connector: persistent, in `<data_dir>/store` unless its config names a `path`.
pub const EMBEDDED: &str = "embedded";

/// `database`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// The connector plugin's declared name.
    pub name: String,
    /// Handed to the connector as JSON.
    #[serde(default = "empty_object")]
    pub database_config: Value,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            name: EMBEDDED.into(),
            database_config: empty_object(),
        }
    }
}

/// `contextionary`: `name` picks the plugin; every other key is handed to it as its config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ContextionaryConfig {
    /// The contextionary plugin's declared name.
    pub name: String,
    /// The rest of the object (e.g. `path`), passed to the plugin.
    #[serde(flatten)]
    pub settings: serde_json::Map<String, Value>,
}

/// `auth`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// Root key id (UUID).
    pub root_key: Option<String>,
    /// Root token (UUID).
    pub root_token: Option<String>,
}

/// `network`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The genesis server.
    pub genesis_url: Option<String>,
    /// This server's public URL (references to it are local).
    pub public_url: Option<String>,
    /// This peer's name in the network.
    pub peer_name: Option<String>,
    /// Seconds between pings to the genesis, and in a bootstrapped network between echo
    /// rounds (default 10; fractions allowed).
    #[serde(default)]
    pub ping_interval_s: Option<f64>,
    /// Credentials this server uses for network queries to each peer (Weaviate 0.12's
    /// `{url, api_key, api_token}`); a peer without an entry is asked without a key.
    #[serde(default)]
    pub peers: Vec<PeerCredentials>,
    /// Forward the caller's own `X-API-KEY`/`X-API-TOKEN` to peers that have no configured
    /// credentials (default false: a key of this server means nothing to another).
    #[serde(default)]
    pub forward_caller_key: bool,
    /// PEM certificates of CAs trusted beside the system's when calling other servers.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The genesis's public key (`ed25519:…`), pinned in advance; otherwise pinned at first
    /// contact.
    #[serde(default)]
    pub genesis_key: Option<String>,
    /// The key (id) whose objects network questions are answered over; without it no objects
    /// are shared.
    #[serde(default)]
    pub share_key: Option<String>,
}

/// `tls`: the certificate a server presents.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// A PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// Its PEM private key.
    pub key: PathBuf,
}

/// `network.peers[]`: the key to use for one peer.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerCredentials {
    /// The peer's URL (as it registered it).
    pub url: String,
    /// `X-API-KEY` at that peer.
    pub api_key: String,
    /// `X-API-TOKEN` at that peer.
    pub api_token: String,
}

/// `P2P`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct P2p {
    /// The first peer of a bootstrapped network (the seeds' "Genesis Weaviate"): a peer that
    /// announces itself to nobody and waits for others. Not the genesis server, which is
    /// `weft genesis`.
    #[serde(default)]
    pub genesis: bool,
    /// Peers to announce this one to, in order, when the network has no genesis server.
    #[serde(default, rename = "bootstrappedPeers")]
    pub bootstrapped_peers: Vec<String>,
    /// Download the network's contextionary when it differs from this server's (or this server
    /// has none), instead of refusing to start.
    #[serde(default, rename = "requestContextionary")]
    pub request_contextionary: bool,
    /// Take unsigned messages from Weaviate 0.12 peers, which cannot sign: trusts the network
    /// perimeter.
    #[serde(default, rename = "acceptUnsignedPeers")]
    pub accept_unsigned_peers: bool,
}

impl Environment {
    /// `trusted_proxies` as ranges (validated when the configuration was read).
    pub fn trusted_proxy_ranges(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect()
    }

    /// Whether this server is configured as a peer of a P2P network: a genesis URL, bootstrapped
    /// peers, or `P2P.genesis` (the first peer of a bootstrapped network).
    pub fn is_peer(&self) -> bool {
        self.network
            .as_ref()
            .is_some_and(|n| n.genesis_url.is_some())
            || self
                .p2p
                .as_ref()
                .is_some_and(|p| p.genesis || !p.bootstrapped_peers.is_empty())
    }

    /// The data directory (`data_dir`, default `data`).
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data"))
    }

    /// The config handed to the connector: `database.database_config`, except that the
    /// `embedded` connector without a `path` gets `<data_dir>/store`.
    pub fn connector_config(&self) -> Value {
        let mut config = self.database.database_config.clone();
        if self.database.name == EMBEDDED {
            if let Value::Object(m) = &mut config {
                if !m.contains_key("path") {
                    let store = self.data_dir().join("store");
                    m.insert("path".into(), Value::String(store.display().to_string()));
                }
            }
        }
        config
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_limit() -> u64 {
    100
}
fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl Default for Environment {
    fn default() -> Self {
        Environment {
            name: "default".into(),
            listen: default_listen(),
            plugin_dir: None,
            database: Database::default(),
            contextionary: None,
            auth: Auth::default(),
            network: None,
            p2p: None,
            data_dir: None,
            limit: default_limit(),
            limits: weft_core::Limits::default(),
            trusted_proxies: vec![],
            tls: None,
            debug: false,
        }
    }
}

/// Overrides from the command line and environment variables (clap merges the two).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen` / `WEFT_LISTEN`.
    pub listen: Option<String>,
    /// `--plugin-dir` / `WEFT_PLUGIN_DIR`.
    pub plugin_dir: Option<PathBuf>,
    /// `--database` / `WEFT_DATABASE`.
    pub database: Option<String>,
    /// `--database-config` / `WEFT_DATABASE_CONFIG` (JSON).
    pub database_config: Option<String>,
    /// `WEFT_ROOT_KEY`.
    pub root_key: Option<String>,
    /// `WEFT_ROOT_TOKEN`.
    pub root_token: Option<String>,
    /// `--public-url` / `WEFT_PUBLIC_URL`.
    pub public_url: Option<String>,
    /// `--contextionary` / `WEFT_CONTEXTIONARY`: a finalfusion file (plugin `finalfusion`
    /// unless the file names another contextionary plugin).
    pub contextionary_path: Option<PathBuf>,
    /// `--peer-name` / `WEFT_PEER_NAME`: `network.peer_name`.
    pub peer_name: Option<String>,
    /// `--genesis-url` / `WEFT_GENESIS_URL`: `network.genesis_url`.
    pub genesis_url: Option<String>,
    /// `--bootstrapped-peers` / `WEFT_BOOTSTRAPPED_PEERS` (comma-separated):
    /// `P2P.bootstrappedPeers`.
    pub bootstrapped_peers: Option<Vec<String>>,
    /// `--first-peer` / `WEFT_FIRST_PEER`: `P2P.genesis`.
    pub first_peer: Option<bool>,
    /// `--request-contextionary` / `WEFT_REQUEST_CONTEXTIONARY`: `P2P.requestContextionary`.
    pub request_contextionary: Option<bool>,
    /// `--ping-interval-s` / `WEFT_PING_INTERVAL_S`: `network.ping_interval_s`.
    pub ping_interval_s: Option<f64>,
    /// `--data-dir` / `WEFT_DATA_DIR`: `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `--tls-cert` / `WEFT_TLS_CERT`: `tls.cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key` / `WEFT_TLS_KEY`: `tls.key`.
    pub tls_key: Option<PathBuf>,
    /// `--ca-file` / `WEFT_CA_FILE`: `network.ca_file`.
    pub ca_file: Option<PathBuf>,
    /// `--genesis-key` / `WEFT_GENESIS_KEY`: `network.genesis_key`.
    pub genesis_key: Option<String>,
    /// `--share-key` / `WEFT_SHARE_KEY`: `network.share_key`.
    pub share_key: Option<String>,
    /// `--accept-unsigned-peers` / `WEFT_ACCEPT_UNSIGNED_PEERS`: `P2P.acceptUnsignedPeers`.
    pub accept_unsigned_peers: Option<bool>,
}

/// A configuration error: one line naming the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Reads `file` (if any), picks environment `name`, applies `overrides`, validates.
pub fn load(
    file: Option<&Path>,
    name: Option<&str>,
    overrides: &Overrides,
) -> Result<Environment, ConfigError> {
    load_inner(file, name, overrides).map_err(|ConfigError(m)| ConfigError(one_line(&m)))
}

/// An error is one line even when it echoes a key or value holding a line break.
fn one_line(m: &str) -> String {
    m.replace('\r', "\\r").replace('\n', "\\n")
}

fn load_inner(
    file: Option<&Path>,
    name: Option<&str>,
    overrides: &Overrides,
) -> Result<Environment, ConfigError> {
    let mut env = match file {
        None => match name {
            None | Some("default") => Environment::default(),
            Some(n) => {
                return Err(ConfigError(format!(
                "--config {n}: no config file given; pass --config-file PATH (or WEFT_CONFIG_FILE)"
            )))
            }
        },
        Some(path) => pick(parse_file(path)?, name, path)?,
    };
    apply(&mut env, overrides)?;
    validate(&env)?;
    Ok(env)
}

/// Parses an environments file; errors name the file and the key path.
pub fn parse_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "config file {}: cannot read it: {e}",
            path.display()
        ))
    })?;
    parse_text(&text).map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))
}

/// Parses the text of an environments file.
pub fn parse_text(text: &str) -> Result<ConfigFile, String> {
    parse_text_inner(text).map_err(|m| one_line(&m))
}

fn parse_text_inner(text: &str) -> Result<ConfigFile, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        if at == "." || at.is_empty() {
            format!("{inner}")
        } else {
            format!("key {at}: {inner}")
        }
    })
}

fn pick(file: ConfigFile, name: Option<&str>, path: &Path) -> Result<Environment, ConfigError> {
    let names: Vec<String> = file.environments.iter().map(|e| e.name.clone()).collect();
    let wanted = match (name, file.environments.len()) {
        (Some(n), _) => n.to_string(),
        (None, 1) => file.environments[0].name.clone(),
        (None, 0) => {
            return Err(ConfigError(format!(
                "config file {}: key environments: the list is empty; add an environment",
                path.display()
            )))
        }
        (None, _) => "default".to_string(),
    };
    file.environments
        .into_iter()
        .find(|e| e.name == wanted)
        .ok_or_else(|| {
            ConfigError(format!(
                "config file {}: no environment named {wanted:?} (it has {names:?}); choose one with --config NAME",
                path.display()
            ))
        })
}

fn apply(env: &mut Environment, o: &Overrides) -> Result<(), ConfigError> {
    if let Some(v) = &o.listen {
        env.listen = v.clone();
    }
    if let Some(v) = &o.plugin_dir {
        env.plugin_dir = Some(v.clone());
    }
    if let Some(v) = &o.database {
        env.database.name = v.clone();
    }
    if let Some(v) = &o.database_config {
        env.database.database_config = serde_json::from_str(v).map_err(|e| {
            ConfigError(format!(
                "WEFT_DATABASE_CONFIG / --database-config: not valid JSON ({e}); give a JSON object"
            ))
        })?;
    }
    if let Some(v) = &o.root_key {
        env.auth.root_key = Some(v.clone());
    }
    if let Some(v) = &o.root_token {
        env.auth.root_token = Some(v.clone());
    }
    if let Some(path) = &o.contextionary_path {
        let c = env
            .contextionary
            .get_or_insert_with(|| ContextionaryConfig {
                name: "finalfusion".into(),
                settings: Default::default(),
            });
        c.settings
            .insert("path".into(), Value::String(path.display().to_string()));
    }
    if let Some(v) = &o.public_url {
        env.network.get_or_insert_with(Network::default).public_url = Some(v.clone());
    }
    if let Some(v) = &o.peer_name {
        env.network.get_or_insert_with(Network::default).peer_name = Some(v.clone());
    }
    if let Some(v) = &o.genesis_url {
        env.network.get_or_insert_with(Network::default).genesis_url =
            Some(v.clone()).filter(|v| !v.trim().is_empty());
    }
    if let Some(v) = o.ping_interval_s {
        env.network
            .get_or_insert_with(Network::default)
            .ping_interval_s = Some(v);
    }
    if let Some(v) = &o.bootstrapped_peers {
        env.p2p.get_or_insert_with(P2p::default).bootstrapped_peers = v
            .iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
    }
    if let Some(v) = o.first_peer {
        env.p2p.get_or_insert_with(P2p::default).genesis = v;
    }
    if let Some(v) = o.request_contextionary {
        env.p2p
            .get_or_insert_with(P2p::default)
            .request_contextionary = v;
    }
    if let Some(v) = &o.data_dir {
        env.data_dir = Some(v.clone());
    }
    match (&o.tls_cert, &o.tls_key) {
        (None, None) => {}
        (Some(cert), Some(key)) => {
            env.tls = Some(Tls {
                cert: cert.clone(),
                key: key.clone(),
            })
        }
        (Some(cert), None) => {
            let tls = env.tls.get_or_insert_with(Tls::default);
            tls.cert = cert.clone();
        }
        (None, Some(key)) => {
            let tls = env.tls.get_or_insert_with(Tls::default);
            tls.key = key.clone();
        }
    }
    if let Some(v) = &o.ca_file {
        env.network.get_or_insert_with(Network::default).ca_file =
            Some(v.clone()).filter(|p| !p.as_os_str().is_empty());
    }
    if let Some(v) = &o.genesis_key {
        env.network.get_or_insert_with(Network::default).genesis_key =
            Some(v.clone()).filter(|v| !v.trim().is_empty());
    }
    if let Some(v) = &o.share_key {
        env.network.get_or_insert_with(Network::default).share_key =
            Some(v.clone()).filter(|v| !v.trim().is_empty());
    }
    if let Some(v) = o.accept_unsigned_peers {
        env.p2p
            .get_or_insert_with(P2p::default)
            .accept_unsigned_peers = v;
    }
    Ok(())
}

/// Whether `name` is a DNS label: 1 to 63 letters, digits and `-`, not starting or ending with
/// `-`.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Why `url` is no server base URL (`http(s)://host[:port]`), if it is not.
fn base_url_error(url: &str) -> Option<String> {
    weft_p2p::weft_peer_protocol::PeerUri::parse(url).err()
}

/// The P2P part of validation: what a peer needs to join, one line naming the key at fault.
fn validate_p2p(
    env: &Environment,
    at: impl Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let network = env.network.clone().unwrap_or_default();
    let p2p = env.p2p.clone().unwrap_or_default();
    if let Some(name) = &network.peer_name {
        if !is_dns_label(name) {
            return Err(at(
                "network.peer_name",
                format!("{name:?} is not a DNS label; use 1 to 63 letters, digits and '-', not starting or ending with '-' (e.g. \"peer-1\") (or WEFT_PEER_NAME)"),
            ));
        }
    }
    if let Some(g) = &network.genesis_url {
        if let Some(e) = base_url_error(g) {
            return Err(at(
                "network.genesis_url",
                format!("{e} (or WEFT_GENESIS_URL)"),
            ));
        }
    }
    for (i, b) in p2p.bootstrapped_peers.iter().enumerate() {
        if let Some(e) = base_url_error(b) {
            return Err(at(&format!("P2P.bootstrappedPeers[{i}]"), e));
        }
    }
    if let Some(k) = &network.genesis_key {
        if let Err(e) = k.parse::<weft_p2p::weft_peer_protocol::PublicKey>() {
            return Err(at(
                "network.genesis_key",
                format!("{k:?} is {e} (or WEFT_GENESIS_KEY)"),
            ));
        }
    }
    if let Some(k) = &network.share_key {
        if k.parse::<uuid::Uuid>().is_err() {
            return Err(at(
                "network.share_key",
                format!("{k:?} is not a key id (a UUID); give the id of a key of this server's tree, e.g. one made with POST /keys (or WEFT_SHARE_KEY)"),
            ));
        }
    }
    if let Some(s) = network.ping_interval_s {
        if !(s.is_finite() && (0.05..=3600.0).contains(&s)) {
            return Err(at(
                "network.ping_interval_s",
                format!("{s} is not between 0.05 and 3600 seconds"),
            ));
        }
    }
    if !env.is_peer() {
        return Ok(());
    }
    if network.genesis_url.is_some() && !p2p.bootstrapped_peers.is_empty() {
        return Err(at(
            "P2P.bootstrappedPeers",
            "a network has a genesis server (network.genesis_url) or bootstrapped peers, not both; remove one".into(),
        ));
    }
    if network.genesis_url.is_some() && p2p.genesis {
        return Err(at(
            "P2P.genesis",
            "true makes this server the first peer of a network without a genesis server, but network.genesis_url names one; remove one".into(),
        ));
    }
    if p2p.genesis && !p2p.bootstrapped_peers.is_empty() {
        return Err(at(
            "P2P.genesis",
            "true makes this server the first peer, which announces itself to nobody, but P2P.bootstrappedPeers names peers to announce to; remove one".into(),
        ));
    }
    if network.peer_name.is_none() {
        return Err(at(
            "network.peer_name",
            "is required to join a P2P network: give this peer's name, a DNS label unique in the network (or WEFT_PEER_NAME)".into(),
        ));
    }
    match &network.public_url {
        None => Err(at(
            "network.public_url",
            "is required to join a P2P network: give the URL other peers reach this server at, e.g. \"https://10.0.0.5:8080\" (port 0: the port the server binds) (or WEFT_PUBLIC_URL)".into(),
        )),
        Some(u) => match base_url_error(u) {
            Some(e) => Err(at("network.public_url", format!("{e} (or WEFT_PUBLIC_URL)"))),
            None => Ok(()),
        },
    }
}

fn validate(env: &Environment) -> Result<(), ConfigError> {
    let at = |key: &str, msg: String| {
        ConfigError(format!("environment {:?}, key {key}: {msg}", env.name))
    };
    env.listen.parse::<SocketAddr>().map_err(|e| {
        at(
            "listen",
            format!(
                "{:?} is not an address ({e}); write e.g. \"127.0.0.1:8080\"",
                env.listen
            ),
        )
    })?;
    if env.database.name.trim().is_empty() {
        return Err(at(
            "database.name",
            "is empty; name a connector plugin, e.g. \"dev-memory\"".into(),
        ));
    }
    if !env.database.database_config.is_object() {
        return Err(at(
            "database.database_config",
            "must be a JSON object".into(),
        ));
    }
    if env.limit == 0 {
        return Err(at("limit", "must be at least 1".into()));
    }
    for (i, cidr) in env.trusted_proxies.iter().enumerate() {
        cidr.parse::<ipnet::IpNet>().map_err(|e| {
            at(
                &format!("trusted_proxies[{i}]"),
                format!("{cidr:?} is not a CIDR range ({e}); write e.g. \"10.0.0.5/32\""),
            )
        })?;
    }
    for (key, v) in [
        ("auth.root_key", &env.auth.root_key),
        ("auth.root_token", &env.auth.root_token),
    ] {
        if let Some(v) = v {
            uuid::Uuid::parse_str(v).map_err(|e| at(key, format!("{v:?} is not a UUID ({e})")))?;
        }
    }
    if let Some(u) = env.network.as_ref().and_then(|n| n.public_url.as_ref()) {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(at(
                "network.public_url",
                format!("{u:?} must start with http:// or https://"),
            ));
        }
    }
    if let Some(tls) = &env.tls {
        if tls.cert.as_os_str().is_empty() {
            return Err(at(
                "tls.cert",
                "is missing: give the PEM certificate with tls.key (or WEFT_TLS_CERT, --tls-cert)"
                    .into(),
            ));
        }
        if tls.key.as_os_str().is_empty() {
            return Err(at(
                "tls.key",
                "is missing: give the certificate's PEM private key (or WEFT_TLS_KEY, --tls-key)"
                    .into(),
            ));
        }
    }
    validate_p2p(env, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let e = parse_text(r#"{"environments":[{"name":"x","databse":{}}]}"#).unwrap_err();
        assert!(e.contains("environments[0].databse"), "{e}");
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let e = parse_text(r#"{"environments":[{"name":"x","limit":"many"}]}"#).unwrap_err();
        assert!(e.contains("environments[0].limit"), "{e}");
    }

    #[test]
    fn seeds_example_parses() {
        let f = parse_text(
            r#"{"environments":[{"name":"default","listen":"127.0.0.1:8080","plugin_dir":"target/release",
            "database":{"name":"dev-memory","database_config":{}},
            "contextionary":{"name":"finalfusion","path":"data/glove-6b-50d.fifu"},
            "auth":{"root_key":"2a0a6a12-8a0e-4f5b-8f2a-9a1c1f3c1e01","root_token":"2a0a6a12-8a0e-4f5b-8f2a-9a1c1f3c1e02"},
            "network":{"genesis_url":"http://127.0.0.1:8111","public_url":"http://127.0.0.1:8080","peer_name":"alpha"},
            "P2P":{"genesis":false,"bootstrappedPeers":[],"requestContextionary":false},
            "limit":100,"debug":false}]}"#,
        )
        .unwrap();
        let env = &f.environments[0];
        assert_eq!(
            env.contextionary.as_ref().unwrap().settings["path"],
            "data/glove-6b-50d.fifu"
        );
        assert!(validate(env).is_ok());
    }

    #[test]
    fn the_default_connector_is_embedded_in_the_data_dir() {
        let env = Environment::default();
        assert_eq!(env.database.name, "embedded");
        assert_eq!(env.connector_config()["path"], "data/store");
        let env = Environment {
            data_dir: Some("/var/lib/weft".into()),
            ..Default::default()
        };
        assert_eq!(env.connector_config()["path"], "/var/lib/weft/store");
        let mut env = Environment::default();
        env.database.database_config = serde_json::json!({"path": "elsewhere"});
        assert_eq!(env.connector_config()["path"], "elsewhere");
        env.database.name = "dev-memory".into();
        env.database.database_config = serde_json::json!({});
        assert_eq!(env.connector_config(), serde_json::json!({}));
    }

    #[test]
    fn bad_listen_names_the_key() {
        let env = Environment {
            listen: "localhost".into(),
            ..Default::default()
        };
        let e = validate(&env).unwrap_err().0;
        assert!(e.contains("key listen"), "{e}");
    }

    fn peer(o: Overrides) -> Result<Environment, String> {
        let mut env = Environment::default();
        apply(&mut env, &o).map_err(|e| e.0)?;
        validate(&env).map_err(|e| e.0)?;
        Ok(env)
    }

    #[test]
    fn a_peer_needs_a_name_and_a_public_url() {
        let genesis = || Overrides {
            genesis_url: Some("http://127.0.0.1:8111".into()),
            ..Default::default()
        };
        let e = peer(genesis()).unwrap_err();
        assert!(
            e.contains("key network.peer_name") && e.contains("required"),
            "{e}"
        );
        let e = peer(Overrides {
            peer_name: Some("-bad".into()),
            ..genesis()
        })
        .unwrap_err();
        assert!(e.contains("DNS label"), "{e}");
        let e = peer(Overrides {
            peer_name: Some("alpha".into()),
            ..genesis()
        })
        .unwrap_err();
        assert!(e.contains("key network.public_url"), "{e}");
        let env = peer(Overrides {
            peer_name: Some("alpha".into()),
            public_url: Some("http://127.0.0.1:0".into()),
            ping_interval_s: Some(0.3),
            ..genesis()
        })
        .unwrap();
        assert!(env.is_peer());
        assert_eq!(env.network.unwrap().ping_interval_s, Some(0.3));
        // Without genesis, bootstrapped peers or P2P.genesis the server is no peer.
        let env = peer(Overrides {
            peer_name: Some("alpha".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(!env.is_peer());
    }

    #[test]
    fn bootstrapped_peers_come_comma_separated_and_exclude_a_genesis() {
        let base = || Overrides {
            peer_name: Some("alpha".into()),
            public_url: Some("http://127.0.0.1:0".into()),
            bootstrapped_peers: Some(vec!["http://127.0.0.1:1".into(), " ".into()]),
            ..Default::default()
        };
        let env = peer(base()).unwrap();
        assert_eq!(
            env.p2p.unwrap().bootstrapped_peers,
            vec!["http://127.0.0.1:1".to_string()]
        );
        let e = peer(Overrides {
            genesis_url: Some("http://127.0.0.1:8111".into()),
            ..base()
        })
        .unwrap_err();
        assert!(e.contains("not both"), "{e}");
        let e = peer(Overrides {
            bootstrapped_peers: Some(vec!["ftp://x".into()]),
            ..base()
        })
        .unwrap_err();
        assert!(e.contains("P2P.bootstrappedPeers[0]"), "{e}");
        let e = peer(Overrides {
            ping_interval_s: Some(0.0),
            ..base()
        })
        .unwrap_err();
        assert!(e.contains("network.ping_interval_s"), "{e}");
    }

    #[test]
    fn the_trust_settings_are_checked_and_name_their_key() {
        let base = || Overrides {
            peer_name: Some("alpha".into()),
            public_url: Some("https://peer.example:8443".into()),
            genesis_url: Some("https://genesis.example:8111".into()),
            ..Default::default()
        };
        let env = peer(Overrides {
            genesis_key: Some("ed25519:KVNISUaHBVzrnxWWIy3no00y7yxyGQ1qCOZbRjUggQI".into()),
            share_key: Some("0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000009".into()),
            ca_file: Some("/etc/weft/ca.pem".into()),
            tls_cert: Some("/etc/weft/c.pem".into()),
            tls_key: Some("/etc/weft/k.pem".into()),
            accept_unsigned_peers: Some(true),
            ..base()
        })
        .unwrap();
        let n = env.network.clone().unwrap();
        assert_eq!(n.ca_file, Some(PathBuf::from("/etc/weft/ca.pem")));
        assert!(n.genesis_key.is_some() && n.share_key.is_some());
        assert!(env.p2p.unwrap().accept_unsigned_peers);
        assert_eq!(env.tls.unwrap().key, PathBuf::from("/etc/weft/k.pem"));
        for (o, key) in [
            (
                Overrides {
                    genesis_key: Some("ed25519:short".into()),
                    ..base()
                },
                "network.genesis_key",
            ),
            (
                Overrides {
                    share_key: Some("not-a-key".into()),
                    ..base()
                },
                "network.share_key",
            ),
            (
                Overrides {
                    tls_cert: Some("/etc/weft/c.pem".into()),
                    ..base()
                },
                "tls.key",
            ),
            (
                Overrides {
                    public_url: Some("https://u:p@peer.example".into()),
                    ..base()
                },
                "network.public_url",
            ),
        ] {
            let e = peer(o).unwrap_err();
            assert!(e.contains(&format!("key {key}")), "{key}: {e}");
        }
    }

    #[test]
    fn overrides_win_over_the_file() {
        let mut env = Environment::default();
        apply(
            &mut env,
            &Overrides {
                listen: Some("127.0.0.1:9999".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(env.listen, "127.0.0.1:9999");
    }
}
