//! `weft-bench fill-store`: makes a store of many objects for the migration benchmark
//! (`scripts/bench-migrate.sh`), through a connector library exactly as the host loads it: a
//! root key with a child, an ontology, and Things with generated text, every tenth with an
//! earlier version and every fiftieth deleted, written with `import_objects` in pages.
use std::path::PathBuf;
use std::time::Instant;

use abi_stable::std_types::{ROption, RString, RVec};
use anyhow::{anyhow, Context};
use weft_plugin_api::{
    DocumentName, HostLogger, Id, ObjectKind, ObjectRecord, ObjectVersion, StoredKey, StoredObject,
};

#[derive(clap::Args)]
pub struct FillArgs {
    /// The connector library (e.g. target/release/libweft_embedded.so).
    #[arg(long)]
    plugin: PathBuf,
    /// Its database_config (JSON), e.g. '{"path": "target/bench/migrate-source"}'.
    #[arg(long)]
    config: String,
    /// How many Things.
    #[arg(long, default_value = "1000000")]
    objects: u64,
    /// Records per import call.
    #[arg(long, default_value = "2000")]
    batch: u64,
}

/// Words the generated text is drawn from.
const WORDS: [&str; 24] = [
    "harbour", "river", "city", "town", "bridge", "market", "museum", "station", "park", "castle",
    "island", "village", "coast", "mountain", "lake", "forest", "tower", "church", "square",
    "street", "garden", "valley", "canal", "port",
];

fn text(i: u64) -> String {
    let mut x = i
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut words = Vec::with_capacity(24);
    for _ in 0..24 {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51afd7ed558ccd);
        words.push(WORDS[(x % WORDS.len() as u64) as usize]);
    }
    words.join(" ")
}

pub fn fill(a: FillArgs) -> anyhow::Result<bool> {
    let plugin = weft_plugin_loader::load(&a.plugin).map_err(|e| anyhow!("{e}"))?;
    let opened = plugin
        .open_connector(&a.config, HostLogger::discard())
        .map_err(|e| anyhow!("opening {}: {e}", a.plugin.display()))?;
    let migration = opened
        .migration
        .ok_or_else(|| anyhow!("{} has no migration object", a.plugin.display()))?;
    let c = opened.connector;
    let root = key(None, 0);
    let child = key(Some(root.id), 1);
    for k in [&root, &child] {
        futures::executor::block_on(c.add_key(k.clone()))
            .into_result()
            .context("add_key")?;
    }
    let ontology = r#"{"things":{"@context":"","type":"thing","classes":[{"class":"City","properties":[{"name":"name","@dataType":["string"]},{"name":"description","@dataType":["text"]}]}]},"actions":{"@context":"","type":"action","classes":[]}}"#;
    futures::executor::block_on(c.put_document(DocumentName::Ontology, ontology.into(), 0))
        .into_result()
        .context("put_document")?;
    let started = Instant::now();
    let t0 = 1_700_000_000_000_i64;
    let mut done = 0;
    while done < a.objects {
        let n = a.batch.min(a.objects - done);
        let records: Vec<ObjectRecord> = (done..done + n)
            .map(|i| {
                let object = StoredObject {
                    kind: ObjectKind::Thing,
                    id: Id::time_ordered(),
                    class: "City".into(),
                    context: RString::new(),
                    owner: if i % 2 == 0 { root.id } else { child.id },
                    created_ms: t0 + i as i64,
                    updated_ms: t0 + i as i64,
                    properties_json: serde_json::json!({"name": format!("city {i}"), "description": text(i)})
                        .to_string()
                        .into(),
                };
                let mut history = Vec::new();
                let mut current = object.clone();
                if i % 10 == 0 {
                    current.updated_ms += 1;
                    current.properties_json =
                        serde_json::json!({"name": format!("city {i} (renamed)"), "description": text(i + 1)})
                            .to_string()
                            .into();
                    history.push(ObjectVersion {
                        object: object.clone(),
                        archived_ms: current.updated_ms,
                    });
                }
                let deleted = i % 50 == 0;
                if deleted {
                    history.insert(
                        0,
                        ObjectVersion {
                            object: current.clone(),
                            archived_ms: current.updated_ms + 1,
                        },
                    );
                }
                ObjectRecord {
                    kind: ObjectKind::Thing,
                    id: object.id,
                    current: if deleted { ROption::RNone } else { ROption::RSome(current) },
                    version: if deleted { 0 } else { 1 + history.len() as u64 },
                    history: RVec::from(history),
                }
            })
            .collect();
        futures::executor::block_on(migration.import_objects(RVec::from(records)))
            .into_result()
            .context("import_objects")?;
        done += n;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fill-store: {} things in {secs:.1} s ({:.0}/s) through {}",
        a.objects,
        a.objects as f64 / secs.max(1e-9),
        a.plugin.display()
    );
    Ok(true)
}

fn key(parent: Option<Id>, n: u8) -> StoredKey {
    StoredKey {
        id: Id::time_ordered(),
        parent: parent.into(),
        token_hash: RString::from(format!("bench-hash-{n}")),
        email: RString::from("bench@example.org"),
        ip_origin: RVec::new(),
        expires_ms: -1,
        read: true,
        write: true,
        delete: true,
        execute: true,
        created_ms: 1_700_000_000_000,
    }
}
