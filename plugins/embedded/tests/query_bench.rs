//! On demand: the cost of selective filtered queries and of an aggregate as the class grows,
//! through the loaded `.so`s, embedded (indexes) against dev-memory (scan) in the same run:
//!
//! `cargo test --release -p weft-embedded --test query_bench -- --ignored --nocapture`
//!
//! Sizes: 10,000 and `WEFT_EMBEDDED_BENCH_LARGE` objects (default 100,000). Prints each query's
//! mean time per size and the ratio large/small. dev-memory's library must be built
//! (`cargo build --release -p weft-dev-memory`); it is skipped when missing.
//! `WEFT_EMBEDDED_BENCH_ONLY=<text>` times only the queries whose name holds the text;
//! `WEFT_EMBEDDED_BENCH_REUSE=1` keeps the embedded stores a run before filled (same sizes).

mod common;

use std::time::{Duration, Instant};

use common::load;
use futures::executor::block_on;
use weft_connector_tests::weft_plugin_api::{
    ConnectorBox, Id, ObjectKind, ObjectQuery, StoredObject,
};

/// The countries the cities refer to (`inCountry`), named `k0`…: city `i` is in country `i % 100`.
const COUNTRIES: usize = 100;

/// The id of country `j` (created by [`fill`], owned by another owner than the cities).
fn country(j: usize) -> Id {
    let mut id = [0xc0; 16];
    id[8..].copy_from_slice(&(j as u64).to_be_bytes());
    Id(id)
}

