//! `get_object` through the loaded plugin library against the same connector linked statically.
//!
//! Run with:
//!
//! ```text
//! cargo bench -p weft-dev-memory --bench get
//! ```
//!
//! `cargo bench` builds this package's library in the `bench` profile (which inherits `release`)
//! with both its crate types: the one rustc invocation that makes the rlib linked into this
//! benchmark also writes the plugin, to `target/release/deps/libweft_dev_memory.so`. Cargo does
//! *not* copy it to `target/release/libweft_dev_memory.so` (it only does that for libraries
//! named on the command line, e.g. `cargo build --release -p weft-dev-memory`). So the benchmark
//! looks next to its own executable (`target/<profile>/deps/get-<hash>`): first in `deps/`, the
//! copy built together with the statically linked one, then in `../` (a possibly older
//! `cargo build` output). Set `WEFT_DEV_MEMORY_SO=/path/to/libweft_dev_memory.so` to measure
//! another file.
//!
//! Both connectors are opened the way the host opens them (`open_connector` for the library,
//! `connector_parts` for the linked one) and go through the same ABI object (`ConnectorBox`, the
//! `Guarded` adapter with `catch_unwind`, over a shared instance): the difference measured is
//! the call into a separately loaded library, with its own copy of std and of weft-plugin-api. Rounds alternate between the two (and which goes
//! first), and the median of each is reported with the ratio `so/static`, goal ≤ 1.10. It prints
//! numbers and asserts nothing.

use std::future::Future;
use std::hint::black_box;
use std::path::PathBuf;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use abi_stable::std_types::{ROption, RResult, RString};
use weft_dev_memory::DevMemory;
use weft_plugin_api::{connector_parts, ConnectorBox, HostLogger, Id, ObjectKind, StoredObject};

const OBJECTS: usize = 10_000;
const ROUNDS: usize = 7;
const CALLS: usize = 200_000;
const GOAL: f64 = 1.10;

/// A tiny executor: dev-memory's futures are ready on the first poll; anything else falls back
/// to `block_on`.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(v) => v,
        Poll::Pending => futures::executor::block_on(future),
    }
}

fn library_path() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("WEFT_DEV_MEMORY_SO") {
        return Ok(PathBuf::from(p));
    }
    let file = format!(
        "{}weft_dev_memory{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let deps = exe
        .parent()
        .ok_or("this executable has no parent directory")?;
    let candidates: Vec<PathBuf> = [deps.join(&file)]
        .into_iter()
        .chain(deps.parent().map(|profile| profile.join(&file)))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "{file} not found (looked at {candidates:?}); run `cargo bench -p weft-dev-memory --bench get`, \
                 which builds it, or set WEFT_DEV_MEMORY_SO"
            )
        })
}

fn object(i: usize) -> StoredObject {
    StoredObject {
        kind: ObjectKind::Thing,
        id: Id::random(),
        class: RString::from("City"),
        context: RString::from("http://example.org"),
        owner: Id([7; 16]),
        created_ms: 1_500_000_000_000 + i as i64,
        updated_ms: 1_500_000_000_000 + i as i64,
        properties_json: RString::from(format!(
            r#"{{"name":"City {i}","population":{},"inCountry":{{"$cref":"{}","locationUrl":"http://localhost/","type":"thing"}}}}"#,
            i * 37,
            Id([1; 16])
        )),
    }
}

fn fill(connector: &ConnectorBox, objects: &[StoredObject]) -> Result<(), String> {
    for o in objects {
        run(connector.create_object(o.clone()))
            .into_result()
            .map_err(|e| format!("create_object: {e}"))?;
    }
    // Both must answer the same object.
    match run(connector.get_object(ObjectKind::Thing, objects[0].id)) {
        RResult::ROk(ROption::RSome(o)) if o == objects[0] => Ok(()),
        other => Err(format!("get_object answered {other:?}")),
    }
}

/// Nanoseconds per `get_object` over `CALLS` calls.
fn time_round(connector: &ConnectorBox, ids: &[Id]) -> f64 {
    let start = Instant::now();
    for i in 0..CALLS {
        let id = ids[i % ids.len()];
        black_box(run(connector.get_object(ObjectKind::Thing, black_box(id))));
    }
    start.elapsed().as_nanos() as f64 / CALLS as f64
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), String> {
    let path = library_path()?;
    let plugin = weft_connector_tests::loader::load(&path).map_err(|e| e.to_string())?;
    let loaded = plugin
        .open_connector("{}", HostLogger::discard())
        .map_err(|e| format!("open_connector: {e}"))?
        .connector;
    let linked = connector_parts(DevMemory::new()).connector;

    let objects: Vec<StoredObject> = (0..OBJECTS).map(object).collect();
    fill(&loaded, &objects)?;
    fill(&linked, &objects)?;
    // Visit ids in a scattered order, the same for both.
    let mut ids: Vec<Id> = objects.iter().map(|o| o.id).collect();
    ids.sort();

    // Warm up both (caches, page faults), not counted.
    time_round(&loaded, &ids);
    time_round(&linked, &ids);

    let (mut so, mut st) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            so.push(time_round(&loaded, &ids));
            st.push(time_round(&linked, &ids));
        } else {
            st.push(time_round(&linked, &ids));
            so.push(time_round(&loaded, &ids));
        }
    }
    let (so_median, st_median) = (median(&so), median(&st));
    let ratio = so_median / st_median;
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "dev-memory get_object: {OBJECTS} objects, {ROUNDS} rounds x {CALLS} calls each, alternating"
    );
    println!(
        "  loaded .so : {so_median:8.1} ns/call (median; rounds {})",
        fmt(&so)
    );
    println!(
        "  static     : {st_median:8.1} ns/call (median; rounds {})",
        fmt(&st)
    );
    println!(
        "  ratio so/static: {ratio:.3} (goal ≤ {GOAL:.2}: {})",
        if ratio <= GOAL { "met" } else { "NOT met" }
    );
    println!("  library: {}", path.display());
    Ok(())
}
