//! Versioned object writes (capability `VERSIONED_WRITES`, interface 1.2): every object has a
//! version, 1 after `create_object` and one more per successful `update_object` or
//! `update_object_if`; `update_object_if` is a compare-and-set. The versioned calls go through
//! the connector's second ABI object (`ObjectVersionsFfi`), over the same instance as the
//! contract's calls.
//!
//! The concurrent read-modify-write checks are in `concurrency.rs`; the check that an
//! undeclared `VERSIONED_WRITES` answers `Unsupported` is `check_capability_versioned_writes`.

use serde_json::json;
use weft_plugin_api::{Capabilities, ErrorKind, Id, ObjectKind, StoredObject};

use crate::support::*;
use crate::Subject;

fn requires_versions(s: &Subject, check: &str) -> bool {
    requires(s, Capabilities::VERSIONED_WRITES, check)
}

/// The current object must be `want` at `version`, as read through both ABI objects.
async fn same_version(c: &Conn<'_>, what: &str, want: &StoredObject, version: u64) {
    let got = c.current_version(want).await;
    if got.version != version {
        c.fail(format!(
            "{what}: get_object_versioned({}) answered version {}, expected {version} (1 after \
             create_object, one more per successful update_object or update_object_if)",
            describe(want),
            got.version
        ));
    }
    c.same_object(&format!("{what} (get_object_versioned)"), want, &got.object);
    c.get_same(&format!("{what} (get_object)"), want).await;
}

