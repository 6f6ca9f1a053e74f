//! Deleting a key without orphaning anything: the objects of the deleted subtree are re-owned
//! to the deleted key's parent (for a root key deleted by another root: to the caller).
//!
//! Order: re-own, delete the keys (one atomic connector call), then re-own again what a key of
//! the subtree created in between. Each object is moved with compare-and-set (or under its
//! object lock), so a concurrent write of the object is neither lost nor overwritten.

use weft_plugin_api::{ErrorKind as PErr, Id, ObjectKind, ObjectQuery};

use crate::core::{Core, MAX_ATTEMPTS};
use crate::keys::Principal;
use crate::{Error, Result};

/// Objects re-owned per query page.
const PAGE: u64 = 500;
/// Pages at most per kind and pass (a bound on one request's work: 500,000 objects).
const MAX_PAGES: usize = 1_000;

impl Core {
    /// `DELETE /keys/{id}`: a strict descendant of the caller and its whole subtree; their
    /// objects now belong to the deleted key's parent.
    pub async fn delete_key(&self, p: &Principal, id: Id) -> Result<()> {
        let k = self.keys.deletable(p, id).await?;
        let heir = k.parent.into_option().unwrap_or(p.id());
        let subtree = self.keys.subtree(id).await?;
        let moved = self.reown(&subtree, heir).await?;
        self.keys.delete_subtree(id).await?;
        let late = self.reown(&subtree, heir).await?;
        if moved + late > 0 {
            tracing::info!(
                "key {id} deleted with {} keys below it; {} objects now belong to key {heir}",
                subtree.len() - 1,
                moved + late
            );
        }
        Ok(())
    }

    /// Moves every object owned by one of `owners` to `heir`; answers how many.
    async fn reown(&self, owners: &[Id], heir: Id) -> Result<usize> {
        let mut moved = 0;
        for kind in [ObjectKind::Thing, ObjectKind::Action] {
            for _ in 0..MAX_PAGES {
                let mut q = ObjectQuery::all(kind, PAGE);
                q.owners = owners.to_vec().into();
                let page = self.conn.query_objects(q).await?;
                if page.objects.is_empty() {
                    break;
                }
                for o in page.objects.iter() {
                    self.reown_one(kind, o.id, owners, heir).await?;
                    moved += 1;
                }
            }
        }
        Ok(moved)
    }

    async fn reown_one(&self, kind: ObjectKind, id: Id, owners: &[Id], heir: Id) -> Result<()> {
        let _lock = self.conn.object_lock(kind, id).await;
        for _ in 0..MAX_ATTEMPTS {
            let Some(current) = self.conn.get_object_versioned(kind, id).await? else {
                return Ok(()); // deleted meanwhile
            };
            if !owners.contains(&current.object.owner) {
                return Ok(());
            }
            let mut o = current.object;
            o.owner = heir;
            match self.conn.update_object_if(o, current.version).await {
                Ok(()) => return Ok(()),
                Err(e) if e.kind == PErr::Conflict && self.cas() => continue,
                Err(e) if e.kind == PErr::NotFound => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::conflict(format!(
            "object {id} kept changing while it was moved to key {heir}; delete the key again"
        )))
    }
}
