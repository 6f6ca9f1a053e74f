//! Key-tree rules that the HTTP API cannot set up by itself, checked on the host's `KeyTree`
//! over the dev-memory connector (linked statically here).
use weft_core::keys::{hash_token, KeyTree};
use weft_core::ConnectorHandle;
use weft_plugin_api::{connector_box, now_ms, Id, StoredKey};

fn key(id: Id, parent: Option<Id>, token: &str, expires_ms: i64) -> StoredKey {
    StoredKey {
        id,
        parent: parent.into(),
        token_hash: hash_token(token).into(),
        email: "".into(),
        ip_origin: Default::default(),
        expires_ms,
        read: true,
        write: true,
        delete: true,
        execute: true,
        created_ms: now_ms(),
    }
}

#[tokio::test]
async fn a_key_whose_ancestor_has_expired_is_expired() {
    let conn = ConnectorHandle::from_box(
        connector_box(weft_dev_memory::DevMemory::new()),
        "dev-memory",
        weft_dev_memory::CAPABILITIES,
    );
    let tree = KeyTree::new(conn.clone());
    let (root, parent, child) = (Id::random(), Id::random(), Id::random());
    // Written directly (as another server, or data from before a rule existed, could have it):
    // the parent has expired, the child itself never expires.
    conn.add_key(key(root, None, "r", -1)).await.unwrap();
    conn.add_key(key(parent, Some(root), "p", now_ms() - 1))
        .await
        .unwrap();
    conn.add_key(key(child, Some(parent), "c", -1))
        .await
        .unwrap();
    let e = tree
        .authenticate(Some(&child.to_string()), Some("c"), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind.http_status(), 401);
    let msg = &e.message;
    assert!(
        msg.contains(&parent.to_string()) && msg.contains("expired"),
        "{msg}"
    );
    // The root still works, and so would the child under a living parent.
    tree.authenticate(Some(&root.to_string()), Some("r"), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_stored_token_is_a_hash_and_a_wrong_token_is_refused() {
    let conn = ConnectorHandle::from_box(
        connector_box(weft_dev_memory::DevMemory::new()),
        "dev-memory",
        weft_dev_memory::CAPABILITIES,
    );
    let tree = KeyTree::new(conn.clone());
    let (id, token) = tree.ensure_root(None).await.unwrap().expect("a new root");
    let stored = conn.get_key(id).await.unwrap().unwrap();
    assert!(
        !stored.token_hash.contains(&token),
        "the token itself must not be stored"
    );
    tree.authenticate(Some(&id.to_string()), Some(&token), None)
        .await
        .unwrap();
    let e = tree
        .authenticate(Some(&id.to_string()), Some(&Id::random().to_string()), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind.http_status(), 401);
    // A second start on the same store makes no new root.
    assert!(tree.ensure_root(None).await.unwrap().is_none());
}

/// When the configured root key changes, the old root stops working (its children do not),
/// and no key can give it a token again.
#[tokio::test]
async fn a_new_configured_root_revokes_the_old_one() {
    let conn = ConnectorHandle::from_box(
        connector_box(weft_dev_memory::DevMemory::new()),
        "dev-memory",
        weft_dev_memory::CAPABILITIES,
    );
    let tree = KeyTree::new(conn.clone());
    let (old, old_token) = (Id::random(), Id::random().to_string());
    tree.ensure_root(Some((old, old_token.clone())))
        .await
        .unwrap();
    let child_token = Id::random().to_string();
    let child = key(Id::random(), Some(old), &child_token, -1);
    conn.add_key(child.clone()).await.unwrap();
    let (new, new_token) = (Id::random(), Id::random().to_string());
    tree.ensure_root(Some((new, new_token.clone())))
        .await
        .unwrap();

    let e = tree
        .authenticate(Some(&old.to_string()), Some(&old_token), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind.http_status(), 401, "{e}");
    let root = tree
        .authenticate(Some(&new.to_string()), Some(&new_token), None)
        .await
        .unwrap();
    tree.authenticate(Some(&child.id.to_string()), Some(&child_token), None)
        .await
        .unwrap();
    // The new root cannot renew the old one back to life.
    let e = tree.renew(&root, old).await.unwrap_err();
    assert_eq!(e.kind.http_status(), 403, "{e}");
    // Starting again with the same root changes nothing.
    tree.ensure_root(Some((new, new_token.clone())))
        .await
        .unwrap();
    tree.authenticate(Some(&new.to_string()), Some(&new_token), None)
        .await
        .unwrap();
}
