//! The Groovy scripts the connector sends. Their text is **fixed**: every value (names,
//! namespace, ids, classes, property bags, versions) arrives as a binding, so nothing a user
//! writes can change what a script does.
//!
//! Every script is [`PRELUDE`] + one body + [`EPILOGUE`]. The body runs inside
//! `synchronized (graph)` in the server's JVM, so the scripts of all Weft connectors using that
//! graph on that server run one at a time: a check and the write it guards (a compare-and-set,
//! "create unless it exists", a cascade) form one atomic step. On a transactional graph
//! (JanusGraph) the body also commits before the lock is released (and rolls back on failure),
//! so the next script sees the write.
//!
//! Binding names avoid the ones Gremlin Server reserves (`key`, `id`, `label`, `value`, the
//! names of `Column`, `Order`, `Operator`, `Scope` and `Pop` values).
//!
//! Bindings every script gets: `K` (the names: labels and property keys, see [`crate::store::NAME_PARTS`]),
//! `ns` (the namespace). The body returns a map or list, answered as JSON text.

/// Helpers and the start of the locked section.
pub const PRELUDE: &str = r#"
def wg = g
def wGraph = wg.getGraph()
def wTx = wGraph.features().graph().supportsTransactions()
def S = VertexProperty.Cardinality.single
// Vertex ids: TinkerGraph and a default JanusGraph assign them; a JanusGraph with
// graph.set-vertex-id=true needs one from the client: a random string (custom id types; never
// with "-", JanusGraph's separator) or a random count made into a vertex id.
def wIdMode = 0
if (wGraph.getClass().getName().toLowerCase().contains('janusgraph')) {
  def wConf = wGraph.getConfiguration()
  if (wConf.allowVertexIdSetting()) wIdMode = wConf.allowCustomVertexIdType() ? 1 : 2
}
def wAddV = { String lbl ->
  if (wIdMode == 1) return wg.addV(lbl).property(T.id, 'w' + java.util.UUID.randomUUID().toString().replace('-', '')).next()
  if (wIdMode == 2) {
    def bound = wGraph.getIDManager().getVertexCountBound()
    def n = 1L + Math.floorMod(new java.security.SecureRandom().nextLong(), bound - 1L)
    return wg.addV(lbl).property(T.id, wGraph.getIDManager().toVertexId(n)).next()
  }
  wg.addV(lbl).next()
}
def wVal = { v, String k -> def p = v.property(k); p.isPresent() ? p.value() : null }
def wSet = { v, String k, val -> v.property(S, k, val) }
def wFind = { String u -> wg.V().has(K.ns, ns).has(K.uid, u).tryNext().orElse(null) }
def wObj = { v -> [k: wVal(v, K.kind), i: wVal(v, K.id), c: wVal(v, K.cls), x: wVal(v, K.ctx),
                  o: wVal(v, K.owner), cr: wVal(v, K.created), up: wVal(v, K.updated),
                  p: wVal(v, K.props), v: wVal(v, K.version)] }
def wSetObj = { v, Map o ->
  wSet(v, K.cls, o.c); wSet(v, K.ctx, o.x); wSet(v, K.owner, o.o)
  wSet(v, K.created, o.cr as long); wSet(v, K.updated, o.up as long); wSet(v, K.props, o.p)
}
def wLinkRefs = { v, List refs ->
  v.edges(Direction.OUT, K.ref).toList().each { it.remove() }
  refs.each { r ->
    def t = wFind(r[1] as String)
    if (t != null && wVal(t, K.deleted) != true) { v.addEdge(K.ref, t, K.ns, ns, K.refName, r[0] as String) }
  }
}
def wArchive = { v, long now ->
  def seq = ((wVal(v, K.hseq) ?: 0L) as long) + 1L
  wSet(v, K.hseq, seq)
  def h = wAddV(K.lVersion)
  wSet(h, K.ns, ns); wSet(h, K.seq, seq); wSet(h, K.archived, now)
  [K.cls, K.ctx, K.owner, K.created, K.updated, K.props].each { k -> def x = wVal(v, k); if (x != null) wSet(h, k, x) }
  v.addEdge(K.history, h, K.ns, ns)
}
def wKey = { v -> [i: wVal(v, K.id), pa: wVal(v, K.parent), th: wVal(v, K.tokenHash), em: wVal(v, K.email),
                  ip: wVal(v, K.ipOrigin), ex: wVal(v, K.expires), r: wVal(v, K.read), w: wVal(v, K.write),
                  d: wVal(v, K.delete), x: wVal(v, K.execute), cr: wVal(v, K.created)] }
