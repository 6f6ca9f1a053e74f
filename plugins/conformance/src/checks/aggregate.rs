//! Aggregates (capability `AGGREGATE`): counts, number statistics, string occurrences, booleans,
//! groupBy — compared with values computed here from the rows written.

use std::collections::BTreeMap;

use abi_stable::std_types::RVec;
use serde_json::{json, Map, Value};
use weft_plugin_api::aggregate::{AggregateGroup, AggregateResult, PropertyAggregate};
use weft_plugin_api::{Capabilities, Id, ObjectKind, ObjectQuery, StoredObject};

use crate::support::*;
use crate::Subject;

#[derive(Clone)]
struct City {
    label: &'static str,
    pop: Option<i64>,
    area: Option<f64>,
    name: Option<&'static str>,
    capital: Option<bool>,
    country: Option<&'static str>,
    owner: Id,
}

fn cities() -> Vec<City> {
    let c = |label, pop, area, name, capital, country, owner| City {
        label,
        pop,
        area,
        name,
        capital,
        country,
        owner,
    };
    vec![
        c(
            "c0",
            Some(100),
            Some(10.5),
            Some("Amsterdam"),
            Some(false),
            Some("NL"),
            OWNER_A,
        ),
        c(
            "c1",
            Some(3_600_000),
            Some(891.7),
            Some("Berlin"),
            Some(true),
            Some("DE"),
            OWNER_B,
        ),
        c(
            "c2",
            Some(1_500_000),
            Some(310.4),
            Some("Munich"),
            Some(false),
            Some("DE"),
            OWNER_A,
        ),
        c(
            "c3",
            Some(50),
            Some(0.25),
            Some("Berlin"),
            Some(false),
            Some("NL"),
            OWNER_A,
        ),
        c(
            "c4",
            Some(2_100_000),
            Some(105.4),
            Some("Paris"),
            Some(true),
            Some("FR"),
            OWNER_B,
        ),
        c("c5", None, None, Some("Atlantis"), None, None, OWNER_A),
        c(
            "c6",
            Some(800),
            Some(47.87),
            Some("Munich"),
            Some(false),
            Some("DE"),
            OWNER_A,
        ),
        c(
            "c7",
            Some(1000),
            Some(47.87),
            Some("Berlin"),
            Some(false),
            Some("FR"),
            OWNER_A,
        ),
    ]
}

/// Writes the cities (class City), plus objects that must never be counted: a Country with a
/// population and an Action of class City.
async fn seed(c: &Conn<'_>) -> Vec<City> {
    let rows = cities();
    for (i, r) in rows.iter().enumerate() {
        let mut p = Map::new();
        if let Some(v) = r.pop {
            p.insert("population".into(), json!(v));
        }
        if let Some(v) = r.area {
            p.insert("area".into(), json!(v));
        }
        if let Some(v) = r.name {
            p.insert("name".into(), json!(v));
        }
        if let Some(v) = r.capital {
            p.insert("isCapital".into(), json!(v));
        }
        if let Some(v) = r.country {
            p.insert("country".into(), json!(v));
        }
        let o = StoredObject {
            owner: r.owner,
            ..labelled(
                ObjectKind::Thing,
                "City",
                r.label,
                T0 + i as i64 * 1000,
                Value::Object(p),
            )
        };
        c.create(&o).await;
    }
    let noise = [
        labelled(
            ObjectKind::Thing,
            "Country",
            "a country",
            T0,
            json!({"population": 80_000_000, "area": 1.0, "name": "Berlin", "isCapital": true, "country": "DE"}),
        ),
        labelled(
            ObjectKind::Action,
            "City",
            "an action",
            T0,
            json!({"population": 7, "area": 2.0, "name": "Berlin", "isCapital": true, "country": "DE"}),
        ),
    ];
    c.create_all(&noise).await;
    rows
}

fn city_query() -> ObjectQuery {
    ObjectQuery {
        class: "City".into(),
        ..query(ObjectKind::Thing)
    }
}

async fn aggregate(c: &Conn<'_>, q: &ObjectQuery, request: &Value) -> AggregateResult {
    let what = format!("aggregate({}, {request})", describe_query(q));
    let r = c.try_aggregate(q, request).await;
    let text = c.ok(&what, r);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        c.fail(format!(
            "{what} answered JSON that is not an AggregateResult ({e}): {}",
            short(&text)
        ))
    })
}

