//! After an ontology change, the GraphQL schema is built once however many requests arrive
//! during the build (single flight), and the build does not run on the async workers.
use std::sync::Arc;

use serde_json::json;
use weft_core::{ConnectorHandle, Core, CoreConfig};
use weft_graphql::Graphql;

async fn core() -> Arc<Core> {
    let conn = ConnectorHandle::from_box(
        weft_plugin_api::connector_box(weft_dev_memory::DevMemory::new()),
        "dev-memory",
        weft_dev_memory::CAPABILITIES,
    );
    Arc::new(Core::new(conn, CoreConfig::default(), vec![]))
}

async fn add_class(core: &Core, name: &str) {
    core.add_class(
        weft_plugin_api::ObjectKind::Thing,
        serde_json::from_value(json!({"class": name, "properties": [
            {"name": "name", "@dataType": ["string"]}]}))
        .unwrap(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_after_a_change_build_the_schema_once() {
    let core = core().await;
    let graphql = Arc::new(Graphql::new());
    for (round, class) in ["City", "River", "Person"].into_iter().enumerate() {
        add_class(&core, class).await;
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (core, graphql) = (core.clone(), graphql.clone());
                tokio::spawn(async move { graphql.sdl(&core).await.unwrap().unwrap() })
            })
            .collect();
        for t in tasks {
            let sdl = t.await.unwrap();
            assert!(
                sdl.contains(class),
                "the schema after adding {class}: {sdl}"
            );
        }
        assert_eq!(
            graphql.builds(),
            round as u64 + 1,
            "64 requests after one change built the schema more than once"
        );
    }
}

/// The build runs off the async workers: with a single worker thread, a request for the
/// schema still lets another task on that worker run while the schema is being built.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_build_leaves_the_async_worker_free() {
    let core = core().await;
    for i in 0..300 {
        add_class(
            &core,
            &format!("Place{}", char::from(b'A' + (i % 26) as u8)).repeat(1 + i / 26),
        )
        .await;
    }
    let graphql = Arc::new(Graphql::new());
    let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
    let started = std::time::Instant::now();
    graphql.sdl(&core).await.unwrap().unwrap();
    let took = started.elapsed();
    let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
    ticker.abort();
    // The test means something only when the build is long enough for the ticker to run
    // (300 classes: ~300 ms in a debug build here).
    assert!(
        took >= std::time::Duration::from_millis(30),
        "the build took only {took:?}: add classes so that it is measurable"
    );
    // Had the build run on the one worker, the ticker could not have run during it.
    assert!(
        during >= 3,
        "the ticker ran {during} times during a {took:?} build"
    );
}
