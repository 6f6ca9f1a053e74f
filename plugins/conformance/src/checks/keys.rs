//! Keys: the authorisation tree.

use std::collections::BTreeSet;

use abi_stable::std_types::{ROption, RString, RVec};
use weft_plugin_api::{ErrorKind, Id, StoredKey};

use crate::support::*;
use crate::Subject;

fn ids(keys: &[StoredKey]) -> Vec<Id> {
    keys.iter().map(|k| k.id).collect()
}

/// `add_key` then `get_key` answers the key field for field (root and child keys, every field
/// set, including an expiry and unusual rights); `get_key` of a missing id answers `None`.
pub async fn check_key_add_and_get(s: &Subject) {
    let c = Conn::new(s);
    let root = key(None, T0, "root@example.org");
    c.add_key(&root).await;
    let child = StoredKey {
        ip_origin: RVec::new(),
        expires_ms: T0 + 86_400_000,
        read: false,
        write: false,
        delete: true,
        execute: false,
        email: RString::new(),
        ..key(Some(root.id), T0 + 1, "")
    };
    c.add_key(&child).await;
    for k in [&root, &child] {
        match c.get_key(k.id).await {
            Some(got) => c.same_key("get_key right after add_key", k, &got),
            None => c.fail(format!(
                "get_key({}) answered None right after add_key",
                describe_key(k)
            )),
        }
    }
    let missing = Id::random();
    if let Some(k) = c.get_key(missing).await {
        c.fail(format!(
            "get_key of an id never stored must answer None, got {}",
            describe_key(&k)
        ));
    }
}

/// `add_key` with an existing id answers `Conflict` (the stored key unchanged); with a parent
/// that does not exist it answers `NotFound` and stores nothing.
pub async fn check_key_add_errors(s: &Subject) {
    let c = Conn::new(s);
    let root = key(None, T0, "root@example.org");
    c.add_key(&root).await;
    let dup = StoredKey {
        email: "intruder@example.org".into(),
        write: false,
        ..root.clone()
    };
    let r = c.try_add_key(&dup).await;
    c.expect_err(
        "add_key with the id of an existing key",
        r,
        ErrorKind::Conflict,
        "the id exists",
    );
    match c.get_key(root.id).await {
        Some(got) => c.same_key("get_key after the rejected duplicate add_key", &root, &got),
        None => c.fail("get_key answered None for a root key after a rejected duplicate add_key"),
    }
    let orphan = key(Some(Id::random()), T0 + 1, "orphan@example.org");
    let r = c.try_add_key(&orphan).await;
    c.expect_err(
        "add_key whose parent does not exist",
        r,
        ErrorKind::NotFound,
        "parent is set and does not exist",
    );
    if c.get_key(orphan.id).await.is_some() {
        c.fail("add_key with a missing parent failed, yet get_key finds the key: a failed write must change nothing");
    }
    let roots = c.root_keys().await;
    c.same(
        "root_keys() after the rejected add_key calls",
        &ids(&roots),
        &vec![root.id],
    );
}

/// `key_children` answers the direct children only (one level, not grandchildren), oldest first
/// (`created_ms`, then id ascending); a leaf has none; a missing key answers `NotFound`.
pub async fn check_key_children_one_level(s: &Subject) {
    let c = Conn::new(s);
    let root = key(None, T0, "root@example.org");
    c.add_key(&root).await;
    let b = key(Some(root.id), T0 + 2000, "b@example.org");
    let a = key(Some(root.id), T0 + 1000, "a@example.org");
    let c3 = key(Some(root.id), T0 + 3000, "c@example.org");
    for k in [&b, &a, &c3] {
        c.add_key(k).await;
    }
    let a1 = key(Some(a.id), T0 + 4000, "a1@example.org");
    let a2 = key(Some(a.id), T0 + 500, "a2@example.org");
    c.add_key(&a1).await;
    c.add_key(&a2).await;
    let a1x = key(Some(a1.id), T0 + 6000, "a1x@example.org");
    c.add_key(&a1x).await;

    let kids = c.children(root.id).await;
    c.same(
        "key_children(root): the direct children, oldest first (a, b, c; not grandchildren)",
        &ids(&kids),
        &vec![a.id, b.id, c3.id],
    );
    for (want, got) in [&a, &b, &c3].iter().zip(&kids) {
        c.same_key("a key as key_children answers it", want, got);
    }
    let kids = c.children(a.id).await;
    c.same(
        "key_children(a): oldest first (a2 created before a1)",
        &ids(&kids),
        &vec![a2.id, a1.id],
    );
    // Equal created_ms: by id ascending (the host's key ids are time-ordered, so that is
    // creation order).
    let mut tied: Vec<StoredKey> = (0..3)
        .map(|i| key(Some(c3.id), T0 + 7000, &format!("c{i}@example.org")))
        .collect();
    for k in &tied {
        c.add_key(k).await;
    }
    tied.sort_by_key(|k| k.id);
    let kids = c.children(c3.id).await;
    c.same(
        "key_children(c): equal created_ms by id ascending",
        &ids(&kids),
        &ids(&tied),
    );
    let kids = c.children(a1x.id).await;
    c.same("key_children of a leaf", &ids(&kids), &vec![]);
    let r = c.try_children(Id::random()).await;
    c.expect_err(
        "key_children of a key that does not exist",
        r,
        ErrorKind::NotFound,
        "the key is missing",
    );
}

