//! Filters (capabilities `FILTER`, `FILTER_REFERENCE_PATHS`): every data type with every
//! comparison operator, logic nesting, missing properties, reference paths, malformed filters.
//!
//! Expected answers are computed here from the rows the check wrote, with plain Rust
//! comparisons, never with the API's reference implementation.

use std::cmp::Ordering;
use std::collections::HashMap;

use abi_stable::std_types::RVec;
use serde_json::{json, Map, Value};
use weft_plugin_api::{Capabilities, ErrorKind, Id, ObjectKind, ObjectQuery, StoredObject};

use crate::support::*;
use crate::Subject;

/// The six comparison operators.
pub(crate) const OPS: [&str; 6] = [
    "Equal",
    "NotEqual",
    "GreaterThan",
    "GreaterThanEqual",
    "LessThan",
    "LessThanEqual",
];

fn holds(op: &str, ord: Ordering) -> bool {
    match op {
        "Equal" => ord == Ordering::Equal,
        "NotEqual" => ord != Ordering::Equal,
        "GreaterThan" => ord == Ordering::Greater,
        "GreaterThanEqual" => ord != Ordering::Less,
        "LessThan" => ord == Ordering::Less,
        "LessThanEqual" => ord != Ordering::Greater,
        _ => unreachable!("kit bug: operator {op}"),
    }
}

/// `{"operator": op, "path": path, value_key: value}`.
pub(crate) fn cmp(op: &str, path: &[&str], value_key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert("operator".into(), op.into());
    m.insert("path".into(), json!(path));
    m.insert(value_key.into(), value);
    Value::Object(m)
}

fn logic(op: &str, operands: Vec<Value>) -> Value {
    json!({"operator": op, "operands": operands})
}

/// Creates one Thing of `class` per row (`label`, value of `prop` or none), row `i` created at
/// `T0 + i` seconds.
pub(crate) async fn seed_rows(
    c: &Conn<'_>,
    class: &str,
    prop: &str,
    rows: &[(&str, Option<Value>)],
) -> Vec<StoredObject> {
    let objects: Vec<StoredObject> = rows
        .iter()
        .enumerate()
        .map(|(i, (l, v))| {
            let mut props = Map::new();
            if let Some(v) = v {
                props.insert(prop.into(), v.clone());
            }
            labelled(
                ObjectKind::Thing,
                class,
                l,
                T0 + i as i64 * 1000,
                Value::Object(props),
            )
        })
        .collect();
    c.create_all(&objects).await;
    objects
}

/// Queries Things of `class` with `filter`; the answer must be the objects `pred` accepts, newest
/// first, with their count as total.
pub(crate) async fn expect_filter(
    c: &Conn<'_>,
    class: &str,
    filter: &Value,
    objects: &[StoredObject],
    pred: impl Fn(&StoredObject) -> bool,
    rule: &str,
) {
    let matching: Vec<StoredObject> = objects.iter().filter(|o| pred(o)).cloned().collect();
    let want = labels(&newest_first(&matching));
    let page = c.query(&filtered(class, filter)).await;
    let rule = if rule.is_empty() {
        String::new()
    } else {
        format!(" [{rule}]")
    };
    c.same_page(
        &format!("query_objects(Things of class {class:?}) with filter {filter}{rule}"),
        &page,
        &want,
        matching.len() as u64,
    );
}

/// Runs every operator in `ops` comparing `prop` with `value_key: value`; `order` says how a
/// stored value compares with the value (`None`: never matches).
#[allow(clippy::too_many_arguments)]
async fn every_operator(
    c: &Conn<'_>,
    class: &str,
    objects: &[StoredObject],
    prop: &str,
    value_key: &str,
    value: Value,
    ops: &[&str],
    order: impl Fn(&Value) -> Option<Ordering>,
) {
    for op in ops {
        let f = cmp(op, &[prop], value_key, value.clone());
        expect_filter(
            c,
            class,
            &f,
            objects,
            |o| {
                o.properties()
                    .get(prop)
                    .and_then(&order)
                    .is_some_and(|ord| holds(op, ord))
            },
            "",
        )
        .await;
    }
}

fn int_order(t: i64) -> impl Fn(&Value) -> Option<Ordering> {
    move |v| {
        if !v.is_number() {
            None
        } else if let Some(i) = v.as_i64() {
            Some(i.cmp(&t))
        } else {
            v.as_f64().and_then(|f| f.partial_cmp(&(t as f64)))
        }
    }
}

fn number_order(t: f64) -> impl Fn(&Value) -> Option<Ordering> {
    move |v| v.as_f64().and_then(|f| f.partial_cmp(&t))
}

fn string_order(t: &str) -> impl Fn(&Value) -> Option<Ordering> + '_ {
    move |v| v.as_str().map(|s| s.cmp(t))
}

