//! Objects: create, get, get many, update, delete, id spaces.

use serde_json::json;
use weft_plugin_api::{ErrorKind, Id, ObjectKind, ObjectQuery, StoredObject};

use crate::support::*;
use crate::Subject;

/// A property bag with every JSON shape a Weft object carries.
fn rich_properties(reference: serde_json::Value) -> serde_json::Value {
    json!({
        "name": "Berlin",
        "population": 3_644_826,
        "negative": -12,
        "bigInt": 9_007_199_254_740_993_i64,
        "area": 891.7,
        "tenth": 0.1,
        "isCapital": true,
        "isSmall": false,
        "founded": "1237-01-01T00:00:00Z",
        "empty": "",
        "tags": ["capital", "city-state"],
        "nested": {"x": [1, {"y": null}], "z": {}},
        "inCountry": reference,
    })
}

/// `create_object` then `get_object` answers the same object field for field (kind, id, class,
/// context, owner, both times and every property), for Things and Actions, with a rich property
/// bag and with an empty one.
pub async fn check_create_then_get(s: &Subject) {
    let c = Conn::new(s);
    let target = object(
        ObjectKind::Thing,
        "Country",
        OWNER_B,
        T0,
        json!({"name": "Germany"}),
    );
    c.create(&target).await;
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let mut o = object(
            kind,
            "City",
            OWNER_A,
            T0 + 5,
            rich_properties(cref(&target)),
        );
        o.context = "http://example.org/weft/context.json".into();
        o.updated_ms = T0 + 99;
        c.create(&o).await;
        c.get_same("get_object right after create_object", &o).await;

        let empty = object(kind, "Empty", OWNER_B, T0 + 7, json!({}));
        c.create(&empty).await;
        c.get_same("get_object of an object created with no properties", &empty)
            .await;
    }
    c.get_same(
        "get_object of the first object after others were created",
        &target,
    )
    .await;
}

/// Creating an object whose kind and id exist answers `Conflict`, and the stored object is
/// unchanged (a failed write changes nothing).
pub async fn check_create_duplicate_is_conflict(s: &Subject) {
    let c = Conn::new(s);
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let o = labelled(kind, "City", "original", T0, json!({"name": "Berlin"}));
        c.create(&o).await;
        let dup = StoredObject {
            class: "Country".into(),
            owner: OWNER_B,
            created_ms: T0 + 1000,
            updated_ms: T0 + 1000,
            properties_json: json!({"label": "duplicate", "name": "Paris"})
                .to_string()
                .into(),
            ..o.clone()
        };
        let r = c.try_create(&dup).await;
        c.expect_err(
            &format!(
                "create_object of a second {kind:?} with the id of {}",
                describe(&o)
            ),
            r,
            ErrorKind::Conflict,
            "an object of the same kind and id exists",
        );
        c.get_same("get_object after the rejected duplicate create_object", &o)
            .await;
        let page = c.query(&query(kind)).await;
        c.same_page(
            "query_objects after the rejected duplicate create_object",
            &page,
            &["original".to_string()],
            1,
        );
    }
}

/// `get_object` of an id never stored answers `None` (not an error), for both kinds.
pub async fn check_get_missing_is_none(s: &Subject) {
    let c = Conn::new(s);
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let r = c.try_get(kind, Id::random()).await;
        match r {
            Ok(None) => {}
            Ok(Some(o)) => c.fail(format!(
                "get_object of a {kind:?} id never stored answered {} instead of None",
                describe(&o)
            )),
            Err(e) => c.fail(format!(
                "get_object of a {kind:?} id never stored failed with {:?} ({}); the contract \
                 says missing objects answer None, not an error",
                e.kind, e.message
            )),
        }
    }
    let o = object(ObjectKind::Thing, "City", OWNER_A, T0, json!({}));
    c.create(&o).await;
    c.get_none(
        "after storing another object",
        ObjectKind::Thing,
        Id::random(),
    )
    .await;
}

