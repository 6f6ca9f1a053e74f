//! Capability gating: an undeclared behaviour answers `Unsupported` (never a silent empty or
//! unfiltered answer); a declared one works.

use serde_json::json;
use weft_plugin_api::{Capabilities, ErrorKind, ObjectKind, ObjectQuery, StoredObject};

use crate::support::*;
use crate::Subject;

fn declared(s: &Subject, cap: Capabilities) -> &'static str {
    if s.has(cap) {
        "declares"
    } else {
        "does not declare"
    }
}

/// `HISTORY`: declared, `object_history` answers the archived version after an update;
/// undeclared, it answers `Unsupported` (not an empty history).
pub async fn check_capability_history(s: &Subject) {
    let c = Conn::new(s);
    let v1 = labelled(ObjectKind::Thing, "City", "v1", T0, json!({}));
    c.create(&v1).await;
    c.update(&with_properties(&v1, T0 + 1, json!({"label": "v2"})))
        .await;
    let r = c.try_history(v1.kind, v1.id).await;
    if s.has(Capabilities::HISTORY) {
        let h = c.ok("object_history (HISTORY is declared)", r);
        let got: Vec<String> = h.versions.iter().map(|v| label(&v.object)).collect();
        c.same(
            "object_history after one update (HISTORY is declared)",
            &got,
            &vec!["v1".to_string()],
        );
    } else {
        c.expect_err(
            "object_history of an updated object",
            r,
            ErrorKind::Unsupported,
            "the connector does not declare HISTORY, so history must be Unsupported, never a silent empty history",
        );
    }
}

/// `FILTER`: declared, a filtered query answers only the matches; undeclared, any non-empty
/// `filter_json` answers `Unsupported` (never unfiltered results). A query without a filter
/// always works.
pub async fn check_capability_filter(s: &Subject) {
    let c = Conn::new(s);
    let objects = [
        labelled(
            ObjectKind::Thing,
            "City",
            "small",
            T0,
            json!({"population": 10}),
        ),
        labelled(
            ObjectKind::Thing,
            "City",
            "large",
            T0 + 1,
            json!({"population": 1000}),
        ),
    ];
    c.create_all(&objects).await;
    let page = c.query(&query(ObjectKind::Thing)).await;
    c.same_page(
        "query_objects without a filter",
        &page,
        &["large".into(), "small".into()],
        2,
    );
    let f = json!({"operator": "GreaterThan", "path": ["population"], "valueInt": 100});
    let q = filtered("City", &f);
    let r = c.try_query(&q).await;
    if s.has(Capabilities::FILTER) {
        let page = c.ok(
            &format!("query_objects({}) (FILTER is declared)", describe_query(&q)),
            r,
        );
        c.same_page(
            &format!("query_objects({}) (FILTER is declared)", describe_query(&q)),
            &page,
            &["large".into()],
            1,
        );
    } else {
        c.expect_err(
            &format!("query_objects({})", describe_query(&q)),
            r,
            ErrorKind::Unsupported,
            "the connector does not declare FILTER, so a filter must be Unsupported, never ignored",
        );
    }
}

/// `FILTER_REFERENCE_PATHS` (which implies `FILTER`): declared, a path through a reference
/// works; undeclared, a filter with a reference path — also nested inside `And`/`Not` —
/// answers `Unsupported`.
pub async fn check_capability_filter_reference_paths(s: &Subject) {
    let c = Conn::new(s);
    if s.has(Capabilities::FILTER_REFERENCE_PATHS) && !s.has(Capabilities::FILTER) {
        c.fail(format!(
            "declares FILTER_REFERENCE_PATHS without FILTER, but the flag implies FILTER (capabilities {:?})",
            s.capabilities
        ));
    }
    let country = labelled(
        ObjectKind::Thing,
        "Country",
        "Germany",
        T0,
        json!({"name": "Germany"}),
    );
    let berlin = labelled(
        ObjectKind::Thing,
        "City",
        "Berlin",
        T0 + 1,
        json!({"inCountry": cref(&country), "population": 5}),
    );
    let paris = labelled(
        ObjectKind::Thing,
        "City",
        "Paris",
        T0 + 2,
        json!({"population": 6}),
    );
    c.create_all(&[country, berlin, paris]).await;
    let path = json!({"operator": "Equal", "path": ["inCountry", "Country", "name"], "valueString": "Germany"});
    let filters = [
        path.clone(),
        json!({"operator": "And", "operands": [
            {"operator": "GreaterThan", "path": ["population"], "valueInt": 0},
            {"operator": "Not", "operands": [path.clone()]}
        ]}),
    ];
    let wants: [&[&str]; 2] = [&["Berlin"], &["Paris"]];
    for (f, want) in filters.iter().zip(wants) {
        let q = filtered("City", f);
        let r = c.try_query(&q).await;
        if s.has(Capabilities::FILTER_REFERENCE_PATHS) {
            let page = c.ok(
                &format!(
                    "query_objects({}) (FILTER_REFERENCE_PATHS is declared)",
                    describe_query(&q)
                ),
                r,
            );
            let want: Vec<String> = want.iter().map(|w| w.to_string()).collect();
            c.same_page(
                &format!("query_objects({})", describe_query(&q)),
                &page,
                &want,
                want.len() as u64,
            );
        } else {
            c.expect_err(
                &format!("query_objects({}) by a connector that {} FILTER", describe_query(&q), declared(s, Capabilities::FILTER)),
                r,
                ErrorKind::Unsupported,
                "the connector does not declare FILTER_REFERENCE_PATHS, so a path through a reference must be Unsupported, never ignored or evaluated as false",
            );
        }
    }
}

