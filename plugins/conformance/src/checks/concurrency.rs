//! Concurrent writers: no acknowledged write may be lost, every write stays atomic.
//!
//! Writers run on real OS threads (each driving its own futures), some also with many calls in
//! flight at once, against one connector.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::resume_unwind;

use futures::executor::block_on;
use futures::future::join_all;
use serde_json::Map;
use serde_json::{json, Value};
use weft_plugin_api::{
    Capabilities, DocumentName, ErrorKind, Id, ObjectKind, PluginResult, StoredKey, StoredObject,
};

use crate::support::*;
use crate::Subject;

const THREADS: usize = 8;
const CREATES_PER_THREAD: usize = 50;
const UPDATES_PER_THREAD: usize = 10;

/// Runs `f(thread index)` on `n` threads at once and answers their results in thread order;
/// a panicking thread fails the check with its panic.
fn on_threads<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|t| {
                let (f, barrier) = (&f, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    f(t)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| resume_unwind(p)))
            .collect()
    })
}

/// 8 threads × 50 `create_object` calls at once (half awaited one by one with a read of each
/// write, half all in flight together): every acknowledged create is readable, field for field,
/// and the listing counts all 400, each once, newest first.
pub async fn check_concurrent_creates(s: &Subject) {
    let c = Conn::new(s);
    let per_thread: Vec<Vec<(StoredObject, PluginResult<()>)>> = on_threads(THREADS, |t| {
        let objects: Vec<StoredObject> = (0..CREATES_PER_THREAD)
            .map(|i| {
                labelled(
                    ObjectKind::Thing,
                    "City",
                    &format!("t{t}-{i}"),
                    T0 + (i * THREADS + t) as i64,
                    json!({"thread": t, "i": i}),
                )
            })
            .collect();
        block_on(async {
            let half = CREATES_PER_THREAD / 2;
            let mut out = vec![];
            for o in &objects[..half] {
                let r = c.try_create(o).await;
                if r.is_ok() {
                    match c.try_get(o.kind, o.id).await {
                        Ok(Some(_)) => {}
                        other => c.fail(format!(
                            "under concurrent writers, create_object({}) was acknowledged but an \
                             immediate get_object from the same writer answered {}",
                            describe(o),
                            dbg(&other)
                        )),
                    }
                }
                out.push((o.clone(), r));
            }
            let rest = &objects[half..];
            let results = join_all(rest.iter().map(|o| c.try_create(o))).await;
            out.extend(rest.iter().cloned().zip(results));
            out
        })
    });
    let mut all = vec![];
    for (o, r) in per_thread.into_iter().flatten() {
        if let Err(e) = r {
            c.fail(format!(
                "create_object({}) with a fresh id failed under {THREADS} concurrent writers with \
                 {:?}: {}",
                describe(&o),
                e.kind,
                e.message
            ));
        }
        all.push(o);
    }
    let ids: Vec<Id> = all.iter().map(|o| o.id).collect();
    let got = c.get_many(ObjectKind::Thing, &ids).await;
    let lost: Vec<String> = all
        .iter()
        .zip(&got)
        .filter(|(_, g)| g.is_none())
        .map(|(o, _)| label(o))
        .collect();
    ensure!(
        c,
        lost.is_empty(),
        "{} of {} acknowledged concurrent creates are lost (get_objects answers None): {}",
        lost.len(),
        all.len(),
        short(&format!("{lost:?}"))
    );
    for (o, g) in all.iter().zip(&got) {
        c.same_object(
            "an object created concurrently, read back with get_objects",
            o,
            g.as_ref().unwrap(),
        );
    }
    let page = c.query(&query(ObjectKind::Thing)).await;
    let want = labels(&newest_first(&all));
    c.same_page(
        "query_objects after 400 concurrent creates (each once, newest first)",
        &page,
        &want,
        all.len() as u64,
    );
}

