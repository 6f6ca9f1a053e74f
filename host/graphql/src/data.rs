//! Where GraphQL answers come from: one [`RequestEnv`] per HTTP request holds the caller, the
//! owners whose objects it may see, and a cache of objects reached through references.
//!
//! Filters and aggregates go to the connector when it declares the capability
//! ([`Capabilities::FILTER`], [`Capabilities::FILTER_REFERENCE_PATHS`],
//! [`Capabilities::AGGREGATE`]); otherwise the host pages through the class, prefetches the objects
//! the filter's reference paths reach, and evaluates with the contract's reference semantics
//! ([`WhereFilter::matches`], [`aggregate::compute`]). A caller that does not see every object
//! (not the root) never has a reference path resolved by the connector, which knows nothing of
//! keys: the host resolves it over the objects the caller may see.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};
use weft_plugin_api::aggregate::{self, AggregateRequest, AggregateResult};
use weft_plugin_api::filter::WhereFilter;
use weft_plugin_api::{Capabilities, Id, ObjectKind, ObjectQuery, StoredObject};

use weft_core::network::CallerKey;
use weft_core::ontology::{parse_reference, Ontology};
use weft_core::{Core, Principal, Visibility};

/// Objects fetched per call when the host pages through a class.
const CHUNK: u64 = 500;

/// An object as the resolvers see it: the envelope and its parsed property bag.
pub struct Obj {
    /// The stored object.
    pub stored: StoredObject,
    /// Its properties.
    pub props: Map<String, Value>,
    /// How certainly it matches a search by meaning (`_certainty`), when it was found by one.
    pub certainty: Option<f64>,
}

impl Obj {
    /// Parses the bag once.
    pub fn new(stored: StoredObject) -> Self {
        let props = stored.properties();
        Obj {
            stored,
            props,
            certainty: None,
        }
    }

    /// An object found by meaning.
    pub fn found(found: weft_core::meaning::Found) -> Self {
        Obj {
            certainty: Some(found.certainty),
            ..Obj::new(found.object)
        }
    }
}

/// One reference hop: the property followed and, when given, the only class kept.
type Hop = (String, Option<String>);

/// What one HTTP request may see, and what it has fetched so far.
pub struct RequestEnv {
    core: Arc<Core>,
    /// The caller.
    principal: Principal,
    /// The key the caller presented, for network queries that forward it.
    caller_key: Option<CallerKey>,
    /// What the caller may see (asked of the core).
    vis: Visibility,
    /// Objects reached through references: `None` for missing or not visible.
    cache: Mutex<HashMap<(ObjectKind, Id), Option<StoredObject>>>,
    /// Objects read from the connector for this request so far (`limits.max_query_objects`).
    read: std::sync::atomic::AtomicU64,
}

