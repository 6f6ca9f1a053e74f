//! The HTTP server: builds the application state and the routes.
use crate::config::Environment;

/// The OpenAPI document of the REST API, pretty JSON.
pub fn openapi_document() -> String {
    String::from("{}")
}

/// Runs the server until interrupted.
pub fn serve(env: Environment) -> anyhow::Result<()> {
    let dir = env
        .plugin_dir
        .clone()
        .unwrap_or_else(crate::plugins::default_plugin_dir);
    let plugin = crate::plugins::find(
        &dir,
        &env.database.name,
        weft_plugin_api::PluginKind::Connector,
    )?;
    let _conn = crate::plugins::ConnectorHandle::open(&plugin, &env.database.database_config)?;
    anyhow::bail!("the REST API is not built yet")
}
