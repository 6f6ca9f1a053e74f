//! Moving a store (`MIGRATE`, interface 1.4): `export_objects` reads every object whole, deleted
//! ones included, and `import_objects` writes such records back exactly, so that export →
//! import → export is the identity and the target answers every read as the source does.

use std::collections::BTreeMap;

use abi_stable::std_types::{RString, RVec};
use serde_json::json;
use weft_plugin_api::{
    Capabilities, ErrorKind, Id, MigrationBox, ObjectKind, ObjectQuery, ObjectRecord, PluginResult,
    StoredObject,
};

use crate::support::*;
use crate::Subject;

/// The page size the checks export with: small, so a walk takes several pages.
const PAGE: u64 = 3;

impl Conn<'_> {
    fn migration(&self) -> &MigrationBox {
        match &self.g {
            Some(g) => g,
            None => self.fail(
                "declares MIGRATE but has no migration object (build it against interface 1.4 or later, and open it with open_connector)",
            ),
        }
    }

    async fn try_import(&self, records: &[ObjectRecord]) -> PluginResult<()> {
        self.migration()
            .import_objects(RVec::from(records.to_vec()))
            .await
            .into_result()
    }

    async fn import(&self, records: &[ObjectRecord]) {
        let r = self.try_import(records).await;
        self.ok(&format!("import_objects({} records)", records.len()), r)
    }

    /// Every record of `kind`, walking the pages: each page has at most `PAGE` records and at
    /// least one unless it is the last, and no record comes twice.
    async fn export_all(&self, kind: ObjectKind) -> BTreeMap<Id, ObjectRecord> {
        let mut all = BTreeMap::new();
        let mut cursor = RString::new();
        for page_no in 0.. {
            let r = self
                .migration()
                .export_objects(kind, cursor.clone(), PAGE)
                .await
                .into_result();
            let page = self.ok(&format!("export_objects({kind:?}, page {page_no})"), r);
            ensure!(
                self,
                page.records.len() as u64 <= PAGE,
                "export_objects({kind:?}, limit {PAGE}) answered {} records",
                page.records.len()
            );
            ensure!(
                self,
                !page.records.is_empty() || page.next.is_empty(),
                "export_objects({kind:?}) answered an empty page with a next cursor {:?}: a page holds at least one record while any remain",
                page.next
            );
            for record in page.records {
                ensure!(
                    self,
                    record.kind == kind,
                    "export_objects({kind:?}) answered a record of kind {:?}",
                    record.kind
                );
                let id = record.id;
                if all.insert(id, record).is_some() {
                    self.fail(format!(
                        "export_objects({kind:?}) answered {id} on two pages"
                    ));
                }
            }
            if page.next.is_empty() {
                break;
            }
            ensure!(
                self,
                page_no < 1_000,
                "export_objects({kind:?}) never answered an empty next cursor"
            );
            cursor = page.next;
        }
        all
    }
}

/// A store with what a migration must carry: Things and Actions, updated objects (history),
/// a deleted object, a reference, two owners. Answers the objects as they are now.
async fn fill(c: &Conn<'_>) -> (Vec<StoredObject>, StoredObject) {
    let city = labelled(
        ObjectKind::Thing,
        "City",
        "berlin",
        T0,
        json!({"population": 3}),
    );
    let river = labelled(
        ObjectKind::Thing,
        "River",
        "spree",
        T0 + 1,
        json!({"length": 400}),
    );
    let mut other = object(
        ObjectKind::Thing,
        "City",
        OWNER_B,
        T0 + 2,
        json!({"label": "potsdam", "inCountry": cref(&city)}),
    );
    let gone = labelled(ObjectKind::Thing, "City", "atlantis", T0 + 3, json!({}));
    let act = labelled(
        ObjectKind::Action,
        "Visit",
        "trip",
        T0 + 4,
        json!({"days": 2}),
    );
    c.create_all(&[
        city.clone(),
        river.clone(),
        other.clone(),
        gone.clone(),
        act.clone(),
    ])
    .await;
    let city2 = with_properties(&city, T0 + 10, json!({"label": "berlin", "population": 4}));
    c.update(&city2).await;
    let city3 = with_properties(&city, T0 + 11, json!({"label": "berlin", "population": 5}));
    c.update(&city3).await;
    other = with_properties(&other, T0 + 12, json!({"label": "potsdam"}));
    c.update(&other).await;
    c.delete(&gone).await;
    (vec![city3, river, other, act], gone)
}

