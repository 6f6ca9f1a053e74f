//! Newest first, even within one millisecond: objects created back to back on one keep-alive
//! connection, and the items of a batch (many in the same millisecond), are listed by `GET
//! /things` and by GraphQL `Get` pages in exactly the reverse of their creation order, page after
//! page, and the same request answers the same page. Runs on the connector `Server::start()`
//! picks (dev-memory, or the one `WEFT_TEST_DATABASE` names: `scripts/test.sh` runs it through
//! Cassandra and Gremlin too) and on the embedded store.
use serde_json::json;
use weft_e2e_tests::{Api, Server};
use weft_plugin_api::Id;

/// How many objects are created one request each, then in one batch, alternately of two
/// classes.
const SINGLE: usize = 200;
const BATCH: usize = 100;
const N: usize = SINGLE + BATCH;
/// The page size of both listings.
const PAGE: usize = 50;
const CLASSES: [&str; 2] = ["Town", "Village"];

fn thing(i: usize) -> serde_json::Value {
    json!({"@context": "", "@class": CLASSES[i % 2], "schema": {"name": format!("n{i}")}})
}

/// Creates the classes, then `SINGLE` things back to back through the one client of `api` (one
/// keep-alive connection: requests follow each other without a new handshake), then `BATCH`
/// more in one `POST /batching/things`. Their `(class, id)` in creation order.
fn create_back_to_back(api: &Api) -> Vec<(&'static str, String)> {
    for class in CLASSES {
        api.ok(
            "POST",
            "/schema/things",
            Some(
                json!({"class": class, "properties": [{"name": "name", "@dataType": ["string"]}]}),
            ),
        );
    }
    let mut made = vec![];
    let mut times = vec![];
    for i in 0..SINGLE {
        let b = api.ok("POST", "/things", Some(json!({ "thing": thing(i) })));
        made.push((
            CLASSES[i % 2],
            b["thingId"].as_str().expect("thingId").to_string(),
        ));
        times.push(b["creationTimeUnix"].as_i64().expect("creationTimeUnix"));
    }
    let items: Vec<serde_json::Value> = (SINGLE..N).map(thing).collect();
    let b = api.ok("POST", "/batching/things", Some(json!({ "things": items })));
    let answers = b
        .as_array()
        .unwrap_or_else(|| panic!("no batch answer in {b}"));
    assert_eq!(answers.len(), BATCH, "{b}");
    for (i, a) in (SINGLE..N).zip(answers) {
        assert_eq!(a["result"]["status"], "SUCCESS", "{a}");
        made.push((
            CLASSES[i % 2],
            a["thingId"].as_str().expect("thingId").to_string(),
        ));
        times.push(a["creationTimeUnix"].as_i64().expect("creationTimeUnix"));
    }
    // A new object's creation time is the time its (v7) id holds, so a later one never has an
    // earlier time.
    for ((_, id), t) in made.iter().zip(&times) {
        let id: Id = id.parse().expect("a uuid");
        assert_eq!(id.unix_ms(), Some(*t), "creationTimeUnix of {id}");
    }
    let tied = times.windows(2).filter(|w| w[0] == w[1]).count();
    eprintln!("{tied} of {N} creates shared their millisecond with the one before");
    made
}

/// `GET /things?maxResults=PAGE&page=page`: the ids on the page, and the total.
fn rest_page(api: &Api, page: usize) -> (Vec<String>, u64) {
    let b = api.ok(
        "GET",
        &format!("/things?maxResults={PAGE}&page={page}"),
        None,
    );
    let ids = b["things"]
        .as_array()
        .unwrap_or_else(|| panic!("no things in {b}"))
        .iter()
        .map(|t| t["thingId"].as_str().expect("thingId").to_string())
        .collect();
    (ids, b["totalResults"].as_u64().expect("totalResults"))
}

/// GraphQL `Get` of `class` with `first: PAGE, after: after`: the ids on the page.
fn graphql_page(api: &Api, class: &str, after: usize) -> Vec<String> {
    let query = format!(
        "{{ Local {{ Get {{ Things {{ {class}(first: {PAGE}, after: {after}) {{ uuid }} }} }} }} }}"
    );
    let b = api.ok("POST", "/graphql", Some(json!({"query": query})));
    assert!(b.get("errors").is_none(), "{query}: {b}");
    b["data"]["Local"]["Get"]["Things"][class]
        .as_array()
        .unwrap_or_else(|| panic!("{query}: no list in {b}"))
        .iter()
        .map(|o| o["uuid"].as_str().expect("uuid").to_string())
        .collect()
}

fn lists_in_reverse_creation_order(api: &Api) {
    let made = create_back_to_back(api);
    let want: Vec<String> = made.iter().rev().map(|(_, id)| id.clone()).collect();

    // Every page of the list, then one past the end.
    let mut listed = vec![];
    let pages = N.div_ceil(PAGE);
    for page in 1..=pages + 1 {
        let (ids, total) = rest_page(api, page);
        assert_eq!(total, N as u64, "totalResults of page {page}");
        let from = (page - 1) * PAGE;
        let expected = &want[from.min(N)..(from + PAGE).min(N)];
        assert_eq!(ids, expected, "GET /things page {page}: newest first");
        // The same request gives the same page.
        assert_eq!(rest_page(api, page).0, ids, "page {page} asked twice");
        listed.extend(ids);
    }
    assert_eq!(listed, want, "the pages put together");

    // GraphQL pages of each class: that class's objects, newest first.
    for class in CLASSES {
        let want: Vec<String> = made
            .iter()
            .rev()
            .filter(|(c, _)| *c == class)
            .map(|(_, id)| id.clone())
            .collect();
        let mut got = vec![];
        let mut after = 0;
        loop {
            let page = graphql_page(api, class, after);
            assert_eq!(
                graphql_page(api, class, after),
                page,
                "{class} after {after} asked twice"
            );
            let n = page.len();
            got.extend(page);
            after += PAGE;
            if n < PAGE {
                break;
            }
        }
        assert_eq!(got, want, "GraphQL Get {class}: pages newest first");
    }
}

/// On the connector of the run (dev-memory unless `WEFT_TEST_DATABASE` names another).
#[test]
fn pages_are_the_reverse_of_creation_order() {
    lists_in_reverse_creation_order(&Api::new(Server::start()));
}

/// On the embedded store (always, whatever `WEFT_TEST_DATABASE` says): its unfiltered pages
/// come from the class and owner indexes, whose key order must be the contract's.
#[test]
fn pages_are_the_reverse_of_creation_order_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let server = Server::start_with(&["--database", "embedded", "--data-dir", &data], &[]);
    lists_in_reverse_creation_order(&Api::new(server));
}