/// `valueInt` and `valueNumber` against an int property, every operator: exact integer
/// comparison (2^53 + 1 is greater than 2^53, `i64::MIN`/`MAX` work), a missing property or a
/// string `"10"` never matches.
pub async fn check_filter_int(s: &Subject) {
    if !requires(s, Capabilities::FILTER, "check_filter_int") {
        return;
    }
    let c = Conn::new(s);
    let p53: i64 = 1 << 53;
    let rows: Vec<(&str, Option<Value>)> = vec![
        ("-5", Some(json!(-5))),
        ("0", Some(json!(0))),
        ("10", Some(json!(10))),
        ("10 again", Some(json!(10))),
        ("11", Some(json!(11))),
        ("1000000", Some(json!(1_000_000))),
        ("missing", None),
        ("2^53+1", Some(json!(p53 + 1))),
        ("i64::MAX", Some(json!(i64::MAX))),
        ("i64::MIN", Some(json!(i64::MIN))),
        ("string \"10\"", Some(json!("10"))),
    ];
    let objects = seed_rows(&c, "City", "population", &rows).await;
    for t in [10, 0, -6, p53, i64::MAX] {
        every_operator(
            &c,
            "City",
            &objects,
            "population",
            "valueInt",
            json!(t),
            &OPS,
            int_order(t),
        )
        .await;
    }
    for t in [9.5, 10.0] {
        every_operator(
            &c,
            "City",
            &objects,
            "population",
            "valueNumber",
            json!(t),
            &OPS,
            number_order(t),
        )
        .await;
    }
}

/// `valueNumber` and `valueInt` against a number property, every operator (numeric comparison
/// of ints and floats; a string `"2.25"` or a missing property never matches).
pub async fn check_filter_number(s: &Subject) {
    if !requires(s, Capabilities::FILTER, "check_filter_number") {
        return;
    }
    let c = Conn::new(s);
    let rows: Vec<(&str, Option<Value>)> = vec![
        ("-1.5", Some(json!(-1.5))),
        ("0.0", Some(json!(0.0))),
        ("2.25", Some(json!(2.25))),
        ("2.25 again", Some(json!(2.25))),
        ("3e10", Some(json!(3.0e10))),
        ("int 7", Some(json!(7))),
        ("-0.001", Some(json!(-0.001))),
        ("missing", None),
        ("string \"2.25\"", Some(json!("2.25"))),
    ];
    let objects = seed_rows(&c, "City", "area", &rows).await;
    for t in [2.25, -1.5, 0.0, 1e11] {
        every_operator(
            &c,
            "City",
            &objects,
            "area",
            "valueNumber",
            json!(t),
            &OPS,
            number_order(t),
        )
        .await;
    }
    for t in [2, 7, -2] {
        every_operator(
            &c,
            "City",
            &objects,
            "area",
            "valueInt",
            json!(t),
            &OPS,
            int_order(t),
        )
        .await;
    }
}

/// `valueString` against a string property, every operator: case-sensitive, ordered by Unicode
/// code point, trailing spaces and prefixes count, a number or a missing property never matches.
pub async fn check_filter_string(s: &Subject) {
    if !requires(s, Capabilities::FILTER, "check_filter_string") {
        return;
    }
    let c = Conn::new(s);
    let rows: Vec<(&str, Option<Value>)> = vec![
        ("Amsterdam", Some(json!("Amsterdam"))),
        ("Berlin", Some(json!("Berlin"))),
        ("Berlin again", Some(json!("Berlin"))),
        ("berlin", Some(json!("berlin"))),
        ("Ber", Some(json!("Ber"))),
        ("Berlinx", Some(json!("Berlinx"))),
        ("Berlin+space", Some(json!("Berlin "))),
        ("Zürich", Some(json!("Zürich"))),
        ("Äpfel", Some(json!("Äpfel"))),
        ("empty", Some(json!(""))),
        ("missing", None),
        ("number 5", Some(json!(5))),
    ];
    let objects = seed_rows(&c, "City", "name", &rows).await;
    for t in ["Berlin", "", "Zürich", "a"] {
        every_operator(
            &c,
            "City",
            &objects,
            "name",
            "valueString",
            json!(t),
            &OPS,
            string_order(t),
        )
        .await;
    }
}

/// `valueText` against a text property, every operator (compared like strings); `valueText`
/// and `valueString` are interchangeable.
pub async fn check_filter_text(s: &Subject) {
    if !requires(s, Capabilities::FILTER, "check_filter_text") {
        return;
    }
    let c = Conn::new(s);
    let rows: Vec<(&str, Option<Value>)> = vec![
        (
            "fox",
            Some(json!("The quick brown fox jumps over the lazy dog.")),
        ),
        (
            "fox again",
            Some(json!("The quick brown fox jumps over the lazy dog.")),
        ),
        (
            "fox, no dot",
            Some(json!("The quick brown fox jumps over the lazy dog")),
        ),
        (
            "lorem",
            Some(json!(
                "Lorem ipsum dolor sit amet,\nconsectetur adipiscing elit."
            )),
        ),
        ("tabs", Some(json!("\tindented text"))),
        ("quotes", Some(json!("She said \"hi\" \\ left"))),
        ("missing", None),
        ("bool", Some(json!(true))),
    ];
    let objects = seed_rows(&c, "Article", "summary", &rows).await;
    let fox = "The quick brown fox jumps over the lazy dog.";
    for t in [fox, "Lorem", "She said \"hi\" \\ left"] {
        every_operator(
            &c,
            "Article",
            &objects,
            "summary",
            "valueText",
            json!(t),
            &OPS,
            string_order(t),
        )
        .await;
    }
    every_operator(
        &c,
        "Article",
        &objects,
        "summary",
        "valueString",
        json!(fox),
        &["Equal", "LessThan"],
        string_order(fox),
    )
    .await;
}