fn single_group<'a>(c: &Conn<'_>, what: &str, r: &'a AggregateResult) -> &'a AggregateGroup {
    if r.groups.len() != 1 || r.groups[0].grouped_by.is_some() {
        c.fail(format!(
            "{what}: without groupBy the answer is exactly one group with groupedBy null, got {}",
            dbg(&r.groups)
        ));
    }
    &r.groups[0]
}

fn property<'a>(c: &Conn<'_>, what: &str, g: &'a AggregateGroup, p: &str) -> &'a PropertyAggregate {
    g.properties.get(p).unwrap_or_else(|| {
        c.fail(format!(
            "{what}: the requested property {p:?} is missing from the group (it has {:?})",
            g.properties.keys().collect::<Vec<_>>()
        ))
    })
}

fn same_f64(c: &Conn<'_>, what: &str, field: &str, got: Option<f64>, want: f64) {
    match got {
        Some(g) if close(g, want) => {}
        other => c.fail(format!("{what}: {field} should be {want}, got {other:?}")),
    }
}

/// Number statistics of `values`, which must be all ints (`kind` "int") or contain floats
/// ("number").
fn expect_numbers(c: &Conn<'_>, what: &str, a: &PropertyAggregate, kind: &str, values: &[f64]) {
    c.same(&format!("{what}: type"), &a.kind.as_str(), &kind);
    c.same(
        &format!("{what}: count (objects having the property)"),
        &a.count,
        &(values.len() as u64),
    );
    let sum: f64 = values.iter().sum();
    let lowest = values.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    same_f64(c, what, "lowest", a.lowest, lowest);
    same_f64(c, what, "highest", a.highest, highest);
    same_f64(c, what, "sum", a.sum, sum);
    same_f64(c, what, "average", a.average, sum / values.len() as f64);
}

fn expect_strings(c: &Conn<'_>, what: &str, a: &PropertyAggregate, values: &[&str]) {
    c.same(&format!("{what}: type"), &a.kind.as_str(), &"string");
    c.same(
        &format!("{what}: count (objects having the property)"),
        &a.count,
        &(values.len() as u64),
    );
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut want: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(v, n)| (v.to_string(), n))
        .collect();
    want.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    let got: Vec<(String, u64)> = a
        .top_occurrences
        .iter()
        .map(|o| (o.value.clone(), o.occurs))
        .collect();
    c.same(
        &format!(
            "{what}: topOccurrences (every distinct value, most frequent first, ties by value)"
        ),
        &got,
        &want,
    );
}

fn expect_booleans(c: &Conn<'_>, what: &str, a: &PropertyAggregate, values: &[bool]) {
    let t = values.iter().filter(|b| **b).count() as u64;
    let f = values.len() as u64 - t;
    let n = values.len() as f64;
    c.same(&format!("{what}: type"), &a.kind.as_str(), &"boolean");
    c.same(&format!("{what}: count"), &a.count, &(values.len() as u64));
    c.same(&format!("{what}: totalTrue"), &a.total_true, &Some(t));
    c.same(&format!("{what}: totalFalse"), &a.total_false, &Some(f));
    same_f64(c, what, "percentageTrue", a.percentage_true, t as f64 / n);
    same_f64(c, what, "percentageFalse", a.percentage_false, f as f64 / n);
}

fn pops(rows: &[&City]) -> Vec<f64> {
    rows.iter()
        .filter_map(|r| r.pop)
        .map(|p| p as f64)
        .collect()
}
fn areas(rows: &[&City]) -> Vec<f64> {
    rows.iter().filter_map(|r| r.area).collect()
}
fn names(rows: &[&City]) -> Vec<&'static str> {
    rows.iter().filter_map(|r| r.name).collect()
}
fn capitals(rows: &[&City]) -> Vec<bool> {
    rows.iter().filter_map(|r| r.capital).collect()
}

