//! History (capability `HISTORY`): earlier versions, newest first, kept before every update and
//! delete.

use serde_json::json;
use weft_plugin_api::{Capabilities, ErrorKind, Id, ObjectHistory, ObjectKind, StoredObject};

use crate::support::*;
use crate::Subject;

/// The history must hold exactly `want` (newest first) and the `deleted` flag.
fn same_history(
    c: &Conn<'_>,
    what: &str,
    h: &ObjectHistory,
    want: &[&StoredObject],
    deleted: bool,
) {
    let got: Vec<String> = h.versions.iter().map(|v| label(&v.object)).collect();
    let wanted: Vec<String> = want.iter().map(|o| label(o)).collect();
    if got != wanted {
        c.fail(format!(
            "{what}: expected versions {wanted:?} (newest first), got {got:?}"
        ));
    }
    if h.deleted != deleted {
        c.fail(format!(
            "{what}: expected deleted = {deleted}, got {}",
            h.deleted
        ));
    }
    for (i, (v, w)) in h.versions.iter().zip(want).enumerate() {
        c.same_object(&format!("{what}, version {i}"), w, &v.object);
    }
    for pair in h.versions.windows(2) {
        if pair[0].archived_ms < pair[1].archived_ms {
            c.fail(format!(
                "{what}: versions must be newest first, but archived_ms {} comes before the later \
                 {}",
                pair[0].archived_ms, pair[1].archived_ms
            ));
        }
    }
}

/// `object_history` of an object that never existed answers `NotFound`, also when the id exists
/// as the other kind.
pub async fn check_history_missing_is_not_found(s: &Subject) {
    if !requires(
        s,
        Capabilities::HISTORY,
        "check_history_missing_is_not_found",
    ) {
        return;
    }
    let c = Conn::new(s);
    let r = c.try_history(ObjectKind::Thing, Id::random()).await;
    c.expect_err(
        "object_history of a Thing that never existed",
        r,
        ErrorKind::NotFound,
        "history of an object that never existed answers NotFound",
    );
    let thing = object(ObjectKind::Thing, "City", OWNER_A, T0, json!({}));
    c.create(&thing).await;
    let r = c.try_history(ObjectKind::Action, thing.id).await;
    c.expect_err(
        "object_history(Action, id of an existing Thing)",
        r,
        ErrorKind::NotFound,
        "Things and Actions are separate id spaces",
    );
}

/// An object that was never updated or deleted has an empty history, not deleted.
pub async fn check_history_of_unchanged_object_is_empty(s: &Subject) {
    if !requires(
        s,
        Capabilities::HISTORY,
        "check_history_of_unchanged_object_is_empty",
    ) {
        return;
    }
    let c = Conn::new(s);
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let o = labelled(kind, "City", "v1", T0, json!({"n": 1}));
        c.create(&o).await;
        let h = c.history(&o).await;
        same_history(
            &c,
            "object_history of an object never changed",
            &h,
            &[],
            false,
        );
    }
}

/// After create v1, update v2, update v3: the history is `[v2, v1]` (newest first, each field
/// for field as it was), not deleted, and `get_object` answers v3. Other objects' histories are
/// not touched.
pub async fn check_history_after_updates(s: &Subject) {
    if !requires(s, Capabilities::HISTORY, "check_history_after_updates") {
        return;
    }
    let c = Conn::new(s);
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let v1 = labelled(kind, "City", "v1", T0, json!({"n": 1}));
        let other = labelled(kind, "City", "other", T0 + 1, json!({}));
        c.create_all(&[v1.clone(), other.clone()]).await;
        let v2 = with_properties(&v1, T0 + 1000, json!({"label": "v2", "n": 2}));
        c.update(&v2).await;
        let h = c.history(&v1).await;
        same_history(&c, "object_history after one update", &h, &[&v1], false);
        let v3 = with_properties(
            &v1,
            T0 + 2000,
            json!({"label": "v3", "n": 3, "extra": true}),
        );
        c.update(&v3).await;
        let h = c.history(&v1).await;
        same_history(
            &c,
            "object_history after two updates",
            &h,
            &[&v2, &v1],
            false,
        );
        c.get_same("get_object after two updates", &v3).await;
        let h = c.history(&other).await;
        same_history(
            &c,
            "object_history of an object next to the updated one",
            &h,
            &[],
            false,
        );
    }
}

/// Delete archives the last version and marks the history deleted: create v1, update v2,
/// delete gives `[v2, v1]` with `deleted = true`; create then delete gives `[v1]`. The history
/// stays readable after the delete while `get_object` answers `None`.
pub async fn check_history_after_delete(s: &Subject) {
    if !requires(s, Capabilities::HISTORY, "check_history_after_delete") {
        return;
    }
    let c = Conn::new(s);
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let v1 = labelled(kind, "City", "v1", T0, json!({"n": 1}));
        c.create(&v1).await;
        let v2 = with_properties(&v1, T0 + 1000, json!({"label": "v2", "n": 2}));
        c.update(&v2).await;
        c.delete(&v1).await;
        let r = c.try_history(kind, v1.id).await;
        let h = c.ok(
            "object_history of a deleted object (the history outlives the object)",
            r,
        );
        same_history(
            &c,
            "object_history after update and delete",
            &h,
            &[&v2, &v1],
            true,
        );
        c.get_none("after delete_object", kind, v1.id).await;

        let once = labelled(kind, "City", "only version", T0 + 5, json!({}));
        c.create(&once).await;
        c.delete(&once).await;
        let h = c.history(&once).await;
        same_history(
            &c,
            "object_history after create then delete",
            &h,
            &[&once],
            true,
        );
    }
}
