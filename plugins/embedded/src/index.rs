//! Secondary indexes: by class, by owner and by primitive property value. They only **narrow**
//! a query to candidates; every candidate is still checked with the reference semantics
//! ([`weft_connector_sdk::support::QueryMatcher`]), so an index can never change an answer, only
//! how many objects are read.
//!
//! Keys (every table maps a key to nothing; the object id ends every key):
//! * class: kind, class (escaped), creation time and id newest first ([`NEWEST_BYTES`]: both
//!   inverted, [`scope_id`] reads the id back);
//! * owner: kind, owner id, creation time and id newest first (both since format version 3,
//!   the id inverted since version 4: a scope's keys are in the order of
//!   [`weft_connector_sdk::support::sort_newest_first`], so a page without a filter reads its keys
//!   and objects only);
//! * property: kind, property name (escaped), type tag, value, id — numbers as order-preserving
//!   `f64` (tag 1), strings escaped (tag 2), booleans (tag 3), and a string that is an RFC 3339
//!   date **also** as its instant (tag 4: order-preserving seconds, then nanoseconds), so
//!   `valueDate` comparisons, which compare instants, use the index too (since format version
//!   2). Arrays, objects and `null` are not indexed (no comparison ever matches them);
//! * reference (since format version 8): kind, property name (escaped), target kind, target id,
//!   id — one key per reference in a property's value (a reference or an array of them, as
//!   [`weft_plugin_api::filter::references`] reads them; dangling ones too), so a comparison
//!   through a reference (`[property, Class, …]`) finds the objects that refer to the targets
//!   the rest of its path finds ([`plan`]).
//!
//! A string is escaped so that byte order of keys is the code-point order of strings, and no
//! string is a prefix of another's key: `0x00` becomes `0x00 0xFF`, and `0x00 0x00` ends it.

use std::collections::BTreeSet;
use std::ops::Bound;

use serde_json::Value;
use weft_plugin_api::exact_sum::ExactSum;
use weft_plugin_api::filter::{references, FilterValue, Operator, WhereFilter};
use weft_plugin_api::{Id, ObjectKind, StoredObject};

use crate::codec::kind_byte;

