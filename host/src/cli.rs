//! The command line: `weft [serve]`, `weft plugins check`, `weft openapi`, ….
//!
//! Owns: argument parsing, environment-variable names, exit codes, logging set-up.
//! Must not know: how any command does its work (each calls into its module).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Overrides};

/// Weft: a knowledge-graph server with pluggable storage.
///
/// Environment variables: WEFT_CONFIG_FILE, WEFT_CONFIG, WEFT_LISTEN, WEFT_PLUGIN_DIR,
/// WEFT_DATABASE, WEFT_DATABASE_CONFIG, WEFT_PUBLIC_URL, WEFT_ROOT_KEY, WEFT_ROOT_TOKEN override
/// the config file; WEFT_LOG (e.g. `debug`, `weft=trace`) sets the log filter.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None)]
pub struct Cli {
    /// The environments file (`{"environments":[…]}`).
    #[arg(long, global = true, env = "WEFT_CONFIG_FILE", value_name = "PATH")]
    pub config_file: Option<PathBuf>,
    /// Which environment of the file to use (default: the only one, or "default").
    #[arg(
        long = "config",
        global = true,
        env = "WEFT_CONFIG",
        value_name = "NAME"
    )]
    pub config_name: Option<String>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST and GraphQL API (the default command).
    Serve(ServeArgs),
    /// Print the OpenAPI 3 document of the REST API.
    Openapi,
    /// Work with plugin libraries.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

/// `weft plugins …`.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Load each file and print its name, kind, interface version and capabilities, or the
    /// one-line reason it cannot be loaded. Exits non-zero when any file fails.
    Check {
        /// Plugin library files (.so).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List the plugins found in the plugin directory.
    List(ServeArgs),
}

/// Options of `weft serve`.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "WEFT_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory holding plugin libraries [default: the directory of the weft executable].
    #[arg(long, env = "WEFT_PLUGIN_DIR", value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Connector plugin name [default: dev-memory].
    #[arg(long, env = "WEFT_DATABASE", value_name = "NAME")]
    pub database: Option<String>,
    /// Connector config as JSON.
    #[arg(long, env = "WEFT_DATABASE_CONFIG", value_name = "JSON")]
    pub database_config: Option<String>,
    /// This server's public URL (references to it are local).
    #[arg(long, env = "WEFT_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
}

impl ServeArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            plugin_dir: self.plugin_dir.clone(),
            database: self.database.clone(),
            database_config: self.database_config.clone(),
            root_key: std::env::var("WEFT_ROOT_KEY").ok(),
            root_token: std::env::var("WEFT_ROOT_TOKEN").ok(),
            public_url: self.public_url.clone(),
        }
    }
}

fn init_logging(debug: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if debug { "debug" } else { "info" })
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weft: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    match command {
        Command::Plugins(PluginsCommand::Check { files }) => {
            init_logging(false);
            let ok = crate::plugins::check_files(&files, &mut std::io::stdout())?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Plugins(PluginsCommand::List(args)) => {
            init_logging(false);
            let env = config::load(
                cli.config_file.as_deref(),
                cli.config_name.as_deref(),
                &args.overrides(),
            )?;
            let dir = env
                .plugin_dir
                .clone()
                .unwrap_or_else(crate::plugins::default_plugin_dir);
            for p in crate::plugins::scan(&dir)?.values() {
                println!(
                    "{} ({}, interface {}) {}",
                    p.name,
                    p.kind,
                    p.interface_version,
                    p.path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            println!("{}", crate::server::openapi_document());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let env = config::load(
                cli.config_file.as_deref(),
                cli.config_name.as_deref(),
                &args.overrides(),
            )?;
            init_logging(env.debug);
            crate::server::serve(env)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