/// Without groupBy: one group whose count is every matching object; int and number properties
/// give type, count, lowest, highest, sum and average; a property no object has counts 0; no
/// match at all still answers one group of count 0.
pub async fn check_aggregate_count_and_numbers(s: &Subject) {
    if !requires(
        s,
        Capabilities::AGGREGATE,
        "check_aggregate_count_and_numbers",
    ) {
        return;
    }
    let c = Conn::new(s);
    let rows = seed(&c).await;
    let all: Vec<&City> = rows.iter().collect();
    let req = json!({"properties": ["population", "area", "nonexistent"]});
    let what = format!("aggregate(Things of class City, {req})");
    let r = aggregate(&c, &city_query(), &req).await;
    let g = single_group(&c, &what, &r);
    c.same(
        &format!("{what}: group count"),
        &g.count,
        &(rows.len() as u64),
    );
    expect_numbers(
        &c,
        &format!("{what}, population"),
        property(&c, &what, g, "population"),
        "int",
        &pops(&all),
    );
    expect_numbers(
        &c,
        &format!("{what}, area"),
        property(&c, &what, g, "area"),
        "number",
        &areas(&all),
    );
    let none = property(&c, &what, g, "nonexistent");
    c.same(&format!("{what}, nonexistent: count"), &none.count, &0);

    let q = ObjectQuery {
        class: "Nowhere".into(),
        ..query(ObjectKind::Thing)
    };
    let req = json!({"properties": ["population"]});
    let what = format!("aggregate(Things of class Nowhere, {req}) matching nothing");
    let r = aggregate(&c, &q, &req).await;
    let g = single_group(&c, &what, &r);
    c.same(&format!("{what}: group count"), &g.count, &0);
    c.same(
        &format!("{what}: population count"),
        &property(&c, &what, g, "population").count,
        &0,
    );
}

/// String properties: `topOccurrences` lists every distinct value with its count, most frequent
/// first, ties by value; objects lacking the property are not counted.
pub async fn check_aggregate_strings(s: &Subject) {
    if !requires(s, Capabilities::AGGREGATE, "check_aggregate_strings") {
        return;
    }
    let c = Conn::new(s);
    let rows = seed(&c).await;
    let all: Vec<&City> = rows.iter().collect();
    let req = json!({"properties": ["name", "country"]});
    let what = format!("aggregate(Things of class City, {req})");
    let r = aggregate(&c, &city_query(), &req).await;
    let g = single_group(&c, &what, &r);
    expect_strings(
        &c,
        &format!("{what}, name"),
        property(&c, &what, g, "name"),
        &names(&all),
    );
    let countries: Vec<&str> = rows.iter().filter_map(|r| r.country).collect();
    expect_strings(
        &c,
        &format!("{what}, country"),
        property(&c, &what, g, "country"),
        &countries,
    );
}

/// Boolean properties: totalTrue, totalFalse and their shares of the objects having the
/// property.
pub async fn check_aggregate_booleans(s: &Subject) {
    if !requires(s, Capabilities::AGGREGATE, "check_aggregate_booleans") {
        return;
    }
    let c = Conn::new(s);
    let rows = seed(&c).await;
    let all: Vec<&City> = rows.iter().collect();
    let req = json!({"properties": ["isCapital"]});
    let what = format!("aggregate(Things of class City, {req})");
    let r = aggregate(&c, &city_query(), &req).await;
    let g = single_group(&c, &what, &r);
    expect_booleans(
        &c,
        &format!("{what}, isCapital"),
        property(&c, &what, g, "isCapital"),
        &capitals(&all),
    );
}