/// `valueBoolean` with `Equal` and `NotEqual`: only real booleans match (not `"true"`, `1` or
/// null), a missing property never matches.
pub async fn check_filter_boolean(s: &Subject) {
    if !requires(s, Capabilities::FILTER, "check_filter_boolean") {
        return;
    }
    let c = Conn::new(s);
    let rows: Vec<(&str, Option<Value>)> = vec![
        ("true", Some(json!(true))),
        ("false", Some(json!(false))),
        ("true again", Some(json!(true))),
        ("missing", None),
        ("string \"true\"", Some(json!("true"))),
        ("number 1", Some(json!(1))),
        ("null", Some(Value::Null)),
    ];
    let objects = seed_rows(&c, "City", "isCapital", &rows).await;
    for t in [true, false] {
        every_operator(
            &c,
            "City",
            &objects,
            "isCapital",
            "valueBoolean",
            json!(t),
            &["Equal", "NotEqual"],
            move |v| v.as_bool().map(|b| b.cmp(&t)),
        )
        .await;
    }
}

/// `valueDate` against RFC 3339 date strings, every operator, compared as **instants**: the same
/// instant written with different offsets is equal (`12:00+02:00` = `10:00Z` = `04:00-06:00`),
/// fractions of seconds count, text order does not; unparsable dates, numbers and missing
/// properties never match.
pub async fn check_filter_date(s: &Subject) {
    if !requires(s, Capabilities::FILTER, "check_filter_date") {
        return;
    }
    let c = Conn::new(s);
    // Milliseconds relative to 2018-11-21T10:00:00Z, worked out by hand.
    let instants: HashMap<&str, i64> = HashMap::from([
        ("2018-11-21T10:00:00Z", 0),
        ("2018-11-21T11:30:00+01:00", 1_800_000),
        ("2018-11-21T09:00:00-02:00", 3_600_000),
        ("2018-11-21T10:00:00+00:00", 0),
        ("2018-11-20T23:59:59Z", -36_001_000),
        ("2018-11-21T10:00:00.500Z", 500),
        ("2018-11-21T15:30:00+05:30", 0),
        ("2019-01-01T00:00:00Z", 3_506_400_000),
        ("2018-11-21T09:59:59.999Z", -1),
        ("2018-11-21T04:00:00-06:00", 0),
    ]);
    let mut rows: Vec<(&str, Option<Value>)> =
        instants.keys().map(|d| (*d, Some(json!(d)))).collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    rows.push(("not a date", Some(json!("yesterday"))));
    rows.push(("missing", None));
    rows.push(("unix ms number", Some(json!(T0))));
    let objects = seed_rows(&c, "Event", "startsAt", &rows).await;
    let targets = [
        ("2018-11-21T12:00:00+02:00", 0),
        ("2018-11-21T10:45:00+00:00", 2_700_000),
        ("2018-11-21T10:00:00Z", 0),
        ("2018-11-21T10:00:00.250+00:00", 250),
    ];
    for (text, at) in targets {
        let instants = &instants;
        every_operator(
            &c,
            "Event",
            &objects,
            "startsAt",
            "valueDate",
            json!(text),
            &OPS,
            move |v| {
                v.as_str()
                    .and_then(|s| instants.get(s))
                    .map(|ms| ms.cmp(&at))
            },
        )
        .await;
    }
}

