//! The full peer-list simulation: 1,000 simulated peers under churn, 0.12's full lists against
//! versioned changes (see `weft_peer_protocol::simulation` for the churn and the delivery model).
//!
//! `cargo run -p weft-peer-protocol --release --example p2p_simulation [-- --peers N --changes N
//! --burst N --seed N --latency-ms X --mbit X --overhead BYTES --coalesce]`

use std::str::FromStr;

use weft_peer_protocol::simulation::{simulate, Params};

fn main() {
    let mut p = Params::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--coalesce" {
            p.coalesce = true;
            continue;
        }
        let value = it
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--peers" => p.peers = parse(flag, value),
            "--changes" => p.changes = parse(flag, value),
            "--burst" => p.burst = parse(flag, value),
            "--seed" => p.seed = parse(flag, value),
            "--latency-ms" => p.link.latency_ms = parse(flag, value),
            "--mbit" => {
                p.link.genesis_bandwidth_bytes_per_s = parse::<f64>(flag, value) * 1e6 / 8.0
            }
            "--overhead" => p.link.http_overhead_bytes = parse(flag, value),
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    println!("{}", simulate(p));
}

fn parse<T: FromStr>(flag: &str, value: &str) -> T {
    value
        .parse()
        .unwrap_or_else(|_| usage(&format!("invalid value {value:?} for {flag}")))
}

fn usage(message: &str) -> ! {
    eprintln!(
        "p2p_simulation: {message}\nusage: p2p_simulation [--peers N] [--changes N] [--burst N] \
         [--seed N] [--latency-ms X] [--mbit X] [--overhead BYTES] [--coalesce]"
    );
    std::process::exit(2)
}
