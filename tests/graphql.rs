//! GraphQL end to end: the real binary with dev-memory over HTTP, against a fixture of 312 linked
//! objects (countries, cities in them, airports in the cities) with every data type. Expected
//! answers are computed here from the fixture data, never with the plugin API's own filter or
//! aggregate code. One test runs in process instead, to compare the host-side evaluation (a
//! connector declaring no filter or aggregate capability) with the connector's.
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Value};
use weft_e2e_tests::{Creds, Server, ROOT_KEY, ROOT_TOKEN};

// --- the fixture -----------------------------------------------------------------------------

const DESCRIPTIONS: [&str; 4] = ["old town", "harbour city", "mountain town", "river city"];
const MOTTOS: [&str; 3] = ["unity and work", "liberty and work", "progress and work"];
const WINDS: [&str; 3] = ["North", "South", "East"];

struct Country {
    id: String,
    name: String,
    motto: &'static str,
    population: i64,
    gdp: f64,
    in_eu: bool,
    founded: String,
}

struct City {
    id: String,
    name: String,
    description: &'static str,
    population: i64,
    area: f64,
    is_capital: bool,
    founded: String,
    country: usize,
}

struct Airport {
    code: String,
    label: String,
    runways: i64,
    elevation: f64,
    international: bool,
    opened: String,
    city: usize,
}

struct Fixture {
    countries: Vec<Country>,
    cities: Vec<City>,
    airports: Vec<Airport>,
}

fn classes() -> Vec<Value> {
    vec![
        json!({"class": "Country", "description": "A country.", "properties": [
            {"name": "name", "@dataType": ["string"]},
            {"name": "motto", "@dataType": ["text"]},
            {"name": "population", "@dataType": ["int"]},
            {"name": "gdp", "@dataType": ["number"]},
            {"name": "inEu", "@dataType": ["boolean"]},
            {"name": "founded", "@dataType": ["date"]}]}),
        json!({"class": "City", "properties": [
            {"name": "name", "@dataType": ["string"]},
            {"name": "description", "@dataType": ["text"]},
            {"name": "population", "@dataType": ["int"]},
            {"name": "area", "@dataType": ["number"]},
            {"name": "isCapital", "@dataType": ["boolean"]},
            {"name": "founded", "@dataType": ["date"]},
            {"name": "inCountry", "@dataType": ["Country"]}]}),
        json!({"class": "Airport", "properties": [
            {"name": "code", "@dataType": ["string"]},
            {"name": "label", "@dataType": ["text"]},
            {"name": "runways", "@dataType": ["int"]},
            {"name": "elevation", "@dataType": ["number"]},
            {"name": "international", "@dataType": ["boolean"]},
            {"name": "opened", "@dataType": ["date"]},
            {"name": "inCity", "@dataType": ["City"]}]}),
    ]
}

fn reference(id: &str) -> Value {
    json!({"$cref": id, "locationUrl": "http://localhost/", "type": "Thing"})
}

/// Makes the fixture, storing each object with `create(class, schema)` (which answers its id).
fn build_fixture(create: &mut dyn FnMut(&str, Value) -> String) -> Fixture {
    let mut countries = vec![];
    for i in 0..12usize {
        let mut c = Country {
            id: String::new(),
            name: format!("Country{i:02}"),
            motto: MOTTOS[i % 3],
            population: 1_000_000 + i as i64 * 750_000,
            gdp: 10.25 * (i + 1) as f64,
            in_eu: i % 3 != 0,
            founded: format!("{}-07-04T12:00:00Z", 1700 + i * 17),
        };
        c.id = create(
            "Country",
            json!({"name": c.name, "motto": c.motto, "population": c.population, "gdp": c.gdp,
                   "inEu": c.in_eu, "founded": c.founded}),
        );
        countries.push(c);
    }
    let mut cities = vec![];
    for j in 0..200usize {
        let mut c = City {
            id: String::new(),
            name: format!("City{j:03}"),
            description: DESCRIPTIONS[(j % 7) % 4],
            population: 1000 + (j as i64 * 7919) % 100_000,
            area: (j % 40) as f64 * 2.5 + 0.5,
            is_capital: j < 12,
            founded: format!(
                "{:04}-{:02}-{:02}T08:30:00Z",
                1000 + j * 4,
                j % 12 + 1,
                j % 28 + 1
            ),
            country: (j * 5) % 12,
        };
        c.id = create(
            "City",
            json!({"name": c.name, "description": c.description, "population": c.population,
                   "area": c.area, "isCapital": c.is_capital, "founded": c.founded,
                   "inCountry": reference(&countries[c.country].id)}),
        );
        cities.push(c);
    }
    let mut airports = vec![];
    for k in 0..100usize {
        let a = Airport {
            code: format!("A{k:03}"),
            label: format!("Airport {}", WINDS[k % 3]),
            runways: (k % 4 + 1) as i64,
            elevation: k as f64 * 12.5 - 300.0,
            international: k % 3 == 0,
            opened: format!("{:04}-01-15T00:00:00Z", 1920 + k),
            city: (k * 3 + 1) % 200,
        };
        create(
            "Airport",
            json!({"code": a.code, "label": a.label, "runways": a.runways, "elevation": a.elevation,
                   "international": a.international, "opened": a.opened,
                   "inCity": reference(&cities[a.city].id)}),
        );
        airports.push(a);
    }
    Fixture {
        countries,
        cities,
        airports,
    }
}

// --- the server ------------------------------------------------------------------------------

/// The shared client, plus the GraphQL helpers below.
struct Api(weft_e2e_tests::Api);

impl std::ops::Deref for Api {
    type Target = weft_e2e_tests::Api;
    fn deref(&self) -> &weft_e2e_tests::Api {
        &self.0
    }
}

