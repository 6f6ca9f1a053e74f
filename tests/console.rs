//! The browser console over real HTTP (the real binary on 127.0.0.1): content negotiation of
//! `GET /weaviate/v1/graphql` (a browser gets GraphiQL, every other client the API's answers,
//! unchanged), `/` sending a browser to the start page, the console's files with their content
//! types, the network JSON behind the read right, the genesis's page behind its admin key, and a
//! scan of everything the pages load for addresses other than the server's own.
//!
//! What a browser does with the pages is `tests/browser` (headless Chromium, `scripts/test.sh`).
//!
//! Build first: `cargo build -p weft -p weft-dev-memory`.
use std::time::Duration;

use serde_json::{json, Value};
use weft_e2e_tests::{
    assert_error_shape, message, peer_env, start_peer, wait_for, Api, Creds, GenesisServer, Server,
    ROOT_KEY, ROOT_TOKEN,
};

/// What Chromium sends when it navigates to a page.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8";

/// A client that does not follow redirects.
fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `GET url` with `headers`: status, headers, body text.
fn get(url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().expect("an answer");
    let status = r.status().as_u16();
    let h = r.headers().clone();
    (status, h, r.text().unwrap_or_default())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
}

const ROOT: [(&str, &str); 2] = [("X-API-KEY", ROOT_KEY), ("X-API-TOKEN", ROOT_TOKEN)];