/// `root_keys` answers every key without a parent, and only those.
pub async fn check_key_root_keys(s: &Subject) {
    let c = Conn::new(s);
    let roots = c.root_keys().await;
    c.same("root_keys() of an empty connector", &ids(&roots), &vec![]);
    let r1 = key(None, T0, "r1@example.org");
    let r2 = key(None, T0 + 1000, "r2@example.org");
    c.add_key(&r1).await;
    c.add_key(&r2).await;
    let child = key(Some(r1.id), T0 + 2000, "child@example.org");
    c.add_key(&child).await;
    c.add_key(&key(Some(child.id), T0 + 3000, "grandchild@example.org"))
        .await;
    let got = c.root_keys().await;
    let got_set: BTreeSet<Id> = ids(&got).into_iter().collect();
    let want: BTreeSet<Id> = [r1.id, r2.id].into_iter().collect();
    c.same(
        "root_keys() (as a set): the keys without a parent",
        &got_set,
        &want,
    );
    c.same("root_keys(): each root once", &got.len(), &2);
    for k in &got {
        let want = if k.id == r1.id { &r1 } else { &r2 };
        c.same_key("a key as root_keys answers it", want, k);
    }
}

/// `update_key` replaces a key's fields; changing its parent (to another key or to none)
/// answers `Invalid` and changes nothing; a missing key answers `NotFound`.
pub async fn check_key_update(s: &Subject) {
    let c = Conn::new(s);
    let root = key(None, T0, "root@example.org");
    let other = key(None, T0 + 1, "other@example.org");
    c.add_key(&root).await;
    c.add_key(&other).await;
    let child = key(Some(root.id), T0 + 2, "child@example.org");
    c.add_key(&child).await;

    let updated = StoredKey {
        email: "new@example.org".into(),
        token_hash: "sha256:rotated".into(),
        ip_origin: RVec::from(vec![RString::from("10.0.0.0/8")]),
        expires_ms: T0 + 1_000_000,
        read: false,
        write: false,
        delete: true,
        execute: false,
        ..child.clone()
    };
    let r = c.try_update_key(&updated).await;
    c.ok("update_key of an existing key", r);
    match c.get_key(child.id).await {
        Some(got) => c.same_key("get_key after update_key", &updated, &got),
        None => c.fail("get_key answered None after update_key"),
    }
    c.same(
        "key_children(root) after updating its child",
        &ids(&c.children(root.id).await),
        &vec![child.id],
    );

    for (parent, what) in [
        (ROption::RSome(other.id), "to another key"),
        (ROption::RNone, "to none (making it a root)"),
    ] {
        let moved = StoredKey {
            parent,
            email: "moved@example.org".into(),
            ..updated.clone()
        };
        let r = c.try_update_key(&moved).await;
        c.expect_err(
            &format!("update_key changing the parent {what}"),
            r,
            ErrorKind::Invalid,
            "the parent of a key cannot change",
        );
        match c.get_key(child.id).await {
            Some(got) => c.same_key("get_key after a rejected parent change", &updated, &got),
            None => c.fail("get_key answered None after a rejected update_key"),
        }
    }
    let rooted = StoredKey {
        parent: ROption::RSome(root.id),
        ..other.clone()
    };
    let r = c.try_update_key(&rooted).await;
    c.expect_err(
        "update_key giving a root key a parent",
        r,
        ErrorKind::Invalid,
        "the parent of a key cannot change",
    );
    let roots: BTreeSet<Id> = ids(&c.root_keys().await).into_iter().collect();
    c.same(
        "root_keys() after rejected parent changes",
        &roots,
        &[root.id, other.id].into_iter().collect(),
    );
    let ghost = key(None, T0, "ghost@example.org");
    let r = c.try_update_key(&ghost).await;
    c.expect_err(
        "update_key of a key that does not exist",
        r,
        ErrorKind::NotFound,
        "the key is missing",
    );
    if c.get_key(ghost.id).await.is_some() {
        c.fail("update_key of a missing key failed, yet get_key finds it (no upsert)");
    }
}