/// 8 threads × 10 `update_object` calls on **one** object: every update is acknowledged, the
/// final version is some writer's last update, and (with `HISTORY`) the history holds exactly
/// the 80 earlier versions — the original and every update but the last, none lost or
/// duplicated — in an order consistent with each writer's own sequence.
pub async fn check_concurrent_updates_of_one_object(s: &Subject) {
    let c = Conn::new(s);
    let original = labelled(
        ObjectKind::Thing,
        "Counter",
        "original",
        T0,
        json!({"writer": -1}),
    );
    c.create(&original).await;
    let results: Vec<Vec<(String, PluginResult<()>)>> = on_threads(THREADS, |t| {
        block_on(async {
            let mut out = vec![];
            for i in 0..UPDATES_PER_THREAD {
                let l = format!("t{t}-{i}");
                let v = with_properties(
                    &original,
                    T0 + 1 + (t * UPDATES_PER_THREAD + i) as i64,
                    json!({"label": l, "writer": t, "seq": i}),
                );
                out.push((l, c.try_update(&v).await));
            }
            out
        })
    });
    let mut written = vec![];
    for (l, r) in results.into_iter().flatten() {
        if let Err(e) = r {
            c.fail(format!(
                "update_object ({l}) of an existing object failed under {THREADS} concurrent \
                 writers with {:?}: {}",
                e.kind, e.message
            ));
        }
        written.push(l);
    }
    let current = match c.get(ObjectKind::Thing, original.id).await {
        Some(o) => o,
        None => c.fail("after concurrent updates, get_object answers None for the updated object"),
    };
    let last_writes: BTreeSet<String> = (0..THREADS)
        .map(|t| format!("t{t}-{}", UPDATES_PER_THREAD - 1))
        .collect();
    ensure!(
        c,
        last_writes.contains(&label(&current)),
        "after concurrent updates the object holds {:?}, but the final version must be one \
         writer's last update (one of {last_writes:?}): a later write was overwritten by an \
         earlier one",
        label(&current)
    );
    if !s.has(Capabilities::HISTORY) {
        return;
    }
    let h = c.history(&original).await;
    let mut versions: Vec<String> = vec![label(&current)];
    versions.extend(h.versions.iter().map(|v| label(&v.object)));
    let n_updates = THREADS * UPDATES_PER_THREAD;
    ensure!(
        c,
        h.versions.len() == n_updates,
        "after {n_updates} acknowledged concurrent updates of one object, object_history must \
         hold {n_updates} versions (one archived per update), got {}",
        h.versions.len()
    );
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for l in written
        .iter()
        .chain(std::iter::once(&"original".to_string()))
    {
        *want.entry(l.clone()).or_default() += 1;
    }
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for l in &versions {
        *got.entry(l.clone()).or_default() += 1;
    }
    if got != want {
        let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let doubled: Vec<(&String, &usize)> = got.iter().filter(|(_, n)| **n > 1).collect();
        c.fail(format!(
            "after concurrent updates, the current version plus the history must be the original \
             and every update exactly once; lost versions: {missing:?}; versions seen more than \
             once: {doubled:?}"
        ));
    }
    // Newest first: each writer's updates must appear with decreasing sequence numbers.
    let mut last_seq: BTreeMap<i64, i64> = BTreeMap::new();
    let mut bags: Vec<Value> = vec![Value::Object(current.properties())];
    bags.extend(
        h.versions
            .iter()
            .map(|v| Value::Object(v.object.properties())),
    );
    for bag in &bags {
        let (Some(w), Some(seq)) = (bag["writer"].as_i64(), bag["seq"].as_i64()) else {
            continue;
        };
        if let Some(prev) = last_seq.insert(w, seq) {
            ensure!(
                c,
                seq < prev,
                "object_history after concurrent updates is not in the order the writes happened: \
                 writer {w}'s update {seq} is listed as newer than its own later update {prev}"
            );
        }
    }
}