impl Api {
    fn start() -> Api {
        Api(weft_e2e_tests::Api::new(Server::start()))
    }

    fn schema(&self) {
        for class in classes() {
            self.ok_as(&Creds::root(), "POST", "/schema/things", Some(class));
        }
    }

    fn create(&self, c: &Creds, class: &str, schema: Value) -> String {
        let b = self.ok_as(
            c,
            "POST",
            "/things",
            Some(json!({"thing": {"@context": "http://example.org", "@class": class, "schema": schema}})),
        );
        b["thingId"].as_str().unwrap().to_string()
    }

    fn fixture(&self) -> Fixture {
        self.schema();
        build_fixture(&mut |class, schema| self.create(&Creds::root(), class, schema))
    }

    /// The whole GraphQL answer (status 200 asserted).
    fn graphql_as(&self, c: &Creds, query: &str, variables: Value) -> Value {
        let (s, b) = self.call(
            c,
            "POST",
            "/graphql",
            Some(json!({"query": query, "variables": variables})),
        );
        assert_eq!(s, 200, "{query}: {b}");
        b
    }

    /// `data` of an answer that must have no errors.
    fn data_as(&self, c: &Creds, query: &str, variables: Value) -> Value {
        let b = self.graphql_as(c, query, variables);
        assert!(b.get("errors").is_none(), "{query}: {b}");
        b["data"].clone()
    }

    fn data(&self, query: &str, variables: Value) -> Value {
        self.data_as(&Creds::root(), query, variables)
    }

    /// Every object of `class` matching `filter` (paged with `first`), newest first.
    fn get_all(&self, class: &str, fields: &str, filter: &Value, first: usize) -> Vec<Value> {
        let query = format!(
            "query($w: WhereInpObj, $f: Int, $a: Int) {{ Local {{ Get {{ Things {{ {class}(where: $w, first: $f, after: $a) {{ {fields} }} }} }} }} }}"
        );
        let mut out = vec![];
        loop {
            let d = self.data(&query, json!({"w": filter, "f": first, "a": out.len()}));
            let page = d["Local"]["Get"]["Things"][class]
                .as_array()
                .unwrap_or_else(|| panic!("no list in {d}"))
                .clone();
            let n = page.len();
            out.extend(page);
            if n < first {
                return out;
            }
        }
    }

    fn names(&self, class: &str, filter: &Value) -> BTreeSet<String> {
        let field = if class == "Airport" { "code" } else { "name" };
        self.get_all(class, field, filter, 100)
            .iter()
            .map(|o| o[field].as_str().unwrap().to_string())
            .collect()
    }
}

// --- expectations --------------------------------------------------------------------------

fn holds<T: PartialOrd>(op: &str, a: T, b: T) -> bool {
    let ord = a.partial_cmp(&b);
    match op {
        "Equal" => ord == Some(Ordering::Equal),
        "NotEqual" => ord != Some(Ordering::Equal),
        "GreaterThan" => ord == Some(Ordering::Greater),
        "GreaterThanEqual" => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        "LessThan" => ord == Some(Ordering::Less),
        "LessThanEqual" => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        other => panic!("not a comparison: {other}"),
    }
}

const COMPARISONS: [&str; 6] = [
    "Equal",
    "NotEqual",
    "GreaterThan",
    "GreaterThanEqual",
    "LessThan",
    "LessThanEqual",
];

type CityTest = (Value, Box<dyn Fn(&City, &Fixture) -> bool>);