impl RequestEnv {
    /// The environment of a request by `principal`, who presented `caller_key`.
    pub async fn new(
        core: Arc<Core>,
        principal: &Principal,
        caller_key: Option<CallerKey>,
    ) -> weft_core::Result<Self> {
        let vis = core.visibility(principal).await?;
        Ok(RequestEnv {
            vis,
            core,
            principal: principal.clone(),
            caller_key,
            cache: Mutex::new(HashMap::new()),
            read: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Counts `n` more objects read for this request; an error naming the limit once the
    /// request has read more than `limits.max_query_objects`.
    fn account(&self, n: u64) -> weft_core::Result<()> {
        let limit = self.core.limits.max_query_objects;
        let total = self
            .read
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed)
            .saturating_add(n);
        if total > limit {
            return Err(weft_core::Limits::refuse(
                &format!("this query's reading of {total} objects"),
                "max_query_objects",
                limit,
            ));
        }
        Ok(())
    }

    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The key the caller presented.
    pub fn caller_key(&self) -> Option<CallerKey> {
        self.caller_key.clone()
    }

    /// The network, when this server is a peer.
    pub fn network(&self) -> Option<Arc<dyn weft_core::Network>> {
        self.core.network().cloned()
    }

    /// The server's default and maximum page size.
    pub fn limit(&self) -> u64 {
        self.core.limit
    }

    /// The largest `limit`/`first` of a search by meaning.
    pub fn max_explore_k(&self) -> u64 {
        self.core.limits.max_explore_k
    }

    /// The objects nearest to `concepts` in `scope` that the caller may read
    /// ([`Core::explore`]); they count towards `limits.max_query_objects`.
    pub async fn explore(
        &self,
        concepts: &weft_core::meaning::Concepts,
        scope: &weft_core::meaning::Scope,
        limit: u64,
        certainty: Option<f64>,
    ) -> weft_core::Result<Vec<weft_core::meaning::Found>> {
        let found = self
            .core
            .explore(&self.principal, concepts, scope, limit, certainty)
            .await?;
        self.account(found.len() as u64)?;
        Ok(found)
    }

    /// Whether `filter` can go to the connector with a search (it evaluates it, for this key).
    pub fn filter_goes_to_connector(&self, filter: Option<&WhereFilter>) -> bool {
        self.connector_filters(filter)
    }

    fn sees_all(&self) -> bool {
        self.vis.sees_everything()
    }

    fn visible(&self, o: &StoredObject) -> bool {
        self.vis.sees(o.owner)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<(ObjectKind, Id), Option<StoredObject>>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A cached object (only visible ones are ever cached as `Some`).
    fn cached(&self, kind: ObjectKind, id: Id) -> Option<StoredObject> {
        self.cache().get(&(kind, id)).cloned().flatten()
    }

    /// Fetches into the cache every target not there yet, one `get_objects` call per kind.
    async fn fetch(&self, targets: &[(ObjectKind, Id)]) -> weft_core::Result<()> {
        for kind in [ObjectKind::Thing, ObjectKind::Action] {
            let missing: Vec<Id> = {
                let cache = self.cache();
                let mut seen = HashSet::new();
                targets
                    .iter()
                    .filter(|(k, id)| *k == kind && !cache.contains_key(&(kind, *id)))
                    .map(|(_, id)| *id)
                    .filter(|id| seen.insert(*id))
                    .collect()
            };
            if missing.is_empty() {
                continue;
            }
            self.account(missing.len() as u64)?;
            let found = self.core.conn.get_objects(kind, missing.clone()).await?;
            let mut cache = self.cache();
            for (i, id) in missing.into_iter().enumerate() {
                let o = found.get(i).cloned().flatten().filter(|o| self.visible(o));
                cache.insert((kind, id), o);
            }
        }
        Ok(())
    }

    /// The targets of the local references in a property value (a reference or an array of
    /// them); references to peers and to keys are skipped.
    pub fn local_references(&self, value: &Value) -> Vec<(ObjectKind, Id)> {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        items
            .into_iter()
            .filter_map(|v| parse_reference(v).ok())
            .filter(|r| self.core.is_local(&r.location_url))
            .filter_map(|r| r.kind.map(|k| (k, r.id)))
            .collect()
    }

    /// The objects property `prop` of `props` refers to that are stored here, visible to the
    /// caller and of one of the `allowed` classes, in the property's order.
    pub async fn referenced(
        &self,
        props: &Map<String, Value>,
        prop: &str,
        allowed: &[String],
    ) -> weft_core::Result<Vec<StoredObject>> {
        let Some(value) = props.get(prop) else {
            return Ok(vec![]);
        };
        let targets = self.local_references(value);
        self.fetch(&targets).await?;
        Ok(targets
            .into_iter()
            .filter_map(|(k, id)| self.cached(k, id))
            .filter(|o| allowed.iter().any(|c| c == o.class.as_str()))
            .collect())
    }

    /// Prefetches, hop by hop, every object that `hops` reach from `objects`.
    async fn prefetch(
        &self,
        objects: &[StoredObject],
        paths: &[Vec<Hop>],
    ) -> weft_core::Result<()> {
        for hops in paths {
            let mut frontier: Vec<StoredObject> = objects.to_vec();
            for (prop, class) in hops {
                let targets: Vec<(ObjectKind, Id)> = frontier
                    .iter()
                    .filter_map(|o| o.properties().get(prop).cloned())
                    .flat_map(|v| self.local_references(&v))
                    .collect();
                self.fetch(&targets).await?;
                frontier = targets
                    .into_iter()
                    .filter_map(|(k, id)| self.cached(k, id))
                    .filter(|o| class.as_deref().is_none_or(|c| c == o.class.as_str()))
                    .collect();
                if frontier.is_empty() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Whether the connector evaluates `filter` (no filter: always).
    fn connector_filters(&self, filter: Option<&WhereFilter>) -> bool {
        let Some(f) = filter else { return true };
        let conn = &self.core.conn;
        if !conn.has(Capabilities::FILTER) {
            return false;
        }
        !f.uses_reference_paths()
            || (conn.has(Capabilities::FILTER_REFERENCE_PATHS) && self.sees_all())
    }

    fn query(&self, kind: ObjectKind, class: &str, filter: Option<&WhereFilter>) -> ObjectQuery {
        let mut q = ObjectQuery::all(kind, 0);
        q.class = class.into();
        self.vis.restrict(&mut q);
        if let Some(f) = filter {
            q.filter_json = serde_json::to_string(f).unwrap_or_default().into();
        }
        q
    }

    /// A page of the objects of `class` matching `filter`, newest first.
    pub async fn get_page(
        &self,
        kind: ObjectKind,
        class: &str,
        filter: Option<&WhereFilter>,
        offset: u64,
        limit: u64,
    ) -> weft_core::Result<Vec<StoredObject>> {
        if self.connector_filters(filter) {
            let mut q = self.query(kind, class, filter);
            q.offset = offset;
            q.limit = limit;
            let objects = self.core.conn.query_objects(q).await?.objects.into_vec();
            self.account(objects.len() as u64)?;
            return Ok(objects);
        }
        if limit == 0 {
            return Ok(vec![]);
        }
        let wanted = offset.saturating_add(limit);
        let found = self
            .host_matching(kind, class, filter, Some(wanted))
            .await?;
        Ok(found
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect())
    }

    /// Every object of `class` matching `filter`, newest first.
    async fn all_matching(
        &self,
        kind: ObjectKind,
        class: &str,
        filter: Option<&WhereFilter>,
    ) -> weft_core::Result<Vec<StoredObject>> {
        if self.connector_filters(filter) {
            let mut out = vec![];
            let mut q = self.query(kind, class, filter);
            q.limit = CHUNK;
            loop {
                let page = self.core.conn.query_objects(q.clone()).await?;
                let n = page.objects.len() as u64;
                self.account(n)?;
                out.extend(page.objects);
                q.offset += n;
                if n == 0 || q.offset >= page.total {
                    return Ok(out);
                }
            }
        }
        self.host_matching(kind, class, filter, None).await
    }

    /// Host-side evaluation: pages through the class without a filter, prefetches what the
    /// filter's reference paths reach, keeps the matches; stops after `want` matches.
    async fn host_matching(
        &self,
        kind: ObjectKind,
        class: &str,
        filter: Option<&WhereFilter>,
        want: Option<u64>,
    ) -> weft_core::Result<Vec<StoredObject>> {
        let paths: Vec<Vec<Hop>> = filter.map(reference_hops).unwrap_or_default();
        let mut out = vec![];
        let mut q = self.query(kind, class, None);
        q.limit = CHUNK;
        loop {
            let page = self.core.conn.query_objects(q.clone()).await?;
            let n = page.objects.len() as u64;
            self.account(n)?;
            let objects = page.objects.into_vec();
            self.prefetch(&objects, &paths).await?;
            let resolve = |k: ObjectKind, id: Id| self.cached(k, id);
            for o in objects {
                if filter.is_none_or(|f| f.matches(&o, &resolve)) {
                    out.push(o);
                    if want.is_some_and(|w| out.len() as u64 >= w) {
                        return Ok(out);
                    }
                }
            }
            q.offset += n;
            if n == 0 || q.offset >= page.total {
                return Ok(out);
            }
        }
    }

    /// Aggregates the objects of `class` matching `filter` as `request` asks.
    pub async fn aggregate(
        &self,
        ontology: &Ontology,
        kind: ObjectKind,
        class: &str,
        filter: Option<&WhereFilter>,
        request: &AggregateRequest,
    ) -> weft_core::Result<AggregateResult> {
        let reference_props: Vec<String> = ontology
            .class(kind, class)
            .map(|c| {
                c.properties
                    .iter()
                    .filter(|p| p.is_reference() && request.properties.contains(&p.name))
                    .map(|p| p.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let group_hops = request
            .group_by
            .as_deref()
            .map(path_hops)
            .unwrap_or_default();
        let resolves = !reference_props.is_empty() || !group_hops.is_empty();
        let conn = &self.core.conn;
        if conn.has(Capabilities::AGGREGATE)
            && self.connector_filters(filter)
            && (self.sees_all() || !resolves)
        {
            let json = serde_json::to_string(request)
                .map_err(|e| weft_core::Error::internal(e.to_string()))?;
            let answer = conn
                .aggregate(self.query(kind, class, filter), json)
                .await?;
            return serde_json::from_str(&answer).map_err(|e| {
                weft_core::Error::internal(format!(
                    "connector {} answered an aggregate that does not parse: {e}",
                    conn.name
                ))
            });
        }
        let objects = self.all_matching(kind, class, filter).await?;
        let mut paths: Vec<Vec<Hop>> = reference_props
            .into_iter()
            .map(|p| vec![(p, None)])
            .collect();
        if !group_hops.is_empty() {
            paths.push(group_hops);
        }
        self.prefetch(&objects, &paths).await?;
        let resolve = |k: ObjectKind, id: Id| self.cached(k, id);
        Ok(aggregate::compute(&objects, request, &resolve))
    }
}

/// The reference hops of a path `[ref, Class, ref, Class, …, property]`.
fn path_hops(path: &[String]) -> Vec<Hop> {
    path.chunks_exact(2)
        .map(|pair| (pair[0].clone(), Some(pair[1].clone())))
        .collect()
}

/// The reference hops of every comparison in `filter` that goes through references.
fn reference_hops(filter: &WhereFilter) -> Vec<Vec<Hop>> {
    fn collect(f: &WhereFilter, out: &mut Vec<Vec<Hop>>) {
        let hops = path_hops(&f.path);
        if !hops.is_empty() && !out.contains(&hops) {
            out.push(hops);
        }
        for o in &f.operands {
            collect(o, out);
        }
    }
    let mut out = vec![];
    collect(filter, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_follow_each_reference_path_once() {
        let f = WhereFilter::parse(
            r#"{"operator":"Or","operands":[
                {"operator":"Equal","path":["name"],"valueString":"x"},
                {"operator":"Equal","path":["inCity","City","inCountry","Country","name"],"valueString":"x"},
                {"operator":"Equal","path":["inCity","City","inCountry","Country","name"],"valueString":"y"},
                {"operator":"Equal","path":["inCity","City","name"],"valueString":"z"}]}"#,
        )
        .unwrap();
        let h = |p: &str, c: &str| (p.to_string(), Some(c.to_string()));
        assert_eq!(
            reference_hops(&f),
            vec![
                vec![h("inCity", "City"), h("inCountry", "Country")],
                vec![h("inCity", "City")]
            ]
        );
    }
}