fn escaped(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// `f64` as 8 bytes whose byte order is the numeric order (`-0.0` and `0.0` made equal).
fn ordered_f64(f: f64) -> [u8; 8] {
    let f = if f == 0.0 { 0.0 } else { f };
    let bits = f.to_bits();
    let bits = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    bits.to_be_bytes()
}

const NUMBER: u8 = 1;
const STRING: u8 = 2;
const BOOLEAN: u8 = 3;
const DATE: u8 = 4;

/// An instant as 12 bytes whose byte order is the time order: seconds since the epoch
/// (order-preserving `i64`), then nanoseconds.
fn ordered_instant(d: &chrono::DateTime<chrono::FixedOffset>) -> Vec<u8> {
    let mut v = ((d.timestamp() as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    v.extend_from_slice(&d.timestamp_subsec_nanos().to_be_bytes());
    v
}

/// The bytes after a class or owner prefix: the creation time, then the id, both newest first.
pub const NEWEST_BYTES: usize = 8 + 16;

/// `created_ms` and `id` as bytes whose order is newest first, then by id descending (the order
/// of [`weft_connector_sdk::support::sort_newest_first`]): every bit of both inverted.
fn newest_first(created_ms: i64, id: Id) -> [u8; NEWEST_BYTES] {
    let mut k = [0u8; NEWEST_BYTES];
    k[..8].copy_from_slice(&(!((created_ms as u64) ^ (1 << 63))).to_be_bytes());
    k[8..].copy_from_slice(&inverted(id.0));
    k
}

fn inverted(bytes: [u8; 16]) -> [u8; 16] {
    bytes.map(|b| !b)
}

/// The id at the end of a class or owner key (or of its [`newest_suffix`]).
pub fn scope_id(key: &[u8]) -> Id {
    Id(inverted(id_of(key).0))
}

/// The last [`NEWEST_BYTES`] of a class or owner key (its order within the scope).
pub fn newest_suffix(key: &[u8]) -> [u8; NEWEST_BYTES] {
    let mut k = [0u8; NEWEST_BYTES];
    if key.len() >= NEWEST_BYTES {
        k.copy_from_slice(&key[key.len() - NEWEST_BYTES..]);
    }
    k
}

/// The first and the last possible key of a class or owner scope.
pub fn scope_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut hi = prefix.to_vec();
    hi.extend_from_slice(&[0xff; NEWEST_BYTES]);
    (prefix.to_vec(), hi)
}

pub fn class_key(object: &StoredObject) -> Vec<u8> {
    let mut k = class_prefix(object.kind, &object.class);
    k.extend_from_slice(&newest_first(object.created_ms, object.id));
    k
}

pub fn class_prefix(kind: ObjectKind, class: &str) -> Vec<u8> {
    let mut k = vec![kind_byte(kind)];
    escaped(&mut k, class);
    k
}

pub fn owner_key(object: &StoredObject) -> [u8; 17 + NEWEST_BYTES] {
    let mut k = [0u8; 17 + NEWEST_BYTES];
    k[..17].copy_from_slice(&owner_prefix(object.kind, object.owner));
    k[17..].copy_from_slice(&newest_first(object.created_ms, object.id));
    k
}

pub fn owner_prefix(kind: ObjectKind, owner: Id) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = kind_byte(kind);
    k[1..].copy_from_slice(&owner.0);
    k
}

/// The prefix of an owner's objects of one class: kind, owner id, class (escaped).
pub fn owner_class_prefix(kind: ObjectKind, owner: Id, class: &str) -> Vec<u8> {
    let mut k = owner_prefix(kind, owner).to_vec();
    escaped(&mut k, class);
    k
}

/// An object's key in the owner-and-class index: [`owner_class_prefix`], then the creation
/// time and id newest first (since format version 5: a page of a class and owners, a
/// non-root key's `Get`, reads only its own objects).
pub fn owner_class_key(object: &StoredObject) -> Vec<u8> {
    let mut k = owner_class_prefix(object.kind, object.owner, &object.class);
    k.extend_from_slice(&newest_first(object.created_ms, object.id));
    k
}

fn property_prefix(kind: ObjectKind, property: &str, tag: u8) -> Vec<u8> {
    let mut k = vec![kind_byte(kind)];
    escaped(&mut k, property);
    k.push(tag);
    k
}

/// The tag and encoded value of an indexable property value.
fn encoded_value(v: &Value) -> Option<(u8, Vec<u8>)> {
    match v {
        Value::Number(n) => n.as_f64().map(|f| (NUMBER, ordered_f64(f).to_vec())),
        Value::String(s) => {
            let mut e = Vec::with_capacity(s.len() + 2);
            escaped(&mut e, s);
            Some((STRING, e))
        }
        Value::Bool(b) => Some((BOOLEAN, vec![*b as u8])),
        _ => None,
    }
}

/// Every property-index key of `object`: one per primitive value, and a second one for a
/// string that is an RFC 3339 date.
pub fn property_keys(object: &StoredObject) -> Vec<Vec<u8>> {
    let key = |name: &str, tag: u8, value: &[u8]| {
        let mut k = property_prefix(object.kind, name, tag);
        k.extend_from_slice(value);
        k.extend_from_slice(&object.id.0);
        k
    };
    let mut keys = Vec::new();
    for (name, v) in object.properties().iter() {
        let Some((tag, value)) = encoded_value(v) else {
            continue;
        };
        keys.push(key(name, tag, &value));
        if let Value::String(s) = v {
            if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
                keys.push(key(name, DATE, &ordered_instant(&d)));
            }
        }
    }
    keys
}

/// The prefix of the reference-index keys of `property` of objects of `kind`: kind, property
/// (escaped); the target kind, the target id and the referring object's id follow.
fn reference_prefix(kind: ObjectKind, property: &str) -> Vec<u8> {
    let mut k = vec![kind_byte(kind)];
    escaped(&mut k, property);
    k
}

/// Every reference-index key of `object`: one per reference (target kind and id) in each of its
/// properties, a target referred to twice in one property once.
pub fn reference_keys(object: &StoredObject) -> Vec<Vec<u8>> {
    let mut keys = BTreeSet::new();
    for (name, v) in object.properties().iter() {
        if !matches!(v, Value::Object(_) | Value::Array(_)) {
            continue;
        }
        for (kind, id) in references(v) {
            let mut k = reference_prefix(object.kind, name);
            k.push(kind_byte(kind));
            k.extend_from_slice(&id.0);
            k.extend_from_slice(&object.id.0);
            keys.insert(k);
        }
    }
    keys.into_iter().collect()
}