/// A comparison against an object that lacks the property (or holds null) is false for every
/// operator, `NotEqual` included; `Not` of such a comparison is therefore true.
pub async fn check_filter_missing_property_never_matches(s: &Subject) {
    if !requires(
        s,
        Capabilities::FILTER,
        "check_filter_missing_property_never_matches",
    ) {
        return;
    }
    let c = Conn::new(s);
    let objects = vec![
        labelled(
            ObjectKind::Thing,
            "City",
            "pop 5",
            T0,
            json!({"population": 5, "name": "x"}),
        ),
        labelled(
            ObjectKind::Thing,
            "City",
            "pop 6",
            T0 + 1000,
            json!({"population": 6}),
        ),
        labelled(
            ObjectKind::Thing,
            "City",
            "no population",
            T0 + 2000,
            json!({"name": "y"}),
        ),
        labelled(
            ObjectKind::Thing,
            "City",
            "null population",
            T0 + 3000,
            json!({"population": null}),
        ),
        labelled(
            ObjectKind::Thing,
            "City",
            "no properties",
            T0 + 4000,
            json!({}),
        ),
    ];
    c.create_all(&objects).await;
    let has = |o: &StoredObject, l: &[&str]| l.contains(&label(o).as_str());
    let rule = "a missing property never matches, not even NotEqual";
    for op in OPS {
        let want: &[&str] = match op {
            "Equal" | "LessThanEqual" => &["pop 5"],
            "NotEqual" | "GreaterThan" => &["pop 6"],
            "GreaterThanEqual" => &["pop 5", "pop 6"],
            _ => &[],
        };
        let f = cmp(op, &["population"], "valueInt", json!(5));
        expect_filter(&c, "City", &f, &objects, |o| has(o, want), rule).await;
    }
    let f = cmp("NotEqual", &["name"], "valueString", json!("x"));
    expect_filter(
        &c,
        "City",
        &f,
        &objects,
        |o| has(o, &["no population"]),
        rule,
    )
    .await;
    for op in OPS {
        let f = cmp(op, &["nonexistent"], "valueInt", json!(0));
        expect_filter(
            &c,
            "City",
            &f,
            &objects,
            |_| false,
            "no object has the property",
        )
        .await;
    }
    let f = logic(
        "Not",
        vec![cmp("Equal", &["population"], "valueInt", json!(5))],
    );
    expect_filter(
        &c,
        "City",
        &f,
        &objects,
        |o| !has(o, &["pop 5"]),
        "Not inverts the comparison, which is false for objects lacking the property",
    )
    .await;
    let f = logic(
        "Not",
        vec![cmp("NotEqual", &["nonexistent"], "valueString", json!("a"))],
    );
    expect_filter(
        &c,
        "City",
        &f,
        &objects,
        |_| true,
        "Not of a comparison that never holds",
    )
    .await;
}

/// A value of another type than the stored one never matches (a string `"10"` is not
/// `valueInt 10`, an int is not `valueString "10"`, a boolean is not a date), while ints and
/// floats compare numerically (`10.0` equals `valueInt 10`).
pub async fn check_filter_type_mismatch_never_matches(s: &Subject) {
    if !requires(
        s,
        Capabilities::FILTER,
        "check_filter_type_mismatch_never_matches",
    ) {
        return;
    }
    let c = Conn::new(s);
    let rows: Vec<(&str, Option<Value>)> = vec![
        ("int 10", Some(json!(10))),
        ("float 10.0", Some(json!(10.0))),
        ("string 10", Some(json!("10"))),
        ("bool true", Some(json!(true))),
        ("string true", Some(json!("true"))),
        ("object", Some(json!({"value": 10}))),
        ("date string", Some(json!("2018-11-21T10:00:00Z"))),
    ];
    let objects = seed_rows(&c, "Thing", "value", &rows).await;
    let cases: [(&str, Value, &[&str]); 7] = [
        ("valueInt", json!(10), &["int 10", "float 10.0"]),
        ("valueNumber", json!(10.0), &["int 10", "float 10.0"]),
        ("valueString", json!("10"), &["string 10"]),
        ("valueText", json!("10"), &["string 10"]),
        ("valueBoolean", json!(true), &["bool true"]),
        ("valueString", json!("true"), &["string true"]),
        ("valueDate", json!("2018-11-21T10:00:00Z"), &["date string"]),
    ];
    for (key, value, want) in cases {
        let f = cmp("Equal", &["value"], key, value);
        expect_filter(
            &c,
            "Thing",
            &f,
            &objects,
            |o| want.contains(&label(o).as_str()),
            "a value of another type never matches; ints and numbers compare numerically",
        )
        .await;
    }
    let f = cmp("GreaterThan", &["value"], "valueInt", json!(5));
    expect_filter(
        &c,
        "Thing",
        &f,
        &objects,
        |o| ["int 10", "float 10.0"].contains(&label(o).as_str()),
        "only numbers compare with valueInt",
    )
    .await;
}

struct Row {
    label: &'static str,
    pop: Option<i64>,
    name: Option<&'static str>,
    country: Option<&'static str>,
}

