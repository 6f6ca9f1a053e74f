//! The tables of the store: each one's name and key and value types, the list of them all, and
//! how one is copied with its own types (for backups). [`crate::store`] reads and writes them,
//! [`crate::backup`] copies them; neither knows the other's insides.

use redb::{Database, Durability, Key, ReadTransaction, ReadableTable, TableDefinition, Value};
use weft_plugin_api::{PluginError, PluginResult};

/// A key or value of raw bytes.
pub(crate) type Bytes = &'static [u8];

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// kind byte + id → [`crate::codec::Entry`].
pub(crate) const OBJECTS: TableDefinition<Bytes, Bytes> = TableDefinition::new("objects");
/// kind byte + id + sequence (big-endian u32) → archived_ms (i64) + object.
pub(crate) const HISTORY: TableDefinition<Bytes, Bytes> = TableDefinition::new("history");
/// key id → key.
pub(crate) const KEYS: TableDefinition<Bytes, Bytes> = TableDefinition::new("keys");
/// parent id + child id → nothing (the children index).
pub(crate) const KEY_CHILDREN: TableDefinition<Bytes, Bytes> = TableDefinition::new("key_children");
/// 0 ontology, 1 connector state → version (u64) + JSON.
pub(crate) const DOCUMENTS: TableDefinition<u8, Bytes> = TableDefinition::new("documents");
/// Current objects by class ([`crate::index::class_key`]).
pub(crate) const CLASS_INDEX: TableDefinition<Bytes, Bytes> = TableDefinition::new("index_class");
/// Current objects by owner ([`crate::index::owner_key`]).
pub(crate) const OWNER_INDEX: TableDefinition<Bytes, Bytes> = TableDefinition::new("index_owner");
/// Current objects by primitive property value ([`crate::index::property_keys`]).
pub(crate) const PROPERTY_INDEX: TableDefinition<Bytes, Bytes> =
    TableDefinition::new("index_property");
/// Current objects by the objects their properties refer to (format version 8,
/// [`crate::index::reference_keys`]).
pub(crate) const REFERENCE_INDEX: TableDefinition<Bytes, Bytes> =
    TableDefinition::new("index_reference");
/// How many current objects each class has ([`crate::index::class_prefix`] → count).
pub(crate) const CLASS_COUNTS: TableDefinition<Bytes, u64> = TableDefinition::new("count_class");
/// How many current objects each owner has ([`crate::index::owner_prefix`] → count).
pub(crate) const OWNER_COUNTS: TableDefinition<Bytes, u64> = TableDefinition::new("count_owner");

/// Current objects by owner and class ([`crate::index::owner_class_key`]).
pub(crate) const OWNER_CLASS_INDEX: TableDefinition<Bytes, Bytes> =
    TableDefinition::new("index_owner_class");
/// How many current objects each owner has of each class
/// ([`crate::index::owner_class_prefix`] → count).
pub(crate) const OWNER_CLASS_COUNTS: TableDefinition<Bytes, u64> =
    TableDefinition::new("count_owner_class");
/// How many current objects of a class have each primitive value of a property
/// ([`crate::index::class_value_keys`] → count): the lowest and highest number, the counts of
/// strings and booleans, without reading objects.
pub(crate) const CLASS_VALUES: TableDefinition<Bytes, u64> =
    TableDefinition::new("count_class_value");
/// A class's running totals of one property ([`crate::index::stats_key`] →
/// [`crate::index::Stats`]).
pub(crate) const CLASS_STATS: TableDefinition<Bytes, Bytes> = TableDefinition::new("stats_class");

/// Object vectors (format version 6, [`crate::vectors`]): kind byte + id → the vector's
/// sequence number (u64 big-endian, its key in its class's vector index) + the vector (`f32`
/// little-endian each). Only current objects that have a vector are here: the truth the vector
/// indexes (in memory) are built from at open.
pub(crate) const VECTORS: TableDefinition<Bytes, Bytes> = TableDefinition::new("vectors");
/// The vectors by class ([`crate::vectors::vector_key`]): kind byte + class (escaped) +
/// sequence number (big-endian) → the object id. Resolves a vector index's keys, and lists a
/// class's vectors (to rebuild its index, or to search it exactly).
pub(crate) const VECTOR_KEYS: TableDefinition<Bytes, Bytes> = TableDefinition::new("vector_keys");

/// Every table, for backups ([`crate::backup`]): a table missing here would be missing from
/// backups (the backup test compares every table of a copy with its source).
pub(crate) const TABLES: [&dyn CopyTable; 18] = [
    &META,
    &OBJECTS,
    &HISTORY,
    &KEYS,
    &KEY_CHILDREN,
    &DOCUMENTS,
    &CLASS_INDEX,
    &OWNER_INDEX,
    &PROPERTY_INDEX,
    &REFERENCE_INDEX,
    &CLASS_COUNTS,
    &OWNER_COUNTS,
    &CLASS_VALUES,
    &CLASS_STATS,
    &OWNER_CLASS_INDEX,
    &OWNER_CLASS_COUNTS,
    &VECTORS,
    &VECTOR_KEYS,
];

/// The number of current (not deleted) objects in a snapshot: the sum of the class counters.
pub(crate) fn current_objects(tx: &redb::ReadTransaction) -> PluginResult<u64> {
    let counts = tx.open_table(CLASS_COUNTS).map_err(st)?;
    let mut n = 0u64;
    for entry in counts.iter().map_err(st)? {
        n += entry.map_err(st)?.1.value();
    }
    Ok(n)
}

/// A failure of redb, as an `Unavailable` error.
pub(crate) fn st(e: impl Into<redb::Error>) -> PluginError {
    PluginError::unavailable(format!("embedded: the store failed: {}", e.into()))
}

/// Entries copied per destination transaction (bounds the copy's memory, not its consistency:
/// the source is one snapshot and the destination is invisible until renamed).
const CHUNK: usize = 20_000;

/// One table of the store, copied with its own key and value types.
pub trait CopyTable: Sync {
    /// Copies every entry of this table from `src` into `dst`.
    fn copy(&self, src: &ReadTransaction, dst: &Database) -> PluginResult<()>;
}

impl<K: Key + Sync + 'static, V: Value + Sync + 'static> CopyTable
    for TableDefinition<'static, K, V>
{
    fn copy(&self, src: &ReadTransaction, dst: &Database) -> PluginResult<()> {
        let table = src.open_table(*self).map_err(st)?;
        let mut entries = table.iter().map_err(st)?.peekable();
        loop {
            let mut tx = dst.begin_write().map_err(st)?;
            tx.set_durability(Durability::None).map_err(st)?;
            {
                // Opening it creates it, so even an empty table is in the copy.
                let mut out = tx.open_table(*self).map_err(st)?;
                for _ in 0..CHUNK {
                    let Some(entry) = entries.next() else { break };
                    let (k, v) = entry.map_err(st)?;
                    out.insert(k.value(), v.value()).map_err(st)?;
                }
            }
            tx.commit().map_err(st)?;
            if entries.peek().is_none() {
                return Ok(());
            }
        }
    }
}