/// `delete_key` removes the key and its whole subtree, answering every deleted id with the key
/// first and none twice; siblings and ancestors stay; deleting a missing or already deleted key
/// answers `NotFound`.
pub async fn check_key_delete_cascade(s: &Subject) {
    let c = Conn::new(s);
    let root = key(None, T0, "root@example.org");
    c.add_key(&root).await;
    let a = key(Some(root.id), T0 + 1, "a");
    let b = key(Some(root.id), T0 + 2, "b");
    c.add_key(&a).await;
    c.add_key(&b).await;
    let a1 = key(Some(a.id), T0 + 3, "a1");
    let a2 = key(Some(a.id), T0 + 4, "a2");
    c.add_key(&a1).await;
    c.add_key(&a2).await;
    let a1x = key(Some(a1.id), T0 + 5, "a1x");
    let a1y = key(Some(a1.id), T0 + 6, "a1y");
    c.add_key(&a1x).await;
    c.add_key(&a1y).await;
    let b1 = key(Some(b.id), T0 + 7, "b1");
    c.add_key(&b1).await;

    let r = c.try_delete_key(a.id).await;
    let deleted = c.ok("delete_key(a) of a key with children and grandchildren", r);
    let subtree = [a.id, a1.id, a2.id, a1x.id, a1y.id];
    ensure!(
        c,
        deleted.first() == Some(&a.id),
        "delete_key(a) must answer the deleted ids with a itself first, got {deleted:?} (a = {})",
        a.id
    );
    let got: BTreeSet<Id> = deleted.iter().copied().collect();
    ensure!(
        c,
        got.len() == deleted.len(),
        "delete_key(a) answered an id twice: {deleted:?}"
    );
    let want: BTreeSet<Id> = subtree.into_iter().collect();
    c.same(
        "delete_key(a): the set of deleted ids (a and its whole subtree)",
        &got,
        &want,
    );
    for id in subtree {
        if let Some(k) = c.get_key(id).await {
            c.fail(format!(
                "after delete_key(a), get_key still finds {} of the deleted subtree",
                describe_key(&k)
            ));
        }
    }
    for k in [&root, &b, &b1] {
        match c.get_key(k.id).await {
            Some(got) => c.same_key("a key outside the deleted subtree", k, &got),
            None => c.fail(format!(
                "delete_key(a) also removed {}, which is not in a's subtree",
                describe_key(k)
            )),
        }
    }
    c.same(
        "key_children(root) after deleting its child a",
        &ids(&c.children(root.id).await),
        &vec![b.id],
    );
    for id in [a.id, Id::random()] {
        let r = c.try_delete_key(id).await;
        c.expect_err(
            "delete_key of a deleted or missing key",
            r,
            ErrorKind::NotFound,
            "the key is missing",
        );
    }
    let r = c.try_children(a.id).await;
    c.expect_err(
        "key_children of a deleted key",
        r,
        ErrorKind::NotFound,
        "the key is missing",
    );
    let r = c.try_delete_key(root.id).await;
    let deleted = c.ok("delete_key(root)", r);
    let got: BTreeSet<Id> = deleted.iter().copied().collect();
    c.same(
        "delete_key(root): the remaining tree",
        &got,
        &[root.id, b.id, b1.id].into_iter().collect(),
    );
    c.same(
        "root_keys() after deleting the only root",
        &ids(&c.root_keys().await),
        &vec![],
    );
}
