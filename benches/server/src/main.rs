//! `weft-bench`: the load generator and report behind `scripts/soak.sh` and `scripts/bench.sh`.
//! The scripts build the release binary, start `weft serve` on 127.0.0.1 with dev-memory (and
//! `scripts/bench.sh` then with embedded) and a root key, and call this with the server's
//! address; everything it sends goes there (or to its own ceiling server, also on 127.0.0.1).
//! Every load loop ends at a time and at a count.
//!
//! ```text
//! weft-bench soak   --url URL --pid PID --key K --token T [--seconds 60 --warmup 10 …]
//! weft-bench server --url URL --key K --token T --json target/bench/server.json [--skip-get …]
//! weft-bench report --dir target/bench [--timing NAME=SECONDS …]
//! weft-bench serve-ceiling --body-file FILE      (started by `server`)
//! weft-bench fill-store --plugin SO --config JSON [--objects N]   (scripts/bench-migrate.sh)
//! weft-bench explore --url URL --key K --token T --contextionary FIFU --json FILE [--objects N
//!     --import-only --baseline FILE …]   (search by meaning; needs libweft_contextionary.so)
//! ```

mod ceiling;
mod explore_bench;
mod fill_store;
mod load;
mod machine;
mod output;
mod report;
mod server_bench;
mod soak;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "weft-bench",
    about = "Soak and benchmarks of a running weft server",
    // The scripts pass their settings first; options given to the scripts come later and win.
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Mixed REST and GraphQL reads and writes for a fixed time; exit 0 when it passed.
    Soak(soak::SoakArgs),
    /// Batch import, GraphQL cost at two sizes, REST GET against a bare poem route.
    Server(server_bench::ServerArgs),
    /// The ceiling server of the REST GET comparison (started by `server`).
    ServeCeiling(ceiling::CeilingArgs),
    /// Reads the parts of a bench run, prints the table, writes results.json.
    Report(report::ReportArgs),
    /// Makes a store of many objects through a connector library (the migration benchmark).
    FillStore(fill_store::FillArgs),
    /// Search by meaning: import generated text (with vectors, or `--import-only` as the
    /// baseline), then `Explore` and `Get … explore` with a 1% filter: queries/s and recall@10
    /// against exact search computed in this process.
    Explore(explore_bench::ExploreArgs),
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Soak(a) => runtime().and_then(|rt| rt.block_on(soak::soak(a))),
        Cmd::Server(a) => runtime()
            .and_then(|rt| rt.block_on(server_bench::server(a)))
            .map(|()| true),
        Cmd::ServeCeiling(a) => ceiling::serve(a).map(|()| true),
        Cmd::Report(a) => report::report(a),
        Cmd::FillStore(a) => fill_store::fill(a),
        Cmd::Explore(a) => runtime()
            .and_then(|rt| rt.block_on(explore_bench::explore(a)))
            .map(|()| true),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("weft-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