/// The key of a class's statistics of one property ([`Stats`]): kind, class, property (both
/// escaped).
pub fn stats_key(kind: ObjectKind, class: &str, property: &str) -> Vec<u8> {
    let mut k = class_prefix(kind, class);
    escaped(&mut k, property);
    k
}

/// The prefix of a class's value-count keys of one property and type tag (numbers, strings or
/// booleans): [`stats_key`], the tag; the value follows.
fn class_value_prefix(kind: ObjectKind, class: &str, property: &str, tag: u8) -> Vec<u8> {
    let mut k = stats_key(kind, class, property);
    k.push(tag);
    k
}

/// The range of a class's value-count keys of one property and type.
fn class_values(kind: ObjectKind, class: &str, property: &str, tag: u8) -> (Vec<u8>, Vec<u8>) {
    let lo = class_value_prefix(kind, class, property, tag);
    let mut hi = lo.clone();
    if let Some(last) = hi.last_mut() {
        *last += 1;
    }
    (lo, hi)
}

/// The number value-count keys of a class's property (`lo..hi`).
pub fn class_numbers(kind: ObjectKind, class: &str, property: &str) -> (Vec<u8>, Vec<u8>) {
    class_values(kind, class, property, NUMBER)
}

/// The string value-count keys of a class's property (`lo..hi`).
pub fn class_strings(kind: ObjectKind, class: &str, property: &str) -> (Vec<u8>, Vec<u8>) {
    class_values(kind, class, property, STRING)
}

/// The value-count key of a boolean of a class's property.
pub fn class_boolean(kind: ObjectKind, class: &str, property: &str, b: bool) -> Vec<u8> {
    let mut k = class_value_prefix(kind, class, property, BOOLEAN);
    k.push(b as u8);
    k
}

/// The value-count key (of a class's property) that counts exactly the objects an `Equal`
/// comparison with `value` matches, or `None` when that key may also count others: a date
/// (compared as an instant, counted as a string), or an integer too large for `f64` (values
/// are counted by their `f64`, which equals exactly when below 2^53).
pub fn class_equal_key(
    kind: ObjectKind,
    class: &str,
    property: &str,
    value: &FilterValue,
) -> Option<Vec<u8>> {
    let (tag, encoded) = match value {
        FilterValue::Int(i) if i.unsigned_abs() < 1 << 53 => {
            (NUMBER, ordered_f64(*i as f64).to_vec())
        }
        FilterValue::Number(f) => (NUMBER, ordered_f64(*f).to_vec()),
        FilterValue::String(s) => encoded_value(&Value::String(s.clone()))?,
        FilterValue::Boolean(b) => (BOOLEAN, vec![*b as u8]),
        FilterValue::Int(_) | FilterValue::Date(_) => return None,
    };
    let mut k = class_value_prefix(kind, class, property, tag);
    k.extend_from_slice(&encoded);
    Some(k)
}

/// The number a number value-count key ends with (of [`class_numbers`]).
pub fn number_of(key: &[u8]) -> f64 {
    let mut b = [0u8; 8];
    if key.len() >= 8 {
        b.copy_from_slice(&key[key.len() - 8..]);
    }
    let bits = u64::from_be_bytes(b);
    let bits = if bits >> 63 == 1 {
        bits & !(1 << 63)
    } else {
        !bits
    };
    f64::from_bits(bits)
}