def wSetKey = { v, Map k ->
  wSet(v, K.tokenHash, k.th); wSet(v, K.email, k.em); wSet(v, K.ipOrigin, k.ip); wSet(v, K.expires, k.ex as long)
  wSet(v, K.read, k.r as boolean); wSet(v, K.write, k.w as boolean); wSet(v, K.delete, k.d as boolean)
  wSet(v, K.execute, k.x as boolean); wSet(v, K.created, k.cr as long)
}
def wBody = { ->
"#;

/// The end of the locked section: commit (transactional graphs), answer JSON text.
pub const EPILOGUE: &str = r#"
}
def wOut
synchronized (wGraph) {
  if (wTx) wGraph.tx().rollback()
  try {
    wOut = wBody()
    if (wTx) wGraph.tx().commit()
  } catch (Throwable e) {
    if (wTx) { try { wGraph.tx().rollback() } catch (Throwable ignored) {} }
    throw e
  }
}
groovy.json.JsonOutput.toJson(wOut)
"#;

/// `uid`, `o` (object map), `refs` (list of [property, target uid]).
pub const CREATE_OBJECT: &str = r#"
def v = wFind(uid)
if (v != null) return [r: 'exists', deleted: wVal(v, K.deleted) == true]
v = wAddV(K.lObject)
wSet(v, K.ns, ns); wSet(v, K.uid, uid); wSet(v, K.kind, o.k); wSet(v, K.id, o.i)
wSetObj(v, o)
wSet(v, K.version, 1L); wSet(v, K.deleted, false); wSet(v, K.hseq, 0L)
wLinkRefs(v, refs)
return [r: 'ok', version: 1L]
"#;

/// `uid`, `o`, `refs`, `expected` (-1: any version), `now`.
pub const UPDATE_OBJECT: &str = r#"
def v = wFind(uid)
if (v == null || wVal(v, K.deleted) == true) return [r: 'missing']
def cur = wVal(v, K.version) as long
if ((expected as long) >= 0L && cur != (expected as long)) return [r: 'conflict', stored: cur]
wArchive(v, now as long)
wSetObj(v, o)
wSet(v, K.version, cur + 1L)
wLinkRefs(v, refs)
return [r: 'ok', version: cur + 1L]
"#;

/// `uid`, `now`.
pub const DELETE_OBJECT: &str = r#"
def v = wFind(uid)
if (v == null || wVal(v, K.deleted) == true) return [r: 'missing']
wArchive(v, now as long)
wSet(v, K.deleted, true)
v.property(K.props).remove()
v.edges(Direction.BOTH, K.ref).toList().each { it.remove() }
return [r: 'ok']
"#;

/// `uids`: the current objects among them, by uid.
pub const GET_OBJECTS: &str = r#"
def out = [:]
wg.V().has(K.ns, ns).has(K.uid, within(uids)).toList().each { v ->
  if (wVal(v, K.deleted) == false) out[wVal(v, K.uid)] = wObj(v)
}
return out
"#;

/// `uid`.
pub const OBJECT_HISTORY: &str = r#"
def v = wFind(uid)
if (v == null) return [r: 'missing']
def versions = v.vertices(Direction.OUT, K.history).toList().collect { h ->
  [s: wVal(h, K.seq), a: wVal(h, K.archived), c: wVal(h, K.cls), x: wVal(h, K.ctx), o: wVal(h, K.owner),
   cr: wVal(h, K.created), up: wVal(h, K.updated), p: wVal(h, K.props)]
}
return [r: 'ok', deleted: wVal(v, K.deleted) == true, versions: versions]
"#;

