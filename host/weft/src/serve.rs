//! `weft serve`: loads the plugins the configuration names, wires them into the core and the
//! front ends, serves until SIGINT or SIGTERM, then drains `async` creates before exiting.

use std::sync::Arc;
use std::time::Duration;

use poem::listener::TcpListener;
use weft_core::{ConnectorHandle, ContextionaryHandle, Core, CoreConfig, PluginInfo};
use weft_plugin_api::PluginKind;
use weft_rest::BASE_PATH;

use crate::config::Environment;

/// How long a graceful shutdown waits for requests in flight, then for `async` creates.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const DRAIN_GRACE: Duration = Duration::from_secs(30);

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Loads the plugins of `env`, then serves until interrupted.
pub fn serve(env: Environment) -> anyhow::Result<()> {
    let dir = env
        .plugin_dir
        .clone()
        .unwrap_or_else(crate::plugins::default_plugin_dir);
    let plugin = crate::plugins::find(&dir, &env.database.name, PluginKind::Connector)?;
    let conn = ConnectorHandle::open(&plugin, &env.database.database_config)?;
    let mut loaded = vec![plugin.clone()];
    let c11y = match &env.contextionary {
        None => {
            tracing::warn!(
                "no contextionary configured: class and property names are not checked against word embeddings (start with --contextionary PATH after `weft contextionary fetch`)"
            );
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        use poem::listener::{Acceptor, Listener};
        let acceptor = TcpListener::bind(listen.clone())
            .into_acceptor()
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot listen on {listen}: {e}; choose another address with --listen or WEFT_LISTEN")
            })?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .map(|a| a.to_string())
            .unwrap_or(listen);
        // The real port when asked for port 0.
        let public_url = env
            .network
            .as_ref()
            .and_then(|n| n.public_url.clone())
            .unwrap_or_else(|| format!("http://{addr}"));
        let config = CoreConfig {
            public_url,
            limit: env.limit,
        };
        let mut app = Core::new(conn, config, info);
        if let Some(c) = c11y {
            app = app.with_contextionary(c);
        }
        let app = Arc::new(app);
        let configured = match (&env.auth.root_key, &env.auth.root_token) {
            (Some(k), Some(t)) => Some((k.parse()?, t.clone())),
            (None, None) => None,
            _ => anyhow::bail!(
                "give both auth.root_key and auth.root_token (or WEFT_ROOT_KEY and WEFT_ROOT_TOKEN), or neither"
            ),
        };
        if let Some((key, token)) = app.keys.ensure_root(configured).await? {
            // Printed once, when the root key is made; only its hash is stored.
            println!("ROOTKEY={key}");
            println!("ROOTTOKEN={token}");
        }
        tracing::info!(
            "connector {} ({}), plugin interface {}, writes {}",
            plugin.name,
            plugin.path.display(),
            plugin.interface_version,
            app.write_mode().as_str()
        );
        // One line on stdout that scripts and tests wait for.
        println!("weft: listening on http://{addr}{BASE_PATH}");
        let served = poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                weft_rest::routes(app.clone(), None),
                shutdown_signal(),
                Some(SHUTDOWN_GRACE),
            )
            .await
            .map_err(|e| anyhow::anyhow!("the server stopped: {e}"));
        let left = app.drain(DRAIN_GRACE).await;
        if left > 0 {
            tracing::error!(
                "{left} accepted async writes were still running after {}s and are lost",
                DRAIN_GRACE.as_secs()
            );
        }
        served
    })
}
