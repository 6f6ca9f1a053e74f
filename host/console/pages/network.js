// The network page: asks this server's network JSON (with the key of the bar above) every few
// seconds and shows it. The same script serves a peer's page (GET /weaviate/v1/p2p/network) and
// the genesis's (GET /network); fields one of them lacks are left out.
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = script.getAttribute("data-endpoint");
  var every = parseInt(script.getAttribute("data-refresh-ms"), 10) || 3000;
  var C = window.WeftConsole;
  var timer = null;

  var ROLES = {
    "genesis": "a peer of a network with a genesis",
    "bootstrapped": "a peer of a network of bootstrapped peers",
    "genesis-server": "the genesis server of a network"
  };

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function when(ms) {
    if (!ms) { return "never"; }
    var ago = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return new Date(ms).toLocaleTimeString() + " (" + ago + " s ago)";
  }
  function seconds(ms) { return ms === undefined || ms === null ? null : (ms / 1000) + " s"; }
  function classes(c) {
    if (!c) { return null; }
    var parts = [];
    if (c.things && c.things.length) { parts.push("Things: " + c.things.join(", ")); }
    if (c.actions && c.actions.length) { parts.push("Actions: " + c.actions.join(", ")); }
    return parts.length ? parts.join("; ") : "none";
  }
  function identity(id, fingerprint) {
    if (!id) { return "none (cannot sign)"; }
    return fingerprint ? fingerprint + "  (" + id + ")" : id;
  }
  function facts(dl, rows) {
    dl.textContent = "";
    rows.forEach(function (r) {
      if (r[1] === undefined || r[1] === null) { return; }
      var dt = el("dt", r[0]);
      var dd = el("dd", r[1], r[2]);
      if (r[3]) { dd.id = r[3]; }
      dl.append(dt, dd);
    });
  }

  function clear() {
    document.getElementById("self").textContent = "";
    document.getElementById("upstream").textContent = "";
    document.querySelector("#peers tbody").textContent = "";
    document.getElementById("peer-count").textContent = "?";
  }

  function show(d) {
    var me = d.self || {};
    facts(document.getElementById("self"), [
      ["name", me.name, "weft-mono", "self-name"],
      ["role", ROLES[d.mode] || d.mode],
      ["id", me.id, "weft-mono"],
      ["URI", me.uri, "weft-mono", "self-uri"],
      ["identity", identity(me.identity, me.fingerprint), "weft-mono", "self-identity"],
      ["schema hash", me.schemaHash, "weft-mono"],
      ["joined", me.joined === undefined ? null : (me.joined ? "yes" : "not yet")],
      ["network's contextionary", d.contextionaryHash === undefined ? null
        : (d.contextionaryHash ? "md5 " + d.contextionaryHash : "none"), "weft-mono", "contextionary-hash"],
      ["ping interval", seconds(d.pingIntervalMs)],
      ["liveness window", seconds(d.livenessWindowMs)],
      ["list version", d.listVersion],
      ["classes", classes(me.classes), "weft-classes", "self-classes"]
    ]);
    var up = [];
    if (d.genesis) {
      up.push(["genesis", d.genesis.uri, "weft-mono", "genesis-uri"]);
      up.push(["genesis identity", d.genesis.identity
        ? identity(d.genesis.identity, d.genesis.fingerprint) : "not pinned yet", "weft-mono"]);
    }
    if (d.bootstrappedPeers) {
      up.push(["bootstrapped peers", d.bootstrappedPeers.length ? d.bootstrappedPeers.join(", ")
        : "none (the network's first peer)", "weft-mono", "bootstrapped-peers"]);
    }
    var upstream = document.getElementById("upstream");
    facts(upstream, up);
    upstream.hidden = up.length === 0;
    document.getElementById("upstream-title").hidden = up.length === 0;

    var peers = d.peers || [];
    document.getElementById("peer-count").textContent = String(peers.length);
    // A genesis knows no schemas: no classes column.
    document.getElementById("peers").classList.toggle("weft-no-classes", !me.classes);
    var body = document.querySelector("#peers tbody");
    body.textContent = "";
    if (!peers.length) {
      var none = el("tr");
      var td = el("td", "no other peer is known", "weft-muted");
      td.colSpan = 7;
      none.append(td);
      body.append(none);
    }
    peers.forEach(function (p) {
      var tr = el("tr");
      tr.setAttribute("data-peer", p.name);
      tr.setAttribute("data-liveness", p.liveness || "");
      var schema = p.schemaHash || "none";
      if (p.schemaDownloaded !== undefined) {
        schema += p.schemaDownloaded ? " (downloaded)" : " (not downloaded" + (p.schemaError ? ": " + p.schemaError : "") + ")";
      }
      var live = p.liveness || "";
      if (p.missedEchoes) { live += " (" + p.missedEchoes + " echoes missed)"; }
      if (p.silentForMs !== undefined) { live += " (silent " + Math.round(p.silentForMs / 100) / 10 + " s)"; }
      tr.append(
        el("td", p.name, "weft-mono"),
        el("td", p.uri, "weft-mono"),
        el("td", identity(p.identity, p.fingerprint), "weft-mono"),
        el("td", schema, "weft-mono"),
        el("td", when(p.lastContactAt)),
        el("td", live, live.indexOf("alive") === 0 ? "weft-alive" : "weft-dead"),
        el("td", classes(p.classes) || "", "weft-classes")
      );
      body.append(tr);
    });
  }

  async function refresh() {
    try {
      var answer = await fetch(endpoint, {
        headers: C.headers({ "Accept": "application/json" }),
        credentials: "omit",
        cache: "no-store"
      });
      var text = await answer.text();
      var body;
      try { body = JSON.parse(text); } catch (e) { body = text; }
      if (!answer.ok) {
        clear();
        C.showMessage(C.errorMessage(answer.status, body));
      } else {
        C.clearMessage();
        show(body);
      }
      document.getElementById("updated").textContent = new Date().toLocaleTimeString() + " (" + answer.status + ")";
    } catch (e) {
      C.showMessage("the server did not answer: " + e.message);
    }
  }

  function schedule() {
    if (timer) { clearInterval(timer); }
    refresh();
    timer = setInterval(refresh, every);
  }
  document.getElementById("refresh-seconds").textContent = String(every / 1000);
  C.mountKeyForm(document.getElementById("weft-key-root"));
  C.onChange(schedule);
  schedule();
})();