/// `get_objects` answers one entry per requested id, in the order asked (repeats included),
/// with `None` for missing, deleted and other-kind ids; an empty request answers an empty list.
pub async fn check_get_objects_order_and_missing(s: &Subject) {
    let c = Conn::new(s);
    let a = labelled(ObjectKind::Thing, "City", "a", T0 + 1000, json!({}));
    let b = labelled(ObjectKind::Thing, "City", "b", T0 + 2000, json!({}));
    let gone = labelled(ObjectKind::Thing, "City", "deleted", T0 + 3000, json!({}));
    let action = labelled(ObjectKind::Action, "Move", "action", T0 + 4000, json!({}));
    c.create_all(&[a.clone(), b.clone(), gone.clone(), action.clone()])
        .await;
    c.delete(&gone).await;
    let missing = Id::random();
    let ids = [b.id, missing, a.id, gone.id, a.id, action.id];
    let want = [Some(&b), None, Some(&a), None, Some(&a), None];
    let names = [
        "b",
        "a never-stored id",
        "a",
        "a deleted Thing",
        "a (again)",
        "an Action's id",
    ];
    let got = c.get_many(ObjectKind::Thing, &ids).await;
    if got.len() != ids.len() {
        c.fail(format!(
            "get_objects(Thing, [b, missing, a, deleted, a, action id]) answered {} entries; it \
             must answer exactly one per requested id ({}), in order",
            got.len(),
            ids.len()
        ));
    }
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        let what = format!(
            "get_objects(Thing, [b, missing, a, deleted, a, action id]) entry {i} ({})",
            names[i]
        );
        match (w, g) {
            (Some(w), Some(g)) => c.same_object(&what, w, g),
            (None, None) => {}
            (Some(w), None) => c.fail(format!("{what}: expected {}, got None", describe(w))),
            (None, Some(g)) => c.fail(format!("{what}: expected None, got {}", describe(g))),
        }
    }
    let empty = c.get_many(ObjectKind::Thing, &[]).await;
    ensure!(
        c,
        empty.is_empty(),
        "get_objects(Thing, []) must answer an empty list, got {} entries",
        empty.len()
    );
    let actions = c.get_many(ObjectKind::Action, &[action.id, a.id]).await;
    ensure!(
        c,
        actions.len() == 2 && actions[0].as_ref() == Some(&action) && actions[1].is_none(),
        "get_objects(Action, [action, a Thing's id]) must answer [the action, None], got {}",
        dbg(&actions)
    );
}

/// `update_object` replaces the stored object (properties, update time, context), keeps it
/// listed once, and a second update replaces the first.
pub async fn check_update_replaces(s: &Subject) {
    let c = Conn::new(s);
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let v1 = labelled(
            kind,
            "City",
            "v1",
            T0,
            json!({"name": "Berlin", "population": 1}),
        );
        let other = labelled(kind, "City", "other", T0 + 10, json!({"name": "Paris"}));
        c.create_all(&[v1.clone(), other.clone()]).await;
        let mut v2 = with_properties(
            &v1,
            T0 + 5000,
            json!({"label": "v2", "name": "Berlin", "area": 891.7}),
        );
        v2.context = "http://example.org/v2".into();
        c.update(&v2).await;
        c.get_same(
            "get_object after update_object (properties, updated_ms, context replaced)",
            &v2,
        )
        .await;
        let v3 = with_properties(&v1, T0 + 9000, json!({"label": "v3"}));
        c.update(&v3).await;
        c.get_same("get_object after a second update_object", &v3)
            .await;
        c.get_same("get_object of an object next to the updated one", &other)
            .await;
        let page = c.query(&query(kind)).await;
        c.same_page(
            "query_objects after two updates (listed once, ordered by created_ms, not updated_ms)",
            &page,
            &["other".into(), "v3".into()],
            2,
        );
    }
}

/// `update_object` of an object that does not exist answers `NotFound` and creates nothing
/// (no upsert), also when the id exists as the other kind.
pub async fn check_update_missing_is_not_found(s: &Subject) {
    let c = Conn::new(s);
    let ghost = labelled(ObjectKind::Thing, "City", "ghost", T0, json!({}));
    let r = c.try_update(&ghost).await;
    c.expect_err(
        "update_object of a Thing never created",
        r,
        ErrorKind::NotFound,
        "update of a missing object answers NotFound",
    );
    c.get_none(
        "after update_object of a missing Thing (it must not create it)",
        ObjectKind::Thing,
        ghost.id,
    )
    .await;

    let thing = labelled(ObjectKind::Thing, "City", "thing", T0, json!({}));
    c.create(&thing).await;
    let as_action = StoredObject {
        kind: ObjectKind::Action,
        ..thing.clone()
    };
    let r = c.try_update(&as_action).await;
    c.expect_err(
        "update_object of an Action whose id exists only as a Thing",
        r,
        ErrorKind::NotFound,
        "Things and Actions are separate id spaces",
    );
    c.get_none(
        "after the rejected Action update",
        ObjectKind::Action,
        thing.id,
    )
    .await;
    let page = c.query(&query(ObjectKind::Action)).await;
    c.same_page(
        "query_objects(Actions) after rejected updates",
        &page,
        &[],
        0,
    );
}

