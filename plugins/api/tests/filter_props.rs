//! Property tests of the filter tree (`weft_plugin_api::filter`): parsing never panics on any
//! text or JSON, evaluation of any tree against any object never panics, and the reference
//! semantics obey the algebra and the comparison rules the module documents.
//!
//! Bounded and reproducible: each property runs `PROPTEST_CASES` cases (default below) from the
//! fixed seed `PROPTEST_RNG_SEED` (default below); set `PROPTEST_RNG_SEED` to explore others.
//! A failure is shrunk and its seed saved in `tests/proptest-regressions/filter_props.txt`.

use std::cmp::Ordering;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
use serde_json::{json, Map, Value};

use weft_plugin_api::filter::{path_values, references, FilterValue, Operator, WhereFilter};
use weft_plugin_api::{Id, ObjectKind, StoredObject};

/// The cases per property when `PROPTEST_CASES` is not set.
const CASES: u32 = 256;
/// The seed when `PROPTEST_RNG_SEED` is not set.
const SEED: u64 = 0x5eed_f117;

fn config(cases: u32) -> Config {
    let mut c = Config {
        // Relative to the package (cargo runs tests there): `SourceParallel` cannot find the
        // source of an integration test of a workspace member.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/filter_props.txt",
        ))),
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(SEED);
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// Property and class names: a small vocabulary so that generated paths hit generated
/// properties, plus a few awkward spellings.
const NAMES: &[&str] = &[
    "name",
    "population",
    "area",
    "founded",
    "isCapital",
    "inCountry",
    "Country",
    "City",
    "A",
    "B",
    "",
    " ",
    "$cref",
    "é",
    "operator",
];
/// The keys of the filter JSON, and a few that are not.
const FILTER_KEYS: &[&str] = &[
    "operator",
    "operands",
    "path",
    "valueInt",
    "valueNumber",
    "valueBoolean",
    "valueString",
    "valueText",
    "valueDate",
    "value",
    "Operator",
];
const OPERATORS: &[Operator] = &[
    Operator::And,
    Operator::Or,
    Operator::Not,
    Operator::Equal,
    Operator::NotEqual,
    Operator::GreaterThan,
    Operator::GreaterThanEqual,
    Operator::LessThan,
    Operator::LessThanEqual,
];
const COMPARISONS: &[Operator] = &[
    Operator::Equal,
    Operator::NotEqual,
    Operator::GreaterThan,
    Operator::GreaterThanEqual,
    Operator::LessThan,
    Operator::LessThanEqual,
];
/// Dates and things that look like them (RFC 3339 with offsets, fractions, leap seconds, and
/// near misses).
const DATES: &[&str] = &[
    "2018-11-21T10:00:00Z",
    "2018-11-21T10:00:00+01:00",
    "2018-11-21T09:00:00.000000001Z",
    "1400-06-06T08:30:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59-23:59",
    "2016-12-31T23:59:60Z",
    "2018-11-21",
    "2018-13-40T25:61:61Z",
    "yesterday",
    "",
];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(NAMES).prop_map(str::to_string),
        1 => ".{0,8}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(NAMES).prop_map(str::to_string),
        2 => prop::sample::select(DATES).prop_map(str::to_string),
        2 => ".{0,12}",
        1 => "\\PC{0,4}",
    ]
}

/// Numbers that survive a JSON round trip exactly (short dyadic fractions and integers).
fn exact_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1_000_000i32..1_000_000).prop_map(|n| f64::from(n) / 64.0),
        prop::sample::select(vec![0.0, -0.0, 1.0, -1.0, 1e300, -1e300, 5e-324]),
    ]
}

/// Any finite float, including extremes.
fn any_finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        exact_f64(),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ]
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        -100i64..100,
        any::<i64>(),
        prop::sample::select(vec![i64::MIN, i64::MAX, 0, 9_007_199_254_740_993]),
    ]
}