#[test]
fn a_browser_gets_graphiql_and_every_other_client_the_api() {
    let api = Api::new(Server::start());
    let url = api.server.at("/graphql");

    // A browser, no key needed: the page, with the console's security headers.
    let (s, h, html) = get(&url, &[("Accept", BROWSER_ACCEPT)]);
    assert_eq!(s, 200, "{html}");
    assert!(header(&h, "content-type").starts_with("text/html"), "{h:?}");
    assert_eq!(
        header(&h, "content-security-policy"),
        weft_console::CONTENT_SECURITY_POLICY
    );
    assert!(header(&h, "vary").contains("Accept"), "{h:?}");
    for needed in [
        "/weaviate/v1/console/assets/graphiql.min.js",
        "/weaviate/v1/console/assets/graphiql.min.css",
        "/weaviate/v1/console/assets/react.production.min.js",
        "/weaviate/v1/console/assets/react-dom.production.min.js",
        "data-endpoint=\"/weaviate/v1/graphql\"",
    ] {
        assert!(html.contains(needed), "GraphiQL's page lacks {needed}");
    }
    // With a key too (the page does not look at it).
    let (s, _, _) = get(&url, &[("Accept", "text/html"), ROOT[0], ROOT[1]]);
    assert_eq!(s, 200);

    // Anything but a browser: the API's answers as before. GET is no operation of /graphql:
    // the key is checked first (401), then 405 naming POST.
    for accept in [
        None,
        Some("application/json"),
        Some("*/*"),
        Some("text/html;q=0"),
    ] {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut hs: Vec<(&str, &str)> = extra.to_vec();
            if let Some(a) = accept {
                hs.push(("Accept", a));
            }
            get(&url, &hs)
        };
        let (s, _, body) = with(&[]);
        assert_eq!(s, 401, "Accept {accept:?} without a key: {body}");
        assert_error_shape("GET", "/graphql", s, &json_of(&body));
        let (s, h, body) = with(&ROOT);
        assert_eq!(s, 405, "Accept {accept:?} with the key: {body}");
        assert_error_shape("GET", "/graphql", s, &json_of(&body));
        assert!(header(&h, "allow").contains("POST"), "{h:?}");
        assert!(header(&h, "content-type").starts_with("application/json"));
    }
    // POST is the GraphQL endpoint, unchanged, whatever the Accept header says.
    api.ok(
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "properties": [{"name": "name", "@dataType": ["string"]}]})),
    );
    let r = client()
        .post(&url)
        .header("X-API-KEY", ROOT_KEY)
        .header("X-API-TOKEN", ROOT_TOKEN)
        .header("Accept", BROWSER_ACCEPT)
        .json(&json!({"query": "{ __schema { queryType { name } } }"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().unwrap();
    assert_eq!(
        b["data"]["__schema"]["queryType"]["name"], "WeaviateObj",
        "{b}"
    );
    let (s, b) = api.raw(
        &api.http,
        "POST",
        "/graphql",
        &[],
        Some(&json!({"query": "{ Local { Get { Things { City { name } } } } }"})),
    );
    assert_eq!(s, 401, "{b}");
}

#[test]
fn root_sends_a_browser_to_the_start_page() {
    let server = Server::start();
    let base = server.base();
    let (s, h, body) = get(&format!("{base}/"), &[("Accept", BROWSER_ACCEPT)]);
    assert_eq!(s, 303, "{body}");
    assert_eq!(header(&h, "location"), "/weaviate/v1/console");
    // Not a browser: the JSON 404, saying where the API and the console are.
    let (s, _, body) = get(&format!("{base}/"), &[]);
    assert_eq!(s, 404);
    let b = json_of(&body);
    assert_error_shape("GET", "/", s, &b);
    let m = message(&b);
    assert!(
        m.contains("/weaviate/v1") && m.contains("/weaviate/v1/console"),
        "{m}"
    );

    let (s, h, html) = get(&server.at("/console"), &[]);
    assert_eq!(s, 200);
    assert!(header(&h, "content-type").starts_with("text/html"));
    for link in [
        "href=\"/weaviate/v1/graphql\"",
        "href=\"/weaviate/v1/swagger/\"",
        "href=\"/weaviate/v1/openapi.json\"",
        "href=\"/weaviate/v1/p2p/console\"",
    ] {
        assert!(html.contains(link), "the start page lacks {link}");
    }
    // Every link of the start page answers.
    let (s, _, _) = get(&server.at("/swagger/"), &[]);
    assert_eq!(s, 200);
    let (s, _, _) = get(&server.at("/openapi.json"), &[]);
    assert_eq!(s, 200);
    let (s, h, html) = get(&server.at("/p2p/console"), &[]);
    assert_eq!(s, 200);
    assert!(header(&h, "content-type").starts_with("text/html"));
    assert!(html.contains("data-endpoint=\"/weaviate/v1/p2p/network\""));
    // The pages and files answer GET (and HEAD) only: 405 with `Allow`.
    for path in ["/console", "/p2p/console", "/console/assets/console.js"] {
        let r = client().post(server.at(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 405, "{path}");
        assert_eq!(header(r.headers(), "allow"), "GET, HEAD", "{path}");
        let b: Value = r.json().unwrap();
        assert_error_shape("POST", path, 405, &b);
        let r = client().head(server.at(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "HEAD {path}");
    }
}

#[test]
fn the_console_files_are_served_with_their_content_types() {
    let server = Server::start();
    for a in weft_console::ASSETS {
        let r = client()
            .get(server.at(&format!("/console/assets/{}", a.name)))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", a.name);
        let ty = header(r.headers(), "content-type").to_string();
        let want = if a.name.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else if a.name.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        };
        assert_eq!(ty, want, "{}", a.name);
        assert_eq!(header(r.headers(), "x-content-type-options"), "nosniff");
        assert_eq!(r.bytes().unwrap().as_ref(), a.bytes, "{}", a.name);
    }
    let (s, _, body) = get(&server.at("/console/assets/nothing.js"), &[]);
    assert_eq!(s, 404);
    let b = json_of(&body);
    assert_error_shape("GET", "/console/assets/nothing.js", s, &b);
    assert!(message(&b).contains("graphiql.min.js"), "{b}");
}

#[test]
fn the_network_view_needs_the_read_right() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = peer_env("alpha", &dir.path().join("alpha"), "0.3");
    env.push(("WEFT_FIRST_PEER".into(), "true".into()));
    let api = Api::new(start_peer(&[], &env));
    let root = Creds::root();
    api.ok(
        "POST",
        "/schema/things",
        Some(json!({"class": "City", "properties": [{"name": "name", "@dataType": ["string"]}]})),
    );

    let (s, b) = api.raw(&api.http, "GET", "/p2p/network", &[], None);
    assert_eq!(s, 401, "{b}");
    let no_read = api.child(
        &root,
        json!({"read": false, "write": true, "delete": true, "execute": true}),
    );
    let (s, b) = api.call(&no_read, "GET", "/p2p/network", None);
    assert_eq!(s, 403, "{b}");
    let reader = api.child(
        &root,
        json!({"read": true, "write": false, "delete": false, "execute": false}),
    );
    let v = api.ok_as(&reader, "GET", "/p2p/network", None);
    assert_eq!(v["mode"], "bootstrapped", "{v}");
    assert_eq!(v["self"]["name"], "alpha");
    assert_eq!(v["self"]["uri"], api.server.base().as_str());
    let identity = v["self"]["identity"].as_str().unwrap();
    let key: weft_peer_protocol::PublicKey = identity.parse().unwrap();
    assert_eq!(v["self"]["fingerprint"], key.fingerprint().as_str());
    assert_eq!(v["self"]["classes"]["things"], json!(["City"]));
    assert_eq!(v["bootstrappedPeers"], json!([]));
    assert_eq!(v["livenessWindowMs"], 900, "3 echo rounds of 0.3 s: {v}");
    assert_eq!(v["peers"], json!([]));

    // A server that is no peer: 404 saying what to configure (after the key check).
    let plain = Api::new(Server::start());
    let (s, b) = plain.get("/p2p/network");
    assert_eq!(s, 404, "{b}");
    assert!(message(&b).contains("network.peer_name"), "{b}");
    let (s, _) = plain.raw(&plain.http, "GET", "/p2p/network", &[], None);
    assert_eq!(s, 401);
}

#[test]
fn a_genesis_serves_its_network_page_and_its_view_needs_the_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = GenesisServer::start(&["--admin-key", "gk", "--admin-token", "gt"]);
    let mut env = peer_env("alpha", &dir.path().join("alpha"), "0.3");
    env.push(("WEFT_GENESIS_URL".into(), genesis.url.clone()));
    let alpha = start_peer(&[], &env);

    let (s, h, html) = get(&format!("{}/console", genesis.url), &[]);
    assert_eq!(s, 200);
    assert!(header(&h, "content-type").starts_with("text/html"));
    assert_eq!(
        header(&h, "content-security-policy"),
        weft_console::CONTENT_SECURITY_POLICY
    );
    assert!(html.contains("data-endpoint=\"/network\""), "{html}");
    let r = client()
        .post(format!("{}/console", genesis.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(header(r.headers(), "allow"), "GET, HEAD");
    let (s, h, _) = get(&format!("{}/", genesis.url), &[("Accept", BROWSER_ACCEPT)]);
    assert_eq!(s, 303);
    assert_eq!(header(&h, "location"), "/console");
    let (s, _, body) = get(&format!("{}/", genesis.url), &[]);
    assert_eq!(s, 404);
    assert_error_shape("GET", "/", s, &json_of(&body));
    let (s, h, _) = get(&format!("{}/console/assets/network.js", genesis.url), &[]);
    assert_eq!(s, 200);
    assert_eq!(header(&h, "content-type"), "text/javascript; charset=utf-8");

    let view = format!("{}/network", genesis.url);
    for (what, headers) in [
        ("no key", vec![]),
        (
            "a wrong token",
            vec![("X-API-KEY", "gk"), ("X-API-TOKEN", "nope")],
        ),
        ("a peer's root key", ROOT.to_vec()),
    ] {
        let (s, _, body) = get(&view, &headers);
        assert_eq!(s, 403, "{what}: {body}");
        let b = json_of(&body);
        assert_error_shape("GET", "/network", s, &b);
        assert!(message(&b).contains("--admin-key"), "{what}: {b}");
    }
    let admin = [("X-API-KEY", "gk"), ("X-API-TOKEN", "gt")];
    let listed = wait_for(Duration::from_secs(20), || {
        let (s, _, body) = get(&view, &admin);
        s == 200
            && json_of(&body)["peers"]
                .as_array()
                .is_some_and(|p| p.len() == 1)
    });
    assert!(listed.is_some(), "alpha did not register");
    let (_, _, body) = get(&view, &admin);
    let v = json_of(&body);
    assert_eq!(v["mode"], "genesis-server", "{v}");
    assert_eq!(v["self"]["identity"], genesis.identity.as_str());
    assert_eq!(v["livenessWindowMs"], 60_000);
    let p = &v["peers"][0];
    assert_eq!(p["name"], "alpha", "{v}");
    assert_eq!(p["uri"], alpha.base().as_str());
    assert_eq!(p["liveness"], "alive");
    let key: weft_peer_protocol::PublicKey = p["identity"].as_str().unwrap().parse().unwrap();
    assert_eq!(p["fingerprint"], key.fingerprint().as_str());

    // The peer's own view names its genesis, with the key it pinned.
    let a = Api::new(alpha);
    let seen = wait_for(Duration::from_secs(10), || {
        a.get("/p2p/network").1["genesis"]["identity"] == genesis.identity.as_str()
    });
    assert!(seen.is_some(), "{}", a.get("/p2p/network").1);
    let v = a.get("/p2p/network").1;
    assert_eq!(v["mode"], "genesis");
    assert_eq!(v["genesis"]["uri"], genesis.url.as_str());
    assert!(v.get("livenessWindowMs").is_none(), "{v}");

    // A genesis without an admin key says how to give it one.
    let plain = GenesisServer::start(&[]);
    let (s, _, body) = get(&format!("{}/network", plain.url), &admin);
    assert_eq!(s, 403);
    assert!(message(&json_of(&body)).contains("--admin-key"), "{body}");
}

/// The hosts whose `http(s)://` addresses appear in the pinned third-party bundles, and why each
/// is never loaded: they are text (licence headers, error messages, comments) or XML namespace
/// names, not targets of `src`, `href`, `url()`, `fetch`, `import` or a worker. The list is exact
/// for the pinned files (`scripts/fetch-console-assets.sh`): a refreshed bundle with a new host
/// fails here until someone looks at it. What the pages load in a real browser is checked in
/// `tests/browser` (every request outside 127.0.0.1 fails the test), and the pages'
/// Content-Security-Policy lets a browser load nothing from elsewhere.
const THIRD_PARTY_TEXT_HOSTS: [(&str, &str); 8] = [
    (
        "http://",
        "the scheme alone: markdown-it's linkify puts it before link text it shows (no host)",
    ),
    (
        "http://www.w3.org",
        "SVG/XHTML/MathML namespace names (createElementNS), never fetched",
    ),
    (
        "https://reactjs.org",
        "react-dom's minified error messages: 'visit https://reactjs.org/docs/error-decoder.html…'",
    ),
    (
        "https://github.com",
        "GraphiQL's messages and bundled libraries' licence comments",
    ),
    ("https://codemirror.net", "CodeMirror 5's licence comment"),
    ("https://commonmark.org", "markdown-it's comment"),
    ("https://en.wikipedia.org", "a comment in graphql-js"),
    ("https://radix-ui.com", "a Radix UI console warning's text"),
];

/// Every `scheme://host` in `text`.
fn absolute_hosts(text: &str) -> Vec<String> {
    let mut out = vec![];
    for scheme in ["http://", "https://"] {
        for (i, _) in text.match_indices(scheme) {
            let rest = &text[i + scheme.len()..];
            let host: String = rest
                .chars()
                .take_while(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                })
                .collect();
            out.push(format!("{scheme}{host}"));
        }
    }
    out
}

/// The values of `attr="…"` in `html`.
fn attribute_values(html: &str, attr: &str) -> Vec<String> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            html[i + needle.len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect()
        })
        .collect()
}