/// The rule: export → import into an empty store → export answers the same records, and the
/// target answers the reads of the contract (get, versions, history, listings with owner and
/// class, the deleted id still taken) exactly as the source.
pub async fn check_migrate_round_trip(s: &Subject) {
    if !requires(s, Capabilities::MIGRATE, "check_migrate_round_trip") {
        return;
    }
    let src = Conn::new(s);
    let (live, gone) = fill(&src).await;
    let mut exported = Vec::new();
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let records = src.export_all(kind).await;
        for o in live.iter().filter(|o| o.kind == kind) {
            let Some(r) = records.get(&o.id) else {
                src.fail(format!("export_objects did not answer {}", describe(o)));
            };
            match r.current.as_ref().into_option() {
                Some(cur) => src.same_object("the current object in its exported record", o, cur),
                None => src.fail(format!(
                    "the record of {} has no current object",
                    describe(o)
                )),
            }
            let history = src.history(o).await;
            src.same(
                &format!("the exported history of {}", describe(o)),
                &r.history,
                &history.versions,
            );
            if s.has(Capabilities::VERSIONED_WRITES) {
                let v = src.current_version(o).await.version;
                src.same(
                    &format!("the exported version of {}", describe(o)),
                    &r.version,
                    &v,
                );
            }
        }
        if kind == ObjectKind::Thing {
            match records.get(&gone.id) {
                Some(r) => {
                    ensure!(
                        src,
                        r.current.is_none(),
                        "the record of deleted {} has a current object",
                        describe(&gone)
                    );
                    src.same("the version of a deleted object's record", &r.version, &0);
                    let history = src.history(&gone).await;
                    src.same("the exported history of a deleted object", &r.history, &history.versions);
                }
                None => src.fail(format!(
                    "export_objects left out deleted {}: deleted objects are exported (their ids stay taken, their history stays readable)",
                    describe(&gone)
                )),
            }
        }
        let want =
            live.iter().filter(|o| o.kind == kind).count() + usize::from(kind == ObjectKind::Thing);
        src.same(
            &format!("the number of {kind:?} records exported"),
            &records.len(),
            &want,
        );
        exported.extend(records.into_values());
    }

    let dst = Conn::new(s);
    for chunk in exported.chunks(2) {
        dst.import(chunk).await;
    }
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let again: Vec<ObjectRecord> = dst.export_all(kind).await.into_values().collect();
        let want: Vec<ObjectRecord> = {
            let mut v: Vec<_> = exported
                .iter()
                .filter(|r| r.kind == kind)
                .cloned()
                .collect();
            v.sort_by_key(|r| r.id);
            v
        };
        src.same(
            &format!("export of the target after import ({kind:?}): export → import → export must be the identity"),
            &again,
            &want,
        );
    }
    for o in &live {
        dst.get_same("get_object in the target after import", o)
            .await;
        let (a, b) = (src.history(o).await, dst.history(o).await);
        dst.same(
            &format!("object_history of {} in the target", describe(o)),
            &b,
            &a,
        );
        if s.has(Capabilities::VERSIONED_WRITES) {
            let (a, b) = (
                src.current_version(o).await.version,
                dst.current_version(o).await.version,
            );
            dst.same(
                &format!("the version of {} in the target", describe(o)),
                &b,
                &a,
            );
        }
    }
    let (a, b) = (src.history(&gone).await, dst.history(&gone).await);
    dst.same("object_history of the deleted object in the target", &b, &a);
    dst.get_none("a deleted object in the target", ObjectKind::Thing, gone.id)
        .await;
    dst.expect_err(
        "create_object(the id of a deleted, imported object)",
        dst.try_create(&gone).await,
        ErrorKind::Conflict,
        "an imported deleted id stays taken: ids are never reused",
    );
    let queries = [
        query(ObjectKind::Thing),
        query(ObjectKind::Action),
        ObjectQuery {
            class: "City".into(),
            ..query(ObjectKind::Thing)
        },
        ObjectQuery {
            owners: RVec::from(vec![OWNER_B]),
            ..query(ObjectKind::Thing)
        },
        ObjectQuery {
            owners: RVec::from(vec![OWNER_A]),
            class: "City".into(),
            offset: 0,
            limit: 1,
            ..query(ObjectKind::Thing)
        },
    ];
    for q in &queries {
        let (a, b) = (src.query(q).await, dst.query(q).await);
        dst.same(
            &format!("query_objects({}) in the target", describe_query(q)),
            &b,
            &a,
        );
    }
    // A write after the import goes on from the imported version and history.
    let next = with_properties(
        &live[0],
        T0 + 20,
        json!({"label": "berlin", "population": 6}),
    );
    dst.update(&next).await;
    let h = dst.history(&next).await;
    dst.same(
        "the history length after one more update of an imported object",
        &h.versions.len(),
        &(src.history(&live[0]).await.versions.len() + 1),
    );
}

