//! Listing: `query_objects` without filters — order, paging, totals, owners, classes.

use abi_stable::std_types::RVec;
use serde_json::json;
use weft_plugin_api::{Id, ObjectKind, ObjectQuery, StoredObject};

use crate::support::*;
use crate::Subject;

/// `query_objects` answers newest first (`created_ms` descending, ties by id descending: the
/// later of two time-ordered ids made in one millisecond first), whatever the insertion order and
/// later updates (`updated_ms` does not count), with the total, and only objects of the asked
/// kind. Three objects share a `created_ms`, so a connector ordering ties by id ascending fails.
pub async fn check_query_newest_first(s: &Subject) {
    let c = Conn::new(s);
    let created = [3000, 1000, 5000, 3000, 2000, 3000, 4000, -7000];
    let objects: Vec<StoredObject> = created
        .iter()
        .enumerate()
        .map(|(i, t)| {
            labelled(
                ObjectKind::Thing,
                "City",
                &format!("o{i}"),
                T0 + t,
                json!({"i": i}),
            )
        })
        .collect();
    c.create_all(&objects).await;
    let action = labelled(
        ObjectKind::Action,
        "City",
        "an action",
        T0 + 9000,
        json!({}),
    );
    c.create(&action).await;

    let want = newest_first(&objects);
    let page = c.query(&query(ObjectKind::Thing)).await;
    c.same_page(
        "query_objects(all Things): newest first by created_ms, equal created_ms by id descending",
        &page,
        &labels(&want),
        want.len() as u64,
    );
    for (w, g) in want.iter().zip(page.objects.iter()) {
        c.same_object("an object as query_objects answers it", w, g);
    }

    // An update must not move an object: order is by creation time.
    let oldest = want.last().unwrap().clone();
    let bumped = with_properties(
        &oldest,
        T0 + 100_000,
        json!({"label": label(&oldest), "bumped": true}),
    );
    c.update(&bumped).await;
    let page = c.query(&query(ObjectKind::Thing)).await;
    c.same_page(
        "query_objects after updating the oldest object (order is by created_ms, not updated_ms)",
        &page,
        &labels(&want),
        want.len() as u64,
    );
}

/// Paging: pages of `offset`/`limit` concatenate to the full listing, `total` always counts every
/// match, an offset at or past the end answers an empty page with the right total, limit 0
/// answers no objects but the total, the exact last page is complete, and a limit beyond the
/// end (up to `u64::MAX`) answers the rest.
pub async fn check_query_paging(s: &Subject) {
    let c = Conn::new(s);
    let objects: Vec<StoredObject> = (0..10)
        .map(|i| {
            labelled(
                ObjectKind::Thing,
                "City",
                &format!("o{i}"),
                T0 + i * 1000,
                json!({}),
            )
        })
        .collect();
    c.create_all(&objects).await;
    let all: Vec<String> = (0..10).rev().map(|i| format!("o{i}")).collect();
    let cases: [(u64, u64, &str); 15] = [
        (0, 3, "first page"),
        (3, 3, "second page"),
        (6, 3, "third page"),
        (9, 3, "last, partial page"),
        (7, 3, "exact last page"),
        (0, 10, "one page holding everything"),
        (0, 11, "limit one more than there are"),
        (2, 1000, "limit beyond the end"),
        (2, u64::MAX, "limit u64::MAX (no limit)"),
        (10, 3, "offset equal to the total"),
        (11, 5, "offset past the end"),
        (1000, 1, "offset far past the end"),
        (u64::MAX, 5, "offset u64::MAX"),
        (0, 0, "limit 0 (count only)"),
        (5, 0, "limit 0 with an offset"),
    ];
    for (offset, limit, name) in cases {
        let q = ObjectQuery {
            offset,
            limit,
            ..query(ObjectKind::Thing)
        };
        let page = c.query(&q).await;
        let start = (offset.min(10)) as usize;
        let end = (offset.saturating_add(limit).min(10)) as usize;
        c.same_page(
            &format!("query_objects offset {offset} limit {limit} ({name}) over 10 objects"),
            &page,
            &all[start..end.max(start)],
            10,
        );
    }
    let mut pages = vec![];
    for offset in (0..10).step_by(4) {
        let q = ObjectQuery {
            offset,
            limit: 4,
            ..query(ObjectKind::Thing)
        };
        pages.extend(labels(&c.query(&q).await.objects));
    }
    ensure!(
        c,
        pages == all,
        "pages of 4 (offsets 0, 4, 8) must concatenate to the full listing {all:?}, got {pages:?}"
    );
    let empty = c.query(&query(ObjectKind::Action)).await;
    c.same_page(
        "query_objects(Actions) when only Things exist",
        &empty,
        &[],
        0,
    );
}