/// `And`, `Or` and `Not`, nested up to three levels, with one or more operands, over int and
/// string comparisons.
pub async fn check_filter_and_or_not(s: &Subject) {
    if !requires(s, Capabilities::FILTER, "check_filter_and_or_not") {
        return;
    }
    let c = Conn::new(s);
    let rows = [
        Row {
            label: "Amsterdam",
            pop: Some(100),
            name: Some("Amsterdam"),
            country: Some("NL"),
        },
        Row {
            label: "Berlin",
            pop: Some(3_600_000),
            name: Some("Berlin"),
            country: Some("DE"),
        },
        Row {
            label: "Munich",
            pop: Some(1_500_000),
            name: Some("Munich"),
            country: Some("DE"),
        },
        Row {
            label: "Zwolle",
            pop: Some(50),
            name: Some("Zwolle"),
            country: Some("NL"),
        },
        Row {
            label: "Paris",
            pop: Some(2_100_000),
            name: Some("Paris"),
            country: Some("FR"),
        },
        Row {
            label: "Atlantis",
            pop: None,
            name: Some("Atlantis"),
            country: None,
        },
        Row {
            label: "Unnamed",
            pop: Some(800),
            name: None,
            country: Some("DE"),
        },
        Row {
            label: "Lyon",
            pop: Some(1_000),
            name: Some("Lyon"),
            country: Some("FR"),
        },
    ];
    let objects: Vec<StoredObject> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut p = Map::new();
            if let Some(v) = r.pop {
                p.insert("population".into(), json!(v));
            }
            if let Some(v) = r.name {
                p.insert("name".into(), json!(v));
            }
            if let Some(v) = r.country {
                p.insert("country".into(), json!(v));
            }
            labelled(
                ObjectKind::Thing,
                "City",
                r.label,
                T0 + i as i64 * 1000,
                Value::Object(p),
            )
        })
        .collect();
    c.create_all(&objects).await;
    let row = |o: &StoredObject| -> &Row {
        let l = label(o);
        rows.iter()
            .find(|r| r.label == l)
            .expect("kit bug: unknown row")
    };
    let pop = |op: &str, v: i64| cmp(op, &["population"], "valueInt", json!(v));
    let name = |op: &str, v: &str| cmp(op, &["name"], "valueString", json!(v));
    let country = |op: &str, v: &str| cmp(op, &["country"], "valueString", json!(v));

    type Pred<'a> = Box<dyn Fn(&Row) -> bool + Send + Sync + 'a>;
    let cases: Vec<(Value, Pred)> = vec![
        (
            logic("And", vec![pop("GreaterThan", 100), name("LessThan", "M")]),
            Box::new(|r| r.pop.is_some_and(|p| p > 100) && r.name.is_some_and(|n| n < "M")),
        ),
        (
            logic(
                "Or",
                vec![country("Equal", "NL"), pop("GreaterThanEqual", 1_000_000)],
            ),
            Box::new(|r| r.country == Some("NL") || r.pop.is_some_and(|p| p >= 1_000_000)),
        ),
        (
            logic("Not", vec![country("Equal", "DE")]),
            Box::new(|r| r.country != Some("DE")),
        ),
        (
            logic(
                "And",
                vec![
                    logic("Or", vec![country("Equal", "DE"), country("Equal", "FR")]),
                    logic("Not", vec![pop("LessThan", 1000)]),
                ],
            ),
            Box::new(|r| {
                matches!(r.country, Some("DE") | Some("FR")) && r.pop.is_none_or(|p| p >= 1000)
            }),
        ),
        (
            logic(
                "Not",
                vec![logic(
                    "And",
                    vec![
                        logic("Or", vec![name("Equal", "Berlin"), name("Equal", "Paris")]),
                        pop("GreaterThan", 3_000_000),
                    ],
                )],
            ),
            Box::new(|r| {
                !(matches!(r.name, Some("Berlin") | Some("Paris"))
                    && r.pop.is_some_and(|p| p > 3_000_000))
            }),
        ),
        (
            logic("And", vec![pop("LessThanEqual", 1000)]),
            Box::new(|r| r.pop.is_some_and(|p| p <= 1000)),
        ),
        (
            logic("Or", vec![name("NotEqual", "Lyon")]),
            Box::new(|r| r.name.is_some_and(|n| n != "Lyon")),
        ),
        (
            logic("Not", vec![logic("Not", vec![country("Equal", "FR")])]),
            Box::new(|r| r.country == Some("FR")),
        ),
        (
            logic(
                "Or",
                vec![
                    logic("And", vec![country("Equal", "NL"), pop("LessThan", 100)]),
                    logic(
                        "And",
                        vec![country("Equal", "FR"), name("GreaterThan", "M")],
                    ),
                ],
            ),
            Box::new(|r| {
                (r.country == Some("NL") && r.pop.is_some_and(|p| p < 100))
                    || (r.country == Some("FR") && r.name.is_some_and(|n| n > "M"))
            }),
        ),
        (
            logic(
                "And",
                vec![
                    pop("GreaterThan", 10),
                    pop("LessThan", 2_000_000),
                    logic("Not", vec![name("Equal", "Amsterdam")]),
                ],
            ),
            Box::new(|r| {
                r.pop.is_some_and(|p| p > 10 && p < 2_000_000) && r.name != Some("Amsterdam")
            }),
        ),
    ];
    for (f, pred) in &cases {
        expect_filter(&c, "City", f, &objects, |o| pred(row(o)), "").await;
    }
}

/// The countries, regions and continents reference paths point to.
struct Geo {
    de: StoredObject,
    fr: StoredObject,
    jp: StoredObject,
    region: StoredObject,
    action_de: StoredObject,
}