/// 4 threads × 25 `add_key` calls under one parent while other threads read: every child is
/// stored once and listed by `key_children`, oldest first.
pub async fn check_concurrent_key_adds(s: &Subject) {
    let c = Conn::new(s);
    let root = key(None, T0, "root@example.org");
    c.add_key(&root).await;
    let writers = 4;
    let per = 25;
    let results: Vec<Vec<(StoredKey, PluginResult<()>)>> = on_threads(writers + 2, |t| {
        block_on(async {
            if t >= writers {
                for _ in 0..per {
                    let _ = c.try_children(root.id).await;
                    let _ = c.c.root_keys().await;
                }
                return vec![];
            }
            let keys: Vec<StoredKey> = (0..per)
                .map(|i| {
                    key(
                        Some(root.id),
                        T0 + 1 + (i * writers + t) as i64,
                        &format!("t{t}-{i}"),
                    )
                })
                .collect();
            let rs = join_all(keys.iter().map(|k| c.try_add_key(k))).await;
            keys.into_iter().zip(rs).collect()
        })
    });
    let mut all = vec![];
    for (k, r) in results.into_iter().flatten() {
        if let Err(e) = r {
            c.fail(format!(
                "add_key({}) failed under concurrent writers with {:?}: {}",
                describe_key(&k),
                e.kind,
                e.message
            ));
        }
        all.push(k);
    }
    all.sort_by_key(|k| k.created_ms);
    let want: Vec<Id> = all.iter().map(|k| k.id).collect();
    let got: Vec<Id> = c.children(root.id).await.iter().map(|k| k.id).collect();
    let got_set: BTreeSet<&Id> = got.iter().collect();
    let lost = want.iter().filter(|id| !got_set.contains(id)).count();
    ensure!(
        c,
        lost == 0 && got.len() == want.len(),
        "after {} acknowledged concurrent add_key calls under one parent, key_children lists {} \
         keys ({lost} acknowledged keys missing)",
        want.len(),
        got.len()
    );
    c.same(
        "key_children after concurrent adds: oldest first",
        &got,
        &want,
    );
}

/// Compare-and-set under contention: 8 writers racing with the same expected version — exactly
/// one wins, the others get `Conflict`; then 4 writers each performing 10 read-modify-write
/// increments with retries end at exactly 40 increments and version 41 (no lost update).
pub async fn check_concurrent_document_writes(s: &Subject) {
    let c = Conn::new(s);
    let d = DocumentName::Ontology;
    let results = on_threads(THREADS, |t| {
        block_on(c.try_put_document(d, &json!({"counter": 0, "winner": t}).to_string(), 0))
    });
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .map(|(t, _)| t)
        .collect();
    for (t, r) in results.iter().enumerate() {
        match r {
            Ok(v) if *v != 1 => c.fail(format!(
                "put_document(Ontology, expected 0) by writer {t} answered version {v}, expected 1"
            )),
            Err(e) if e.kind != ErrorKind::Conflict => c.fail(format!(
                "put_document(Ontology, expected 0) racing with {} others failed with {:?} ({}); \
                 the losers of a compare-and-set must get Conflict",
                THREADS - 1,
                e.kind,
                e.message
            )),
            _ => {}
        }
    }
    ensure!(
        c,
        winners.len() == 1,
        "{THREADS} writers raced put_document(Ontology, expected version 0): exactly one may \
         succeed, but {} did (writers {winners:?}) — the compare-and-set is not atomic",
        winners.len()
    );
    let doc = c.get_document(d).await;
    let stored: Value = serde_json::from_str(&doc.json).unwrap_or(Value::Null);
    ensure!(
        c,
        doc.version == 1 && stored["winner"].as_u64() == Some(winners[0] as u64),
        "after the race, get_document must answer version 1 with the winner's document (writer \
         {}), got version {} with {}",
        winners[0],
        doc.version,
        short(&doc.json)
    );

    let writers = 4;
    let increments = 10;
    let successes: Vec<Vec<u64>> = on_threads(writers, |t| {
        block_on(async {
            let mut versions = vec![];
            let mut attempts = 0;
            while versions.len() < increments {
                attempts += 1;
                if attempts > 100_000 {
                    c.fail("read-modify-write increments of a document made no progress in 100000 attempts");
                }
                let cur = c.get_document(d).await;
                let n = serde_json::from_str::<Value>(&cur.json)
                    .ok()
                    .and_then(|v| v["counter"].as_u64())
                    .unwrap_or(0);
                let next = json!({"counter": n + 1, "by": t}).to_string();
                match c.try_put_document(d, &next, cur.version).await {
                    Ok(v) => versions.push(v),
                    Err(e) if e.kind == ErrorKind::Conflict => {}
                    Err(e) => c.fail(format!(
                        "put_document(Ontology, expected {}) under contention failed with {:?} ({}); \
                         only Conflict is expected",
                        cur.version, e.kind, e.message
                    )),
                }
            }
            versions
        })
    });
    let total = writers * increments;
    let mut all: Vec<u64> = successes.into_iter().flatten().collect();
    all.sort_unstable();
    let want: Vec<u64> = (2..2 + total as u64).collect();
    c.same(
        "the versions answered to successful concurrent put_document calls (each once)",
        &all,
        &want,
    );
    let doc = c.get_document(d).await;
    let counter = serde_json::from_str::<Value>(&doc.json)
        .ok()
        .and_then(|v| v["counter"].as_u64());
    ensure!(
        c,
        doc.version == 1 + total as u64 && counter == Some(total as u64),
        "after {total} successful read-modify-write increments with compare-and-set, the document \
         must be version {} with counter {total}, got version {} with counter {counter:?}: an \
         update was lost",
        1 + total,
        doc.version
    );
}

