//! GraphQL fuzzing against the real binary: a small schema and data, the GraphQL schema read by
//! introspection, then a bounded number of random queries built from it — random selections,
//! aliases, nesting (mostly within the depth limit, sometimes past it), arguments of the right
//! and of the wrong types, inline and as variables, fragments, directives, and some syntax
//! garbage and malformed request bodies — sent to `/graphql` and `/graphql/batch`.
//!
//! Every answer must be 200 (GraphQL errors inside, each with a message) or a 4xx that the
//! served OpenAPI document lists for the operation, with the contract's error body; never a 5xx,
//! never a dropped connection; and the server still answers a normal query at the end.
//!
//! Reproducible: the seed is printed (and named in every failure); `WEFT_FUZZ_SEED=N` reruns
//! one. `WEFT_FUZZ_CASES` sets the number of requests (default below). Bounded in time too: it
//! stops sending after `TIME_BUDGET`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weft_e2e_tests::{assert_error_shape, Api, Server, ROOT_KEY, ROOT_TOKEN};

/// Requests sent when `WEFT_FUZZ_CASES` is not set.
const CASES: usize = 400;
/// No new request after this long.
const TIME_BUDGET: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// A small deterministic generator (splitmix64).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// The schema, as introspection tells it.

#[derive(Debug, Clone)]
enum Ty {
    Named(String),
    List(Box<Ty>),
    NonNull(Box<Ty>),
}

impl Ty {
    fn from_json(v: &Value) -> Ty {
        match v["kind"].as_str() {
            Some("NON_NULL") => Ty::NonNull(Box::new(Ty::from_json(&v["ofType"]))),
            Some("LIST") => Ty::List(Box::new(Ty::from_json(&v["ofType"]))),
            _ => Ty::Named(v["name"].as_str().unwrap_or_default().to_string()),
        }
    }

    fn named(&self) -> &str {
        match self {
            Ty::Named(n) => n,
            Ty::List(t) | Ty::NonNull(t) => t.named(),
        }
    }

    /// As a variable's type is written.
    fn written(&self) -> String {
        match self {
            Ty::Named(n) => n.clone(),
            Ty::List(t) => format!("[{}]", t.written()),
            Ty::NonNull(t) => format!("{}!", t.written()),
        }
    }
}

#[derive(Debug, Clone)]
struct InputValue {
    name: String,
    ty: Ty,
}

#[derive(Debug, Clone)]
struct FieldDef {
    name: String,
    args: Vec<InputValue>,
    ty: Ty,
}

#[derive(Debug, Clone, Default)]
struct TypeDef {
    kind: String,
    fields: Vec<FieldDef>,
    input_fields: Vec<InputValue>,
    enum_values: Vec<String>,
    possible_types: Vec<String>,
}

struct Schema {
    query_type: String,
    types: BTreeMap<String, TypeDef>,
    /// Names seen in the schema (fields, types, enum values): what generated strings and paths
    /// are mostly made of.
    words: Vec<String>,
}

const INTROSPECTION: &str = "query Introspection { __schema { queryType { name } types { kind name \
    fields(includeDeprecated: true) { name args { name type { ...T } } type { ...T } } \
    inputFields { name type { ...T } } enumValues(includeDeprecated: true) { name } \
    possibleTypes { name } } } } \
    fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }";

impl Schema {
    fn from_introspection(v: &Value) -> Schema {
        let s = &v["data"]["__schema"];
        let inputs = |list: &Value| -> Vec<InputValue> {
            list.as_array()
                .into_iter()
                .flatten()
                .map(|a| InputValue {
                    name: a["name"].as_str().unwrap_or_default().to_string(),
                    ty: Ty::from_json(&a["type"]),
                })
                .collect()
        };
        let mut types = BTreeMap::new();
        let mut words = BTreeSet::new();
        for t in s["types"]
            .as_array()
            .expect("introspection lists the types")
        {
            let name = t["name"].as_str().unwrap_or_default().to_string();
            let def = TypeDef {
                kind: t["kind"].as_str().unwrap_or_default().to_string(),
                fields: t["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| FieldDef {
                        name: f["name"].as_str().unwrap_or_default().to_string(),
                        args: inputs(&f["args"]),
                        ty: Ty::from_json(&f["type"]),
                    })
                    .collect(),
                input_fields: inputs(&t["inputFields"]),
                enum_values: t["enumValues"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["name"].as_str().map(str::to_string))
                    .collect(),
                possible_types: t["possibleTypes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["name"].as_str().map(str::to_string))
                    .collect(),
            };
            if !name.starts_with("__") {
                words.insert(name.clone());
                words.extend(def.fields.iter().map(|f| f.name.clone()));
                words.extend(def.enum_values.iter().cloned());
            }
            types.insert(name, def);
        }
        Schema {
            query_type: s["queryType"]["name"]
                .as_str()
                .expect("a query type")
                .to_string(),
            types,
            words: words.into_iter().collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    fn is_composite(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|t| matches!(t.kind.as_str(), "OBJECT" | "INTERFACE" | "UNION"))
    }
}

// ---------------------------------------------------------------------------------------------
// Query generation.

/// Strings that are not names: dates, numbers as text, escapes, nothing.
const ODD_STRINGS: &[&str] = &[
    "2018-11-21T10:00:00Z",
    "1400-06-06T08:30:00+02:00",
    "yesterday",
    "",
    " ",
    "12",
    "-1",
    "é\u{1F600}",
    "line\nbreak",
    "quote\"d",
    "back\\slash",
    "\u{0}",
];

struct Gen<'s> {
    rng: Rng,
    schema: &'s Schema,
    /// Variable definitions and values of the query being built.
    variables: Vec<(String, String, Value)>,
    fragments: Vec<String>,
    fragment_names: usize,
    aliases: usize,
    /// The class whose properties the arguments being generated are about, if known.
    class: Option<String>,
    /// Whether the query being built gets deliberate mistakes (wrong types, unknown names).
    dirty: bool,
}