/// `kind`, `cls` ("": every class), `owners` (empty: every owner), `page` (true: sort and
/// page here, answering the page and the total; false: answer every match), `offset`, `limit`.
/// The sort is the contract's newest first: `created_ms` descending, ties by id descending. The
/// `id` property is the uuid as a lower-case hyphenated String (`Id`'s `Display`), whose string
/// order is the order of its bytes (a test below checks it), so `<=>` on it is
/// `support::sort_newest_first`'s tie-break.
pub const QUERY_OBJECTS: &str = r#"
def t = wg.V().has(K.ns, ns).has(K.kind, kind)
if (cls != '') t = t.has(K.cls, cls)
if (!owners.isEmpty()) t = t.has(K.owner, within(owners))
def vs = t.has(K.deleted, false).toList()
if (!page) return [total: vs.size(), objects: vs.collect { wObj(it) }]
vs.sort { a, b -> (wVal(b, K.created) <=> wVal(a, K.created)) ?: (wVal(b, K.id) <=> wVal(a, K.id)) }
def from = Math.min(offset as long, (long) vs.size()) as int
def to = Math.min((offset as long) + (limit as long), (long) vs.size()) as int
return [total: vs.size(), objects: vs.subList(from, to).collect { wObj(it) }]
"#;

/// `kuid`, `puid` ("" for a root key), `kobj` (key map), `parent` (uuid or "").
pub const ADD_KEY: &str = r#"
if (wFind(kuid) != null) return [r: 'exists']
def p = null
if (puid != '') { p = wFind(puid); if (p == null) return [r: 'noparent'] }
def v = wAddV(K.lKey)
wSet(v, K.ns, ns); wSet(v, K.uid, kuid); wSet(v, K.id, kobj.i); wSet(v, K.parent, parent)
wSetKey(v, kobj)
if (p != null) v.addEdge(K.parentEdge, p, K.ns, ns)
return [r: 'ok']
"#;

/// `kuid`.
pub const GET_KEY: &str = r#"
def v = wFind(kuid)
return [key: v == null ? null : wKey(v)]
"#;

/// `kuid`.
pub const KEY_CHILDREN: &str = r#"
def v = wFind(kuid)
if (v == null) return [r: 'missing']
return [r: 'ok', keys: v.vertices(Direction.IN, K.parentEdge).toList().collect { wKey(it) }]
"#;

/// No extra bindings.
pub const ROOT_KEYS: &str = r#"
return [keys: wg.V().has(K.ns, ns).hasLabel(K.lKey).has(K.parent, '').toList().collect { wKey(it) }]
"#;

/// `kuid`, `kobj`, `parent` (the new key's parent, uuid or "").
pub const UPDATE_KEY: &str = r#"
def v = wFind(kuid)
if (v == null) return [r: 'missing']
if (wVal(v, K.parent) != parent) return [r: 'moved']
wSetKey(v, kobj)
return [r: 'ok']
"#;

/// `kuid`: deletes the key and its subtree, answering every deleted key.
pub const DELETE_KEY: &str = r#"
def v = wFind(kuid)
if (v == null) return [r: 'missing']
def all = [v]
def next = 0
while (next < all.size()) { all.addAll(all[next].vertices(Direction.IN, K.parentEdge).toList()); next++ }
def keys = all.collect { wKey(it) }
all.each { it.remove() }
return [r: 'ok', keys: keys]
"#;

/// `duid`.
pub const GET_DOCUMENT: &str = r#"
def v = wFind(duid)
return v == null ? [version: 0L, json: ''] : [version: wVal(v, K.version), json: wVal(v, K.json)]
"#;

