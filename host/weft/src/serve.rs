//! `weft serve`: loads the plugins the configuration names, wires them into the core and the
//! front ends, serves until SIGINT or SIGTERM, then drains `async` creates before exiting.
//!
//! As a peer of a P2P network (`network.genesis_url`, `P2P.bootstrappedPeers` or `P2P.genesis`):
//! before serving, the network's contextionary is checked against this server's (and, with
//! `P2P.requestContextionary`, downloaded); once listening, the peer joins in the background; on
//! SIGINT/SIGTERM it leaves (deregisters at the genesis) before the server stops.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use poem::listener::TcpListener;
use weft_core::{ConnectorHandle, ContextionaryHandle, Core, CoreConfig, PluginInfo};
use weft_p2p::config::{try_mode, Mode, DEFAULT_PING_INTERVAL};
use weft_p2p::contextionary::{self, LocalContextionary};
use weft_p2p::weft_peer_protocol::{tls, PeerUri};
use weft_p2p::{Credentials, P2pConfig, PeerNode, Transport};
use weft_plugin_api::PluginKind;
use weft_rest::BASE_PATH;

use crate::config::Environment;

/// How long a graceful shutdown waits for requests in flight, then for `async` creates.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const DRAIN_GRACE: Duration = Duration::from_secs(30);
/// How long leaving the network (deregistering at the genesis) may take at shutdown.
const LEAVE_GRACE: Duration = Duration::from_secs(3);

/// The peer configuration of `env`, when it makes this server a peer (`public_url` may still
/// have port 0: see [`PeerUri::with_bound_port`]). Errors name the setting (a CA file that
/// cannot be read, an address that is no URL).
pub fn p2p_config(env: &Environment) -> anyhow::Result<Option<P2pConfig>> {
    if !env.is_peer() {
        return Ok(None);
    }
    let n = env.network.clone().unwrap_or_default();
    let p = env.p2p.clone().unwrap_or_default();
    let ca = match &n.ca_file {
        Some(f) => tls::load_ca_file(f).map_err(anyhow::Error::msg)?,
        None => vec![],
    };
    let config = P2pConfig {
        peer_name: n.peer_name.unwrap_or_default(),
        public_url: n.public_url.unwrap_or_default(),
        genesis_url: n.genesis_url,
        genesis_key: match &n.genesis_key {
            Some(k) => Some(
                k.parse()
                    .map_err(|e| anyhow::anyhow!("network.genesis_key: {e}"))?,
            ),
            None => None,
        },
        bootstrapped_peers: p.bootstrapped_peers,
        request_contextionary: p.request_contextionary,
        accept_unsigned: p.accept_unsigned_peers,
        ping_interval: n
            .ping_interval_s
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_PING_INTERVAL),
        credentials: n
            .peers
            .iter()
            .map(|c| Credentials {
                url: c.url.clone(),
                api_key: c.api_key.clone(),
                api_token: c.api_token.clone(),
            })
            .collect(),
        forward_caller_key: n.forward_caller_key,
        share_key: match &n.share_key {
            Some(k) => Some(
                k.parse()
                    .map_err(|_| anyhow::anyhow!("network.share_key: {k:?} is not a key id"))?,
            ),
            None => None,
        },
        data_dir: env.data_dir(),
        ca,
    };
    try_mode(&config).map_err(anyhow::Error::msg)?;
    Ok(Some(config))
}

/// The file and index a contextionary plugin's settings name (`path`, `index_path`, default
/// `<path>.hnsw` when it exists).
fn contextionary_files(
    settings: &serde_json::Map<String, serde_json::Value>,
) -> (Option<PathBuf>, Option<PathBuf>) {
    let path = settings
        .get("path")
        .and_then(|v| v.as_str())
        .map(PathBuf::from);
    let index = match settings.get("index_path").and_then(|v| v.as_str()) {
        Some(i) => Some(PathBuf::from(i)),
        None => path.as_ref().map(|p| {
            let mut s = p.as_os_str().to_owned();
            s.push(".hnsw");
            PathBuf::from(s)
        }),
    };
    (path, index.filter(|i| i.is_file()))
}