/// A property of a class as the Get type shows it: its name (references are capitalised
/// there) and the named type of its field.
#[derive(Clone)]
struct Prop {
    name: String,
    ty: String,
}

impl<'s> Gen<'s> {
    /// Whether to put a deliberate mistake here (only in the queries chosen to have them).
    fn oops(&mut self, p: f64) -> bool {
        self.dirty && self.rng.chance(p)
    }

    /// Whether to give a value of the right type (always, unless the query is one chosen to
    /// have mistakes).
    fn right(&mut self, p: f64) -> bool {
        !self.dirty || self.rng.chance(p)
    }

    /// The class a field's type is about: `City` for `City`, `MetaCityObj` and
    /// `AggregateCityObj` (a Get type has `uuid`).
    fn class_of(&self, type_name: &str) -> Option<String> {
        let stripped = type_name
            .trim_start_matches("Aggregate")
            .trim_start_matches("Meta")
            .trim_end_matches("Obj");
        [type_name, stripped]
            .into_iter()
            .find(|n| {
                self.schema
                    .get(n)
                    .is_some_and(|t| t.fields.iter().any(|f| f.name == "uuid"))
            })
            .map(str::to_string)
    }

    /// The properties of `class`, named as paths name them.
    fn props(&self, class: &str) -> Vec<Prop> {
        self.schema
            .get(class)
            .map(|t| {
                t.fields
                    .iter()
                    .filter(|f| f.name != "uuid")
                    .map(|f| {
                        let mut name = f.name.clone();
                        if let Some(first) = name.get(..1) {
                            name = first.to_lowercase() + &name[1..];
                        }
                        Prop {
                            name,
                            ty: f.ty.named().to_string(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A path of `class`: a property, or through a reference to a property of a class it
    /// refers to; with the named type at its end.
    fn typed_path(&mut self, class: &str) -> Option<(Vec<String>, String)> {
        let props = self.props(class);
        if props.is_empty() {
            return None;
        }
        let p = self.rng.pick(&props).clone();
        let targets = self
            .schema
            .get(&p.ty)
            .filter(|t| t.kind == "UNION")
            .map(|t| t.possible_types.clone());
        match targets {
            Some(targets) if !targets.is_empty() && self.rng.chance(0.8) => {
                let target = self.rng.pick(&targets).clone();
                let inner = self.props(&target);
                let leaf = inner
                    .iter()
                    .filter(|q| self.schema.get(&q.ty).is_none_or(|t| t.kind == "SCALAR"))
                    .cloned()
                    .collect::<Vec<_>>();
                if leaf.is_empty() {
                    return Some((vec![p.name], p.ty));
                }
                let q = self.rng.pick(&leaf).clone();
                Some((vec![p.name, target, q.name], q.ty))
            }
            _ => Some((vec![p.name], p.ty)),
        }
    }

    fn word(&mut self) -> String {
        if self.rng.chance(0.85) {
            self.rng.pick(&self.schema.words).clone()
        } else {
            self.rng.pick(ODD_STRINGS).to_string()
        }
    }

    fn int(&mut self) -> i64 {
        match self.rng.below(6) {
            0 => 0,
            1 => 1,
            2 => -1,
            3 => self.rng.below(120) as i64,
            4 => *self
                .rng
                .pick(&[i64::from(i32::MAX), i64::from(i32::MIN), 2_000_000, 100_000]),
            _ => self.rng.below(10) as i64 - 5,
        }
    }

    fn float(&mut self) -> String {
        match self.rng.below(5) {
            0 => format!("{}.5", self.rng.below(100) as i64 - 50),
            1 => self
                .rng
                .pick(&["0.0", "-0.0", "1e3", "2.5E-3", "1e308"])
                .to_string(),
            2 => self.int().to_string(),
            _ => format!("{}.25", self.rng.below(10)),
        }
    }

    fn string_literal(&mut self) -> String {
        let s = self.word();
        if self.rng.chance(0.05) {
            format!("\"\"\"{}\"\"\"", s.replace("\"\"\"", ""))
        } else {
            serde_json::to_string(&s).unwrap()
        }
    }

    /// A JSON value for a variable of type `ty` (`right`: of that type).
    fn json_value(&mut self, ty: &Ty, right: bool, depth: usize) -> Value {
        if !right {
            return match self.rng.below(6) {
                0 => Value::Null,
                1 => json!(self.word()),
                2 => json!(self.int()),
                3 => json!([self.word(), 1]),
                4 => json!({"operator": "Equal", self.word(): self.int()}),
                _ => json!(true),
            };
        }
        match ty {
            Ty::NonNull(t) => self.json_value(t, true, depth),
            Ty::List(t) => {
                let n = if depth > 3 { 0 } else { self.rng.below(3) };
                Value::Array(
                    (0..n)
                        .map(|_| self.json_value(t, true, depth + 1))
                        .collect(),
                )
            }
            Ty::Named(n) => match n.as_str() {
                "Int" => json!(self.int()),
                "Float" => json!(self.float().parse::<f64>().unwrap_or(0.5)),
                "String" | "ID" => json!(self.word()),
                "Boolean" => json!(self.rng.chance(0.5)),
                other => match self.schema.get(other) {
                    Some(t) if t.kind == "ENUM" && !t.enum_values.is_empty() => {
                        json!(self.rng.pick(&t.enum_values))
                    }
                    Some(t) if t.kind == "INPUT_OBJECT" => {
                        let t = t.clone();
                        let mut m = serde_json::Map::new();
                        for f in &t.input_fields {
                            let required = matches!(f.ty, Ty::NonNull(_));
                            if (required || self.rng.chance(0.4)) && depth < 4 {
                                let right = self.right(0.9);
                                m.insert(f.name.clone(), self.json_value(&f.ty, right, depth + 1));
                            }
                        }
                        Value::Object(m)
                    }
                    _ => json!(self.word()),
                },
            },
        }
    }

    /// A GraphQL literal for an argument of type `ty` (`right`: of that type).
    fn literal(&mut self, ty: &Ty, right: bool, depth: usize) -> String {
        if !right {
            return match self.rng.below(9) {
                0 => "null".into(),
                1 => self.string_literal(),
                2 => self.int().to_string(),
                3 => self.float(),
                4 => format!("[{}]", self.string_literal()),
                5 => format!("{{{}: {}}}", self.word_name(), self.int()),
                6 => "true".into(),
                7 => self.word_name(),
                _ => "$undefinedVariable".into(),
            };
        }
        match ty {
            Ty::NonNull(t) => self.literal(t, true, depth),
            Ty::List(t) => {
                if self.rng.chance(0.15) {
                    // A single value where a list is expected (GraphQL coerces it).
                    return self.literal(t, true, depth + 1);
                }
                let n = if depth > 3 { 0 } else { self.rng.below(4) };
                let items: Vec<String> = (0..n).map(|_| self.literal(t, true, depth + 1)).collect();
                format!("[{}]", items.join(", "))
            }
            Ty::Named(n) => match n.as_str() {
                "Int" => self.int().to_string(),
                "Float" => self.float(),
                "String" | "ID" => self.string_literal(),
                "Boolean" => self.rng.chance(0.5).to_string(),
                other => match self.schema.get(other) {
                    Some(t) if t.kind == "ENUM" && !t.enum_values.is_empty() => {
                        self.rng.pick(&t.enum_values).clone()
                    }
                    Some(t) if t.kind == "INPUT_OBJECT" => {
                        let t = t.clone();
                        if t.input_fields.iter().any(|f| f.name == "operator")
                            && self.rng.chance(0.6)
                        {
                            return self.filter(&t, depth);
                        }
                        let mut parts = vec![];
                        for f in &t.input_fields {
                            let required = matches!(f.ty, Ty::NonNull(_));
                            if (required || self.rng.chance(0.4)) && depth < 4 {
                                let right = self.right(0.9);
                                parts.push(format!(
                                    "{}: {}",
                                    f.name,
                                    self.literal(&f.ty, right, depth + 1)
                                ));
                            }
                        }
                        if self.oops(0.03) {
                            parts.push(format!("{}: 1", self.word_name()));
                        }
                        format!("{{{}}}", parts.join(", "))
                    }
                    _ => self.string_literal(),
                },
            },
        }
    }

    /// A filter-shaped input object (`operator`, `operands`, `path`, `value…`): mostly a
    /// comparison of a property path with one value, or a logical node over such.
    fn filter(&mut self, t: &TypeDef, depth: usize) -> String {
        let ops = self
            .schema
            .get(
                t.input_fields
                    .iter()
                    .find(|f| f.name == "operator")
                    .map_or("", |f| f.ty.named()),
            )
            .map(|e| e.enum_values.clone())
            .unwrap_or_default();
        let op = if ops.is_empty() {
            "Equal".to_string()
        } else {
            self.rng.pick(&ops).clone()
        };
        if matches!(op.as_str(), "And" | "Or" | "Not") && depth < 3 {
            let n = if op == "Not" {
                1
            } else {
                1 + self.rng.below(3)
            };
            let operands: Vec<String> = (0..n).map(|_| self.filter(t, depth + 1)).collect();
            return format!("{{operator: {op}, operands: [{}]}}", operands.join(", "));
        }
        let class = self.class.clone();
        let typed = match class {
            Some(c) if self.rng.chance(0.85) => self.typed_path(&c),
            _ => None,
        };
        let values: Vec<InputValue> = t
            .input_fields
            .iter()
            .filter(|f| f.name.starts_with("value"))
            .cloned()
            .collect();
        let (path, value) = match typed {
            Some((path, ty)) if self.right(0.9) => {
                // A value of the property's type (a string property may hold dates).
                let (key, literal) = match ty.as_str() {
                    "Int" => ("valueInt", self.int().to_string()),
                    "Float" if self.rng.chance(0.5) => ("valueInt", self.int().to_string()),
                    "Float" => ("valueNumber", self.float()),
                    "Boolean" => ("valueBoolean", self.rng.chance(0.5).to_string()),
                    _ => {
                        let key = *self.rng.pick(&["valueString", "valueText", "valueDate"]);
                        let v = if key == "valueDate" || self.rng.chance(0.2) {
                            serde_json::to_string(self.rng.pick(&ODD_STRINGS[..3])).unwrap()
                        } else {
                            self.string_literal()
                        };
                        (key, v)
                    }
                };
                (path, format!(", {key}: {literal}"))
            }
            other => {
                let path = other.map(|(p, _)| p).unwrap_or_else(|| {
                    if self.rng.chance(0.7) {
                        vec![self.word()]
                    } else {
                        vec![self.word(), self.word(), self.word()]
                    }
                });
                let value = if values.is_empty() {
                    String::new()
                } else {
                    let v = self.rng.pick(&values).clone();
                    let right = self.right(0.9);
                    format!(", {}: {}", v.name, self.literal(&v.ty, right, depth + 1))
                };
                (path, value)
            }
        };
        format!(
            "{{operator: {op}, path: {}{value}}}",
            serde_json::to_string(&path).unwrap()
        )
    }

    /// A name (for aliases, unknown fields and arguments).
    fn word_name(&mut self) -> String {
        let w = self.word();
        let clean: String = w
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        match clean.chars().next() {
            Some(c) if !c.is_ascii_digit() => clean,
            _ => format!("n{clean}"),
        }
    }

    /// The arguments of `field`.
    fn arguments(&mut self, field: &FieldDef) -> String {
        self.class = self.class_of(field.ty.named());
        let mut parts = vec![];
        for a in &field.args {
            let required = matches!(a.ty, Ty::NonNull(_));
            if !(required || self.rng.chance(0.5)) {
                continue;
            }
            let right = self.right(0.85);
            if a.name == "groupBy" && right && self.rng.chance(0.8) {
                let class = self.class.clone().unwrap_or_default();
                if let Some((path, _)) = self.typed_path(&class) {
                    parts.push(format!(
                        "groupBy: {}",
                        serde_json::to_string(&path).unwrap()
                    ));
                    continue;
                }
            }
            if self.rng.chance(0.1) {
                // As a variable, declared with the argument's type (or, sometimes, another).
                let name = format!("v{}", self.variables.len());
                let declared = if self.right(0.9) {
                    a.ty.written()
                } else {
                    self.rng
                        .pick(&["Int", "String!", "[String]", "WhereInpObj", "Nope"])
                        .to_string()
                };
                let value = self.json_value(&a.ty, right, 0);
                self.variables.push((name.clone(), declared, value));
                parts.push(format!("{}: ${name}", a.name));
            } else {
                parts.push(format!("{}: {}", a.name, self.literal(&a.ty, right, 0)));
            }
        }
        if self.oops(0.04) {
            parts.push(format!("{}: {}", self.word_name(), self.int()));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("({})", parts.join(", "))
        }
    }

    /// A selection set on type `name`, `depth` levels down, going at most `max` deep.
    fn selection(&mut self, name: &str, depth: usize, max: usize) -> String {
        let Some(t) = self.schema.get(name).cloned() else {
            return "{ __typename }".into();
        };
        let mut items = vec![];
        if t.kind == "UNION" || t.kind == "INTERFACE" {
            for p in &t.possible_types {
                if self.rng.chance(0.7) {
                    items.push(format!("... on {p} {}", self.selection(p, depth + 1, max)));
                }
            }
            if items.is_empty() || self.rng.chance(0.2) {
                items.push("__typename".into());
            }
            return format!("{{ {} }}", items.join(" "));
        }
        let n = 1 + self.rng.below(if depth < 2 { 3 } else { 2 });
        let mut picked = BTreeSet::new();
        for _ in 0..n {
            if t.fields.is_empty() {
                break;
            }
            let f = self.rng.pick(&t.fields).clone();
            // The same field twice at one level conflicts unless aliased (or identical): mostly
            // alias the second, sometimes leave the conflict in.
            let again = !picked.insert(f.name.clone());
            let mut item = String::new();
            if self.rng.chance(0.15) || (again && self.right(0.9)) {
                self.aliases += 1;
                item.push_str(&format!("{}{}: ", self.word_name(), self.aliases));
            }
            item.push_str(&f.name);
            item.push_str(&self.arguments(&f));
            if self.rng.chance(0.02) {
                const DIRECTIVES: [&str; 5] = [
                    " @skip(if: true)",
                    " @include(if: false)",
                    " @include(if: true)",
                    " @nope",
                    " @skip(if: 3)",
                ];
                let valid = if self.dirty { DIRECTIVES.len() } else { 3 };
                item.push_str(DIRECTIVES[self.rng.below(valid)]);
            }
            let inner = f.ty.named().to_string();
            if self.schema.is_composite(&inner) {
                if depth + 1 >= max {
                    item.push_str(" { __typename }");
                } else {
                    item.push(' ');
                    item.push_str(&self.selection(&inner, depth + 1, max));
                }
            } else if self.oops(0.02) {
                item.push_str(" { nope }");
            }
            items.push(item);
        }
        if self.oops(0.04) {
            items.push(self.word_name());
        }
        if self.rng.chance(0.03) {
            items.push("__typename".into());
        }
        if self.rng.chance(0.04) {
            self.fragment_names += 1;
            let frag = format!("F{}", self.fragment_names);
            let body = self.selection(name, depth + 1, max);
            self.fragments
                .push(format!("fragment {frag} on {name} {body}"));
            items.push(format!("...{frag}"));
        }
        format!("{{ {} }}", items.join(" "))
    }

    /// One request body for `/graphql`.
    fn request(&mut self) -> Value {
        self.variables.clear();
        self.fragments.clear();
        self.aliases = 0;
        self.dirty = self.rng.chance(0.4);
        let r = self.rng.below(100);
        let query = match r {
            0..=79 => {
                // Mostly within the depth limit (32), sometimes well past it.
                let max = if self.rng.chance(0.03) {
                    40
                } else {
                    2 + self.rng.below(6)
                };
                let root = self.schema.query_type.clone();
                let body = self.selection(&root, 0, max);
                self.document(body)
            }
            80..=91 => {
                let root = self.schema.query_type.clone();
                let body = self.selection(&root, 0, 8);
                let doc = self.document(body);
                self.garble(&doc)
            }
            _ => self.special(),
        };
        let mut body = json!({ "query": query });
        if !self.variables.is_empty() {
            body["variables"] = Value::Object(
                self.variables
                    .iter()
                    .map(|(n, _, v)| (n.clone(), v.clone()))
                    .collect(),
            );
        }
        if self.oops(0.05) {
            body["operationName"] = json!(self.rng.pick(&["Q", "Nope", ""]));
        }
        body
    }

    /// The document around a selection on the query root.
    fn document(&mut self, body: String) -> String {
        let mut out = if self.variables.is_empty() && self.rng.chance(0.5) {
            body
        } else {
            let defs: Vec<String> = self
                .variables
                .iter()
                .map(|(n, t, _)| format!("${n}: {t}"))
                .collect();
            let defs = if defs.is_empty() {
                String::new()
            } else {
                format!("({})", defs.join(", "))
            };
            format!("query Q{defs} {body}")
        };
        for f in &self.fragments {
            out.push(' ');
            out.push_str(f);
        }
        out
    }

    /// `doc` with random damage.
    fn garble(&mut self, doc: &str) -> String {
        let mut chars: Vec<char> = doc.chars().collect();
        for _ in 0..1 + self.rng.below(4) {
            let at = self.rng.below(chars.len() + 1);
            match self.rng.below(5) {
                0 if !chars.is_empty() => {
                    let end = (at + 1 + self.rng.below(8)).min(chars.len());
                    chars.drain(at.min(end)..end);
                }
                1 => {
                    let c = *self.rng.pick(&[
                        '{',
                        '}',
                        '(',
                        ')',
                        '[',
                        ']',
                        ':',
                        '$',
                        '@',
                        '!',
                        '"',
                        '\\',
                        '.',
                        ',',
                        '#',
                        '\n',
                        'é',
                        '\u{0}',
                        '\u{1F600}',
                        '|',
                        '&',
                        '=',
                    ]);
                    chars.insert(at, c);
                }
                2 => chars.truncate(at),
                3 if at < chars.len() => {
                    let end = (at + self.rng.below(20)).min(chars.len());
                    let copy: Vec<char> = chars[at..end].to_vec();
                    chars.splice(at..at, copy);
                }
                _ => {
                    let w = self.word();
                    chars.splice(at..at, w.chars());
                }
            }
        }
        chars.into_iter().collect()
    }

    /// A query of a kind the generator above does not make.
    fn special(&mut self) -> String {
        let depth = 30 + self.rng.below(3000);
        match self.rng.below(14) {
            0 => String::new(),
            1 => "   # only a comment\n".into(),
            2 => format!("{}{}", "{".repeat(depth), "}".repeat(depth)),
            3 => format!("{{ Local {}{}", "{ Get ".repeat(depth), "}".repeat(depth)),
            4 => "{ __schema { types { name fields { name type { name ofType { name } } } } } }"
                .into(),
            5 => format!(
                "{{ __type(name: {}) {{ name kind fields {{ name }} }} }}",
                self.string_literal()
            ),
            6 => "mutation { Local { Get { Things { nope } } } }".into(),
            7 => "subscription { Local }".into(),
            8 => "query A { Local { __typename } } query B { __typename }".into(),
            9 => "fragment A on Query { ...B } fragment B on Query { ...A } { ...A }".into(),
            10 => {
                // Many aliases: over the limit (100) from time to time.
                let n = 50 + self.rng.below(120);
                let items: Vec<String> = (0..n).map(|i| format!("a{i}: __typename")).collect();
                format!("{{ {} }}", items.join(" "))
            }
            11 => format!("{{ {}: __typename }}", "x".repeat(10_000)),
            12 => "query ($a: Int = \"x\", $a: Int) { __typename }".into(),
            _ => format!(
                "{{ Local {{ Get {{ Things {{ {} }} }} }} }}",
                self.word_name()
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

/// The status codes the served OpenAPI document lists for `POST path`.
fn documented(doc: &Value, path: &str) -> BTreeSet<u16> {
    doc["paths"][path]["post"]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("the document has no POST {path}"))
        .keys()
        .filter_map(|k| k.parse().ok())
        .collect()
}

struct Run {
    seed: u64,
    api: Api,
    client: reqwest::blocking::Client,
    documented: BTreeMap<&'static str, BTreeSet<u16>>,
    findings: Vec<String>,
    statuses: BTreeMap<(&'static str, u16), usize>,
    graphql_errors: usize,
    answered_data: usize,
}

impl Run {
    /// POSTs `body` (raw bytes, with `content_type` when given) to `path`; records a finding
    /// for anything but 200 or a documented 4xx with the contract's body.
    fn post(&mut self, path: &'static str, body: Vec<u8>, content_type: Option<&str>, what: &str) {
        let mut req = self
            .client
            .post(self.api.server.at(path))
            .header("X-API-KEY", ROOT_KEY)
            .header("X-API-TOKEN", ROOT_TOKEN)
            .body(body.clone());
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let shown = || {
            let s = String::from_utf8_lossy(&body);
            if s.len() > 600 {
                let mut end = 600;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}… ({} bytes)", &s[..end], s.len())
            } else {
                s.into_owned()
            }
        };
        let resp = match req.send() {
            Ok(r) => r,
            Err(e) => {
                self.findings.push(format!(
                    "POST {path} ({what}) got no answer ({e}); body: {}",
                    shown()
                ));
                return;
            }
        };
        let status = resp.status().as_u16();
        *self.statuses.entry((path, status)).or_default() += 1;
        let text = match resp.text() {
            Ok(t) => t,
            Err(e) => {
                self.findings.push(format!(
                    "POST {path} ({what}) answered {status} but the body broke off ({e}); body: {}",
                    shown()
                ));
                return;
            }
        };
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status >= 500 || (status != 200 && !self.documented[path].contains(&status)) {
            self.findings.push(format!(
                "POST {path} ({what}) answered {status} {answer}; body: {}",
                shown()
            ));
            return;
        }
        if status != 200 {
            let shape =
                std::panic::catch_unwind(|| assert_error_shape("POST", path, status, &answer));
            if shape.is_err() {
                self.findings.push(format!(
                    "POST {path} ({what}) answered {status} without the contract's error body: {answer}; body: {}",
                    shown()
                ));
            }
            return;
        }
        let answers: Vec<&Value> = match (&answer, path) {
            (Value::Array(items), "/graphql/batch") => items.iter().collect(),
            (a, "/graphql") => vec![a],
            _ => {
                self.findings.push(format!(
                    "POST {path} ({what}) answered 200 with {answer}; body: {}",
                    shown()
                ));
                return;
            }
        };
        for a in answers {
            if a.get("data").is_none() && a.get("errors").is_none() {
                self.findings.push(format!(
                    "POST {path} ({what}): an answer with neither data nor errors: {a}; body: {}",
                    shown()
                ));
            }
            for e in a["errors"].as_array().into_iter().flatten() {
                self.graphql_errors += 1;
                if e["message"].as_str().is_none_or(|m| m.trim().is_empty()) {
                    self.findings.push(format!(
                        "POST {path} ({what}): a GraphQL error without a message: {a}; body: {}",
                        shown()
                    ));
                }
            }
            if a["data"].is_object() && a.get("errors").is_none() {
                self.answered_data += 1;
            }
        }
    }

    fn post_json(&mut self, path: &'static str, body: &Value, what: &str) {
        self.post(
            path,
            body.to_string().into_bytes(),
            Some("application/json"),
            what,
        );
    }
}

fn seed() -> u64 {
    match std::env::var("WEFT_FUZZ_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WEFT_FUZZ_SEED={s:?} is not a number")),
        // A fixed default, so CI runs the same queries every time (explore others with
        // WEFT_FUZZ_SEED).
        Err(_) => 1_795_956_515_584_489_204,
    }
}

fn cases() -> usize {
    std::env::var("WEFT_FUZZ_CASES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(CASES)
}

/// The schema and data the queries run over: Things and Actions, every data type, references
/// (one to its own class, so that selections can nest deeply), a few objects.
fn fixture(api: &Api) {
    for (kind, class) in [
        (
            "things",
            json!({"class": "Country", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "population", "@dataType": ["int"]},
                {"name": "gdp", "@dataType": ["number"]},
                {"name": "inEu", "@dataType": ["boolean"]},
                {"name": "founded", "@dataType": ["date"]}]}),
        ),
        (
            "things",
            json!({"class": "City", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "description", "@dataType": ["text"]},
                {"name": "population", "@dataType": ["int"]},
                {"name": "area", "@dataType": ["number"]},
                {"name": "isCapital", "@dataType": ["boolean"]},
                {"name": "founded", "@dataType": ["date"]},
                {"name": "inCountry", "@dataType": ["Country"]},
                {"name": "twinCity", "@dataType": ["City"]}]}),
        ),
        (
            "actions",
            json!({"class": "Flight", "properties": [
                {"name": "code", "@dataType": ["string"]},
                {"name": "seats", "@dataType": ["int"]},
                {"name": "from", "@dataType": ["City"]}]}),
        ),
    ] {
        api.ok("POST", &format!("/schema/{kind}"), Some(class));
    }
    let reference = |id: &str, kind: &str| json!({"$cref": id, "locationUrl": "http://localhost/", "type": kind});
    let create = |kind: &str, class: &str, schema: Value| -> String {
        let (path, wrapper, id) = match kind {
            "Action" => ("/actions", "action", "actionId"),
            _ => ("/things", "thing", "thingId"),
        };
        let b = api.ok(
            "POST",
            path,
            Some(json!({ wrapper: {"@context": "http://example.org", "@class": class, "schema": schema}})),
        );
        b[id].as_str().expect("an id").to_string()
    };
    let countries: Vec<String> = (0..3)
        .map(|i| {
            create(
                "Thing",
                "Country",
                json!({"name": format!("Country{i}"), "population": i * 1000, "gdp": 1.5 * f64::from(i),
                       "inEu": i % 2 == 0, "founded": "1400-06-06T08:30:00Z"}),
            )
        })
        .collect();
    let mut cities: Vec<String> = vec![];
    for j in 0..8usize {
        let mut schema = json!({"name": format!("City{j}"), "description": "a city", "population": j * 7,
                                "area": 2.5 * j as f64, "isCapital": j < 3, "founded": "2018-11-21T10:00:00Z",
                                "inCountry": reference(&countries[j % 3], "Thing")});
        if let Some(prev) = cities.last() {
            schema["twinCity"] = reference(prev, "Thing");
        }
        cities.push(create("Thing", "City", schema));
    }
    for (k, city) in cities.iter().take(3).enumerate() {
        create(
            "Action",
            "Flight",
            json!({"code": format!("F{k}"), "seats": k * 50, "from": reference(city, "Thing")}),
        );
    }
}

#[test]
fn random_queries_from_introspection_never_get_a_5xx_or_a_dropped_connection() {
    let seed = seed();
    let cases = cases();
    println!("graphql_fuzz: seed {seed} (rerun with WEFT_FUZZ_SEED={seed}), {cases} requests");
    let api = Api::new(Server::start());
    fixture(&api);
    let document = api.ok("GET", "/openapi.json", None);
    let introspection = api.ok("POST", "/graphql", Some(json!({ "query": INTROSPECTION })));
    assert!(
        introspection.get("errors").is_none(),
        "introspection failed: {introspection}"
    );
    let schema = Schema::from_introspection(&introspection);
    assert!(
        schema.types.contains_key("City") && schema.types.contains_key("Flight"),
        "the introspected schema lacks the classes: {:?}",
        schema.types.keys().collect::<Vec<_>>()
    );
    let mut run = Run {
        seed,
        client: reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        documented: [
            ("/graphql", documented(&document, "/graphql")),
            ("/graphql/batch", documented(&document, "/graphql/batch")),
        ]
        .into_iter()
        .collect(),
        api,
        findings: vec![],
        statuses: BTreeMap::new(),
        graphql_errors: 0,
        answered_data: 0,
    };
    let mut gen = Gen {
        rng: Rng(seed),
        schema: &schema,
        variables: vec![],
        fragments: vec![],
        fragment_names: 0,
        aliases: 0,
        class: None,
        dirty: false,
    };

    let start = Instant::now();
    let mut sent = 0;
    while sent < cases && start.elapsed() < TIME_BUDGET {
        let kind = gen.rng.below(100);
        match kind {
            // One query.
            0..=69 => {
                let body = gen.request();
                run.post_json("/graphql", &body, "a query");
                sent += 1;
            }
            // A batch of a few.
            70..=86 => {
                let n = 1 + gen.rng.below(6);
                let bodies: Vec<Value> = (0..n).map(|_| gen.request()).collect();
                run.post_json("/graphql/batch", &Value::Array(bodies), "a batch");
                sent += n;
            }
            // Request bodies of the wrong shape.
            _ => {
                let q = gen.request();
                let (path, body, ct, what): (&'static str, Vec<u8>, Option<&str>, &str) =
                    match gen.rng.below(12) {
                        0 => (
                            "/graphql",
                            b"{}".to_vec(),
                            Some("application/json"),
                            "no query",
                        ),
                        1 => (
                            "/graphql",
                            br#"{"query": 5}"#.to_vec(),
                            Some("application/json"),
                            "a number as query",
                        ),
                        2 => (
                            "/graphql",
                            json!({"query": q["query"], "variables": "x"})
                                .to_string()
                                .into_bytes(),
                            Some("application/json"),
                            "variables not an object",
                        ),
                        3 => (
                            "/graphql",
                            json!({"query": q["query"], "variables": [1]})
                                .to_string()
                                .into_bytes(),
                            Some("application/json"),
                            "variables a list",
                        ),
                        4 => (
                            "/graphql",
                            b"{\"query\": \"{ Local".to_vec(),
                            Some("application/json"),
                            "broken JSON",
                        ),
                        5 => (
                            "/graphql",
                            q.to_string().into_bytes(),
                            None,
                            "no content type",
                        ),
                        6 => (
                            "/graphql",
                            q.to_string().into_bytes(),
                            Some("text/plain"),
                            "text/plain",
                        ),
                        7 => (
                            "/graphql/batch",
                            q.to_string().into_bytes(),
                            Some("application/json"),
                            "an object to batch",
                        ),
                        8 => (
                            "/graphql/batch",
                            b"[]".to_vec(),
                            Some("application/json"),
                            "an empty batch",
                        ),
                        9 => (
                            "/graphql/batch",
                            json!([q, 1, null]).to_string().into_bytes(),
                            Some("application/json"),
                            "a batch with non-queries",
                        ),
                        10 => {
                            // Over the batch limit (100): refused with 413 before any runs.
                            let many: Vec<Value> = (0..101)
                                .map(|_| json!({"query": "{ __typename }"}))
                                .collect();
                            (
                                "/graphql/batch",
                                Value::Array(many).to_string().into_bytes(),
                                Some("application/json"),
                                "101 queries",
                            )
                        }
                        _ => (
                            "/graphql",
                            vec![0xff, 0xfe, b'{'],
                            Some("application/json"),
                            "bytes that are no UTF-8",
                        ),
                    };
                run.post(path, body, ct, what);
                sent += 1;
            }
        }
        if !run.findings.is_empty() && !run.api.server.is_running_ref() {
            run.findings.push("the server process is gone".into());
            break;
        }
    }
    let elapsed = start.elapsed();

    // The server still answers a normal query.
    let (status, answer) = run.api.post(
        "/graphql",
        json!({"query": "{ Local { Get { Things { City { uuid name InCountry { ... on Country { name } } } } } } }"}),
    );
    let cities = answer["data"]["Local"]["Get"]["Things"]["City"]
        .as_array()
        .map_or(0, Vec::len);
    if status != 200 || cities != 8 {
        run.findings.push(format!(
            "after the fuzzing a normal query answered {status} {answer}"
        ));
    }
    println!(
        "graphql_fuzz: seed {}: {sent} queries in {:.1} s; statuses {:?}; {} answers with data and no errors, {} GraphQL errors; {} findings",
        run.seed,
        elapsed.as_secs_f64(),
        run.statuses,
        run.answered_data,
        run.graphql_errors,
        run.findings.len()
    );
    assert!(
        run.findings.is_empty(),
        "seed {} (rerun with WEFT_FUZZ_SEED={}): {} findings:\n{}",
        run.seed,
        run.seed,
        run.findings.len(),
        run.findings
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