async fn seed_geo(c: &Conn<'_>) -> Geo {
    let eu = object(
        ObjectKind::Thing,
        "Continent",
        OWNER_A,
        T0 - 10_000,
        json!({"name": "Europe"}),
    );
    let asia = object(
        ObjectKind::Thing,
        "Continent",
        OWNER_A,
        T0 - 10_000,
        json!({"name": "Asia"}),
    );
    let de = object(
        ObjectKind::Thing,
        "Country",
        OWNER_A,
        T0 - 9000,
        json!({"name": "Germany", "inContinent": cref(&eu)}),
    );
    let fr = object(
        ObjectKind::Thing,
        "Country",
        OWNER_A,
        T0 - 9000,
        json!({"name": "France", "inContinent": [cref(&eu)]}),
    );
    let jp = object(
        ObjectKind::Thing,
        "Country",
        OWNER_A,
        T0 - 9000,
        json!({"name": "Japan", "inContinent": cref(&asia)}),
    );
    let region = object(
        ObjectKind::Thing,
        "Region",
        OWNER_A,
        T0 - 9000,
        json!({"name": "Germany"}),
    );
    let action_de = object(
        ObjectKind::Action,
        "Country",
        OWNER_A,
        T0 - 9000,
        json!({"name": "Germany"}),
    );
    c.create_all(&[
        eu,
        asia,
        de.clone(),
        fr.clone(),
        jp.clone(),
        region.clone(),
        action_de.clone(),
    ])
    .await;
    Geo {
        de,
        fr,
        jp,
        region,
        action_de,
    }
}

fn dangling() -> Value {
    json!({"$cref": Id::random().to_string(), "locationUrl": "http://localhost/", "type": "thing"})
}

async fn expect_labels(
    c: &Conn<'_>,
    class: &str,
    f: &Value,
    objects: &[StoredObject],
    want: &[&str],
    rule: &str,
) {
    expect_filter(
        c,
        class,
        f,
        objects,
        |o| want.contains(&label(o).as_str()),
        rule,
    )
    .await;
}

/// A path through a single reference, `["inCountry","Country","name"]`: holds when the
/// referenced object has the named class and its property compares; another class, a dangling
/// reference or no reference never matches; the reference's `type` says whether it points to a
/// Thing or an Action; combines with local comparisons and `Not`.
pub async fn check_filter_reference_path(s: &Subject) {
    if !requires(
        s,
        Capabilities::FILTER_REFERENCE_PATHS,
        "check_filter_reference_path",
    ) {
        return;
    }
    let c = Conn::new(s);
    let g = seed_geo(&c).await;
    let cities = [
        (
            "Berlin",
            json!({"population": 3_600_000, "inCountry": cref(&g.de)}),
        ),
        (
            "Bonn",
            json!({"population": 300_000, "inCountry": cref(&g.de)}),
        ),
        (
            "Paris",
            json!({"population": 2_100_000, "inCountry": cref(&g.fr)}),
        ),
        (
            "Munich (Region)",
            json!({"population": 1_500_000, "inCountry": cref(&g.region)}),
        ),
        (
            "Atlantis (dangling)",
            json!({"population": 1, "inCountry": dangling()}),
        ),
        ("Nowhere (no ref)", json!({"population": 2})),
        (
            "Tokyo",
            json!({"population": 9_000_000, "inCountry": cref(&g.jp)}),
        ),
        (
            "To an Action",
            json!({"population": 5, "inCountry": cref(&g.action_de)}),
        ),
    ];
    let objects: Vec<StoredObject> = cities
        .iter()
        .enumerate()
        .map(|(i, (l, p))| {
            labelled(
                ObjectKind::Thing,
                "City",
                l,
                T0 + i as i64 * 1000,
                p.clone(),
            )
        })
        .collect();
    c.create_all(&objects).await;
    let path = ["inCountry", "Country", "name"];
    let germany = cmp("Equal", &path, "valueString", json!("Germany"));
    expect_labels(&c, "City", &germany, &objects, &["Berlin", "Bonn", "To an Action"],
        "the referenced object must have class Country; a reference of type \"action\" points to an Action").await;
    let f = cmp("NotEqual", &path, "valueString", json!("Germany"));
    expect_labels(
        &c,
        "City",
        &f,
        &objects,
        &["Paris", "Tokyo"],
        "objects without a matching reference never match, not even NotEqual",
    )
    .await;
    let f = logic(
        "And",
        vec![
            germany.clone(),
            cmp("GreaterThan", &["population"], "valueInt", json!(1_000_000)),
        ],
    );
    expect_labels(&c, "City", &f, &objects, &["Berlin"], "").await;
    let f = cmp(
        "Equal",
        &["inCountry", "Region", "name"],
        "valueString",
        json!("Germany"),
    );
    expect_labels(
        &c,
        "City",
        &f,
        &objects,
        &["Munich (Region)"],
        "the class in the path selects the referenced objects",
    )
    .await;
    let f = cmp("GreaterThan", &path, "valueString", json!("G"));
    expect_labels(
        &c,
        "City",
        &f,
        &objects,
        &["Berlin", "Bonn", "Tokyo", "To an Action"],
        "",
    )
    .await;
    let f = logic("Not", vec![germany.clone()]);
    expect_labels(
        &c,
        "City",
        &f,
        &objects,
        &[
            "Paris",
            "Munich (Region)",
            "Atlantis (dangling)",
            "Nowhere (no ref)",
            "Tokyo",
        ],
        "",
    )
    .await;
    let f = cmp(
        "Equal",
        &["inCountry", "Country", "population"],
        "valueInt",
        json!(1),
    );
    expect_labels(
        &c,
        "City",
        &f,
        &objects,
        &[],
        "the referenced countries have no population",
    )
    .await;
}