/// `AGGREGATE`: declared, `aggregate` answers a count; undeclared, it answers `Unsupported`.
pub async fn check_capability_aggregate(s: &Subject) {
    let c = Conn::new(s);
    c.create_all(&[
        labelled(ObjectKind::Thing, "City", "a", T0, json!({"population": 1})),
        labelled(
            ObjectKind::Thing,
            "City",
            "b",
            T0 + 1,
            json!({"population": 2}),
        ),
    ])
    .await;
    let q = ObjectQuery {
        class: "City".into(),
        ..query(ObjectKind::Thing)
    };
    let req = json!({"properties": ["population"]});
    let r = c.try_aggregate(&q, &req).await;
    if s.has(Capabilities::AGGREGATE) {
        let text = c.ok("aggregate (AGGREGATE is declared)", r);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            c.fail(format!(
                "aggregate answered invalid JSON ({e}): {}",
                short(&text)
            ))
        });
        ensure!(
            c,
            v["groups"][0]["count"] == json!(2),
            "aggregate(Things of class City, {req}) over 2 objects must answer one group with count 2, got {}",
            short(&text)
        );
    } else {
        c.expect_err(
            &format!("aggregate(Things of class City, {req})"),
            r,
            ErrorKind::Unsupported,
            "the connector does not declare AGGREGATE, so aggregate must be Unsupported",
        );
    }
}

/// `PERSISTENT` (data survives a restart of the process) cannot be checked inside one test
/// process; this check only notes whether it is declared. Test it in the connector's own
/// integration suite by writing, restarting and reading.
pub async fn check_capability_persistent(s: &Subject) {
    eprintln!(
        "note: connector {:?} {} PERSISTENT; the conformance kit cannot check persistence \
         in-process (it needs a restart), so test it in the connector's own suite",
        s.name,
        declared(s, Capabilities::PERSISTENT)
    );
}

/// `VERSIONED_WRITES` (interface 1.2): declared, the connector has a versioned-writes object and
/// `get_object_versioned` answers a new object at version 1; undeclared, either it has no such
/// object (a plugin built before 1.2) or both `get_object_versioned` and `update_object_if`
/// answer `Unsupported` (never a made-up version).
pub async fn check_capability_versioned_writes(s: &Subject) {
    let c = Conn::new(s);
    let o = labelled(ObjectKind::Thing, "City", "v1", T0, json!({}));
    c.create(&o).await;
    if s.has(Capabilities::VERSIONED_WRITES) {
        let v = c.current_version(&o).await;
        c.same(
            "the version get_object_versioned answers after create_object (VERSIONED_WRITES is declared)",
            &v.version,
            &1,
        );
        return;
    }
    let Some(versions) = &c.v else {
        eprintln!(
            "note: connector {:?} does not declare VERSIONED_WRITES and has no versioned-writes \
             object (built against an interface before 1.2)",
            s.name
        );
        return;
    };
    let r = versions
        .get_object_versioned(o.kind, o.id)
        .await
        .into_result();
    c.expect_err(
        &format!("get_object_versioned({})", describe(&o)),
        r,
        ErrorKind::Unsupported,
        "the connector does not declare VERSIONED_WRITES, so get_object_versioned must be Unsupported",
    );
    let changed = StoredObject {
        updated_ms: T0 + 1,
        ..o.clone()
    };
    let r = versions.update_object_if(changed, 1).await.into_result();
    c.expect_err(
        &format!("update_object_if({}, expected version 1)", describe(&o)),
        r,
        ErrorKind::Unsupported,
        "the connector does not declare VERSIONED_WRITES, so update_object_if must be Unsupported",
    );
    c.get_same(
        "after an Unsupported update_object_if (nothing may change)",
        &o,
    )
    .await;
}

/// `BACKUP` (interface 1.3): declared, `backup` into a new directory answers a report counting
/// the stored objects, and a second backup into the same, now non-empty, directory is
/// `Invalid`; undeclared, `backup` answers `Unsupported` (a plugin built before 1.3 has no
/// maintenance object at all).
pub async fn check_capability_backup(s: &Subject) {
    let c = Conn::new(s);
    let o = labelled(ObjectKind::Thing, "City", "b1", T0, json!({}));
    c.create(&o).await;
    let Some(m) = &c.m else {
        if s.has(Capabilities::BACKUP) {
            c.fail(
                "declares BACKUP but has no maintenance object (open it with open_connector)"
                    .to_string(),
            );
        }
        return;
    };
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let to = std::env::temp_dir().join(format!(
        "weft-conformance-backup-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&to);
    let target = || abi_stable::std_types::RString::from(to.display().to_string());
    let r = m.backup(target()).await.into_result();
    if !s.has(Capabilities::BACKUP) {
        c.expect_err(
            "backup(a new directory)",
            r,
            ErrorKind::Unsupported,
            "the connector does not declare BACKUP, so backup must be Unsupported",
        );
        let _ = std::fs::remove_dir_all(&to);
        return;
    }
    match r {
        Ok(report) => c.same(
            "the objects a backup of a store holding one thing reports",
            &report.objects,
            &1,
        ),
        Err(e) => c.fail(format!(
            "backup into the new directory {} failed: {e}",
            to.display()
        )),
    }
    let r = m.backup(target()).await.into_result();
    c.expect_err(
        "backup(a directory that already holds a backup)",
        r,
        ErrorKind::Invalid,
        "a backup into a directory that is not empty must be refused",
    );
    let _ = std::fs::remove_dir_all(&to);
}