/// Filters over City with the names they must select, for every operator and data type,
/// nesting, and paths through the reference.
fn city_filters() -> Vec<CityTest> {
    let mut out: Vec<CityTest> = vec![];
    for op in COMPARISONS {
        let o = op.to_string();
        out.push((
            json!({"operator": op, "path": ["population"], "valueInt": 50_000}),
            Box::new(move |c, _| holds(&o, c.population, 50_000)),
        ));
        let o = op.to_string();
        out.push((
            json!({"operator": op, "path": ["area"], "valueNumber": 50.5}),
            Box::new(move |c, _| holds(&o, c.area, 50.5)),
        ));
        let o = op.to_string();
        out.push((
            json!({"operator": op, "path": ["area"], "valueInt": 50}),
            Box::new(move |c, _| holds(&o, c.area, 50.0)),
        ));
        let o = op.to_string();
        out.push((
            json!({"operator": op, "path": ["name"], "valueString": "City100"}),
            Box::new(move |c, _| holds(&o, c.name.as_str(), "City100")),
        ));
        let o = op.to_string();
        out.push((
            json!({"operator": op, "path": ["description"], "valueText": "mountain town"}),
            Box::new(move |c, _| holds(&o, c.description, "mountain town")),
        ));
        // Fixed-width years in UTC: text order is time order here.
        let o = op.to_string();
        out.push((
            json!({"operator": op, "path": ["founded"], "valueDate": "1400-06-06T08:30:00Z"}),
            Box::new(move |c, _| holds(&o, c.founded.as_str(), "1400-06-06T08:30:00Z")),
        ));
    }
    // The same instant written with an offset.
    out.push((
        json!({"operator": "GreaterThanEqual", "path": ["founded"], "valueDate": "1400-06-06T10:30:00+02:00"}),
        Box::new(|c, _| c.founded.as_str() >= "1400-06-06T08:30:00Z"),
    ));
    for (op, want) in [("Equal", true), ("NotEqual", false)] {
        out.push((
            json!({"operator": op, "path": ["isCapital"], "valueBoolean": true}),
            Box::new(move |c, _| c.is_capital == want),
        ));
    }
    out.push((
        json!({"operator": "And", "operands": [
            {"operator": "GreaterThan", "path": ["population"], "valueInt": 50_000},
            {"operator": "Or", "operands": [
                {"operator": "Equal", "path": ["isCapital"], "valueBoolean": true},
                {"operator": "Not", "operands": [{"operator": "LessThan", "path": ["area"], "valueNumber": 30.0}]}]}]}),
        Box::new(|c, _| c.population > 50_000 && (c.is_capital || c.area >= 30.0)),
    ));
    out.push((
        json!({"operator": "Or", "operands": [
            {"operator": "Equal", "path": ["name"], "valueString": "City001"},
            {"operator": "Equal", "path": ["name"], "valueString": "City002"},
            {"operator": "And", "operands": [
                {"operator": "Equal", "path": ["description"], "valueText": "river city"},
                {"operator": "LessThanEqual", "path": ["population"], "valueInt": 20_000}]}]}),
        Box::new(|c, _| {
            c.name == "City001"
                || c.name == "City002"
                || (c.description == "river city" && c.population <= 20_000)
        }),
    ));
    out.push((
        json!({"operator": "Not", "operands": [{"operator": "Or", "operands": [
            {"operator": "Equal", "path": ["isCapital"], "valueBoolean": true},
            {"operator": "LessThan", "path": ["population"], "valueInt": 90_000}]}]}),
        Box::new(|c, _| !(c.is_capital || c.population < 90_000)),
    ));
    out.push((
        json!({"operator": "Equal", "path": ["inCountry", "Country", "inEu"], "valueBoolean": true}),
        Box::new(|c, f| f.countries[c.country].in_eu),
    ));
    out.push((
        json!({"operator": "GreaterThan", "path": ["inCountry", "Country", "population"], "valueInt": 5_000_000}),
        Box::new(|c, f| f.countries[c.country].population > 5_000_000),
    ));
    out.push((
        json!({"operator": "And", "operands": [
            {"operator": "LessThan", "path": ["inCountry", "Country", "gdp"], "valueNumber": 60.0},
            {"operator": "NotEqual", "path": ["inCountry", "Country", "motto"], "valueText": "unity and work"},
            {"operator": "GreaterThan", "path": ["inCountry", "Country", "founded"], "valueDate": "1750-01-01T00:00:00Z"}]}),
        Box::new(|c, f| {
            let k = &f.countries[c.country];
            k.gdp < 60.0 && k.motto != "unity and work" && k.founded.as_str() > "1750-01-01T00:00:00Z"
        }),
    ));
    out
}

fn expected_names(f: &Fixture, pred: &dyn Fn(&City, &Fixture) -> bool) -> BTreeSet<String> {
    f.cities
        .iter()
        .filter(|c| pred(c, f))
        .map(|c| c.name.clone())
        .collect()
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|a| (a - b).abs() < 1e-6 * b.abs().max(1.0))
}

/// Equal JSON, numbers up to rounding (a connector's aggregate crosses the boundary as JSON
/// text, which may move a float by one unit in the last place).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || y.as_f64().is_some_and(|y| close(a, y)),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Distinct values, most frequent first, ties by value.
fn top(values: impl Iterator<Item = String>) -> Vec<(String, u64)> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

// --- the tests ---------------------------------------------------------------------------------

#[test]
fn get_filters_with_every_operator_data_type_nesting_and_reference_path() {
    filters_answer_as_the_fixture_says(&Api::start());
}

/// On the embedded store (always, whatever `WEFT_TEST_DATABASE` says): its filters through
/// references are answered from its reference index (format version 8), which must give every
/// match, one hop or two, inside `And`/`Or`/`Not`.
#[test]
fn get_filters_with_every_operator_data_type_nesting_and_reference_path_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let server = Server::start_with(&["--database", "embedded", "--data-dir", &data], &[]);
    filters_answer_as_the_fixture_says(&Api(weft_e2e_tests::Api::new(server)));
}