/// A path through an array of references holds when it holds for **any** referenced object of
/// the named class (so one object can match both `Equal` and `NotEqual`); an empty array never
/// matches; paths continue through several references
/// (`["inCountry","Country","inContinent","Continent","name"]`).
pub async fn check_filter_reference_array_and_hops(s: &Subject) {
    if !requires(
        s,
        Capabilities::FILTER_REFERENCE_PATHS,
        "check_filter_reference_array_and_hops",
    ) {
        return;
    }
    let c = Conn::new(s);
    let g = seed_geo(&c).await;
    let cities = [
        ("Basel", json!({"inCountry": [cref(&g.fr), cref(&g.de)]})),
        ("Lyon", json!({"inCountry": [cref(&g.fr)]})),
        ("Empty array", json!({"inCountry": []})),
        (
            "Region and Japan",
            json!({"inCountry": [cref(&g.region), cref(&g.jp)]}),
        ),
        (
            "Dangling and France",
            json!({"inCountry": [dangling(), cref(&g.fr)]}),
        ),
        ("Berlin", json!({"inCountry": cref(&g.de)})),
    ];
    let objects: Vec<StoredObject> = cities
        .iter()
        .enumerate()
        .map(|(i, (l, p))| {
            labelled(
                ObjectKind::Thing,
                "City",
                l,
                T0 + i as i64 * 1000,
                p.clone(),
            )
        })
        .collect();
    c.create_all(&objects).await;
    let path = ["inCountry", "Country", "name"];
    let any = "through an array of references the comparison holds when it holds for any referenced object of the class";
    let f = cmp("Equal", &path, "valueString", json!("Germany"));
    expect_labels(&c, "City", &f, &objects, &["Basel", "Berlin"], any).await;
    let f = cmp("NotEqual", &path, "valueString", json!("Germany"));
    expect_labels(
        &c,
        "City",
        &f,
        &objects,
        &["Basel", "Lyon", "Region and Japan", "Dangling and France"],
        any,
    )
    .await;
    let f = cmp("Equal", &path, "valueString", json!("France"));
    expect_labels(
        &c,
        "City",
        &f,
        &objects,
        &["Basel", "Lyon", "Dangling and France"],
        any,
    )
    .await;
    let f = cmp("LessThan", &path, "valueString", json!("Germany"));
    expect_labels(
        &c,
        "City",
        &f,
        &objects,
        &["Basel", "Lyon", "Dangling and France"],
        any,
    )
    .await;
    let hops = ["inCountry", "Country", "inContinent", "Continent", "name"];
    let f = cmp("Equal", &hops, "valueString", json!("Europe"));
    expect_labels(
        &c,
        "City",
        &f,
        &objects,
        &["Basel", "Lyon", "Dangling and France", "Berlin"],
        "a path continues through a second reference (single or array)",
    )
    .await;
    let f = cmp("Equal", &hops, "valueString", json!("Asia"));
    expect_labels(&c, "City", &f, &objects, &["Region and Japan"], "").await;
    let f = logic(
        "And",
        vec![
            cmp("Equal", &path, "valueString", json!("France")),
            cmp("Equal", &path, "valueString", json!("Germany")),
        ],
    );
    expect_labels(
        &c,
        "City",
        &f,
        &objects,
        &["Basel"],
        "each comparison is evaluated on its own",
    )
    .await;
}