fn fill(conn: &ConnectorBox, n: usize) {
    let countries: Vec<_> = (0..COUNTRIES)
        .map(|j| {
            conn.create_object(StoredObject {
                kind: ObjectKind::Thing,
                id: country(j),
                class: "Country".into(),
                context: "".into(),
                owner: Id([7; 16]),
                created_ms: -1,
                updated_ms: -1,
                properties_json: format!(r#"{{"name":"k{j}"}}"#).into(),
            })
        })
        .collect();
    for p in countries {
        block_on(p).unwrap();
    }
    let mut done = 0;
    while done < n {
        let pending: Vec<_> = (done..(done + 1000).min(n))
            .map(|i| {
                conn.create_object(StoredObject {
                    kind: ObjectKind::Thing,
                    id: Id::random(),
                    class: "City".into(),
                    context: "".into(),
                    owner: Id::default(),
                    created_ms: i as i64,
                    updated_ms: i as i64,
                    properties_json: format!(
                        r#"{{"name":"c{i}","population":{i},"group":{},"inCountry":{{"$cref":"{}","type":"Thing"}}}}"#,
                        i % 100,
                        country(i % COUNTRIES)
                    )
                    .into(),
                })
            })
            .collect();
        done += pending.len();
        for p in pending {
            block_on(p).unwrap();
        }
    }
}

/// Mean time of `f` over at most 2 s or 200 runs.
fn time(mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    let mut runs = 0u32;
    while runs < 200 && start.elapsed() < Duration::from_secs(2) {
        f();
        runs += 1;
    }
    start.elapsed() / runs.max(1)
}

fn query(filter: String) -> ObjectQuery {
    ObjectQuery {
        class: "City".into(),
        filter_json: filter.into(),
        ..ObjectQuery::all(ObjectKind::Thing, 10)
    }
}

#[test]
#[ignore]
fn selective_queries_do_not_grow_with_the_class() {
    let large: usize = std::env::var("WEFT_EMBEDDED_BENCH_LARGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("weft_embedded-bench");
    let reuse = std::env::var_os("WEFT_EMBEDDED_BENCH_REUSE").is_some();
    if !reuse {
        let _ = std::fs::remove_dir_all(&base);
    }
    println!("| connector | query | 10,000 | {large} | ratio |");
    println!("|---|---|---|---|---|");
    for lib in ["weft_embedded", "weft_dev_memory"] {
        let mut rows: Vec<(String, Vec<Duration>)> = vec![];
        for (i, n) in [10_000usize, large].into_iter().enumerate() {
            let dir = base.join(format!("{lib}-{n}"));
            let filled = reuse && dir.join("weft.redb").exists();
            let Some(conn) = load(&dir, lib) else {
                println!("| {lib} | (library not built: skipped) | | | |");
                break;
            };
            if !filled {
                fill(&conn, n);
            }
            let conn = std::sync::Arc::new(conn);
            let middle = n / 2;
            let queries: Vec<(String, Box<dyn Fn()>)> = vec![
                (
                    "Get, Equal on name (1 match)".into(),
                    Box::new({
                        let q = query(format!(
                            r#"{{"operator":"Equal","path":["name"],"valueString":"c{middle}"}}"#
                        ));
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            assert_eq!(block_on(conn.query_objects(q.clone())).unwrap().total, 1)
                        }
                    }),
                ),
                (
                    "Get, range on population (10 matches)".into(),
                    Box::new({
                        let q = query(format!(
                            r#"{{"operator":"GreaterThanEqual","path":["population"],"valueInt":{}}}"#,
                            n - 10
                        ));
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            assert_eq!(block_on(conn.query_objects(q.clone())).unwrap().total, 10)
                        }
                    }),
                ),
                (
                    "Get, a page without a filter (10 newest of the class)".into(),
                    Box::new({
                        let q = query(String::new());
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            let page = block_on(conn.query_objects(q.clone())).unwrap();
                            assert_eq!((page.objects.len(), page.total), (10, n as u64));
                        }
                    }),
                ),
                (
                    "List, page 100 of one owner's things (offset 990)".into(),
                    Box::new({
                        let q = ObjectQuery {
                            owners: vec![Id::default()].into(),
                            offset: 990,
                            ..ObjectQuery::all(ObjectKind::Thing, 10)
                        };
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            let page = block_on(conn.query_objects(q.clone())).unwrap();
                            assert_eq!((page.objects.len(), page.total), (10, n as u64));
                        }
                    }),
                ),
                (
                    "GetMeta, Equal on name (count, population)".into(),
                    Box::new({
                        let q = query(format!(
                            r#"{{"operator":"Equal","path":["name"],"valueString":"c{middle}"}}"#
                        ));
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            block_on(
                                conn.aggregate(
                                    q.clone(),
                                    r#"{"properties":["population"]}"#.into(),
                                ),
                            )
                            .unwrap();
                        }
                    }),
                ),
                (
                    "GetMeta, whole class (count only)".into(),
                    Box::new({
                        let q = query(String::new());
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            block_on(conn.aggregate(q.clone(), "{}".into())).unwrap();
                        }
                    }),
                ),
                (
                    "Get, a class and an owner (a non-root key's Get, 10 newest)".into(),
                    Box::new({
                        let q = ObjectQuery {
                            owners: vec![Id::default()].into(),
                            ..query(String::new())
                        };
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            let page = block_on(conn.query_objects(q.clone())).unwrap();
                            assert_eq!((page.objects.len(), page.total), (10, n as u64));
                        }
                    }),
                ),
                (
                    "Get, NotEqual on group (10 newest of 99 %)".into(),
                    Box::new({
                        let q = query(
                            r#"{"operator":"NotEqual","path":["group"],"valueInt":5}"#.into(),
                        );
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            let page = block_on(conn.query_objects(q.clone())).unwrap();
                            assert_eq!(
                                (page.objects.len(), page.total),
                                (10, (n - n / 100) as u64)
                            );
                        }
                    }),
                ),
                (
                    "Get, Not of Equal on name (10 newest of all but one)".into(),
                    Box::new({
                        let q = query(format!(
                            r#"{{"operator":"Not","operands":[{{"operator":"Equal","path":["name"],"valueString":"c{middle}"}}]}}"#
                        ));
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            let page = block_on(conn.query_objects(q.clone())).unwrap();
                            assert_eq!((page.objects.len(), page.total), (10, n as u64 - 1));
                        }
                    }),
                ),
                (
                    "GetMeta, whole class (count, population and group: integer statistics)".into(),
                    Box::new({
                        let q = query(String::new());
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            let meta = block_on(conn.aggregate(
                                q.clone(),
                                r#"{"properties":["population","group"]}"#.into(),
                            ))
                            .unwrap();
                            let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
                            let population = &meta["groups"][0]["properties"]["population"];
                            assert_eq!(population["highest"], (n - 1) as f64);
                            assert_eq!(population["sum"], (n * (n - 1) / 2) as f64);
                        }
                    }),
                ),
                (
                    "GetMeta, whole class (count, population)".into(),
                    Box::new({
                        let q = query(String::new());
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            block_on(
                                conn.aggregate(
                                    q.clone(),
                                    r#"{"properties":["population"]}"#.into(),
                                ),
                            )
                            .unwrap();
                        }
                    }),
                ),
                (
                    "Get, Equal through a reference (10 newest whose Country has the name, 1 %)"
                        .into(),
                    Box::new({
                        let q = query(
                            r#"{"operator":"Equal","path":["inCountry","Country","name"],"valueString":"k7"}"#
                                .into(),
                        );
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            let page = block_on(conn.query_objects(q.clone())).unwrap();
                            assert_eq!(
                                (page.objects.len(), page.total),
                                (10, (n / COUNTRIES) as u64)
                            );
                        }
                    }),
                ),
                (
                    "Get, Not of Not of that Equal through a reference (the same matches, unplanned: a read of the class, as every filter through a reference before format version 8)"
                        .into(),
                    Box::new({
                        let q = query(
                            r#"{"operator":"Not","operands":[{"operator":"Not","operands":[{"operator":"Equal","path":["inCountry","Country","name"],"valueString":"k7"}]}]}"#
                                .into(),
                        );
                        let conn = std::sync::Arc::clone(&conn);
                        move || {
                            let page = block_on(conn.query_objects(q.clone())).unwrap();
                            assert_eq!(
                                (page.objects.len(), page.total),
                                (10, (n / COUNTRIES) as u64)
                            );
                        }
                    }),
                ),
            ];
            // `WEFT_EMBEDDED_BENCH_ONLY`: time only the queries whose name holds it.
            let only = std::env::var("WEFT_EMBEDDED_BENCH_ONLY").unwrap_or_default();
            let queries: Vec<_> = queries
                .into_iter()
                .filter(|(name, _)| name.contains(only.as_str()))
                .collect();
            for (j, (name, f)) in queries.iter().enumerate() {
                let t = time(f);
                if i == 0 {
                    rows.push((name.clone(), vec![t]));
                } else {
                    rows[j].1.push(t);
                }
            }
        }
        for (name, ts) in rows {
            if ts.len() == 2 {
                println!(
                    "| {lib} | {name} | {:.3} ms | {:.3} ms | {:.1} |",
                    ts[0].as_secs_f64() * 1e3,
                    ts[1].as_secs_f64() * 1e3,
                    ts[1].as_secs_f64() / ts[0].as_secs_f64()
                );
            }
        }
    }
}
