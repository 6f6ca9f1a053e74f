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
// An object's archived versions as `object_history` answers them (any order; `s` = seq).
def wHist = { v -> v.vertices(Direction.OUT, K.history).toList().collect { h ->
  [s: wVal(h, K.seq), a: wVal(h, K.archived), c: wVal(h, K.cls), x: wVal(h, K.ctx), o: wVal(h, K.owner),
   cr: wVal(h, K.created), up: wVal(h, K.updated), p: wVal(h, K.props)]
} }
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
return [r: 'ok', deleted: wVal(v, K.deleted) == true, versions: wHist(v)]
"#;

/// `kind`, `afterType` ("": from the first; `n`: after a numeric vertex id; `s`: after a
/// vertex id compared as text), `after` (that vertex id, as text), `limit`: the objects of
/// `kind`, deleted ones included, whose vertex id is above `after`, ascending by vertex id
/// (numbers before text), at most `limit`; each whole: `o` (`wObj`), `d` (deleted), `h`
/// (`wHist`, as `object_history` reads it), `at` (its vertex id as `[0, number]` or
/// `[1, text]`, the cursor of the next page). The vertex id orders the walk because the index
/// hits carry it: nothing else of a vertex is read before it is on the page (on JanusGraph
/// reading a property of every object of the kind costs far more).
pub const EXPORT_OBJECTS: &str = r#"
def wAt = { x -> x instanceof Number ? [0, (x as long)] : [1, x.toString()] }
def wCmp = { p, q -> (p[0] <=> q[0]) ?: (p[1] <=> q[1]) }
def from = afterType == '' ? null : (afterType == 'n' ? [0, Long.parseLong(after as String)] : [1, after as String])
def hits = wg.V().has(K.ns, ns).has(K.kind, kind).toList().collect { [wAt(it.id()), it] }
if (from != null) hits = hits.findAll { wCmp(it[0], from) > 0 }
hits.sort { x, y -> wCmp(x[0], y[0]) }
if (hits.size() > (limit as int)) hits = hits.subList(0, limit as int)
return [records: hits.collect { hit -> def v = hit[1]; [o: wObj(v), d: wVal(v, K.deleted) == true, h: wHist(v), at: hit[0]] }]
"#;

/// `recs`: the records to import, in order, each `[u: uid, k: kind, i: id, d: deleted,
/// want: [cur: object map without `v` (null when deleted), v: version (0 when deleted),
/// h: versions newest first, each [a, c, x, o, cr, up, p]], refs: [[property, target uid]]
/// of the current bag]`.
///
/// One lookup finds which of them the graph holds. A held one is compared whole (current,
/// version, history) with what is given: the same is a no-op, another stops the import there
/// (`r: 'conflict'`, naming it; the records before it stay written). A new one is written as
/// a normal create, updates and delete would have left it: the object vertex (a tombstone
/// without `properties` when deleted, its fields from its last version), one `old_version`
/// vertex per version (`seq` n … 1 from newest to oldest) with its `history` edge, and, once
/// every record of the chunk is in, the `refers_to` edges of the live ones to the objects
/// that exist then. References to objects not there yet come back as `dangling`
/// (`[from uid, property, to uid, version of from]`) for [`LINK_REFS`] after the call's last
/// chunk.
pub const IMPORT_OBJECTS: &str = r#"
// A new vertex with its properties in one call (the graph's default cardinality is fine for
// a vertex whose every key is set once); through wAddV where the client chooses vertex ids.
def wNewV = { String lbl, List kv ->
  if (wIdMode != 0) {
    def nv = wAddV(lbl)
    for (int j = 0; j < kv.size(); j += 2) wSet(nv, kv[j] as String, kv[j + 1])
    return nv
  }
  wGraph.addVertex(([T.label, lbl] + kv) as Object[])
}
def wHeld = { v ->
  def del = wVal(v, K.deleted) == true
  def hs = wHist(v).sort { a, b -> (b.s as long) <=> (a.s as long) }.collect { m -> m.findAll { e -> e.key != 's' } }
  [cur: del ? null : wObj(v).findAll { e -> e.key != 'v' }, v: del ? 0L : (wVal(v, K.version) as long), h: hs]
}
def found = [:]
// The records' and their references' targets, looked up before anything is written (a
// query in a transaction with many new vertices is slow on JanusGraph).
def uids = new HashSet(recs.collect { it.u as String })
recs.each { rec -> rec.refs.each { ref -> uids.add(ref[1] as String) } }
if (!uids.isEmpty()) wg.V().has(K.ns, ns).has(K.uid, within(uids)).toList().each { found[wVal(it, K.uid)] = it }
def live = []
def held = 0L
def made = 0L
def out = null
for (r in recs) {
  def v = found[r.u]
  if (v != null) {
    if (wHeld(v) == r.want) { held += 1L; continue }
    out = [r: 'conflict', k: r.k, i: r.i]
    break
  }
  def want = r.want
  def n = want.h.size()
  def del = r.d as boolean
  def w = del ? want.h[0] : want.cur
  def kv = [K.ns, ns, K.uid, r.u as String, K.kind, r.k as String, K.id, r.i as String,
            K.cls, w.c as String, K.ctx, w.x as String, K.owner, w.o as String,
            K.created, w.cr as long, K.updated, w.up as long,
            K.version, want.v as long, K.deleted, del, K.hseq, n as long]
  if (!del) kv += [K.props, w.p as String]
  v = wNewV(K.lObject, kv)
  want.h.eachWithIndex { ver, idx ->
    def h = wNewV(K.lVersion, [K.ns, ns, K.seq, (n - idx) as long, K.archived, ver.a as long,
                               K.cls, ver.c as String, K.ctx, ver.x as String, K.owner, ver.o as String,
                               K.created, ver.cr as long, K.updated, ver.up as long, K.props, ver.p as String])
    v.addEdge(K.history, h, K.ns, ns)
  }
  found[r.u] = v
  made += 1L
  if (!del && !r.refs.isEmpty()) live << [v, r.refs, r.u, want.v]
}
def dangling = []
live.each { rec ->
  rec[1].each { ref ->
    def t = found[ref[1] as String]
    if (t == null) dangling << [rec[2], ref[0], ref[1], rec[3]]
    else if (wVal(t, K.deleted) != true) rec[0].addEdge(K.ref, t, K.ns, ns, K.refName, ref[0] as String)
  }
}
return out ?: [r: 'ok', made: made, held: held, dangling: dangling]
"#;

/// `links`: `[from uid, property, to uid, version of from]` ([`IMPORT_OBJECTS`]' `dangling`
/// of one call): the `refers_to` edges of imported objects to objects imported after them in
/// the same call. An edge is added only where both ends exist and are not deleted, and the
/// referring object is still at the version imported (else a write since has linked it
/// afresh).
pub const LINK_REFS: &str = r#"
def ends = new HashSet(links.collect { it[0] as String } + links.collect { it[2] as String })
def vs = [:]
wg.V().has(K.ns, ns).has(K.uid, within(ends)).toList().each { vs[wVal(it, K.uid)] = it }
def linked = 0L
links.each { l ->
  def f = vs[l[0] as String]
  def t = vs[l[2] as String]
  if (f != null && t != null && wVal(f, K.deleted) != true && wVal(t, K.deleted) != true &&
      (wVal(f, K.version) as long) == (l[3] as long)) {
    f.addEdge(K.ref, t, K.ns, ns, K.refName, l[1] as String)
    linked += 1L
  }
}
return [r: 'ok', linked: linked]
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