/// The targets of `url(…)` and `@import` in CSS.
fn css_targets(css: &str) -> Vec<String> {
    let mut out: Vec<String> = css
        .match_indices("url(")
        .map(|(i, _)| {
            css[i + 4..]
                .chars()
                .take_while(|c| *c != ')')
                .collect::<String>()
                .trim_matches(|c| c == '"' || c == '\'' || c == ' ')
                .to_string()
        })
        .collect();
    out.extend(
        css.match_indices("@import")
            .map(|(i, _)| css[i..].chars().take(80).collect::<String>()),
    );
    out
}

/// No page or file of the console refers to a host but the server itself:
/// * the pages (Weft's HTML): no absolute URL at all, every `src`/`href`/`action` a path on
///   this server, every file they load one the server serves;
/// * Weft's own JS and CSS: no absolute URL at all;
/// * GraphiQL's CSS: every `url()` a `data:` URL, no `@import`, no absolute URL;
/// * the third-party JS (minified GraphiQL, React, ReactDOM): no dynamic loading
///   (`import(`, `importScripts(`, `new Worker(`, `WebSocket(`, `XMLHttpRequest`,
///   `sendBeacon`), and every absolute URL's host one of [`THIRD_PARTY_TEXT_HOSTS`], which are
///   text, not load targets (see there).
#[test]
fn no_page_or_file_refers_to_another_host() {
    let server = Server::start();
    let genesis = GenesisServer::start(&[]);
    let own = server.base();
    let mut pages = vec![];
    for (url, headers) in [
        (server.at("/graphql"), vec![("Accept", BROWSER_ACCEPT)]),
        (server.at("/console"), vec![]),
        (server.at("/p2p/console"), vec![]),
        (format!("{}/console", genesis.url), vec![]),
    ] {
        let (s, _, html) = get(&url, &headers);
        assert_eq!(s, 200, "{url}");
        pages.push((url, html));
    }
    let mut loaded = std::collections::BTreeSet::new();
    for (url, html) in &pages {
        let hosts = absolute_hosts(html);
        assert!(hosts.is_empty(), "{url} names {hosts:?}");
        for attr in ["src", "href", "action", "data-endpoint"] {
            for v in attribute_values(html, attr) {
                assert!(
                    v.starts_with('/') && !v.starts_with("//"),
                    "{url}: {attr}=\"{v}\" is not a path on this server"
                );
                if let Some(name) = v.split("/console/assets/").nth(1) {
                    assert!(
                        weft_console::asset(name).is_some(),
                        "{url} loads {v}, which is not served"
                    );
                    if attr == "src" || attr == "href" {
                        loaded.insert(name.to_string());
                    }
                }
            }
        }
    }
    // Everything the pages load is among the served files, and each is scanned below.
    assert!(
        loaded.contains("graphiql.min.js") && loaded.contains("network.js"),
        "{loaded:?}"
    );
    let allowed: Vec<&str> = THIRD_PARTY_TEXT_HOSTS.iter().map(|(h, _)| *h).collect();
    for a in weft_console::ASSETS {
        let (s, _, text) = get(&format!("{own}/weaviate/v1/console/assets/{}", a.name), &[]);
        assert_eq!(s, 200, "{}", a.name);
        let third_party = matches!(
            a.name,
            "graphiql.min.js"
                | "graphiql.min.css"
                | "react.production.min.js"
                | "react-dom.production.min.js"
        );
        if a.name.starts_with("LICENSE") {
            continue; // text shown to people, never loaded by a page
        }
        if a.name.ends_with(".css") {
            for t in css_targets(&text) {
                assert!(
                    t.starts_with("data:"),
                    "{} loads {t:?}: only data: URLs may be in the console's CSS",
                    a.name
                );
            }
        }
        let hosts = absolute_hosts(&text);
        if third_party && a.name.ends_with(".js") {
            for dynamic in [
                "import(",
                "importScripts(",
                "new Worker(",
                "WebSocket(",
                "XMLHttpRequest",
                "sendBeacon",
            ] {
                assert!(!text.contains(dynamic), "{} contains {dynamic}", a.name);
            }
            let unknown: Vec<&String> = hosts
                .iter()
                .filter(|h| !allowed.contains(&h.as_str()))
                .collect();
            assert!(
                unknown.is_empty(),
                "{} names hosts not known to be text only: {unknown:?}; look at each and add it to THIRD_PARTY_TEXT_HOSTS with the reason, or stop serving the file",
                a.name
            );
        } else {
            assert!(hosts.is_empty(), "{} names {hosts:?}", a.name);
        }
    }
}
