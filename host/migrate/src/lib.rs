//! `weft-migrate`: moves a whole store from one connector to another — the documents (ontology
//! and connector state), every key exactly (token hash, parent, rights, expiry, ipOrigin,
//! creation time) and every Thing and Action with its version number and whole history, deleted
//! ones included — through the plugin interface (capability `MIGRATE`, interface 1.4:
//! `export_objects` pages, `import_objects` writes records as they are).
//!
//! Owns: the order of the copy (documents, keys parents first, then objects page by page with
//! several imports in flight), the refusals (an empty source, a target that is not empty unless
//! resuming, a connector without the capability) and the report; progress goes to the caller's
//! [`Progress`] (the `weft migrate` command draws it).
//! Must not know: how any store keeps its records (the connectors do), HTTP, the terminal.
//!
//! Resuming: every step is idempotent. A document or key the target holds exactly as the
//! source is skipped, `import_objects` leaves a record it holds exactly as it is, and anything
//! held differently is refused (`Conflict`), so a migration killed at any point is finished by
//! running it again with `--resume`.

use std::time::{Duration, Instant};

use abi_stable::std_types::{ROption, RString};
use anyhow::{anyhow, bail, Context as _};
use futures::stream::{FuturesUnordered, StreamExt};
use weft_plugin_api::{
    Capabilities, ConnectorBox, DocumentName, ErrorKind, HostLogger, Id, MigrationBox, ObjectKind,
    ObjectQuery, ObjectRecord, OpenedConnector, PluginError, StoredKey,
};
use weft_plugin_loader::LoadedPlugin;

/// How to migrate.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Go on with a migration into this target that was interrupted (skips the emptiness check).
    pub resume: bool,
    /// Records per export page and import call.
    pub batch: u64,
    /// Import calls in flight at once.
    pub parallel: usize,
}

/// Where a migration reports how far it is.
pub trait Progress {
    /// Before the objects: how many current objects the source holds (deleted ones come on
    /// top; 0 when the source cannot count them cheaply).
    fn start(&self, objects: u64);
    /// After each imported page: everything moved so far.
    fn moved(&self, so_far: &MigrateReport);
}

/// Which end of a migration a connector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read from.
    Source,
    /// Written to.
    Target,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Target => "target",
        }
    }
}

/// What a finished migration moved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// Thing records (deleted ones included).
    pub things: u64,
    /// Action records (deleted ones included).
    pub actions: u64,
    /// Of those, deleted objects (history only).
    pub deleted: u64,
    /// Earlier versions moved with them.
    pub versions: u64,
    /// Keys.
    pub keys: u64,
    /// Documents written (0–2; skipped when never written or already equal).
    pub documents: u64,
    /// Bytes of object JSON moved (property bags of current and earlier versions).
    pub bytes: u64,
    /// How long it took (so far, in a [`Progress`] report).
    pub took: Duration,
}