/// A future that resolves on SIGINT or SIGTERM. The handlers are installed when this is called
/// (not when the future is first polled), so a signal that arrives right after the listening
/// line stops the server gracefully instead of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Raises this process's soft open-file limit to its hard limit, logging both, and answers the
/// soft limit now in force and the hard limit (`weft serve` and `weft genesis`).
pub(crate) fn raise_open_files() -> anyhow::Result<(u64, u64)> {
    let (soft, hard) = rlimit::Resource::NOFILE
        .get()
        .map_err(|e| anyhow::anyhow!("cannot read the open-file limit (RLIMIT_NOFILE): {e}"))?;
    let raised = match rlimit::increase_nofile_limit(hard) {
        Ok(now) => now,
        Err(e) => {
            tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
            soft
        }
    };
    if raised != soft {
        tracing::info!("open files: soft limit raised from {soft} to {raised} (hard limit {hard})");
    } else {
        tracing::info!("open files: soft limit {soft} (hard limit {hard})");
    }
    Ok((raised, hard))
}

/// Raises the open-file limit ([`raise_open_files`]) and answers the connection cap that fits
/// under it: `limits.max_connections`, or an error naming that setting when it does not fit.
fn open_files_and_connection_cap(limits: &weft_core::Limits) -> anyhow::Result<usize> {
    let (raised, hard) = raise_open_files()?;
    let cap = limits
        .connection_cap(raised, hard)
        .map_err(anyhow::Error::msg)?;
    tracing::info!(
        "admission: at most {cap} connections{}, {} requests in progress; header read {} ms, idle {} ms, request {} ms",
        if limits.max_connections.is_none() { " (the open-file limit less those kept for files; set limits.max_connections to choose)" } else { "" },
        limits.max_requests_in_progress,
        limits.header_read_timeout_ms,
        limits.idle_timeout_ms,
        limits.request_timeout_ms
    );
    Ok(cap)
}

/// Removes what a backup killed midway left in the scratch directory (logged).
fn clean_scratch(scratch: &Path) {
    match weft_core::scratch::remove_stale(scratch) {
        Ok(removed) => {
            for (path, bytes) in removed {
                tracing::info!(
                    "removed {} ({bytes} bytes), left by a backup that did not finish",
                    path.display()
                );
            }
        }
        Err(e) => tracing::warn!(
            "cannot clean the scratch directory {}: {e}; remove its backup-* entries by hand",
            scratch.display()
        ),
    }
}