/// groupBy: one group per distinct value at the path (objects lacking it belong to none), ordered
/// by count descending then value, each with `groupedBy {path, value}`, its count and the
/// requested aggregates over its members only.
pub async fn check_aggregate_group_by(s: &Subject) {
    if !requires(s, Capabilities::AGGREGATE, "check_aggregate_group_by") {
        return;
    }
    let c = Conn::new(s);
    let rows = seed(&c).await;
    let req = json!({"groupBy": ["country"], "properties": ["population", "name", "isCapital"]});
    let what = format!("aggregate(Things of class City, {req})");
    let r = aggregate(&c, &city_query(), &req).await;

    let mut groups: BTreeMap<&str, Vec<&City>> = BTreeMap::new();
    for row in &rows {
        if let Some(k) = row.country {
            groups.entry(k).or_default().push(row);
        }
    }
    let mut want: Vec<(&str, Vec<&City>)> = groups.into_iter().collect();
    want.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(b.0)));
    let want_keys: Vec<(Value, u64)> = want
        .iter()
        .map(|(k, m)| (json!(k), m.len() as u64))
        .collect();
    let got_keys: Vec<(Value, u64)> = r
        .groups
        .iter()
        .map(|g| {
            (
                g.grouped_by
                    .as_ref()
                    .map(|b| b.value.clone())
                    .unwrap_or(Value::Null),
                g.count,
            )
        })
        .collect();
    c.same(
        &format!("{what}: groups as (value, count), by count descending then value"),
        &got_keys,
        &want_keys,
    );
    for ((key, members), g) in want.iter().zip(&r.groups) {
        let gw = format!("{what}, group {key:?}");
        let path = g
            .grouped_by
            .as_ref()
            .map(|b| b.path.clone())
            .unwrap_or_default();
        c.same(
            &format!("{gw}: groupedBy.path"),
            &path,
            &vec!["country".to_string()],
        );
        let kind = "int";
        expect_numbers(
            &c,
            &format!("{gw}, population"),
            property(&c, &gw, g, "population"),
            kind,
            &pops(members),
        );
        expect_strings(
            &c,
            &format!("{gw}, name"),
            property(&c, &gw, g, "name"),
            &names(members),
        );
        expect_booleans(
            &c,
            &format!("{gw}, isCapital"),
            property(&c, &gw, g, "isCapital"),
            &capitals(members),
        );
    }
}

/// Aggregates cover exactly the objects the query selects: its kind, class, owners and (with
/// `FILTER`) filter; offset and limit are ignored.
pub async fn check_aggregate_respects_query(s: &Subject) {
    if !requires(s, Capabilities::AGGREGATE, "check_aggregate_respects_query") {
        return;
    }
    let c = Conn::new(s);
    let rows = seed(&c).await;
    let req = json!({"properties": ["population"]});

    let q = ObjectQuery {
        offset: 3,
        limit: 1,
        ..city_query()
    };
    let what = format!(
        "aggregate({}, {req}) (offset and limit are ignored)",
        describe_query(&q)
    );
    let r = aggregate(&c, &q, &req).await;
    let g = single_group(&c, &what, &r);
    c.same(
        &format!("{what}: group count"),
        &g.count,
        &(rows.len() as u64),
    );

    let q = ObjectQuery {
        owners: RVec::from(vec![OWNER_B]),
        ..city_query()
    };
    let members: Vec<&City> = rows.iter().filter(|r| r.owner == OWNER_B).collect();
    let what = format!("aggregate({}, {req})", describe_query(&q));
    let r = aggregate(&c, &q, &req).await;
    let g = single_group(&c, &what, &r);
    c.same(
        &format!("{what}: group count"),
        &g.count,
        &(members.len() as u64),
    );
    expect_numbers(
        &c,
        &format!("{what}, population"),
        property(&c, &what, g, "population"),
        "int",
        &pops(&members),
    );

    let q = ObjectQuery {
        kind: ObjectKind::Action,
        ..city_query()
    };
    let what = format!("aggregate({}, {req})", describe_query(&q));
    let r = aggregate(&c, &q, &req).await;
    let g = single_group(&c, &what, &r);
    c.same(&format!("{what}: group count"), &g.count, &1);
    expect_numbers(
        &c,
        &format!("{what}, population"),
        property(&c, &what, g, "population"),
        "int",
        &[7.0],
    );

    if s.has(Capabilities::FILTER) {
        let f = json!({"operator": "GreaterThanEqual", "path": ["population"], "valueInt": 1000});
        let q = ObjectQuery {
            filter_json: f.to_string().into(),
            ..city_query()
        };
        let members: Vec<&City> = rows
            .iter()
            .filter(|r| r.pop.is_some_and(|p| p >= 1000))
            .collect();
        let what = format!("aggregate({}, {req})", describe_query(&q));
        let r = aggregate(&c, &q, &req).await;
        let g = single_group(&c, &what, &r);
        c.same(
            &format!("{what}: group count"),
            &g.count,
            &(members.len() as u64),
        );
        expect_numbers(
            &c,
            &format!("{what}, population"),
            property(&c, &what, g, "population"),
            "int",
            &pops(&members),
        );
    }
}