/// `duid`, `json`, `expected`.
pub const PUT_DOCUMENT: &str = r#"
def v = wFind(duid)
def cur = v == null ? 0L : (wVal(v, K.version) as long)
if (cur != (expected as long)) return [r: 'conflict', stored: cur]
if (v == null) { v = wAddV(K.lDocument); wSet(v, K.ns, ns); wSet(v, K.uid, duid) }
wSet(v, K.json, json)
wSet(v, K.version, cur + 1L)
return [r: 'ok', version: cur + 1L]
"#;

/// JanusGraph only, at start-up, outside the data lock: composite indexes on the lookup keys
/// (`indexes`: list of [index name, [property keys]], every key holding strings). Creates the
/// property keys it needs; an index
/// whose keys exist already is left out (it would need a reindex) and reported. Answers JSON
/// text `{made: [...], skipped: [...], janusgraph: bool}`.
pub const JANUSGRAPH_INDEXES: &str = r#"
def gr = g.getGraph()
if (!gr.getClass().getName().toLowerCase().contains('janusgraph')) return groovy.json.JsonOutput.toJson([janusgraph: false, made: [], skipped: []])
def m = gr.openManagement()
def made = []
def skipped = []
try {
  def existed = indexes.collectMany { it[1] as List }.findAll { m.getPropertyKey(it as String) != null } as Set
  indexes.each { spec ->
    def name = spec[0] as String
    def keys = spec[1] as List
    if (m.getGraphIndex(name) != null) return
    if (keys.any { existed.contains(it) }) { skipped << name; return }
    def b = m.buildIndex(name, Vertex.class)
    keys.each { k ->
      def pk = m.getPropertyKey(k as String)
      if (pk == null) pk = m.makePropertyKey(k as String).dataType(String.class).make()
      b.addKey(pk)
    }
    b.buildCompositeIndex()
    made << name
  }
  m.commit()
} catch (Throwable e) {
  try { m.rollback() } catch (Throwable ignored) {}
  throw e
}
groovy.json.JsonOutput.toJson([janusgraph: true, made: made, skipped: skipped])
"#;

/// A whole locked script around `body`.
pub fn locked(body: &str) -> String {
    let mut s = String::with_capacity(PRELUDE.len() + body.len() + EPILOGUE.len());
    s.push_str(PRELUDE);
    s.push_str(body);
    s.push_str(EPILOGUE);
    s
}

/// `prefix`: the namespaces in the graph whose name starts with it (maintenance; a scan).
pub const NAMESPACES: &str = r#"
return [names: wg.V().has(K.ns, startingWith(prefix)).values(K.ns).dedup().toList()]
"#;

/// `names`: deletes every vertex (and so every edge) of these namespaces (maintenance).
pub const DROP_NAMESPACES: &str = r#"
def n = wg.V().has(K.ns, within(names)).count().next()
wg.V().has(K.ns, within(names)).drop().iterate()
return [dropped: n]
"#;

#[cfg(test)]
mod tests {
    use weft_plugin_api::Id;

    /// [`super::QUERY_OBJECTS`] breaks ties by comparing the `id` strings (Java's
    /// `String.compareTo`, UTF-16 code units: for ASCII, byte order): that must be the order of
    /// the ids' bytes, which `support::sort_newest_first` uses.
    #[test]
    fn id_strings_sort_like_id_bytes() {
        let mut ids: Vec<Id> = (0..2_000).map(|_| Id::random()).collect();
        ids.extend((0..2_000).map(|_| Id::time_ordered()));
        // Neighbours across the digit/letter boundary in every position.
        for i in 0..16 {
            for b in [0x09u8, 0x0a, 0x90, 0xa0, 0x99, 0xaa, 0x00, 0xff] {
                let mut id = Id([0x5a; 16]);
                id.0[i] = b;
                ids.push(id);
            }
        }
        let mut by_string = ids.clone();
        by_string.sort_by_key(|id| id.to_string());
        ids.sort();
        assert_eq!(by_string, ids);
        assert!(ids
            .iter()
            .all(|id| id.to_string() == id.to_string().to_lowercase()));
    }
}
