//! On demand: the store's side of a batch import, through the loaded `.so`, embedded (durable:
//! every acknowledged write fsynced) against dev-memory in the same run:
//!
//! `cargo test --release -p weft-embedded --test import_bench -- --ignored --nocapture`
//!
//! Creates `WEFT_EMBEDDED_BENCH_IMPORT` things (default 200,000) shaped like the server
//! benchmark's (a name, a population, a flag), 2,000 writes in flight as two concurrent
//! 1,000-item batches would have them, once with time-ordered ids (what the host gives new
//! objects) and once with random ones, and prints things/s for each and the ratio to dev-memory.
//! dev-memory's library must be built (`cargo build --release -p weft-dev-memory`); it is
//! skipped when missing.

mod common;

use std::time::Instant;

use common::load;
use futures::executor::block_on;
use weft_connector_tests::weft_plugin_api::{ConnectorBox, Id, ObjectKind, StoredObject};

const IN_FLIGHT: usize = 2000;

/// Things per second for `n` creates, `IN_FLIGHT` at a time, with ids from `id`.
fn import(conn: &ConnectorBox, n: usize, id: fn() -> Id) -> f64 {
    let owner = Id::random();
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let pending: Vec<_> = (done..(done + IN_FLIGHT).min(n))
            .map(|i| {
                let now = 1_800_000_000_000 + i as i64;
                conn.create_object(StoredObject {
                    kind: ObjectKind::Thing,
                    id: id(),
                    class: "City".into(),
                    context: "http://example.org/bench".into(),
                    owner,
                    created_ms: now,
                    updated_ms: now,
                    properties_json: format!(
                        r#"{{"isCapital":{},"name":"City {i}","population":{i}}}"#,
                        i % 10 == 0
                    )
                    .into(),
                })
            })
            .collect();
        done += pending.len();
        // Polled together: a write reaches the writer thread when its future is first polled,
        // so awaiting them one by one would keep one write in flight, not IN_FLIGHT.
        for r in block_on(futures::future::join_all(pending)) {
            r.into_result().unwrap();
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[test]
#[ignore = "a benchmark: run on demand with --release --ignored --nocapture"]
fn import_rate() {
    let n: usize = std::env::var("WEFT_EMBEDDED_BENCH_IMPORT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("weft_embedded-import");
    let _ = std::fs::remove_dir_all(&base);
    let mut rates = vec![];
    for (ids, id) in [
        (
            "time-ordered ids (as the host gives)",
            Id::time_ordered as fn() -> Id,
        ),
        ("random ids", Id::random),
    ] {
        let embedded = load(&base, "weft_embedded").expect("the embedded library");
        let rate = import(&embedded, n, id);
        drop(embedded);
        let _ = std::fs::remove_dir_all(&base);
        println!("embedded (durable), {ids}: {n} things at {rate:.0} things/s");
        rates.push((ids, rate));
    }
    match load(&base, "weft_dev_memory") {
        Some(memory) => {
            let baseline = import(&memory, n, Id::time_ordered);
            println!("dev-memory: {n} things at {baseline:.0} things/s");
            for (ids, rate) in rates {
                println!("embedded/dev-memory, {ids}: {:.3}", rate / baseline);
            }
        }
        None => {
            println!("dev-memory: not built (cargo build --release -p weft-dev-memory), skipped")
        }
    }
}