impl MigrateReport {
    /// Objects (records) per second.
    pub fn rate(&self) -> f64 {
        (self.things + self.actions) as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

/// One end of the migration: an opened connector with its export and import calls.
pub struct Side {
    role: &'static str,
    name: String,
    connector: ConnectorBox,
    migration: MigrationBox,
}

impl Side {
    /// Opens `plugin` with `config` (its `database_config`) as the `role` end; refuses, naming
    /// it, a connector that does not declare `MIGRATE` or was built before interface 1.4.
    pub fn open(
        plugin: &LoadedPlugin,
        role: Role,
        config: &serde_json::Value,
        log: HostLogger,
    ) -> anyhow::Result<Side> {
        let (role, name) = (role.as_str(), plugin.name.as_str());
        let opened = plugin.open_connector(&config.to_string(), log).map_err(|e| {
            anyhow!(
                "cannot open the {role} connector {name:?}: {} (a store in use by a running server cannot be migrated: stop the server first)",
                e.message
            )
        })?;
        let unable = |why: &str| {
            anyhow!(
                "the {role} connector {name:?} ({}, interface {}) {why}, so `weft migrate` cannot move a store {}; move the data through the REST API instead, or use a connector that declares `migrate` (weft plugins check lists what each declares)",
                plugin.path.display(),
                plugin.interface_version,
                if role == "source" { "out of it" } else { "into it" }
            )
        };
        if !plugin.capabilities.contains(Capabilities::MIGRATE) {
            return Err(unable("does not declare the migrate capability"));
        }
        let Some(migration) = opened.migration else {
            return Err(unable(
                "was built before interface 1.4 and has no export and import calls",
            ));
        };
        Ok(Side {
            role,
            name: name.to_string(),
            connector: opened.connector,
            migration,
        })
    }

    /// A connector opened some other way (e.g. linked statically:
    /// `weft_plugin_api::connector_parts`), named `name`; `None` without a migration object.
    pub fn from_opened(opened: OpenedConnector, role: Role, name: &str) -> Option<Side> {
        Some(Side {
            role: role.as_str(),
            name: name.to_string(),
            connector: opened.connector,
            migration: opened.migration?,
        })
    }

    fn fail(&self, what: &str, e: PluginError) -> anyhow::Error {
        anyhow!("{} {:?}: {what}: {e}", self.role, self.name)
    }
}

/// Moves everything `from` holds into `to`, on a runtime of its own (connectors bring their
/// own; this one only drives the calls' futures).
pub fn run(
    from: &Side,
    to: &Side,
    options: &MigrateOptions,
    progress: &dyn Progress,
) -> anyhow::Result<MigrateReport> {
    if options.batch == 0 || options.parallel == 0 {
        bail!("--batch and --parallel must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the migration's runtime")?;
    rt.block_on(migrate(from, to, options, progress))
}

async fn migrate(
    from: &Side,
    to: &Side,
    options: &MigrateOptions,
    progress: &dyn Progress,
) -> anyhow::Result<MigrateReport> {
    let started = Instant::now();
    check_sides(from, to, options.resume).await?;
    let mut report = MigrateReport {
        documents: copy_documents(from, to).await?,
        keys: copy_keys(from, to).await?,
        ..MigrateReport::default()
    };
    // The bar's length: the source's current objects (deleted ones come on top). A source that
    // cannot count cheaply only loses the bar's end.
    let mut total = 0;
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        if let Ok(page) = from
            .connector
            .query_objects(ObjectQuery::all(kind, 0))
            .await
            .into_result()
        {
            total += page.total;
        }
    }
    progress.start(total);
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        copy_objects(from, to, kind, options, progress, &mut report, started).await?;
    }
    report.took = started.elapsed();
    Ok(report)
}

/// What a store holds, as words ("3 root keys", "an ontology", "things"); empty when nothing.
async fn holdings(side: &Side) -> anyhow::Result<Vec<String>> {
    let mut held = Vec::new();
    let roots = side
        .connector
        .root_keys()
        .await
        .into_result()
        .map_err(|e| side.fail("reading its keys", e))?;
    if !roots.is_empty() {
        held.push(format!("{} root keys", roots.len()));
    }
    for document in [DocumentName::Ontology, DocumentName::ConnectorState] {
        let d = side
            .connector
            .get_document(document)
            .await
            .into_result()
            .map_err(|e| side.fail("reading its documents", e))?;
        if d.version > 0 {
            held.push(match document {
                DocumentName::Ontology => "an ontology".to_string(),
                DocumentName::ConnectorState => "connector state".to_string(),
            });
        }
    }
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let page = side
            .migration
            .export_objects(kind, RString::new(), 1)
            .await
            .into_result()
            .map_err(|e| side.fail("reading its objects", e))?;
        if !page.records.is_empty() {
            held.push(format!("{}s", kind.as_str()));
        }
    }
    Ok(held)
}

/// Fails unless the source holds something (a mistyped path or keyspace opens an empty store)
/// and, when not resuming, unless the target is empty.
async fn check_sides(from: &Side, to: &Side, resume: bool) -> anyhow::Result<()> {
    if holdings(from).await?.is_empty() {
        bail!(
            "the source store ({:?}) is empty: no keys, no ontology, no objects. Check --from-config: it must point at the store a server used (for embedded, its data directory's store, e.g. {{\"path\": \"data/store\"}})",
            from.name
        );
    }
    if resume {
        return Ok(());
    }
    let held = holdings(to).await?;
    if held.is_empty() {
        return Ok(());
    }
    bail!(
        "the target store ({:?}) is not empty: it holds {}. Migrate into an empty store (a new keyspace, namespace or directory), or add --resume to finish a migration into it that was interrupted",
        to.name,
        held.join(", ")
    )
}

/// Copies the documents the source has written; answers how many were written.
async fn copy_documents(from: &Side, to: &Side) -> anyhow::Result<u64> {
    let mut written = 0;
    for document in [DocumentName::Ontology, DocumentName::ConnectorState] {
        let label = match document {
            DocumentName::Ontology => "the ontology",
            DocumentName::ConnectorState => "the connector state",
        };
        let src = from
            .connector
            .get_document(document)
            .await
            .into_result()
            .map_err(|e| from.fail(&format!("reading {label}"), e))?;
        if src.version == 0 {
            continue;
        }
        let dst = to
            .connector
            .get_document(document)
            .await
            .into_result()
            .map_err(|e| to.fail(&format!("reading {label}"), e))?;
        if dst.version > 0 {
            if dst.json == src.json {
                continue;
            }
            bail!(
                "target {:?} holds {label} already, and it differs from the source's: migrate into an empty store",
                to.name
            );
        }
        to.connector
            .put_document(document, src.json, 0)
            .await
            .into_result()
            .map_err(|e| to.fail(&format!("writing {label}"), e))?;
        written += 1;
    }
    Ok(written)
}

