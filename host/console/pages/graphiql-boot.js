// Starts GraphiQL on Weft's endpoint. Every request (the schema's introspection and each query)
// goes to this server only, as POST with the key and token of the bar above (X-API-KEY,
// X-API-TOKEN); an error answer (401, 403, 413, …) shows its message above the editor and in
// the result pane.
(function () {
  "use strict";
  var endpoint = document.currentScript.getAttribute("data-endpoint");
  var C = window.WeftConsole;
  var mount = document.getElementById("graphiql");

  async function fetcher(params) {
    var answer;
    try {
      answer = await fetch(endpoint, {
        method: "POST",
        headers: C.headers({ "Content-Type": "application/json", "Accept": "application/json" }),
        body: JSON.stringify(params),
        credentials: "omit",
        cache: "no-store"
      });
    } catch (e) {
      var down = "the server did not answer: " + e.message;
      C.showMessage(down);
      return { errors: [{ message: down }] };
    }
    var text = await answer.text();
    var body;
    try { body = JSON.parse(text); } catch (e) { body = text; }
    if (!answer.ok) {
      var message = C.errorMessage(answer.status, body);
      C.showMessage(message);
      return { errors: [{ message: message }] };
    }
    C.clearMessage();
    return body;
  }

  var DEFAULT_QUERY = [
    "# Weft's GraphQL: Local { Get | GetMeta | Aggregate { Things | Actions { <Class> … } } }",
    "# (and Network { … } on a peer). The schema is this server's ontology: open the",
    "# documentation explorer on the left to browse it. Run with Ctrl-Enter.",
    "#",
    "# For example, with a class City of Things:",
    "# { Local { Get { Things { City { name } } } } }",
    ""
  ].join("\n");

  var root = ReactDOM.createRoot(mount);
  var generation = 0;
  function render() {
    generation += 1;
    // A new key is a new schema (another key may see other things): remount, which
    // introspects again. The query editor's text is kept by GraphiQL's own storage.
    root.render(React.createElement(GraphiQL, {
      key: "weft-" + generation,
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      isHeadersEditorEnabled: false,
      shouldPersistHeaders: false,
      visiblePlugin: "Documentation Explorer"
    }));
  }
  C.mountKeyForm(document.getElementById("weft-key-root"));
  C.onChange(function () { C.clearMessage(); render(); });
  render();
})();