/// Applies `change(properties, i)` for `i` in `0..n` to one object, each time by
/// read-modify-write with `get_object_versioned` + `update_object_if`, retrying on `Conflict`.
/// Answers the versions the successful writes answered. Fails on any other error, on a new
/// version that is not the expected one plus 1, or when it makes no progress.
async fn read_modify_write(
    c: &Conn<'_>,
    o: &StoredObject,
    n: usize,
    change: impl Fn(&mut Map<String, Value>, usize),
) -> Vec<u64> {
    let mut versions = vec![];
    let mut attempts = 0;
    while versions.len() < n {
        attempts += 1;
        if attempts > 100_000 {
            c.fail(format!(
                "read-modify-write of {} with get_object_versioned + update_object_if made no \
                 progress in 100000 attempts ({} of {n} writes done)",
                describe(o),
                versions.len()
            ));
        }
        let current = c.current_version(o).await;
        // Widen the window between the read and the compare-and-set, so that a connector that
        // does not compare and write in one atomic step is caught losing an update.
        std::thread::yield_now();
        let mut props = current.object.properties();
        change(&mut props, versions.len());
        let next = with_properties(
            &current.object,
            current.object.updated_ms + 1,
            Value::Object(props),
        );
        match c.try_update_if(&next, current.version).await {
            Ok(v) if v == current.version + 1 => versions.push(v),
            Ok(v) => c.fail(format!(
                "update_object_if(expected version {}) answered version {v}, but the new version \
                 is the expected one plus 1",
                current.version
            )),
            Err(e) if e.kind == ErrorKind::Conflict => {}
            Err(e) => c.fail(format!(
                "update_object_if(expected version {}) under contention failed with {:?} ({}); \
                 only Conflict is expected",
                current.version, e.kind, e.message
            )),
        }
    }
    versions
}

/// The versions answered to the successful writes of all writers: each of 2..=1+`writes`
/// exactly once (no two writers won the same compare-and-set).
fn each_version_once(c: &Conn<'_>, answered: Vec<Vec<u64>>, writes: usize) {
    let mut all: Vec<u64> = answered.into_iter().flatten().collect();
    all.sort_unstable();
    let want: Vec<u64> = (2..2 + writes as u64).collect();
    c.same(
        "the versions answered to successful concurrent update_object_if calls (each once)",
        &all,
        &want,
    );
}

/// 8 threads × 10 read-modify-write increments of one counter property with
/// `get_object_versioned` + `update_object_if`, retried on `Conflict`: the counter ends at
/// exactly 80 and the object at version 81 (no lost update), and every version 2..=81 was
/// answered to exactly one writer.
pub async fn check_concurrent_versioned_counter(s: &Subject) {
    if !requires(
        s,
        Capabilities::VERSIONED_WRITES,
        "check_concurrent_versioned_counter",
    ) {
        return;
    }
    let c = Conn::new(s);
    let o = labelled(
        ObjectKind::Thing,
        "Counter",
        "counter",
        T0,
        json!({"counter": 0}),
    );
    c.create(&o).await;
    let answered = on_threads(THREADS, |_| {
        block_on(read_modify_write(&c, &o, UPDATES_PER_THREAD, |props, _| {
            let n = props.get("counter").and_then(Value::as_u64).unwrap_or(0);
            props.insert("counter".into(), json!(n + 1));
        }))
    });
    let total = THREADS * UPDATES_PER_THREAD;
    each_version_once(&c, answered, total);
    let end = c.current_version(&o).await;
    let counter = end.object.properties().get("counter").cloned();
    ensure!(
        c,
        end.version == 1 + total as u64 && counter == Some(json!(total)),
        "after {total} successful read-modify-write increments with update_object_if, the object \
         must be at version {} with counter {total}, got version {} with counter {counter:?}: an \
         update was lost",
        1 + total,
        end.version
    );
}