/// A `filter_json` that does not parse or is not a valid tree answers `Invalid`: not JSON, not
/// an object, unknown operator or field, a comparison without path or value or with two values,
/// `Not` with two operands, `And` with none, `valueBoolean` with an ordering operator, a
/// `valueDate` that is not RFC 3339, a path of even length.
pub async fn check_filter_malformed_is_invalid(s: &Subject) {
    if !requires(s, Capabilities::FILTER, "check_filter_malformed_is_invalid") {
        return;
    }
    let c = Conn::new(s);
    c.create(&labelled(
        ObjectKind::Thing,
        "City",
        "x",
        T0,
        json!({"population": 1, "name": "x"}),
    ))
    .await;
    let mut cases: Vec<(&str, &str)> = vec![
        ("{", "not JSON"),
        ("[]", "not an object"),
        ("null", "null"),
        ("42", "a number"),
        (
            r#"{"operator":"Like","path":["name"],"valueString":"x"}"#,
            "unknown operator Like",
        ),
        (r#"{"path":["name"],"valueString":"x"}"#, "no operator"),
        (
            r#"{"operator":"Equal","valueString":"x"}"#,
            "a comparison without path",
        ),
        (
            r#"{"operator":"Equal","path":["name"]}"#,
            "a comparison without value",
        ),
        (
            r#"{"operator":"Equal","path":["population"],"valueInt":1,"valueString":"1"}"#,
            "two values",
        ),
        (
            r#"{"operator":"Equal","path":["population"],"valueFloat":1.5}"#,
            "unknown field valueFloat",
        ),
        (
            r#"{"operator":"Equal","path":["population"],"valueInt":"one"}"#,
            "valueInt that is a string",
        ),
        (
            r#"{"operator":"And","operands":[]}"#,
            "And without operands",
        ),
        (
            r#"{"operator":"Not","operands":[{"operator":"Equal","path":["name"],"valueString":"x"},{"operator":"Equal","path":["name"],"valueString":"y"}]}"#,
            "Not with two operands",
        ),
        (
            r#"{"operator":"And","operands":[{"operator":"Equal","path":["name"]}]}"#,
            "a nested comparison without value",
        ),
        (
            r#"{"operator":"And","path":["name"],"valueString":"x","operands":[{"operator":"Equal","path":["name"],"valueString":"x"}]}"#,
            "And with a path and value",
        ),
        (
            r#"{"operator":"GreaterThan","path":["name"],"valueBoolean":true}"#,
            "valueBoolean with GreaterThan",
        ),
        (
            r#"{"operator":"Equal","path":["when"],"valueDate":"yesterday"}"#,
            "valueDate that is not RFC 3339",
        ),
        (
            r#"{"operator":"Equal","path":[],"valueInt":1}"#,
            "an empty path",
        ),
    ];
    if s.has(Capabilities::FILTER_REFERENCE_PATHS) {
        cases.push((
            r#"{"operator":"Equal","path":["inCountry","Country"],"valueString":"x"}"#,
            "a path of even length",
        ));
    }
    for (json, what) in cases {
        let q = ObjectQuery {
            filter_json: json.into(),
            ..query(ObjectKind::Thing)
        };
        let r = c.try_query(&q).await;
        c.expect_err(
            &format!("query_objects with a malformed filter ({what}): {json}"),
            r,
            ErrorKind::Invalid,
            "a filter that does not parse answers Invalid",
        );
    }
}

/// A filter combines with class, owners and paging: `total` counts every object matching
/// filter, class and owners; the page is the newest-first slice; limit 0 still counts.
pub async fn check_filter_with_paging_owner_and_class(s: &Subject) {
    if !requires(
        s,
        Capabilities::FILTER,
        "check_filter_with_paging_owner_and_class",
    ) {
        return;
    }
    let c = Conn::new(s);
    let objects: Vec<StoredObject> = (0..12)
        .map(|i| StoredObject {
            owner: if i % 3 == 0 { OWNER_B } else { OWNER_A },
            ..labelled(
                ObjectKind::Thing,
                if i % 2 == 0 { "City" } else { "Country" },
                &format!("o{i}"),
                T0 + i * 1000,
                json!({"population": i * 10}),
            )
        })
        .collect();
    c.create_all(&objects).await;
    let f = cmp("GreaterThanEqual", &["population"], "valueInt", json!(30));
    let cases: [(&str, Vec<weft_plugin_api::Id>, u64, u64); 6] = [
        ("", vec![], 0, ALL),
        ("City", vec![], 0, ALL),
        ("City", vec![], 1, 2),
        ("", vec![OWNER_B], 0, ALL),
        ("Country", vec![OWNER_A], 1, 1),
        ("", vec![], 3, 0),
    ];
    for (class, owners, offset, limit) in cases {
        let matching: Vec<StoredObject> = objects
            .iter()
            .filter(|o| {
                o.properties()["population"].as_i64().unwrap() >= 30
                    && (class.is_empty() || o.class.as_str() == class)
                    && (owners.is_empty() || owners.contains(&o.owner))
            })
            .cloned()
            .collect();
        let all = labels(&newest_first(&matching));
        let start = (offset as usize).min(all.len());
        let end = (offset.saturating_add(limit) as usize).min(all.len());
        let q = ObjectQuery {
            class: class.into(),
            owners: RVec::from(owners.clone()),
            filter_json: f.to_string().into(),
            offset,
            limit,
            ..query(ObjectKind::Thing)
        };
        let page = c.query(&q).await;
        c.same_page(
            &format!("query_objects({})", describe_query(&q)),
            &page,
            &all[start..end],
            matching.len() as u64,
        );
    }
}