/// Owner filtering: `owners` keeps objects owned by any of the listed keys (newest first, total
/// counting only those), an unknown owner answers nothing, no owners means every owner, and a
/// repeated owner does not repeat objects.
pub async fn check_query_owner_filter(s: &Subject) {
    let c = Conn::new(s);
    let owners = [
        OWNER_A, OWNER_B, OWNER_A, OWNER_C, OWNER_B, OWNER_A, OWNER_B, OWNER_C, OWNER_A,
    ];
    let objects: Vec<StoredObject> = owners
        .iter()
        .enumerate()
        .map(|(i, owner)| StoredObject {
            owner: *owner,
            ..labelled(
                ObjectKind::Thing,
                "City",
                &format!("o{i}"),
                T0 + i as i64 * 1000,
                json!({}),
            )
        })
        .collect();
    c.create_all(&objects).await;
    let name = |id: &Id| match *id {
        OWNER_A => "A",
        OWNER_B => "B",
        OWNER_C => "C",
        _ => "unknown",
    };
    let unknown = Id::random();
    let cases: [(Vec<Id>, u64, u64); 7] = [
        (vec![OWNER_A], 0, ALL),
        (vec![OWNER_B], 0, ALL),
        (vec![OWNER_A, OWNER_C], 0, ALL),
        (vec![OWNER_B, OWNER_B], 0, ALL),
        (vec![unknown], 0, ALL),
        (vec![], 0, ALL),
        (vec![OWNER_A], 1, 2),
    ];
    for (wanted_owners, offset, limit) in cases {
        let matching: Vec<StoredObject> = objects
            .iter()
            .filter(|o| wanted_owners.is_empty() || wanted_owners.contains(&o.owner))
            .cloned()
            .collect();
        let all = labels(&newest_first(&matching));
        let start = (offset as usize).min(all.len());
        let end = (offset.saturating_add(limit) as usize).min(all.len());
        let q = ObjectQuery {
            owners: RVec::from(wanted_owners.clone()),
            offset,
            limit,
            ..query(ObjectKind::Thing)
        };
        let page = c.query(&q).await;
        let names: Vec<&str> = wanted_owners.iter().map(name).collect();
        c.same_page(
            &format!("query_objects with owners {names:?}, offset {offset}, limit {limit}"),
            &page,
            &all[start..end],
            matching.len() as u64,
        );
    }
}

/// Class filtering: `class` keeps objects of exactly that class (case-sensitive, no prefix
/// match), combines with owners and paging, an unknown class answers nothing, and objects of the
/// other kind never appear.
pub async fn check_query_class_filter(s: &Subject) {
    let c = Conn::new(s);
    let spec = [
        ("City", OWNER_A),
        ("Country", OWNER_A),
        ("City", OWNER_B),
        ("Cit", OWNER_A),
        ("city", OWNER_A),
        ("City", OWNER_A),
        ("Country", OWNER_B),
        ("CityHall", OWNER_A),
        ("City", OWNER_B),
    ];
    let objects: Vec<StoredObject> = spec
        .iter()
        .enumerate()
        .map(|(i, (class, owner))| StoredObject {
            owner: *owner,
            ..labelled(
                ObjectKind::Thing,
                class,
                &format!("o{i}"),
                T0 + i as i64 * 1000,
                json!({}),
            )
        })
        .collect();
    c.create_all(&objects).await;
    c.create(&labelled(
        ObjectKind::Action,
        "City",
        "an action",
        T0 + 50_000,
        json!({}),
    ))
    .await;
    let cases: [(&str, Vec<Id>, u64, u64); 6] = [
        ("City", vec![], 0, ALL),
        ("Country", vec![], 0, ALL),
        ("city", vec![], 0, ALL),
        ("Nowhere", vec![], 0, ALL),
        ("City", vec![OWNER_B], 0, ALL),
        ("City", vec![], 1, 2),
    ];
    for (class, owners, offset, limit) in cases {
        let matching: Vec<StoredObject> = objects
            .iter()
            .filter(|o| {
                o.class.as_str() == class && (owners.is_empty() || owners.contains(&o.owner))
            })
            .cloned()
            .collect();
        let all = labels(&newest_first(&matching));
        let start = (offset as usize).min(all.len());
        let end = (offset.saturating_add(limit) as usize).min(all.len());
        let q = ObjectQuery {
            class: class.into(),
            owners: RVec::from(owners.clone()),
            offset,
            limit,
            ..query(ObjectKind::Thing)
        };
        let page = c.query(&q).await;
        c.same_page(
            &format!(
                "query_objects(Things of class {class:?}{}, offset {offset}, limit {limit}) among \
                 classes City, Cit, city, CityHall, Country",
                if owners.is_empty() { "" } else { ", owner B" }
            ),
            &page,
            &all[start..end],
            matching.len() as u64,
        );
    }
}