/// Any JSON value (keys drawn mostly from the filter's own vocabulary).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        int().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        exact_f64().prop_map(Value::from),
        text().prop_map(Value::from),
        prop::sample::select(OPERATORS).prop_map(|o| json!(o)),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        let key = prop_oneof![
            3 => prop::sample::select(FILTER_KEYS).prop_map(str::to_string),
            1 => name(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// JSON shaped like a filter: any JSON, a valid filter's JSON, or a valid filter's JSON with
/// one node's field replaced by any JSON (or removed).
fn filter_json() -> impl Strategy<Value = Value> {
    let valid = valid_filter()
        .prop_map(|f| serde_json::to_value(f).unwrap())
        .boxed();
    prop_oneof![
        1 => json_value(),
        1 => valid.clone(),
        3 => (valid, any::<prop::sample::Index>(), prop::sample::select(FILTER_KEYS), prop::option::weighted(0.8, json_value()))
            .prop_map(|(mut v, at, key, new)| {
                let mut n = at.index(count_nodes(&v));
                edit_node(&mut v, &mut n, &mut |node| match &new {
                    Some(new) => {
                        node.insert(key.to_string(), new.clone());
                    }
                    None => {
                        node.remove(key);
                    }
                });
                v
            }),
    ]
}

fn count_nodes(v: &Value) -> usize {
    match v.get("operands") {
        Some(Value::Array(ops)) => 1 + ops.iter().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

/// Applies `edit` to the `n`th object node of a filter's JSON, in preorder.
fn edit_node(v: &mut Value, n: &mut usize, edit: &mut dyn FnMut(&mut Map<String, Value>)) -> bool {
    let Value::Object(m) = v else { return false };
    if *n == 0 {
        edit(m);
        return true;
    }
    *n -= 1;
    if let Some(Value::Array(ops)) = m.get_mut("operands") {
        for op in ops.iter_mut() {
            if edit_node(op, n, edit) {
                return true;
            }
        }
    }
    false
}

/// One of the six value fields (or none, or two).
#[derive(Debug, Clone)]
enum Val {
    Int(i64),
    Number(f64),
    Boolean(bool),
    String(String),
    Text(String),
    Date(String),
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        int().prop_map(Val::Int),
        any_finite().prop_map(Val::Number),
        any::<bool>().prop_map(Val::Boolean),
        text().prop_map(Val::String),
        text().prop_map(Val::Text),
        prop::sample::select(DATES).prop_map(|d| Val::Date(d.to_string())),
    ]
}

fn set_value(f: &mut WhereFilter, v: Val) {
    match v {
        Val::Int(i) => f.value_int = Some(i),
        Val::Number(n) => f.value_number = Some(n),
        Val::Boolean(b) => f.value_boolean = Some(b),
        Val::String(s) => f.value_string = Some(s),
        Val::Text(s) => f.value_text = Some(s),
        Val::Date(s) => f.value_date = Some(s),
    }
}

/// A path: mostly one property or `[ref, Class, property]`, sometimes anything.
fn path() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        4 => name().prop_map(|n| vec![n]),
        2 => (name(), name(), name()).prop_map(|(a, b, c)| vec![a, b, c]),
        1 => prop::collection::vec(name(), 0..6),
    ]
}

/// Any filter tree, valid or not: every field may be present on any node.
fn any_filter() -> impl Strategy<Value = WhereFilter> {
    let leaf = (
        prop::option::weighted(0.95, prop::sample::select(OPERATORS)),
        path(),
        prop::collection::vec(val(), 0..3),
    )
        .prop_map(|(operator, path, vals)| {
            let mut f = WhereFilter {
                operator,
                path,
                ..Default::default()
            };
            for v in vals {
                set_value(&mut f, v);
            }
            f
        });
    leaf.prop_recursive(6, 64, 4, |inner| {
        (
            prop::option::weighted(0.95, prop::sample::select(OPERATORS)),
            prop::collection::vec(inner, 0..4),
            prop::option::weighted(0.1, path()),
        )
            .prop_map(|(operator, operands, path)| WhereFilter {
                operator,
                operands,
                path: path.unwrap_or_default(),
                ..Default::default()
            })
    })
}

/// `[link, A|B, property]`.
fn reference_path() -> impl Strategy<Value = Vec<String>> {
    (
        prop::sample::select(&PROPS[..5]),
        prop::sample::select(&["A", "B"][..]),
    )
        .prop_map(|(n, c)| vec!["link".to_string(), c.to_string(), n.to_string()])
}

/// A comparison that validates: one property or a reference path, exactly one fitting value.
fn comparison() -> impl Strategy<Value = WhereFilter> {
    comparison_on(prop_oneof![
        3 => prop::sample::select(PROPS).prop_map(|n| vec![n.to_string()]),
        1 => reference_path(),
    ])
}

/// A comparison on a path from `paths`.
fn comparison_on(paths: impl Strategy<Value = Vec<String>>) -> impl Strategy<Value = WhereFilter> {
    (
        prop::sample::select(COMPARISONS),
        paths.prop_flat_map(|p| {
            let v = val_for(p.last().map(String::as_str).unwrap_or_default());
            (Just(p), v)
        }),
    )
        .prop_map(|(op, (path, v))| {
            let op = match v {
                Val::Boolean(_) if !matches!(op, Operator::Equal | Operator::NotEqual) => {
                    Operator::Equal
                }
                _ => op,
            };
            let v = match v {
                Val::Date(d) if chrono::DateTime::parse_from_rfc3339(&d).is_err() => {
                    Val::Date("2018-11-21T10:00:00Z".into())
                }
                v => v,
            };
            let mut f = WhereFilter {
                operator: Some(op),
                path,
                ..Default::default()
            };
            set_value(&mut f, v);
            f
        })
}

/// A tree that validates.
fn valid_filter() -> impl Strategy<Value = WhereFilter> {
    comparison().prop_recursive(4, 32, 3, |inner| {
        prop_oneof![
            (
                prop::sample::select(&[Operator::And, Operator::Or][..]),
                prop::collection::vec(inner.clone(), 1..4)
            )
                .prop_map(|(op, operands)| logical(op, operands)),
            inner.prop_map(not),
        ]
    })
}

fn logical(op: Operator, operands: Vec<WhereFilter>) -> WhereFilter {
    WhereFilter {
        operator: Some(op),
        operands,
        ..Default::default()
    }
}

fn not(f: WhereFilter) -> WhereFilter {
    logical(Operator::Not, vec![f])
}

/// Small domains, so that generated values and stored values are often equal.
const WORDS: &[&str] = &["Berlin", "Paris", "berlin", "", "é", "Zürich", "Berlin "];
const SMALL_NUMBERS: &[f64] = &[-1.5, -0.0, 0.0, 2.5, 3.0, 1e300];

/// A value of the type the property `key` has in the generated world (`population` int, `area`
/// number, `name` string, `founded` date, `isCapital` boolean, `inCountry`/`link` references),
/// from a small domain.
fn typed_value(key: &str, ids: Vec<Id>) -> BoxedStrategy<Value> {
    match key {
        "population" => (-5i64..5).prop_map(Value::from).boxed(),
        "area" => prop_oneof![
            prop::sample::select(SMALL_NUMBERS).prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
        ]
        .boxed(),
        "name" => prop::sample::select(WORDS).prop_map(Value::from).boxed(),
        "founded" => prop::sample::select(DATES).prop_map(Value::from).boxed(),
        "isCapital" => any::<bool>().prop_map(Value::from).boxed(),
        _ => {
            let reference = move |i: usize, action: bool| {
                // Index 5 names an object that does not exist.
                let id = ids.get(i).copied().unwrap_or(Id([0xab; 16]));
                json!({"$cref": id.to_string(), "locationUrl": "http://localhost/",
                       "type": if action { "Action" } else { "Thing" }})
            };
            let r2 = reference.clone();
            prop_oneof![
                (0usize..6, prop::bool::weighted(0.1)).prop_map(move |(i, a)| reference(i, a)),
                prop::collection::vec((0usize..6, prop::bool::weighted(0.1)), 0..5).prop_map(
                    move |rs| Value::Array(rs.into_iter().map(|(i, a)| r2(i, a)).collect())
                ),
            ]
            .boxed()
        }
    }
}

/// A property value as objects store them: mostly of the property's type, sometimes anything.
fn prop_value(key: &str, ids: Vec<Id>) -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => typed_value(key, ids.clone()),
        1 => typed_value(["population", "area", "name", "founded", "isCapital", "link"][key.len() % 6], ids),
        1 => prop_oneof![
            int().prop_map(Value::from),
            any_finite().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            text().prop_map(Value::from),
            json_value(),
        ],
    ]
}