/// The string a string value-count key of `prefix_len` bytes of prefix ends with (of
/// [`class_strings`]).
pub fn string_of(key: &[u8], prefix_len: usize) -> String {
    let mut out = Vec::new();
    let mut bytes = key.get(prefix_len..).unwrap_or_default().iter();
    while let Some(&b) = bytes.next() {
        if b == 0 {
            match bytes.next() {
                Some(0xff) => out.push(0),
                _ => break,
            }
        } else {
            out.push(b);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every per-class value-count key of `object` (one per primitive property value: a number,
/// a string or a boolean; dates are strings here), with its property and value.
pub fn class_value_keys(object: &StoredObject) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for (name, v) in object.properties().iter() {
        if let Some((tag, value)) = encoded_value(v) {
            let mut k = class_value_prefix(object.kind, &object.class, name, tag);
            k.extend_from_slice(&value);
            keys.push(k);
        }
    }
    keys
}

/// What a class's current objects hold in one property, kept as running totals: how many have
/// it (any value), how many of them an integer, another number, a string or a boolean, and the
/// exact sum of every number ([`ExactSum`]: the reference aggregate's sum, rounded once, whatever
/// the order of writes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub present: i64,
    pub ints: i64,
    pub floats: i64,
    pub strings: i64,
    pub booleans: i64,
    pub sum: ExactSum,
}

const STATS_BYTES: usize = 5 * 8 + ExactSum::BYTES;

impl Stats {
    /// Counts `value` in (`sign` 1) or out (`sign` -1).
    pub fn add(&mut self, value: &Value, sign: i64) {
        self.present += sign;
        match value {
            Value::Number(n) => {
                if let Some(f) = n.as_f64() {
                    if sign > 0 {
                        self.sum.add(f);
                    } else {
                        self.sum.sub(f);
                    }
                }
                if n.is_i64() || n.is_u64() {
                    self.ints += sign;
                } else {
                    self.floats += sign;
                }
            }
            Value::String(_) => self.strings += sign,
            Value::Bool(_) => self.booleans += sign,
            _ => {}
        }
    }

    /// `self + other`, field by field.
    pub fn plus(self, other: Stats) -> Stats {
        let mut sum = self.sum;
        sum.add_sum(&other.sum);
        Stats {
            present: self.present + other.present,
            ints: self.ints + other.ints,
            floats: self.floats + other.floats,
            strings: self.strings + other.strings,
            booleans: self.booleans + other.booleans,
            sum,
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Stats::default()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(STATS_BYTES);
        for n in [
            self.present,
            self.ints,
            self.floats,
            self.strings,
            self.booleans,
        ] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        v.extend_from_slice(&self.sum.to_bytes());
        v
    }

    /// The statistics of [`encode`](Self::encode)'s bytes (zero for bytes of another length).
    pub fn decode(bytes: &[u8]) -> Stats {
        if bytes.len() != STATS_BYTES {
            return Stats::default();
        }
        let i64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            i64::from_be_bytes(b)
        };
        Stats {
            present: i64_at(0),
            ints: i64_at(1),
            floats: i64_at(2),
            strings: i64_at(3),
            booleans: i64_at(4),
            sum: ExactSum::from_bytes(&bytes[40..]).unwrap_or_default(),
        }
    }
}

/// Which index a [`KeyRange`] is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// The property index ([`property_keys`]).
    Property,
    /// The reference index ([`reference_keys`]).
    Reference,
}

/// A key range of one index; every key of it ends with an object id ([`id_of`]).
pub struct KeyRange {
    pub index: Index,
    pub lo: Bound<Vec<u8>>,
    pub hi: Bound<Vec<u8>>,
}

/// Which ranges of the property and reference indexes hold every object a filter can match, as
/// a tree of unions and intersections: `None` when the filter cannot be answered from the
/// indexes (then the caller scans).
pub enum Plan {
    Ranges(Vec<KeyRange>),
    And(Vec<Plan>),
    Or(Vec<Plan>),
    /// The objects whose property (the reference-index keys that start with `prefix`:
    /// [`reference_prefix`]) refers to an object that a target plan finds: per target kind
    /// (the reference's `type` decides it, so both), that kind's plan of the rest of the path.
    Referring {
        prefix: Vec<u8>,
        targets: Vec<(ObjectKind, Plan)>,
    },
}

/// Ids from `prefix ++ value ++ id` keys: the range of every key whose value lies between
/// `lo` and `hi` (inclusive or not, as given; `None` is unbounded).
fn value_range(prefix: Vec<u8>, lo: Option<Vec<u8>>, hi: Option<Vec<u8>>) -> KeyRange {
    let mut tag_end = prefix.clone();
    if let Some(last) = tag_end.last_mut() {
        *last += 1;
    }
    let lo = match lo {
        None => Bound::Included(prefix.clone()),
        Some(v) => {
            let mut k = prefix.clone();
            k.extend_from_slice(&v);
            Bound::Included(k)
        }
    };
    let hi = match hi {
        None => Bound::Excluded(tag_end),
        Some(v) => {
            let mut k = prefix;
            k.extend_from_slice(&v);
            k.extend_from_slice(&[0xff; 16]);
            Bound::Included(k)
        }
    };
    KeyRange {
        index: Index::Property,
        lo,
        hi,
    }
}

/// The plan for `filter` over objects of `kind`. A comparison through a reference
/// (`[property, Class, rest…]`) is planned as the comparison of `rest` over the targets (of
/// both kinds; recursively, so longer paths work too), then the objects referring to them by
/// `property`: a superset of its matches, as the targets' class is left to the check of each
/// candidate. `Not` is not planned (it matches objects without the property, which no index
/// holds), through a reference or not; the store answers a `Not` of a planned filter as its
/// scope less the filter's checked hits.
pub fn plan(kind: ObjectKind, filter: &WhereFilter) -> Option<Plan> {
    match filter.op() {
        Operator::And => {
            let parts: Vec<Plan> = filter
                .operands
                .iter()
                .filter_map(|o| plan(kind, o))
                .collect();
            (!parts.is_empty()).then_some(Plan::And(parts))
        }
        Operator::Or => {
            let parts: Option<Vec<Plan>> = filter.operands.iter().map(|o| plan(kind, o)).collect();
            parts.map(Plan::Or)
        }
        Operator::Not => None,
        op => {
            if filter.path.len() >= 3 {
                // Some value at the end of the path compares true (`path_values`, `any`), so
                // some referred object's `rest` does: NotEqual included.
                let rest = WhereFilter {
                    path: filter.path[2..].to_vec(),
                    ..filter.clone()
                };
                let targets = [ObjectKind::Thing, ObjectKind::Action]
                    .into_iter()
                    .map(|target| Some((target, plan(target, &rest)?)))
                    .collect::<Option<Vec<_>>>()?;
                return Some(Plan::Referring {
                    prefix: reference_prefix(kind, &filter.path[0]),
                    targets,
                });
            }
            if filter.path.len() != 1 {
                return None;
            }
            let property = &filter.path[0];
            let value = filter.value().ok()?;
            let (tag, wanted) = match &value {
                FilterValue::Int(i) => (NUMBER, ordered_f64(*i as f64).to_vec()),
                FilterValue::Number(f) => (NUMBER, ordered_f64(*f).to_vec()),
                FilterValue::String(s) => encoded_value(&Value::String(s.clone()))?,
                FilterValue::Boolean(b) => {
                    // Only Equal and NotEqual exist for booleans: NotEqual is the other value.
                    let b = if op == Operator::NotEqual { !*b } else { *b };
                    (BOOLEAN, vec![b as u8])
                }
                FilterValue::Date(d) => (DATE, ordered_instant(d)),
            };
            let prefix = property_prefix(kind, property, tag);
            // Bounds are inclusive even for strict comparisons (and numbers compare as f64,
            // which rounds monotonically), so the ranges hold a superset of the matches.
            let range = match op {
                Operator::Equal => value_range(prefix, Some(wanted.clone()), Some(wanted)),
                Operator::NotEqual if tag == BOOLEAN => {
                    value_range(prefix, Some(wanted.clone()), Some(wanted))
                }
                // A comparison with a missing property or a value of another type is false,
                // so every match has a value of this type: the whole type's range.
                Operator::NotEqual => value_range(prefix, None, None),
                Operator::GreaterThan | Operator::GreaterThanEqual => {
                    value_range(prefix, Some(wanted), None)
                }
                Operator::LessThan | Operator::LessThanEqual => {
                    value_range(prefix, None, Some(wanted))
                }
                _ => return None,
            };
            Some(Plan::Ranges(vec![range]))
        }
    }
}

/// Runs a plan: `ids(range)` answers the ids of one range (of either index).
pub fn run<E>(
    plan: &Plan,
    ids: &mut impl FnMut(&KeyRange) -> Result<BTreeSet<Id>, E>,
) -> Result<BTreeSet<Id>, E> {
    match plan {
        Plan::Ranges(ranges) => {
            let mut out = BTreeSet::new();
            for r in ranges {
                out.extend(ids(r)?);
            }
            Ok(out)
        }
        Plan::Or(parts) => {
            let mut out = BTreeSet::new();
            for p in parts {
                out.extend(run(p, ids)?);
            }
            Ok(out)
        }
        Plan::And(parts) => {
            let mut out: Option<BTreeSet<Id>> = None;
            for p in parts {
                let these = run(p, ids)?;
                out = Some(match out {
                    None => these,
                    Some(so_far) => so_far.intersection(&these).copied().collect(),
                });
                if out.as_ref().is_some_and(BTreeSet::is_empty) {
                    break;
                }
            }
            Ok(out.unwrap_or_default())
        }
        Plan::Referring { prefix, targets } => {
            let mut out = BTreeSet::new();
            for (kind, target) in targets {
                for id in run(target, ids)? {
                    let mut lo = prefix.clone();
                    lo.push(kind_byte(*kind));
                    lo.extend_from_slice(&id.0);
                    let mut hi = lo.clone();
                    hi.extend_from_slice(&[0xff; 16]);
                    out.extend(ids(&KeyRange {
                        index: Index::Reference,
                        lo: Bound::Included(lo),
                        hi: Bound::Included(hi),
                    })?);
                }
            }
            Ok(out)
        }
    }
}

/// The id at the end of a property or reference key.
pub fn id_of(key: &[u8]) -> Id {
    let mut id = [0u8; 16];
    if key.len() >= 16 {
        id.copy_from_slice(&key[key.len() - 16..]);
    }
    Id(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_keep_order() {
        let nums = [-1e300, -5.5, -1.0, -0.0, 0.0, 1e-9, 1.0, 2.0, 1e300];
        for w in nums.windows(2) {
            assert!(ordered_f64(w[0]) <= ordered_f64(w[1]), "{w:?}");
        }
        let strs = ["", "\0", "\0a", "a", "a\0", "ab", "b", "é"];
        let enc = |s: &str| {
            let mut v = vec![];
            escaped(&mut v, s);
            v.extend_from_slice(&[0xff; 16]);
            v
        };
        for w in strs.windows(2) {
            assert!(enc(w[0]) < enc(w[1]), "{w:?}");
        }
        let dates = [
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999999Z",
            "1970-01-01T00:00:00Z",
            "2018-11-21T10:00:00+01:00",
            "2018-11-21T09:30:00Z",
            "2018-11-21T09:30:00.5Z",
            "9999-12-31T23:59:59Z",
        ];
        for w in dates.windows(2) {
            let [a, b] = [w[0], w[1]].map(|d| chrono::DateTime::parse_from_rfc3339(d).unwrap());
            assert!(ordered_instant(&a) < ordered_instant(&b), "{w:?}");
        }
        // Newest first, then by id descending: the order of `support::sort_newest_first`.
        let mut objects: Vec<StoredObject> = [
            (i64::MIN, 3u8),
            (-5, 1),
            (0, 2),
            (0, 1),
            (0, 0xff),
            (7, 9),
            (7, 0),
            (i64::MAX, 4),
        ]
        .iter()
        .map(|&(created_ms, id)| StoredObject {
            kind: ObjectKind::Thing,
            id: Id([id; 16]),
            class: "C".into(),
            context: "".into(),
            owner: Id([1; 16]),
            created_ms,
            updated_ms: 0,
            properties_json: "{}".into(),
        })
        .collect();
        let mut by_key = objects.clone();
        by_key.sort_by_key(class_key);
        weft_connector_sdk::support::sort_newest_first(&mut objects);
        assert_eq!(by_key, objects);
        by_key.sort_by_key(owner_key);
        assert_eq!(by_key, objects);
        for o in &objects {
            assert_eq!(scope_id(&class_key(o)), o.id);
            assert_eq!(scope_id(&newest_suffix(&owner_key(o))), o.id);
        }
        // Value-count keys read back.
        for f in nums {
            let mut k = vec![7u8];
            k.extend_from_slice(&ordered_f64(f));
            assert_eq!(number_of(&k), if f == 0.0 { 0.0 } else { f });
        }
        for s in strs {
            let mut k = vec![7u8, 8];
            escaped(&mut k, s);
            assert_eq!(string_of(&k, 2), s);
        }
        // One instant in two offsets is one key.
        let [a, b] = ["2018-11-21T10:00:00+01:00", "2018-11-21T09:00:00Z"]
            .map(|d| chrono::DateTime::parse_from_rfc3339(d).unwrap());
        assert_eq!(ordered_instant(&a), ordered_instant(&b));
    }
}