/// The whole-number words of a message (so "version 12" has 12, and an id's hex digits do
/// not make 12 out of "a12b"… unless they stand alone).
fn numbers(message: &str) -> Vec<u64> {
    message
        .split(|ch: char| !ch.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// `create_object` stores version 1: `get_object_versioned` answers the object with version 1;
/// a missing id, and the id as the other kind, answer `None`.
pub async fn check_versioned_create_is_version_1(s: &Subject) {
    if !requires_versions(s, "check_versioned_create_is_version_1") {
        return;
    }
    let c = Conn::new(s);
    let o = labelled(ObjectKind::Thing, "City", "v1", T0, json!({"n": 1}));
    c.create(&o).await;
    same_version(&c, "after create_object", &o, 1).await;
    if let Some(v) = c.get_versioned(ObjectKind::Thing, Id::random()).await {
        c.fail(format!(
            "get_object_versioned of an id never used must answer None, got {} at version {}",
            describe(&v.object),
            v.version
        ));
    }
    if let Some(v) = c.get_versioned(ObjectKind::Action, o.id).await {
        c.fail(format!(
            "get_object_versioned(Action, id of an existing Thing) must answer None (Things and \
             Actions are separate id spaces), got version {}",
            v.version
        ));
    }
}

/// Every successful write adds one: `update_object` (through the contract's object) makes
/// version 2, `update_object_if(…, 2)` answers 3 and stores it, and both ABI objects read the
/// same object — they are one connector.
pub async fn check_versioned_writes_count(s: &Subject) {
    if !requires_versions(s, "check_versioned_writes_count") {
        return;
    }
    let c = Conn::new(s);
    let v1 = labelled(ObjectKind::Thing, "City", "v1", T0, json!({"n": 1}));
    c.create(&v1).await;
    let v2 = with_properties(&v1, T0 + 1, json!({"label": "v2", "n": 2}));
    c.update(&v2).await;
    same_version(&c, "after create_object and update_object", &v2, 2).await;
    let v3 = with_properties(&v1, T0 + 2, json!({"label": "v3", "n": 3}));
    let answered = c.update_if(&v3, 2).await;
    ensure!(
        c,
        answered == 3,
        "update_object_if({}, expected version 2) must answer the new version 3, answered \
         {answered}",
        describe(&v3)
    );
    same_version(&c, "after update_object_if", &v3, 3).await;
    let v4 = with_properties(&v1, T0 + 3, json!({"label": "v4", "n": 4}));
    c.update(&v4).await;
    let v5 = with_properties(&v1, T0 + 4, json!({"label": "v5", "n": 5}));
    let answered = c.update_if(&v5, 4).await;
    ensure!(
        c,
        answered == 5,
        "update_object_if after update_object must answer version 5, answered {answered}"
    );
    same_version(
        &c,
        "after alternating update_object and update_object_if",
        &v5,
        5,
    )
    .await;
}

/// A stale (or future) expected version answers `Conflict`, naming the stored and the expected
/// version, and changes nothing: not the object, not its version, not its history.
pub async fn check_versioned_stale_is_conflict(s: &Subject) {
    if !requires_versions(s, "check_versioned_stale_is_conflict") {
        return;
    }
    let c = Conn::new(s);
    let v1 = labelled(ObjectKind::Thing, "City", "v1", T0, json!({}));
    c.create(&v1).await;
    let v2 = with_properties(&v1, T0 + 1, json!({"label": "v2"}));
    c.update(&v2).await;
    let v3 = with_properties(&v1, T0 + 2, json!({"label": "v3"}));
    c.update_if(&v3, 2).await;
    let history_before = if s.has(Capabilities::HISTORY) {
        Some(c.history(&v1).await)
    } else {
        None
    };
    let lost = with_properties(&v1, T0 + 3, json!({"label": "lost"}));
    for expected in [2, 1, 0, 424_242] {
        let r = c.try_update_if(&lost, expected).await;
        let what =
            format!("update_object_if(expected version {expected}) of an object at version 3");
        match &r {
            Err(e) if e.kind == ErrorKind::Conflict => {
                let n = numbers(&e.message);
                ensure!(
                    c,
                    n.contains(&3) && n.contains(&expected),
                    "{what} answered Conflict, but its message must name the stored version (3) \
                     and the expected one ({expected}): {:?}",
                    e.message.as_str()
                );
            }
            _ => c.expect_err(
                &what,
                r,
                ErrorKind::Conflict,
                "a compare-and-set with a version other than the stored one fails",
            ),
        }
    }
    same_version(&c, "after failed update_object_if calls", &v3, 3).await;
    if let Some(before) = history_before {
        let after = c.history(&v1).await;
        c.same(
            "object_history after failed update_object_if calls (nothing archived)",
            &after.versions.len(),
            &before.versions.len(),
        );
    }
}

/// `update_object_if` of an object that never existed, was deleted, or exists only as the other
/// kind answers `NotFound`; `get_object_versioned` of a deleted object answers `None`.
pub async fn check_versioned_missing_is_not_found(s: &Subject) {
    if !requires_versions(s, "check_versioned_missing_is_not_found") {
        return;
    }
    let c = Conn::new(s);
    let never = labelled(ObjectKind::Thing, "City", "never", T0, json!({}));
    let r = c.try_update_if(&never, 1).await;
    c.expect_err(
        "update_object_if of an object that never existed",
        r,
        ErrorKind::NotFound,
        "update_object_if of a missing object answers NotFound",
    );
    let gone = labelled(ObjectKind::Thing, "City", "gone", T0, json!({}));
    c.create(&gone).await;
    let mut as_action = gone.clone();
    as_action.kind = ObjectKind::Action;
    let r = c.try_update_if(&as_action, 1).await;
    c.expect_err(
        "update_object_if(Action with the id of an existing Thing, expected version 1)",
        r,
        ErrorKind::NotFound,
        "Things and Actions are separate id spaces",
    );
    c.delete(&gone).await;
    for expected in [1, 2] {
        let r = c.try_update_if(&gone, expected).await;
        c.expect_err(
            &format!("update_object_if(expected version {expected}) of a deleted object"),
            r,
            ErrorKind::NotFound,
            "a deleted object is missing for update_object_if",
        );
    }
    if let Some(v) = c.get_versioned(gone.kind, gone.id).await {
        c.fail(format!(
            "get_object_versioned of a deleted object must answer None, got version {}",
            v.version
        ));
    }
}

/// With `HISTORY`, `update_object_if` archives the previous version in the same step, exactly
/// as `update_object` does; a failed one archives nothing.
pub async fn check_versioned_history(s: &Subject) {
    if !requires(
        s,
        Capabilities::VERSIONED_WRITES.union(Capabilities::HISTORY),
        "check_versioned_history",
    ) {
        return;
    }
    let c = Conn::new(s);
    let v1 = labelled(ObjectKind::Thing, "City", "v1", T0, json!({"n": 1}));
    c.create(&v1).await;
    let v2 = with_properties(&v1, T0 + 1, json!({"label": "v2", "n": 2}));
    c.update_if(&v2, 1).await;
    let v3 = with_properties(&v1, T0 + 2, json!({"label": "v3", "n": 3}));
    c.update(&v3).await;
    let v4 = with_properties(&v1, T0 + 3, json!({"label": "v4", "n": 4}));
    c.update_if(&v4, 3).await;
    let stale = with_properties(&v1, T0 + 4, json!({"label": "stale"}));
    let _ = c.try_update_if(&stale, 1).await;
    let h = c.history(&v1).await;
    let got: Vec<String> = h.versions.iter().map(|v| label(&v.object)).collect();
    c.same(
        "object_history after update_object_if, update_object, update_object_if and a stale \
         update_object_if (newest first, the stale one archives nothing)",
        &got,
        &vec!["v3".to_string(), "v2".into(), "v1".into()],
    );
    for (v, want) in h.versions.iter().zip([&v3, &v2, &v1]) {
        c.same_object("an archived version", want, &v.object);
    }
    ensure!(
        c,
        !h.deleted,
        "object_history of an object that was never deleted answers deleted = true"
    );
}