/// 8 threads × 10 read-modify-write appends to one array property (`"t<thread>-<i>"`) with
/// `get_object_versioned` + `update_object_if`, retried on `Conflict`: the array ends with all
/// 80 distinct items, each once, and each writer's items in its own order.
pub async fn check_concurrent_versioned_appends(s: &Subject) {
    if !requires(
        s,
        Capabilities::VERSIONED_WRITES,
        "check_concurrent_versioned_appends",
    ) {
        return;
    }
    let c = Conn::new(s);
    let o = labelled(ObjectKind::Thing, "Log", "log", T0, json!({"items": []}));
    c.create(&o).await;
    let answered = on_threads(THREADS, |t| {
        block_on(read_modify_write(&c, &o, UPDATES_PER_THREAD, |props, i| {
            let mut items = match props.remove("items") {
                Some(Value::Array(items)) => items,
                _ => vec![],
            };
            items.push(json!(format!("t{t}-{i}")));
            props.insert("items".into(), Value::Array(items));
        }))
    });
    let total = THREADS * UPDATES_PER_THREAD;
    each_version_once(&c, answered, total);
    let end = c.current_version(&o).await;
    let items: Vec<String> = match end.object.properties().get("items") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().unwrap_or("?").to_string())
            .collect(),
        other => c.fail(format!(
            "after concurrent appends the array property reads as {}",
            dbg(&other)
        )),
    };
    let distinct: BTreeSet<&String> = items.iter().collect();
    let want: BTreeSet<String> = (0..THREADS)
        .flat_map(|t| (0..UPDATES_PER_THREAD).map(move |i| format!("t{t}-{i}")))
        .collect();
    let missing: Vec<&String> = want.iter().filter(|w| !distinct.contains(w)).collect();
    ensure!(
        c,
        items.len() == total && distinct.len() == total && missing.is_empty(),
        "after {total} successful read-modify-write appends with update_object_if, the array \
         must hold {total} distinct items, got {} items ({} distinct); missing: {}",
        items.len(),
        distinct.len(),
        short(&format!("{missing:?}"))
    );
    for t in 0..THREADS {
        let own: Vec<&String> = items
            .iter()
            .filter(|l| l.starts_with(&format!("t{t}-")))
            .collect();
        let want: Vec<String> = (0..UPDATES_PER_THREAD)
            .map(|i| format!("t{t}-{i}"))
            .collect();
        let want: Vec<&String> = want.iter().collect();
        c.same(
            &format!("writer {t}'s appended items, in the array's order"),
            &own,
            &want,
        );
    }
    ensure!(
        c,
        end.version == 1 + total as u64,
        "after {total} successful appends the object must be at version {}, got {}",
        1 + total,
        end.version
    );
}

/// Two threads change two different properties of one object (`a` and `b`, 25 times each) by
/// read-modify-write with `update_object_if`: neither overwrites the other's change, so both
/// last values are kept and the version counts all 50 writes.
pub async fn check_concurrent_versioned_disjoint_properties(s: &Subject) {
    if !requires(
        s,
        Capabilities::VERSIONED_WRITES,
        "check_concurrent_versioned_disjoint_properties",
    ) {
        return;
    }
    let c = Conn::new(s);
    let o = labelled(
        ObjectKind::Thing,
        "Pair",
        "pair",
        T0,
        json!({"a": 0, "b": 0}),
    );
    c.create(&o).await;
    let per = 25;
    let answered = on_threads(2, |t| {
        let name = if t == 0 { "a" } else { "b" };
        block_on(read_modify_write(&c, &o, per, |props, i| {
            props.insert(name.into(), json!(i + 1));
        }))
    });
    each_version_once(&c, answered, 2 * per);
    let end = c.current_version(&o).await;
    let props = end.object.properties();
    ensure!(
        c,
        props.get("a") == Some(&json!(per)) && props.get("b") == Some(&json!(per)),
        "two writers each set one property {per} times with update_object_if (a and b): both \
         last values ({per}) must be kept, got a = {} and b = {}: one writer's change was \
         overwritten",
        dbg(&props.get("a")),
        dbg(&props.get("b"))
    );
}