/// A comparison value for property `key`: mostly of its type and from the small domains.
fn val_for(key: &str) -> BoxedStrategy<Val> {
    let typed = match key {
        "population" => (-5i64..5).prop_map(Val::Int).boxed(),
        "area" => prop_oneof![
            prop::sample::select(SMALL_NUMBERS).prop_map(Val::Number),
            (-5i64..5).prop_map(Val::Int),
        ]
        .boxed(),
        "name" => prop_oneof![
            prop::sample::select(WORDS).prop_map(|w| Val::String(w.into())),
            prop::sample::select(WORDS).prop_map(|w| Val::Text(w.into())),
        ]
        .boxed(),
        "founded" => prop::sample::select(DATES)
            .prop_map(|d| Val::Date(d.into()))
            .boxed(),
        "isCapital" => any::<bool>().prop_map(Val::Boolean).boxed(),
        _ => val().boxed(),
    };
    prop_oneof![3 => typed, 1 => val()].boxed()
}

/// The properties of the world's objects.
const PROPS: &[&str] = &[
    "name",
    "population",
    "area",
    "founded",
    "isCapital",
    "inCountry",
    "link",
];

fn props(ids: Vec<Id>) -> impl Strategy<Value = Map<String, Value>> {
    let typed: Vec<_> = PROPS
        .iter()
        .map(|k| prop::option::weighted(0.75, prop_value(k, ids.clone())))
        .collect();
    let extra = prop::collection::vec((name(), prop_value("", ids)), 0..2);
    (typed, extra).prop_map(|(typed, extra)| {
        let mut m: Map<String, Value> = extra.into_iter().collect();
        for (k, v) in PROPS.iter().zip(typed) {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        }
        m
    })
}