/// Every filter of [`city_filters`], a filter through two references and a literal filter
/// answer the fixture's matches.
fn filters_answer_as_the_fixture_says(api: &Api) {
    let f = api.fixture();
    let mut nonempty = 0;
    for (filter, pred) in city_filters() {
        let want = expected_names(&f, pred.as_ref());
        let got = api.names("City", &filter);
        assert_eq!(got, want, "where {filter}");
        if !want.is_empty() && want.len() < f.cities.len() {
            nonempty += 1;
        }
    }
    assert!(
        nonempty > 30,
        "the filters hardly select anything: {nonempty}"
    );
    // Two hops: airports in cities of one country.
    let got = api.names(
        "Airport",
        &json!({"operator": "Equal", "path": ["inCity", "City", "inCountry", "Country", "name"], "valueString": "Country05"}),
    );
    let want: BTreeSet<String> = f
        .airports
        .iter()
        .filter(|a| f.countries[f.cities[a.city].country].name == "Country05")
        .map(|a| a.code.clone())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    // A literal filter in the query text (not through variables).
    let d = api.data(
        r#"{ Local { Get { Things { Airport(first: 100, where: {operator: And, operands: [
             {operator: Equal, path: ["international"], valueBoolean: true},
             {operator: GreaterThanEqual, path: ["inCity", "City", "population"], valueInt: 50000},
             {operator: LessThan, path: ["elevation"], valueNumber: 500.0},
             {operator: NotEqual, path: ["label"], valueText: "Airport South"},
             {operator: GreaterThan, path: ["opened"], valueDate: "1930-01-01T00:00:00Z"},
             {operator: LessThanEqual, path: ["runways"], valueInt: 3}]}) { code } } } } }"#,
        json!({}),
    );
    let got: BTreeSet<String> = d["Local"]["Get"]["Things"]["Airport"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = f
        .airports
        .iter()
        .filter(|a| {
            a.international
                && f.cities[a.city].population >= 50_000
                && a.elevation < 500.0
                && a.label != "Airport South"
                && a.opened.as_str() > "1930-01-01T00:00:00Z"
                && a.runways <= 3
        })
        .map(|a| a.code.clone())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[test]
fn paging_with_first_and_after_and_nested_reference_selection() {
    let api = Api::start();
    let f = api.fixture();
    let none = Value::Null;
    // Pages of 7 put together are the pages of 100 put together: every city once, newest first.
    let by_100: Vec<Value> = api.get_all("City", "uuid name", &none, 100);
    let by_7: Vec<Value> = api.get_all("City", "uuid name", &none, 7);
    assert_eq!(by_100.len(), f.cities.len());
    assert_eq!(by_7, by_100);
    let ids: BTreeSet<&str> = by_100.iter().map(|c| c["uuid"].as_str().unwrap()).collect();
    let want: BTreeSet<&str> = f.cities.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, want);
    // The server's limit (100) caps `first`; `after` skips.
    let page = |first: i64, after: i64| {
        let d = api.data(
            "query($f: Int, $a: Int) { Local { Get { Things { City(first: $f, after: $a) { uuid name } } } } }",
            json!({"f": first, "a": after}),
        );
        d["Local"]["Get"]["Things"]["City"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(page(500, 0).len(), 100);
    assert_eq!(page(500, 195), by_100[195..].to_vec());
    assert_eq!(page(3, 10), by_100[10..13].to_vec());
    assert!(page(10, 200).is_empty());
    assert!(page(0, 0).is_empty());
    // Paging through a filter that the connector evaluates and one through a reference.
    for filter in [
        json!({"operator": "GreaterThan", "path": ["population"], "valueInt": 50_000}),
        json!({"operator": "Equal", "path": ["inCountry", "Country", "inEu"], "valueBoolean": true}),
    ] {
        let a = api.get_all("City", "name", &filter, 9);
        let b = api.get_all("City", "name", &filter, 100);
        assert!(a.len() > 9, "{filter}");
        assert_eq!(a, b, "{filter}");
    }
    // Nested references: airport → city → country, with every primitive type on the way.
    let airports = api.get_all(
        "Airport",
        "code label runways elevation international opened InCity { ... on City { uuid name population area isCapital InCountry { ... on Country { name gdp inEu founded motto } } } }",
        &none,
        100,
    );
    assert_eq!(airports.len(), f.airports.len());
    for got in &airports {
        let a = f
            .airports
            .iter()
            .find(|a| a.code == got["code"].as_str().unwrap())
            .unwrap();
        let city = &f.cities[a.city];
        let country = &f.countries[city.country];
        assert_eq!(got["label"], a.label.as_str());
        assert_eq!(got["runways"], a.runways);
        assert!(close(&got["elevation"], a.elevation), "{got}");
        assert_eq!(got["international"], a.international);
        assert_eq!(got["opened"], a.opened.as_str());
        assert_eq!(
            got["InCity"],
            json!([{"uuid": city.id, "name": city.name, "population": city.population,
                    "area": city.area, "isCapital": city.is_capital,
                    "InCountry": [{"name": country.name, "gdp": country.gdp, "inEu": country.in_eu,
                                   "founded": country.founded, "motto": country.motto}]}]),
            "{}",
            a.code
        );
    }
}

#[test]
fn getmeta_and_aggregate_match_values_computed_from_the_fixture() {
    let api = Api::start();
    let f = api.fixture();
    let d = api.data(
        "{ Local { GetMeta { Things { City {
            meta { count }
            population { type count lowest highest average sum }
            area { type count lowest highest average sum }
            description { type count topOccurrences(first: 2) { value occurs } }
            name { type count topOccurrences(first: 1) { value occurs } }
            founded { type count }
            isCapital { type count totalTrue percentageTrue totalFalse percentageFalse }
            inCountry { type count pointingTo }
        } } } } }",
        json!({}),
    );
    let m = &d["Local"]["GetMeta"]["Things"]["City"];
    let n = f.cities.len() as f64;
    assert_eq!(m["meta"]["count"], 200);
    let pops: Vec<i64> = f.cities.iter().map(|c| c.population).collect();
    let pop_sum: i64 = pops.iter().sum();
    assert_eq!(m["population"]["type"], "int");
    assert_eq!(m["population"]["count"], 200);
    assert_eq!(m["population"]["lowest"], *pops.iter().min().unwrap());
    assert_eq!(m["population"]["highest"], *pops.iter().max().unwrap());
    assert_eq!(m["population"]["sum"], pop_sum);
    assert!(
        close(&m["population"]["average"], pop_sum as f64 / n),
        "{m}"
    );
    let areas: Vec<f64> = f.cities.iter().map(|c| c.area).collect();
    let area_sum: f64 = areas.iter().sum();
    assert_eq!(m["area"]["type"], "number");
    assert!(close(
        &m["area"]["lowest"],
        areas.iter().copied().fold(f64::MAX, f64::min)
    ));
    assert!(close(
        &m["area"]["highest"],
        areas.iter().copied().fold(f64::MIN, f64::max)
    ));
    assert!(close(&m["area"]["sum"], area_sum));
    assert!(close(&m["area"]["average"], area_sum / n));
    let descriptions = top(f.cities.iter().map(|c| c.description.to_string()));
    assert_eq!(m["description"]["type"], "text");
    assert_eq!(m["description"]["count"], 200);
    assert_eq!(
        m["description"]["topOccurrences"],
        json!(descriptions[..2]
            .iter()
            .map(|(v, o)| json!({"value": v, "occurs": o}))
            .collect::<Vec<_>>())
    );
    assert_eq!(
        m["name"]["topOccurrences"],
        json!([{"value": "City000", "occurs": 1}])
    );
    assert_eq!(m["founded"], json!({"type": "date", "count": 200}));
    let capitals = f.cities.iter().filter(|c| c.is_capital).count() as f64;
    assert_eq!(m["isCapital"]["type"], "boolean");
    assert_eq!(m["isCapital"]["totalTrue"], capitals as u64);
    assert_eq!(m["isCapital"]["totalFalse"], (n - capitals) as u64);
    assert!(close(&m["isCapital"]["percentageTrue"], capitals / n));
    assert!(close(
        &m["isCapital"]["percentageFalse"],
        (n - capitals) / n
    ));
    assert_eq!(
        m["inCountry"],
        json!({"type": "Country", "count": 200, "pointingTo": ["Country"]})
    );

    // GetMeta with a filter through the reference.
    let d = api.data(
        r#"{ Local { GetMeta { Things { City(where: {operator: Equal, path: ["inCountry", "Country", "inEu"], valueBoolean: false}) {
            meta { count } population { sum } } } } } }"#,
        json!({}),
    );
    let chosen: Vec<&City> = f
        .cities
        .iter()
        .filter(|c| !f.countries[c.country].in_eu)
        .collect();
    let m = &d["Local"]["GetMeta"]["Things"]["City"];
    assert_eq!(m["meta"]["count"], chosen.len());
    assert_eq!(
        m["population"]["sum"],
        chosen.iter().map(|c| c.population).sum::<i64>()
    );

    // Aggregate grouped through the reference.
    let d = api.data(
        r#"{ Local { Aggregate { Things { City(groupBy: ["inCountry", "Country", "name"]) {
            groupedBy { path value } meta { count }
            population { lowest highest sum average } isCapital { totalTrue } } } } } }"#,
        json!({}),
    );
    let groups = d["Local"]["Aggregate"]["Things"]["City"]
        .as_array()
        .unwrap();
    assert_eq!(groups.len(), f.countries.len());
    let counts: Vec<u64> = groups
        .iter()
        .map(|g| g["meta"]["count"].as_u64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "groups are not by count: {counts:?}"
    );
    for g in groups {
        assert_eq!(
            g["groupedBy"]["path"],
            json!(["inCountry", "Country", "name"])
        );
        let name = g["groupedBy"]["value"].as_str().unwrap();
        let members: Vec<&City> = f
            .cities
            .iter()
            .filter(|c| f.countries[c.country].name == name)
            .collect();
        let pops: Vec<i64> = members.iter().map(|c| c.population).collect();
        let sum: i64 = pops.iter().sum();
        assert_eq!(g["meta"]["count"], members.len(), "{name}");
        assert_eq!(g["population"]["sum"], sum, "{name}");
        assert_eq!(g["population"]["lowest"], *pops.iter().min().unwrap());
        assert_eq!(g["population"]["highest"], *pops.iter().max().unwrap());
        assert!(close(
            &g["population"]["average"],
            sum as f64 / pops.len() as f64
        ));
        assert_eq!(
            g["isCapital"]["totalTrue"],
            members.iter().filter(|c| c.is_capital).count()
        );
    }

    // Aggregate by a boolean, with a filter.
    let d = api.data(
        r#"{ Local { Aggregate { Things { Airport(groupBy: ["international"], where: {operator: GreaterThanEqual, path: ["runways"], valueInt: 2}) {
            groupedBy { value } meta { count } elevation { sum } label { topOccurrences { value occurs } } } } } } }"#,
        json!({}),
    );
    let groups = d["Local"]["Aggregate"]["Things"]["Airport"]
        .as_array()
        .unwrap();
    assert_eq!(groups.len(), 2);
    for g in groups {
        let international = g["groupedBy"]["value"] == "true";
        let members: Vec<&Airport> = f
            .airports
            .iter()
            .filter(|a| a.runways >= 2 && a.international == international)
            .collect();
        assert_eq!(g["meta"]["count"], members.len());
        assert!(close(
            &g["elevation"]["sum"],
            members.iter().map(|a| a.elevation).sum()
        ));
        let labels = top(members.iter().map(|a| a.label.clone()));
        assert_eq!(
            g["label"]["topOccurrences"],
            json!(labels
                .iter()
                .map(|(v, o)| json!({"value": v, "occurs": o}))
                .collect::<Vec<_>>())
        );
    }
}