/// Copies the key tree, parents before children; answers how many keys the source has.
async fn copy_keys(from: &Side, to: &Side) -> anyhow::Result<u64> {
    let mut level: Vec<StoredKey> = from
        .connector
        .root_keys()
        .await
        .into_result()
        .map_err(|e| from.fail("reading its root keys", e))?
        .into_vec();
    let mut count = 0;
    while !level.is_empty() {
        let mut next = Vec::new();
        for key in level {
            copy_key(to, &key).await?;
            count += 1;
            let children = from
                .connector
                .key_children(key.id)
                .await
                .into_result()
                .map_err(|e| from.fail(&format!("reading the children of key {}", key.id), e))?;
            next.extend(children.into_vec());
        }
        level = next;
    }
    Ok(count)
}

async fn copy_key(to: &Side, key: &StoredKey) -> anyhow::Result<()> {
    let held = to
        .connector
        .get_key(key.id)
        .await
        .into_result()
        .map_err(|e| to.fail(&format!("reading key {}", key.id), e))?;
    match held {
        ROption::RSome(held) if &held == key => Ok(()),
        ROption::RSome(_) => bail!(
            "target {:?} holds key {} already, and it differs from the source's: migrate into an empty store",
            to.name,
            key.id
        ),
        ROption::RNone => to
            .connector
            .add_key(key.clone())
            .await
            .into_result()
            .map_err(|e| to.fail(&format!("adding key {}", key.id), e)),
    }
}

/// Copies every record of `kind`: the next page is exported while up to `parallel` imports
/// run.
async fn copy_objects(
    from: &Side,
    to: &Side,
    kind: ObjectKind,
    options: &MigrateOptions,
    progress: &dyn Progress,
    report: &mut MigrateReport,
    started: Instant,
) -> anyhow::Result<()> {
    let mut cursor = RString::new();
    let mut in_flight = FuturesUnordered::new();
    loop {
        let page = from
            .migration
            .export_objects(kind, cursor.clone(), options.batch)
            .await
            .into_result()
            .map_err(|e| from.fail(&format!("exporting {}s", kind.as_str()), e))?;
        let sizes = Sizes::of(&page.records);
        while in_flight.len() >= options.parallel {
            let done: anyhow::Result<Sizes> = in_flight.next().await.expect("in flight");
            report.add(kind, done?, progress, started);
        }
        let first = page.records.first().map(|r| r.id);
        let call = to.migration.import_objects(page.records);
        in_flight.push(async move {
            call.await.into_result().map(|()| sizes).map_err(|e| {
                let hint = if e.kind == ErrorKind::Conflict {
                    " (the target holds a different record under that id: migrate into an empty store)"
                } else {
                    ""
                };
                anyhow!(
                    "target {:?}: importing {}s (the page from {}): {e}{hint}",
                    to.name,
                    kind.as_str(),
                    first.map(|id: Id| id.to_string()).unwrap_or_default()
                )
            })
        });
        if page.next.is_empty() {
            break;
        }
        cursor = page.next;
    }
    while let Some(done) = in_flight.next().await {
        report.add(kind, done?, progress, started);
    }
    Ok(())
}

/// What one page of records holds.
#[derive(Debug, Clone, Copy, Default)]
struct Sizes {
    records: u64,
    deleted: u64,
    versions: u64,
    bytes: u64,
}

impl Sizes {
    fn of(records: &[ObjectRecord]) -> Sizes {
        let mut s = Sizes {
            records: records.len() as u64,
            ..Sizes::default()
        };
        for r in records {
            match &r.current {
                ROption::RSome(o) => s.bytes += o.properties_json.len() as u64,
                ROption::RNone => s.deleted += 1,
            }
            s.versions += r.history.len() as u64;
            s.bytes += r
                .history
                .iter()
                .map(|v| v.object.properties_json.len() as u64)
                .sum::<u64>();
        }
        s
    }
}

impl MigrateReport {
    fn add(&mut self, kind: ObjectKind, s: Sizes, progress: &dyn Progress, started: Instant) {
        match kind {
            ObjectKind::Thing => self.things += s.records,
            ObjectKind::Action => self.actions += s.records,
        }
        self.deleted += s.deleted;
        self.versions += s.versions;
        self.bytes += s.bytes;
        self.took = started.elapsed();
        progress.moved(self);
    }
}