/// A small world of objects that refer to each other (cycles included), and one object of it
/// to evaluate filters against.
#[derive(Debug, Clone)]
struct World {
    objects: Vec<StoredObject>,
}

impl World {
    fn resolve(&self, kind: ObjectKind, id: Id) -> Option<StoredObject> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.id == id)
            .cloned()
    }

    fn subject(&self) -> &StoredObject {
        &self.objects[0]
    }

    fn matches(&self, f: &WhereFilter) -> bool {
        f.matches(self.subject(), &|k, id| self.resolve(k, id))
    }
}

fn stored(kind: ObjectKind, id: Id, class: &str, props: &Map<String, Value>) -> StoredObject {
    StoredObject {
        kind,
        id,
        class: class.into(),
        context: "".into(),
        owner: Id([1; 16]),
        created_ms: 0,
        updated_ms: 0,
        properties_json: Value::Object(props.clone()).to_string().into(),
    }
}

fn world() -> impl Strategy<Value = World> {
    // Five ids; a sixth index in `prop_value` refers to an object that does not exist.
    let ids: Vec<Id> = (0..5u8).map(|i| Id([i + 10; 16])).collect();
    let object = (
        prop::sample::select(&["A", "B", "A", "B", "City"][..]),
        props(ids.clone()),
        prop::bool::weighted(0.1),
    );
    prop::collection::vec(object, 5).prop_map(move |objects| World {
        objects: objects
            .into_iter()
            .zip(&ids)
            .map(|((class, props, action), id)| {
                let kind = if action {
                    ObjectKind::Action
                } else {
                    ObjectKind::Thing
                };
                stored(kind, *id, class, &props)
            })
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Parsing never panics; what parses is valid and round-trips.

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn parse_never_panics_on_any_text(text in "\\PC{0,64}|.{0,64}") {
        if let Ok(f) = WhereFilter::parse(&text) {
            prop_assert!(f.validate().is_ok());
        }
    }

    #[test]
    fn parse_never_panics_on_any_json(v in filter_json()) {
        let text = v.to_string();
        match WhereFilter::parse(&text) {
            Ok(f) => {
                prop_assert!(f.operator.is_some());
                prop_assert!(f.validate().is_ok());
                // What parses serialises back to a filter that parses to the same tree.
                let again = WhereFilter::parse(&serde_json::to_string(&f).unwrap())
                    .map_err(TestCaseError::fail)?;
                prop_assert!(same_tree(&again, &f), "{:?} came back as {:?}", f, again);
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn a_valid_tree_parses_back_from_its_json(f in valid_filter()) {
        prop_assert_eq!(f.validate(), Ok(()));
        let text = serde_json::to_string(&f).unwrap();
        let parsed = WhereFilter::parse(&text).map_err(TestCaseError::fail)?;
        prop_assert!(same_tree(&parsed, &f), "{:?} came back as {:?}", f, parsed);
    }

    #[test]
    fn validate_and_value_never_panic_on_any_tree(f in any_filter()) {
        let valid = f.validate();
        if valid.is_ok() {
            // A valid comparison has a value; a valid tree survives its JSON.
            if !matches!(f.op(), Operator::And | Operator::Or | Operator::Not) {
                prop_assert!(f.value().is_ok());
            }
            let text = serde_json::to_string(&f).unwrap();
            prop_assert!(WhereFilter::parse(&text).is_ok(), "{}", text);
        }
        let _ = f.value();
        let _ = f.uses_reference_paths();
    }

    // -----------------------------------------------------------------------------------------
    // Evaluation never panics.

    #[test]
    fn evaluation_of_any_tree_never_panics(f in any_filter(), w in world()) {
        let _ = w.matches(&f);
    }

    #[test]
    fn path_values_and_references_never_panic(w in world(), p in prop::collection::vec(name(), 0..7), v in json_value()) {
        let _ = path_values(&w.subject().properties(), &p, &|k, id| w.resolve(k, id));
        let _ = references(&v);
    }

    // -----------------------------------------------------------------------------------------
    // Algebra of the reference semantics.

    #[test]
    fn logical_identities_hold(f in valid_filter(), g in valid_filter(), w in world()) {
        let m = |x: &WhereFilter| w.matches(x);
        let (mf, mg) = (m(&f), m(&g));
        prop_assert_eq!(m(&not(not(f.clone()))), mf, "Not(Not(f)) ≡ f");
        prop_assert_eq!(m(&not(f.clone())), !mf, "Not(f) ≡ ¬f");
        prop_assert_eq!(m(&logical(Operator::And, vec![f.clone(), f.clone()])), mf, "And(f, f) ≡ f");
        prop_assert_eq!(m(&logical(Operator::Or, vec![f.clone(), f.clone()])), mf, "Or(f, f) ≡ f");
        prop_assert_eq!(m(&logical(Operator::And, vec![f.clone()])), mf, "And(f) ≡ f");
        prop_assert_eq!(m(&logical(Operator::Or, vec![f.clone()])), mf, "Or(f) ≡ f");
        prop_assert!(!m(&logical(Operator::And, vec![f.clone(), not(f.clone())])), "And(f, Not f) ≡ false");
        prop_assert!(m(&logical(Operator::Or, vec![f.clone(), not(f.clone())])), "Or(f, Not f) ≡ true");
        prop_assert_eq!(m(&logical(Operator::And, vec![f.clone(), g.clone()])), mf && mg);
        prop_assert_eq!(m(&logical(Operator::Or, vec![f.clone(), g.clone()])), mf || mg);
        prop_assert_eq!(
            m(&logical(Operator::And, vec![f.clone(), g.clone()])),
            m(&logical(Operator::And, vec![g.clone(), f.clone()])),
            "And commutes"
        );
        prop_assert_eq!(
            m(&not(logical(Operator::And, vec![f.clone(), g.clone()]))),
            m(&logical(Operator::Or, vec![not(f.clone()), not(g.clone())])),
            "De Morgan"
        );
    }

    // -----------------------------------------------------------------------------------------
    // Comparisons, against an exact oracle.

    #[test]
    fn comparisons_agree_with_the_documented_rules(
        (stored_value, v) in prop::sample::select(PROPS).prop_flat_map(|k| (prop_value(k, vec![]), val_for(k))),
        present in prop::bool::weighted(0.9),
    ) {
        let mut props = Map::new();
        if present {
            props.insert("p".into(), stored_value.clone());
        }
        let object = stored(ObjectKind::Thing, Id([7; 16]), "City", &props);
        let holds = |op: Operator| {
            let mut f = WhereFilter { operator: Some(op), path: vec!["p".into()], ..Default::default() };
            set_value(&mut f, v.clone());
            f.matches(&object, &|_, _| None)
        };
        let [eq, ne, gt, ge, lt, le] = [
            Operator::Equal,
            Operator::NotEqual,
            Operator::GreaterThan,
            Operator::GreaterThanEqual,
            Operator::LessThan,
            Operator::LessThanEqual,
        ]
        .map(holds);
        let mut probe = WhereFilter::default();
        set_value(&mut probe, v.clone());
        let expected = if present { oracle(&stored_value, &probe.value().ok()) } else { None };
        match expected {
            // Not comparable (missing, another type, an unparsable date): nothing matches, not
            // even NotEqual.
            None => prop_assert!(!(eq || ne || gt || ge || lt || le), "{:?} vs {:?}", stored_value, v),
            Some(ord) => {
                prop_assert_eq!(eq, ord == Ordering::Equal);
                prop_assert_eq!(ne, ord != Ordering::Equal);
                prop_assert_eq!(gt, ord == Ordering::Greater);
                prop_assert_eq!(ge, ord != Ordering::Less);
                prop_assert_eq!(lt, ord == Ordering::Less);
                prop_assert_eq!(le, ord != Ordering::Greater);
            }
        }
    }

    #[test]
    fn a_reference_path_matches_when_any_referenced_object_of_the_class_does(
        f in comparison_on(reference_path()),
        w in world(),
    ) {
        let direct = WhereFilter { path: vec![f.path[2].clone()], ..f.clone() };
        let subject = w.subject().properties();
        let expected = subject.get("link").map(references).unwrap_or_default().into_iter().any(|(k, id)| {
            w.resolve(k, id).is_some_and(|o| {
                o.class.as_str() == f.path[1] && direct.matches(&o, &|k, id| w.resolve(k, id))
            })
        });
        prop_assert_eq!(w.matches(&f), expected);
    }
}

/// The documented comparison: numbers numerically (int against int exactly), strings by code
/// point, dates as instants, booleans; anything else is not comparable.
fn oracle(stored: &Value, wanted: &Option<FilterValue>) -> Option<Ordering> {
    let wanted = wanted.as_ref()?;
    match (stored, wanted) {
        (Value::Number(n), FilterValue::Int(w)) => match n.as_i64() {
            Some(i) => Some(i.cmp(w)),
            None => n.as_f64()?.partial_cmp(&(*w as f64)),
        },
        (Value::Number(n), FilterValue::Number(w)) => n.as_f64()?.partial_cmp(w),
        (Value::Bool(b), FilterValue::Boolean(w)) => Some(b.cmp(w)),
        (Value::String(s), FilterValue::String(w)) => Some(s.chars().cmp(w.chars())),
        (Value::String(s), FilterValue::Date(w)) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.cmp(w)),
        _ => None,
    }
}

/// Whether two trees are equal, numbers up to a few units in the last place: serde_json without
/// its `float_roundtrip` feature may read a float's shortest text back a few ULP off (e.g.
/// `-7.2665499617346455e-28` as `-7.266549961734644e-28`). That is a known bug (see
/// `known_bug_a_number_survives_storage_and_equal_finds_it_both_ways` in
/// `host/graphql/tests/arguments_props.rs`); compare exactly once it is fixed.
fn same_tree(a: &WhereFilter, b: &WhereFilter) -> bool {
    let close = match (a.value_number, b.value_number) {
        (Some(x), Some(y)) => {
            x == y || (x - y).abs() <= 1e-14 * x.abs().max(y.abs()) + f64::MIN_POSITIVE
        }
        (x, y) => x == y,
    };
    close
        && a.operator == b.operator
        && a.path == b.path
        && a.value_int == b.value_int
        && a.value_boolean == b.value_boolean
        && a.value_string == b.value_string
        && a.value_text == b.value_text
        && a.value_date == b.value_date
        && a.operands.len() == b.operands.len()
        && a.operands
            .iter()
            .zip(&b.operands)
            .all(|(x, y)| same_tree(x, y))
}