#[test]
fn the_schema_follows_classes_added_over_rest_without_restart() {
    let api = Api::start();
    let r = Creds::root();
    // No class yet: a GraphQL error that says what to do.
    let b = api.graphql_as(
        &r,
        "{ Local { Get { Things { Harbour { uuid } } } } }",
        json!({}),
    );
    assert!(b["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("no classes yet"));
    api.ok_as(
        &r,
        "POST",
        "/schema/things",
        Some(
            json!({"class": "Harbour", "properties": [{"name": "name", "@dataType": ["string"]}]}),
        ),
    );
    let d = api.data(
        "{ Local { Get { Things { Harbour { uuid name } } } } }",
        json!({}),
    );
    assert_eq!(d["Local"]["Get"]["Things"]["Harbour"], json!([]));
    // Unknown until added…
    let q = "{ Local { Get { Actions { Docking { uuid berth } } } } }";
    let b = api.graphql_as(&r, q, json!({}));
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Actions"),
        "{b}"
    );
    api.ok_as(
        &r,
        "POST",
        "/schema/actions",
        Some(json!({"class": "Docking", "properties": [{"name": "berth", "@dataType": ["int"]}]})),
    );
    // …and queryable by the very next request.
    assert_eq!(
        api.data(q, json!({}))["Local"]["Get"]["Actions"]["Docking"],
        json!([])
    );
    // A property added later, and an object using it.
    api.ok_as(
        &r,
        "POST",
        "/schema/actions/Docking/properties",
        Some(json!({"name": "atHarbour", "@dataType": ["Harbour"]})),
    );
    let harbour = api.create(&r, "Harbour", json!({"name": "Genoa"}));
    api.ok_as(&r,
        "POST",
        "/actions",
        Some(json!({"action": {"@context": "", "@class": "Docking", "schema": {"berth": 7, "atHarbour": reference(&harbour)}}})),
    );
    let d = api.data(
        "{ Local { Get { Actions { Docking { berth AtHarbour { ... on Harbour { name } } } } } } }",
        json!({}),
    );
    assert_eq!(
        d["Local"]["Get"]["Actions"]["Docking"],
        json!([{"berth": 7, "AtHarbour": [{"name": "Genoa"}]}])
    );
    let d = api.data(
        "{ Local { GetMeta { Actions { Docking { meta { count } berth { sum } atHarbour { pointingTo } } } } } }",
        json!({}),
    );
    assert_eq!(
        d["Local"]["GetMeta"]["Actions"]["Docking"],
        json!({"meta": {"count": 1}, "berth": {"sum": 7}, "atHarbour": {"pointingTo": ["Harbour"]}})
    );
    // Introspection sees the same schema.
    let d = api.data(
        r#"{ __type(name: "DockingAtHarbourObj") { kind possibleTypes { name } } }"#,
        json!({}),
    );
    assert_eq!(
        d["__type"],
        json!({"kind": "UNION", "possibleTypes": [{"name": "Harbour"}]})
    );
}

#[test]
fn filter_errors_are_graphql_errors_naming_path_and_value() {
    let api = Api::start();
    api.schema();
    let r = Creds::root();
    let b = api.graphql_as(
        &r,
        r#"{ Local { Get { Things { City(where: {operator: Equal, path: ["population"], valueString: "many"}) { name } } } } }"#,
        json!({}),
    );
    let e = &b["errors"][0];
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains(r#"["population"]"#), "{msg}");
    assert!(msg.contains(r#"valueString "many""#), "{msg}");
    assert!(msg.contains("valueInt"), "{msg}");
    assert_eq!(e["path"], json!(["Local", "Get", "Things", "City"]));
    assert_eq!(e["locations"][0]["line"], 1);
    assert_eq!(b["data"]["Local"]["Get"]["Things"]["City"], Value::Null);
    let cases = [
        (
            json!({"operator": "Equal", "path": ["inCountry", "Country", "name"], "valueInt": 3}),
            vec![
                r#"["inCountry","Country","name"]"#,
                "valueInt 3",
                "valueString or valueText",
            ],
        ),
        (
            json!({"operator": "Equal", "path": ["inCountry", "City", "name"], "valueString": "x"}),
            vec!["refers to Country, not \"City\""],
        ),
        (
            json!({"operator": "LessThan", "path": ["popluation"], "valueInt": 3}),
            vec!["no property \"popluation\"", "population"],
        ),
        (
            json!({"operator": "GreaterThan", "path": ["isCapital"], "valueBoolean": true}),
            vec![r#"["isCapital"]"#, "only Equal and NotEqual"],
        ),
        (
            json!({"operator": "Equal", "path": ["founded"], "valueDate": "last year"}),
            vec![r#"["founded"]"#, "\"last year\"", "RFC 3339"],
        ),
        (
            json!({"operator": "Equal", "path": ["area"], "valueString": "big"}),
            vec![r#"["area"]"#, "valueNumber or valueInt"],
        ),
        (
            json!({"operator": "Not", "operands": []}),
            vec!["exactly one operand"],
        ),
    ];
    for (filter, words) in cases {
        let b = api.graphql_as(
            &r,
            "query($w: WhereInpObj) { Local { Get { Things { City(where: $w) { name } } } } }",
            json!({"w": filter}),
        );
        let msg = b["errors"][0]["message"].as_str().unwrap_or_default();
        for w in words {
            assert!(msg.contains(w), "{filter}: {w:?} not in {msg:?}");
        }
    }
    // groupBy is checked the same way; Aggregate needs it.
    let b = api.graphql_as(
        &r,
        r#"{ Local { Aggregate { Things { City(groupBy: ["inCountry", "Country"]) { meta { count } } } } } }"#,
        json!({}),
    );
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("groupBy"),
        "{b}"
    );
    let b = api.graphql_as(
        &r,
        "{ Local { Aggregate { Things { City { meta { count } } } } } }",
        json!({}),
    );
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("groupBy"),
        "{b}"
    );
    // A query that does not parse: 200, no data, the location.
    let b = api.graphql_as(&r, "{ Local { Get ", json!({}));
    assert_eq!(b["data"], Value::Null);
    assert!(b["errors"][0]["locations"].is_array(), "{b}");
    // No query at all: the contract's 422.
    let (s, b) = api.call(&r, "POST", "/graphql", Some(json!({})));
    assert_eq!(s, 422, "{b}");
    assert!(b["error"][0]["message"].as_str().unwrap().contains("query"));
}

#[test]
fn batch_answers_in_request_order() {
    let api = Api::start();
    api.schema();
    let r = Creds::root();
    api.create(
        &r,
        "Country",
        json!({"name": "Chile", "population": 19_000_000}),
    );
    api.create(
        &r,
        "Country",
        json!({"name": "Peru", "population": 33_000_000}),
    );
    let b = api.ok_as(&r,
        "POST",
        "/graphql/batch",
        Some(json!([
            {"query": "{ Local { GetMeta { Things { Country { meta { count } population { sum } } } } } }"},
            {"query": r#"{ Local { Get { Things { Country(where: {operator: Equal, path: ["name"], valueInt: 1}) { name } } } } }"#},
            {},
            {"query": "query Named($n: String) { Local { Get { Things { Country(where: {operator: Equal, path: [\"name\"], valueString: $n}) { name } } } } } query Other { Local { Get { Things { City { name } } } } }",
             "operationName": "Named", "variables": {"n": "Peru"}},
            {"query": "{ Local { Get { Things { City { name } } } } }"}
        ])),
    );
    let answers = b.as_array().unwrap();
    assert_eq!(answers.len(), 5);
    assert_eq!(
        answers[0]["data"]["Local"]["GetMeta"]["Things"]["Country"],
        json!({"meta": {"count": 2}, "population": {"sum": 52_000_000}})
    );
    assert!(answers[1]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("valueInt 1"));
    assert!(answers[2]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("no \"query\""));
    assert_eq!(
        answers[3]["data"]["Local"]["Get"]["Things"]["Country"],
        json!([{"name": "Peru"}])
    );
    assert_eq!(
        answers[4]["data"]["Local"]["Get"]["Things"]["City"],
        json!([])
    );
    assert_eq!(
        api.ok_as(&r, "POST", "/graphql/batch", Some(json!([]))),
        json!([])
    );
}

#[test]
fn keys_see_only_their_subtree_and_need_the_read_right() {
    let api = Api::start();
    api.schema();
    let r = Creds::root();
    let child = |parent: &Creds, rights: Value| api.child(parent, rights);
    let all = json!({"read": true, "write": true, "delete": true, "execute": true});
    let a = child(&r, all.clone());
    let a_child = child(&a, all.clone());
    let b = child(&r, all);
    let writer = child(
        &r,
        json!({"read": false, "write": true, "delete": true, "execute": true}),
    );
    let a_land = api.create(&a, "Country", json!({"name": "A-land"}));
    let b_land = api.create(&b, "Country", json!({"name": "B-land"}));
    for (who, name, country) in [
        (&a, "A1", &a_land),
        (&a, "A2", &a_land),
        (&b, "B1", &b_land),
        (&b, "B2", &b_land),
    ] {
        api.create(
            who,
            "City",
            json!({"name": name, "population": 10, "inCountry": reference(country)}),
        );
    }
    // A's child cannot see A's country, so A (which sees both) links the child's city to it.
    let a3 = api.create(&a_child, "City", json!({"name": "A3", "population": 10}));
    api.ok_as(
        &a,
        "POST",
        &format!("/things/{a3}/properties/inCountry"),
        Some(reference(&a_land)),
    );
    // A may not refer to B's objects itself (it cannot see them); the root, which sees both,
    // links A's city to B's country.
    let (s, body) = api.call(
        &a,
        "POST",
        "/things",
        Some(
            json!({"thing": {"@context": "http://example.org", "@class": "City",
            "schema": {"name": "A-in-B", "population": 10, "inCountry": reference(&b_land)}}}),
        ),
    );
    assert_eq!(s, 422, "{body}");
    let a_in_b = api.create(&a, "City", json!({"name": "A-in-B", "population": 10}));
    api.ok_as(
        &r,
        "POST",
        &format!("/things/{a_in_b}/properties/inCountry"),
        Some(reference(&b_land)),
    );
    // Without the read right: refused before any query runs.
    let (s, body) = api.call(
        &writer,
        "POST",
        "/graphql",
        Some(json!({"query": "{ Local { Get { Things { City { name } } } } }"})),
    );
    assert_eq!(s, 403, "{body}");
    assert!(body["error"][0]["message"]
        .as_str()
        .unwrap()
        .contains("read"));
    let (s, _) = api.call(&writer, "POST", "/graphql/batch", Some(json!([])));
    assert_eq!(s, 403);

    let names = |c: &Creds, filter: Value| -> BTreeSet<String> {
        let d = api.data_as(
            c,
            "query($w: WhereInpObj) { Local { Get { Things { City(where: $w) { name InCountry { ... on Country { name } } } } } } }",
            json!({"w": filter}),
        );
        d["Local"]["Get"]["Things"]["City"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let country = c["InCountry"][0]["name"].as_str().unwrap_or("-");
                format!("{}@{country}", c["name"].as_str().unwrap())
            })
            .collect()
    };
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    // A sees its subtree's cities; B's country is not shown to it, not even as a reference.
    assert_eq!(
        names(&a, Value::Null),
        set(&["A1@A-land", "A2@A-land", "A3@A-land", "A-in-B@-"])
    );
    // A child key does not see its parent's objects, so not A-land either.
    assert_eq!(names(&a_child, Value::Null), set(&["A3@-"]));
    assert_eq!(names(&b, Value::Null), set(&["B1@B-land", "B2@B-land"]));
    assert_eq!(names(&r, Value::Null).len(), 6);
    // Filters through a reference only reach what the caller may see.
    let in_b = json!({"operator": "Equal", "path": ["inCountry", "Country", "name"], "valueString": "B-land"});
    assert!(names(&a, in_b.clone()).is_empty());
    assert_eq!(
        names(&r, in_b),
        set(&["A-in-B@B-land", "B1@B-land", "B2@B-land"])
    );
    // GetMeta and Aggregate count only visible objects.
    let meta = |c: &Creds| {
        api.data_as(
            c,
            r#"{ Local { GetMeta { Things { City { meta { count } inCountry { pointingTo } } } }
                 Aggregate { Things { City(groupBy: ["inCountry", "Country", "name"]) { groupedBy { value } meta { count } } } } } }"#,
            json!({}),
        )["Local"]
            .clone()
    };
    let m = meta(&a);
    assert_eq!(m["GetMeta"]["Things"]["City"]["meta"]["count"], 4);
    assert_eq!(
        m["Aggregate"]["Things"]["City"],
        json!([{"groupedBy": {"value": "A-land"}, "meta": {"count": 3}}])
    );
    let m = meta(&b);
    assert_eq!(
        m["GetMeta"]["Things"]["City"],
        json!({"meta": {"count": 2}, "inCountry": {"pointingTo": ["Country"]}})
    );
    let d = api.data_as(
        &b,
        "{ Local { Get { Things { Country { name } } } } }",
        json!({}),
    );
    assert_eq!(
        d["Local"]["Get"]["Things"]["Country"],
        json!([{"name": "B-land"}])
    );
}

/// The host's own evaluation (for connectors without the filter and aggregate capabilities)
/// answers every query as dev-memory's push-down does: one store, two hosts over it, one of
/// them told the connector declares nothing.
#[test]
fn host_side_evaluation_answers_as_the_connector_does() {
    use weft_core::{ConnectorHandle, Core, CoreConfig};
    use weft_graphql::{Graphql, GraphqlRequest};
    use weft_plugin_api::{Capabilities, ObjectKind};

    let rt = tokio::runtime::Runtime::new().unwrap();
    let handle = ConnectorHandle::from_box(
        weft_plugin_api::connector_box(weft_dev_memory::DevMemory::new()),
        "dev-memory",
        weft_dev_memory::CAPABILITIES,
    );
    let mut bare = handle.clone();
    bare.capabilities = Capabilities::empty();
    assert!(!bare.has(Capabilities::FILTER) && !bare.has(Capabilities::AGGREGATE));
    let pushing = Arc::new(Core::new(handle, CoreConfig::default(), vec![]));
    let host = Arc::new(Core::new(bare, CoreConfig::default(), vec![]));
    let p = rt.block_on(async {
        pushing
            .keys
            .ensure_root(Some((ROOT_KEY.parse().unwrap(), ROOT_TOKEN.into())))
            .await
            .unwrap();
        pushing
            .keys
            .authenticate(Some(ROOT_KEY), Some(ROOT_TOKEN), None)
            .await
            .unwrap()
    });
    rt.block_on(async {
        for class in classes() {
            let class: weft_core::ontology::Class = serde_json::from_value(class).unwrap();
            pushing.add_class(ObjectKind::Thing, class).await.unwrap();
        }
    });
    let f = build_fixture(&mut |class, schema| {
        let body = weft_core::objects::ObjectBody {
            context: Some(String::new()),
            class: Some(class.into()),
            schema: Some(schema.as_object().unwrap().clone()),
        };
        let view = rt
            .block_on(pushing.create_object(&p, ObjectKind::Thing, body, false))
            .unwrap();
        view.id.to_string()
    });
    assert_eq!(f.cities.len(), 200);

    let (g1, g2) = (Graphql::new(), Graphql::new());
    let run = |core: &Arc<Core>, g: &Graphql, query: &str, variables: &Value| -> Value {
        let req = GraphqlRequest {
            query: Some(query.into()),
            operation_name: None,
            variables: Some(variables.clone()),
        };
        let mut answers = rt.block_on(g.execute(core, &p, vec![req])).unwrap();
        let answer = serde_json::to_value(answers.remove(0)).unwrap();
        assert!(
            answer
                .get("errors")
                .is_none_or(|e| e.as_array().is_some_and(|a| a.is_empty())),
            "{query} {variables}: {answer}"
        );
        answer["data"].clone()
    };
    let mut queries: Vec<(String, Value)> = vec![];
    let get = "query($w: WhereInpObj, $a: Int) { Local { Get { Things { City(where: $w, first: 100, after: $a) { name } } } } }";
    for (filter, pred) in city_filters() {
        let expected = expected_names(&f, pred.as_ref());
        let want = expected.len();
        if want <= 100 {
            // The host's answer on its own, against the fixture.
            let d = run(&host, &g2, get, &json!({"w": filter, "a": 0}));
            let got: BTreeSet<String> = d["Local"]["Get"]["Things"]["City"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(got, expected, "host-side {filter}");
        }
        queries.push((get.into(), json!({"w": filter, "a": 0})));
        if want > 100 {
            queries.push((get.into(), json!({"w": filter, "a": 100})));
        }
        queries.push((
            "query($w: WhereInpObj) { Local { GetMeta { Things { City(where: $w) { meta { count } population { lowest highest sum average } description { topOccurrences { value occurs } } isCapital { totalTrue percentageFalse } inCountry { pointingTo } } } } } }".into(),
            json!({"w": filter}),
        ));
    }
    queries.push((
        r#"query($w: WhereInpObj) { Local { Aggregate { Things { City(groupBy: ["inCountry", "Country", "name"], where: $w) { groupedBy { path value } meta { count } area { sum lowest } inCountry { pointingTo } } } } } }"#.into(),
        json!({"w": {"operator": "GreaterThan", "path": ["population"], "valueInt": 20000}}),
    ));
    queries.push((
        r#"{ Local { Aggregate { Things { Airport(groupBy: ["inCity", "City", "isCapital"], where: {operator: Equal, path: ["inCity", "City", "inCountry", "Country", "inEu"], valueBoolean: true}) { groupedBy { value } meta { count } runways { sum } } } } } }"#.into(),
        json!({}),
    ));
    queries.push((
        r#"{ Local { Get { Things { Airport(first: 50, after: 20, where: {operator: Or, operands: [{operator: Equal, path: ["inCity", "City", "inCountry", "Country", "name"], valueString: "Country05"}, {operator: LessThan, path: ["elevation"], valueInt: 0}]}) { code InCity { ... on City { name } } } } } } }"#.into(),
        json!({}),
    ));
    for (query, variables) in &queries {
        let a = run(&pushing, &g1, query, variables);
        let b = run(&host, &g2, query, variables);
        assert!(same(&a, &b), "{query} {variables}:\n{a}\n{b}");
    }
}