/// Loads the plugins of `env`, then serves until interrupted.
pub fn serve(env: Environment) -> anyhow::Result<()> {
    let max_connections = open_files_and_connection_cap(&env.limits)?;
    let scratch_dir = std::path::absolute(env.data_dir().join("tmp"))
        .unwrap_or_else(|_| env.data_dir().join("tmp"));
    clean_scratch(&scratch_dir);
    // The connector's own directory, when it stores in one here (a backup needs its size).
    let store_dir = env
        .connector_config()
        .get("path")
        .and_then(|p| p.as_str())
        .map(PathBuf::from);
    let dir = env
        .plugin_dir
        .clone()
        .unwrap_or_else(crate::plugins::default_plugin_dir);
    let plugin = crate::plugins::find(&dir, &env.database.name, PluginKind::Connector)?;
    let conn = ConnectorHandle::open(&plugin, &env.connector_config())?;
    let mut loaded = vec![plugin.clone()];
    let p2p = p2p_config(&env)?;
    let server_tls = match &env.tls {
        Some(t) => Some(tls::ServerTls::load(&t.cert, &t.key).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let mut c11y = match &env.contextionary {
        None => {
            if p2p.is_none() {
                tracing::warn!(
                    "no contextionary configured: class and property names are not checked against word embeddings (start with --contextionary PATH after `weft contextionary fetch`)"
                );
            }
            None
        }
        Some(cfg) => {
            let p = crate::plugins::find(&dir, &cfg.name, PluginKind::Contextionary)?;
            let handle =
                ContextionaryHandle::open(&p, &serde_json::Value::Object(cfg.settings.clone()))?;
            tracing::info!(
                "contextionary {} ({}): {} words of {} dimensions",
                p.name,
                p.path.display(),
                handle.vocabulary_size(),
                handle.dimensions()
            );
            loaded.push(p);
            Some(handle)
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // As a peer: its identity and client, then the network's contextionary, checked (or
    // downloaded) before serving.
    let mut local_c11y: Option<LocalContextionary> = None;
    let mut transport: Option<Transport> = None;
    if let Some(cfg) = &p2p {
        let t = Transport::open(
            cfg,
            env.limits.max_peer_response_bytes,
            env.limits.max_peers,
        )?;
        tracing::info!(
            "identity {} (in {})",
            t.identity.public(),
            env.data_dir().display()
        );
        transport = Some(t);
    }
    if let (Some(cfg), Some(t)) = (&p2p, &transport) {
        let (name, settings) = match &env.contextionary {
            Some(c) => (c.name.clone(), c.settings.clone()),
            None => ("finalfusion".to_string(), Default::default()),
        };
        let (path, index) = contextionary_files(&settings);
        let open = |file: &Path| -> anyhow::Result<ContextionaryHandle> {
            let p = crate::plugins::find(&dir, &name, PluginKind::Contextionary)?;
            let mut s = settings.clone();
            s.insert(
                "path".into(),
                serde_json::Value::String(file.display().to_string()),
            );
            s.remove("index_path");
            ContextionaryHandle::open(&p, &serde_json::Value::Object(s))
        };
        let local = c11y.clone().map(|h| (h, path, index));
        let settled = rt.block_on(contextionary::settle_contextionary(
            cfg,
            t,
            local,
            &env.data_dir(),
            open,
        ))?;
        if let Some(s) = settled {
            if s.downloaded {
                if !loaded.iter().any(|p| p.kind == PluginKind::Contextionary) {
                    loaded.push(crate::plugins::find(
                        &dir,
                        &name,
                        PluginKind::Contextionary,
                    )?);
                }
                tracing::info!(
                    "contextionary: the network's, {} ({} words of {} dimensions)",
                    s.local
                        .path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    s.handle.vocabulary_size(),
                    s.handle.dimensions()
                );
            }
            c11y = Some(s.handle);
            local_c11y = Some(s.local);
        } else if c11y.is_none() {
            tracing::warn!(
                "no contextionary configured, and the network has none: class and property names are not checked against word embeddings"
            );
        }
    }
    let info = loaded
        .iter()
        .map(|p| PluginInfo {
            name: p.name.clone(),
            kind: p.kind.to_string(),
            interface_version: p.interface_version.clone(),
            capabilities: p
                .capabilities
                .names()
                .into_iter()
                .map(String::from)
                .collect(),
        })
        .collect();
    let listen = env.listen.clone();
    rt.block_on(async move {
        use poem::listener::{Acceptor, AcceptorExt, Listener};
        let scheme = if server_tls.is_some() { "https" } else { "http" };
        let cannot = |e: std::io::Error| {
            anyhow::anyhow!("cannot listen on {listen}: {e}; choose another address with --listen or WEFT_LISTEN")
        };
        let listener = TcpListener::bind(listen.clone());
        let acceptor = match &server_tls {
            Some(t) => t
                .acceptor(listener.into_acceptor().await.map_err(cannot)?)
                .boxed(),
            None => listener.into_acceptor().await.map_err(cannot)?.boxed(),
        };
        let bound = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied());
        let addr = bound.map(|a| a.to_string()).unwrap_or(listen.clone());
        // The real port when asked for port 0 (in `listen`, and in `public_url`).
        let public_url = match env.network.as_ref().and_then(|n| n.public_url.clone()) {
            Some(u) => match PeerUri::parse(&u) {
                Ok(p) => p.with_bound_port(bound.map(|a| a.port()).unwrap_or(0)).to_string(),
                Err(_) => u,
            },
            None => format!("{scheme}://{addr}"),
        };
        let config = CoreConfig {
            public_url: public_url.clone(),
            limit: env.limit,
            limits: env.limits.clone(),
            trusted_proxies: env.trusted_proxy_ranges(),
            scratch_dir,
            store_dir,
        };
        let mut core = Core::new(conn, config, info);
        if let Some(c) = c11y {
            core = core.with_contextionary(c);
        }
        let core = Arc::new(core);
        // As a peer: the node, known to the core (network queries) and the REST front end.
        let node = match (p2p, transport) {
            (Some(mut cfg), Some(t)) => {
                cfg.public_url = public_url.clone();
                match cfg.share_key {
                    Some(k) => tracing::info!(
                        "network questions are answered over the objects key {k} may see (network.share_key)"
                    ),
                    None => tracing::warn!(
                        "network.share_key is not set: peers' Fetch questions find no objects here (Introspect still says which classes match); set it to the id of a key whose objects the network may see"
                    ),
                }
                let node = PeerNode::new(core.clone(), cfg, t)?;
                if let Some(c) = local_c11y {
                    node.set_contextionary(c);
                }
                core.set_network(node.clone());
                Some(node)
            }
            _ => None,
        };
        let configured = match (&env.auth.root_key, &env.auth.root_token) {
            (Some(k), Some(t)) => Some((k.parse()?, t.clone())),
            (None, None) => None,
            _ => anyhow::bail!(
                "give both auth.root_key and auth.root_token (or WEFT_ROOT_KEY and WEFT_ROOT_TOKEN), or neither"
            ),
        };
        if let Some((key, token)) = core.keys.ensure_root(configured).await? {
            // Printed once, when the root key is made; only its hash is stored.
            println!("ROOTKEY={key}");
            println!("ROOTTOKEN={token}");
        }
        tracing::info!(
            "connector {} ({}), plugin interface {}, writes {}",
            plugin.name,
            plugin.path.display(),
            plugin.interface_version,
            core.write_mode().as_str()
        );
        // Signal handlers before the line that tells the world this server is up.
        let signalled = shutdown_signal();
        // One line on stdout that scripts and tests wait for.
        println!("weft: listening on {scheme}://{addr}{BASE_PATH}");
        if let Some(n) = &node {
            tracing::info!(
                "peer {} at {}: joining {}",
                n.config.peer_name,
                n.config.public_url,
                match n.mode() {
                    Mode::Genesis(g) => format!("the network of the genesis {g}"),
                    Mode::Bootstrapped(b) if b.is_empty() =>
                        "a network without genesis, as its first peer".to_string(),
                    Mode::Bootstrapped(b) =>
                        format!(
                            "a network without genesis through {}",
                            b.iter().map(PeerUri::to_string).collect::<Vec<_>>().join(", ")
                        ),
                }
            );
            n.start();
        }
        // On SIGINT/SIGTERM a peer leaves the network first (bounded), then the server stops.
        let leaving = node.clone();
        let shutdown = async move {
            signalled.await;
            if let Some(n) = leaving {
                n.leave(LEAVE_GRACE).await;
            }
        };
        let served = weft_rest::admission::serve(
            acceptor,
            weft_rest::routes(core.clone(), node.clone()),
            weft_rest::admission::settings(&env.limits, max_connections),
            shutdown,
            SHUTDOWN_GRACE,
        )
        .await
        .map_err(|e| anyhow::anyhow!("the server stopped: {e}"));
        let left = core.drain(DRAIN_GRACE).await;
        if left > 0 {
            tracing::error!(
                "{left} accepted async writes were still running after {}s and are lost",
                DRAIN_GRACE.as_secs()
            );
        }
        served
    })
}
