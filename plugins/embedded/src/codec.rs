//! The on-disk encoding of objects, keys and documents: a small, hand-written binary format
//! (fixed-width integers little-endian, strings as a `u32` length and UTF-8 bytes). Decoding
//! never panics: a short or malformed record is an `Internal` error naming what was read.

use abi_stable::std_types::{ROption, RString, RVec};
use weft_plugin_api::{Id, ObjectKind, PluginError, PluginResult, StoredKey, StoredObject};

/// Appends encoded values to a buffer.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn id(&mut self, v: Id) -> &mut Self {
        self.0.extend_from_slice(&v.0);
        self
    }
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v.as_bytes());
        self
    }
    pub fn object(&mut self, o: &StoredObject) -> &mut Self {
        self.u8(kind_byte(o.kind))
            .id(o.id)
            .str(&o.class)
            .str(&o.context)
            .id(o.owner)
            .i64(o.created_ms)
            .i64(o.updated_ms)
            .str(&o.properties_json)
    }
    pub fn key(&mut self, k: &StoredKey) -> &mut Self {
        self.id(k.id);
        match k.parent {
            ROption::RSome(p) => self.u8(1).id(p),
            ROption::RNone => self.u8(0),
        };
        self.str(&k.token_hash).str(&k.email);
        self.u32(k.ip_origin.len() as u32);
        for ip in k.ip_origin.iter() {
            self.str(ip);
        }
        self.i64(k.expires_ms);
        let rights =
            k.read as u8 | (k.write as u8) << 1 | (k.delete as u8) << 2 | (k.execute as u8) << 3;
        self.u8(rights).i64(k.created_ms)
    }
}

/// Reads encoded values from a slice.
pub struct Reader<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        Reader { data, what }
    }
    fn take(&mut self, n: usize) -> PluginResult<&'a [u8]> {
        if self.data.len() < n {
            return Err(PluginError::internal(format!(
                "embedded: a stored {} record is truncated or corrupt",
                self.what
            )));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> PluginResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> PluginResult<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> PluginResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> PluginResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> PluginResult<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn id(&mut self) -> PluginResult<Id> {
        Ok(Id(self.array()?))
    }
    pub fn str(&mut self) -> PluginResult<RString> {
        let n = self.u32()? as usize;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes).map(RString::from).map_err(|_| {
            PluginError::internal(format!(
                "embedded: a stored {} record holds invalid UTF-8",
                self.what
            ))
        })
    }
    pub fn rest(&self) -> &'a [u8] {
        self.data
    }
    pub fn object(&mut self) -> PluginResult<StoredObject> {
        Ok(StoredObject {
            kind: byte_kind(self.u8()?)?,
            id: self.id()?,
            class: self.str()?,
            context: self.str()?,
            owner: self.id()?,
            created_ms: self.i64()?,
            updated_ms: self.i64()?,
            properties_json: self.str()?,
        })
    }
    pub fn key(&mut self) -> PluginResult<StoredKey> {
        let id = self.id()?;
        let parent = match self.u8()? {
            0 => ROption::RNone,
            _ => ROption::RSome(self.id()?),
        };
        let token_hash = self.str()?;
        let email = self.str()?;
        let n = self.u32()? as usize;
        let mut ip_origin = RVec::with_capacity(n.min(1024));
        for _ in 0..n {
            ip_origin.push(self.str()?);
        }
        let expires_ms = self.i64()?;
        let rights = self.u8()?;
        Ok(StoredKey {
            id,
            parent,
            token_hash,
            email,
            ip_origin,
            expires_ms,
            read: rights & 1 != 0,
            write: rights & 2 != 0,
            delete: rights & 4 != 0,
            execute: rights & 8 != 0,
            created_ms: self.i64()?,
        })
    }
}

pub fn kind_byte(kind: ObjectKind) -> u8 {
    match kind {
        ObjectKind::Thing => 0,
        ObjectKind::Action => 1,
    }
}

pub fn byte_kind(b: u8) -> PluginResult<ObjectKind> {
    match b {
        0 => Ok(ObjectKind::Thing),
        1 => Ok(ObjectKind::Action),
        _ => Err(PluginError::internal(format!(
            "embedded: a stored object has an unknown kind {b}"
        ))),
    }
}

/// The key of an object in the `objects` table: kind byte, then the id.
pub fn object_key(kind: ObjectKind, id: Id) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = kind_byte(kind);
    k[1..].copy_from_slice(&id.0);
    k
}

/// The key of one archived version: the object key, then its sequence number big-endian (so
/// the versions of one object sort oldest first).
pub fn history_key(kind: ObjectKind, id: Id, seq: u32) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[..17].copy_from_slice(&object_key(kind, id));
    k[17..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// One object id's life as stored in the `objects` table.
pub struct Entry {
    /// 1 at creation, one more per update.
    pub version: u64,
    /// How many versions are archived (the next one gets this sequence number).
    pub archived: u32,
    /// The current version; `None` once deleted (a tombstone: ids are never reused).
    pub current: Option<StoredObject>,
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u64(self.version).u32(self.archived);
        match &self.current {
            Some(o) => w.u8(1).object(o),
            None => w.u8(0),
        };
        w.0
    }

    pub fn decode(data: &[u8]) -> PluginResult<Self> {
        let mut r = Reader::new(data, "object");
        let version = r.u64()?;
        let archived = r.u32()?;
        let current = match r.u8()? {
            0 => None,
            _ => Some(r.object()?),
        };
        Ok(Entry {
            version,
            archived,
            current,
        })
    }

    /// Only the current object, without decoding the header into an `Entry` (for scans).
    pub fn decode_current(data: &[u8]) -> PluginResult<Option<StoredObject>> {
        Ok(Entry::decode(data)?.current)
    }
}