/// `delete_object` removes the object from `get_object`, `get_objects` and `query_objects`,
/// leaves its neighbours alone, and a second delete or an update afterwards answers `NotFound`.
pub async fn check_delete_removes(s: &Subject) {
    let c = Conn::new(s);
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let a = labelled(kind, "City", "a", T0 + 1000, json!({}));
        let b = labelled(kind, "City", "b", T0 + 2000, json!({}));
        c.create_all(&[a.clone(), b.clone()]).await;
        c.delete(&a).await;
        c.get_none("after delete_object", kind, a.id).await;
        let many = c.get_many(kind, &[a.id, b.id]).await;
        ensure!(
            c,
            many.len() == 2 && many[0].is_none() && many[1].as_ref() == Some(&b),
            "get_objects([deleted a, b]) after deleting a must answer [None, b], got {}",
            dbg(&many)
        );
        c.get_same("get_object of the object next to the deleted one", &b)
            .await;
        let page = c.query(&query(kind)).await;
        c.same_page("query_objects after delete_object", &page, &["b".into()], 1);
        let r = c.try_delete(kind, a.id).await;
        c.expect_err(
            "a second delete_object of the same object",
            r,
            ErrorKind::NotFound,
            "a deleted object is missing",
        );
        let r = c.try_update(&a).await;
        c.expect_err(
            "update_object of a deleted object",
            r,
            ErrorKind::NotFound,
            "a deleted object is missing; update must not resurrect it",
        );
        c.get_none("after the rejected update of a deleted object", kind, a.id)
            .await;
    }
}

/// `delete_object` of an object that does not exist answers `NotFound`, also when the id exists
/// as the other kind (which stays untouched).
pub async fn check_delete_missing_is_not_found(s: &Subject) {
    let c = Conn::new(s);
    let r = c.try_delete(ObjectKind::Thing, Id::random()).await;
    c.expect_err(
        "delete_object of a Thing never created",
        r,
        ErrorKind::NotFound,
        "delete of a missing object answers NotFound",
    );
    let thing = labelled(ObjectKind::Thing, "City", "thing", T0, json!({}));
    c.create(&thing).await;
    let r = c.try_delete(ObjectKind::Action, thing.id).await;
    c.expect_err(
        "delete_object(Action, id of an existing Thing)",
        r,
        ErrorKind::NotFound,
        "Things and Actions are separate id spaces",
    );
    c.get_same("the Thing after delete_object(Action, its id)", &thing)
        .await;
}

/// Ids are never reused: creating an object with the id of a deleted object of the same kind
/// answers `Conflict` and nothing reappears.
pub async fn check_ids_not_reused_after_delete(s: &Subject) {
    let c = Conn::new(s);
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let o = labelled(kind, "City", "first life", T0, json!({"n": 1}));
        c.create(&o).await;
        c.delete(&o).await;
        let again = with_properties(&o, T0 + 1000, json!({"label": "second life", "n": 2}));
        let r = c.try_create(&again).await;
        c.expect_err(
            &format!("create_object of a {kind:?} with the id of a deleted {kind:?}"),
            r,
            ErrorKind::Conflict,
            "ids are never reused, even after delete",
        );
        c.get_none("after the rejected re-create of a deleted id", kind, o.id)
            .await;
        let page = c.query(&query(kind)).await;
        c.same_page("query_objects after the rejected re-create", &page, &[], 0);
    }
}

/// Things and Actions are separate id spaces: one id can be a Thing and an Action at once, and
/// get, update, delete, list and count each see only their own kind.
pub async fn check_things_and_actions_are_separate(s: &Subject) {
    let c = Conn::new(s);
    let thing = labelled(
        ObjectKind::Thing,
        "City",
        "thing",
        T0,
        json!({"name": "Berlin"}),
    );
    let action = StoredObject {
        kind: ObjectKind::Action,
        class: "Move".into(),
        created_ms: T0 + 1,
        updated_ms: T0 + 1,
        properties_json: json!({"label": "action", "speed": 3}).to_string().into(),
        ..thing.clone()
    };
    c.create(&thing).await;
    let r = c.try_create(&action).await;
    c.ok(
        "create_object of an Action with the id of an existing Thing (separate id spaces)",
        r,
    );
    c.get_same("get_object(Thing) when an Action shares the id", &thing)
        .await;
    c.get_same("get_object(Action) when a Thing shares the id", &action)
        .await;

    let action2 = with_properties(&action, T0 + 500, json!({"label": "action", "speed": 4}));
    c.update(&action2).await;
    c.get_same("the Thing after updating the Action with its id", &thing)
        .await;

    for (kind, want) in [(ObjectKind::Thing, "thing"), (ObjectKind::Action, "action")] {
        let page = c.query(&query(kind)).await;
        c.same_page(
            &format!("query_objects({kind:?}s) when both kinds share an id"),
            &page,
            &[want.into()],
            1,
        );
    }
    let q = ObjectQuery {
        class: "Move".into(),
        ..query(ObjectKind::Thing)
    };
    let page = c.query(&q).await;
    c.same_page("query_objects(Things of the Action's class)", &page, &[], 0);

    c.delete(&thing).await;
    c.get_same("the Action after deleting the Thing with its id", &action2)
        .await;
    c.get_none("the Thing after its delete", ObjectKind::Thing, thing.id)
        .await;
}