/// The rule: importing records the store already holds exactly is a no-op (so an interrupted
/// import can be repeated), a record it holds differently is `Conflict`, and a malformed record
/// is `Invalid`; neither failure changes the record held.
pub async fn check_migrate_import_is_idempotent(s: &Subject) {
    if !requires(
        s,
        Capabilities::MIGRATE,
        "check_migrate_import_is_idempotent",
    ) {
        return;
    }
    let src = Conn::new(s);
    let (live, _) = fill(&src).await;
    let records: Vec<ObjectRecord> = src
        .export_all(ObjectKind::Thing)
        .await
        .into_values()
        .collect();
    let dst = Conn::new(s);
    dst.import(&records).await;
    dst.import(&records).await;
    dst.import(&records[..1]).await;
    let again: Vec<ObjectRecord> = dst
        .export_all(ObjectKind::Thing)
        .await
        .into_values()
        .collect();
    dst.same(
        "export after importing the same records three times",
        &again,
        &records,
    );

    let city = &live[0];
    let mut changed = records
        .iter()
        .find(|r| r.id == city.id)
        .cloned()
        .expect("kit bug: the city was exported");
    changed.current = abi_stable::std_types::ROption::RSome(with_properties(
        city,
        T0 + 30,
        json!({"label": "changed"}),
    ));
    dst.expect_err(
        "import_objects(a record the store holds with other properties)",
        dst.try_import(&[changed]).await,
        ErrorKind::Conflict,
        "an import never overwrites a different record",
    );
    dst.get_same("the object after a refused import", city)
        .await;

    let mut bad = records[0].clone();
    bad.id = Id::random();
    dst.expect_err(
        "import_objects(a record whose current object has another id)",
        dst.try_import(&[bad.clone()]).await,
        ErrorKind::Invalid,
        "a record's objects must carry its kind and id (ObjectRecord::check)",
    );
    if let Some(o) = dst.get(ObjectKind::Thing, bad.id).await {
        dst.fail(format!("a refused record was stored: {}", describe(&o)));
    }
}

/// `MIGRATE` (interface 1.4): undeclared, `export_objects` and `import_objects` answer
/// `Unsupported` (a plugin built before 1.4 has no migration object at all).
pub async fn check_capability_migrate(s: &Subject) {
    if s.has(Capabilities::MIGRATE) {
        return;
    }
    let c = Conn::new(s);
    let Some(g) = &c.g else { return };
    c.expect_err(
        "export_objects",
        g.export_objects(ObjectKind::Thing, RString::new(), 10)
            .await
            .into_result(),
        ErrorKind::Unsupported,
        "the connector does not declare MIGRATE",
    );
    c.expect_err(
        "import_objects",
        g.import_objects(RVec::new()).await.into_result(),
        ErrorKind::Unsupported,
        "the connector does not declare MIGRATE",
    );
}
