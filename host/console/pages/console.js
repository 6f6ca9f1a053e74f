// Weft's browser console, shared by its pages: the key and token (asked once, kept in this tab's
// sessionStorage, sent as X-API-KEY and X-API-TOKEN with every data request), and the message
// line that shows what the server answered when it refused.
(function () {
  "use strict";
  var KEY = "weft.console.key";
  var TOKEN = "weft.console.token";
  var listeners = [];

  function read(name) {
    try { return window.sessionStorage.getItem(name) || ""; } catch (e) { return ""; }
  }
  function write(name, value) {
    try {
      if (value) { window.sessionStorage.setItem(name, value); } else { window.sessionStorage.removeItem(name); }
    } catch (e) { /* storage disabled: the key lives as long as the page */ }
  }
  var memory = { key: read(KEY), token: read(TOKEN) };

  function credentials() {
    return memory.key && memory.token ? { key: memory.key, token: memory.token } : null;
  }
  function headers(extra) {
    var h = extra || {};
    var c = credentials();
    if (c) { h["X-API-KEY"] = c.key; h["X-API-TOKEN"] = c.token; }
    return h;
  }
  function setCredentials(key, token) {
    memory = { key: (key || "").trim(), token: (token || "").trim() };
    write(KEY, memory.key);
    write(TOKEN, memory.token);
    listeners.forEach(function (f) { f(credentials()); });
  }
  function onChange(f) { listeners.push(f); }

  // The message of an error answer {"error":[{"message"}]} (or of anything else the server said).
  function errorMessage(status, body) {
    var text = "";
    if (body && body.error && body.error.length) {
      text = body.error.map(function (e) { return e && e.message ? e.message : String(e); }).join("; ");
    } else if (body && body.errors && body.errors.length) {
      text = body.errors.map(function (e) { return e && e.message ? e.message : String(e); }).join("; ");
    } else if (typeof body === "string") {
      text = body;
    } else {
      text = JSON.stringify(body);
    }
    var hint = "";
    if (status === 401) { hint = " (enter a key and token above)"; }
    if (status === 403) { hint = " (this key lacks the right; use another above)"; }
    return status + ": " + text + hint;
  }

  function messageElement() { return document.getElementById("weft-message"); }
  function showMessage(text) {
    var el = messageElement();
    if (!el) { return; }
    el.textContent = text;
    el.hidden = false;
  }
  function clearMessage() {
    var el = messageElement();
    if (!el) { return; }
    el.textContent = "";
    el.hidden = true;
  }

  // Fills `root` with the key form: inputs while no key is set, else the key id and buttons to
  // change or forget it.
  function mountKeyForm(root) {
    if (!root) { return; }
    function render() {
      root.textContent = "";
      var c = credentials();
      if (c) {
        var state = document.createElement("span");
        state.className = "weft-key-state";
        state.id = "weft-key-state";
        state.textContent = "key " + c.key;
        var change = document.createElement("button");
        change.type = "button";
        change.id = "weft-key-change";
        change.textContent = "Change";
        change.addEventListener("click", function () { c = null; renderForm(); });
        var forget = document.createElement("button");
        forget.type = "button";
        forget.id = "weft-key-forget";
        forget.textContent = "Forget";
        forget.addEventListener("click", function () { setCredentials("", ""); });
        root.append(state, change, forget);
      } else {
        renderForm();
      }
    }
    function renderForm() {
      root.textContent = "";
      var form = document.createElement("form");
      form.className = "weft-key";
      form.id = "weft-key-form";
      var key = document.createElement("input");
      key.id = "weft-key";
      key.name = "key";
      key.placeholder = "X-API-KEY (key id)";
      key.autocomplete = "off";
      key.spellcheck = false;
      key.value = memory.key;
      var token = document.createElement("input");
      token.id = "weft-token";
      token.name = "token";
      token.type = "password";
      token.placeholder = "X-API-TOKEN";
      token.autocomplete = "off";
      var use = document.createElement("button");
      use.type = "submit";
      use.id = "weft-key-use";
      use.textContent = "Use key";
      var state = document.createElement("span");
      state.className = "weft-key-state";
      state.id = "weft-key-state";
      state.textContent = credentials() ? "" : "no key: requests go without one";
      form.append(key, token, use, state);
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        setCredentials(key.value, token.value);
      });
      root.append(form);
    }
    onChange(render);
    render();
  }

  window.WeftConsole = {
    credentials: credentials,
    headers: headers,
    setCredentials: setCredentials,
    onChange: onChange,
    errorMessage: errorMessage,
    showMessage: showMessage,
    clearMessage: clearMessage,
    mountKeyForm: mountKeyForm
  };
})();
