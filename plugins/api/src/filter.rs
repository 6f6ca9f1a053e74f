//! The filter tree that crosses the boundary as JSON (`ObjectQuery::filter_json`), and its
//! reference semantics.
//!
//! The JSON has the shape of GraphQL `where` arguments:
//!
//! ```json
//! {"operator": "And", "operands": [
//!   {"operator": "GreaterThan", "path": ["population"], "valueInt": 1000000},
//!   {"operator": "Equal", "path": ["inCountry", "Country", "name"], "valueString": "Germany"}
//! ]}
//! ```
//!
//! A path is a property name, optionally continued through references: `[refProperty, Class,
//! property, …]`. Semantics every connector must follow (the conformance kit checks them):
//!
//! * A comparison against an object that lacks the property is false (also for `NotEqual`).
//! * Through a reference the comparison holds when it holds for **any** referenced object of the
//!   named class.
//! * `valueInt`/`valueNumber` compare numerically with int and number properties; `valueString`
//!   and `valueText` compare strings (ordering is by Unicode code point); `valueDate` compares
//!   RFC 3339 instants; `valueBoolean` supports only `Equal`/`NotEqual`.
//! * A value of another type than the property's never matches.
//!
//! [`WhereFilter::matches`] is the reference implementation; connectors that evaluate in memory
//! may use it directly.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::{Id, ObjectKind, StoredObject};

/// Filter operators.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// Every operand holds.
    And,
    /// At least one operand holds.
    Or,
    /// The single operand does not hold.
    Not,
    /// `path` equals the value.
    Equal,
    /// `path` differs from the value.
    NotEqual,
    /// `path` > value.
    GreaterThan,
    /// `path` >= value.
    GreaterThanEqual,
    /// `path` < value.
    LessThan,
    /// `path` <= value.
    LessThanEqual,
}

impl Operator {
    fn is_logical(self) -> bool {
        matches!(self, Operator::And | Operator::Or | Operator::Not)
    }
}

/// One node of a filter tree.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhereFilter {
    /// The operator.
    pub operator: Option<Operator>,
    /// Operands of `And`, `Or` (one or more) and `Not` (exactly one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operands: Vec<WhereFilter>,
    /// The property path of a comparison.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// Integer value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_int: Option<i64>,
    /// Floating-point value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_number: Option<f64>,
    /// Boolean value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_boolean: Option<bool>,
    /// String value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
    /// Text value (compared like a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_text: Option<String>,
    /// Date value, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_date: Option<String>,
}

/// The typed value of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// `valueInt`.
    Int(i64),
    /// `valueNumber`.
    Number(f64),
    /// `valueBoolean`.
    Boolean(bool),
    /// `valueString` or `valueText`.
    String(String),
    /// `valueDate`, parsed.
    Date(chrono::DateTime<chrono::FixedOffset>),
}

/// Looks up a referenced object by kind and id (`None` when it does not exist here).
pub type Resolver<'a> = &'a dyn Fn(ObjectKind, Id) -> Option<StoredObject>;

impl WhereFilter {
    /// Parses and validates filter JSON. The error says what is wrong in words for the user.
    pub fn parse(json: &str) -> Result<WhereFilter, String> {
        let f: WhereFilter =
            serde_json::from_str(json).map_err(|e| format!("the filter is not valid: {e}"))?;
        f.validate()?;
        Ok(f)
    }

    /// The operator (validated filters always have one).
    pub fn op(&self) -> Operator {
        self.operator.unwrap_or(Operator::And)
    }

    /// Checks the tree's structure (not types against a schema).
    pub fn validate(&self) -> Result<(), String> {
        let Some(op) = self.operator else {
            return Err("every filter node needs an \"operator\"".into());
        };
        if op.is_logical() {
            if !self.path.is_empty() || self.value_count() > 0 {
                return Err(format!("{op:?} takes operands, not a path or a value"));
            }
            match (op, self.operands.len()) {
                (Operator::Not, 1) => {}
                (Operator::Not, n) => {
                    return Err(format!("Not takes exactly one operand, got {n}"));
                }
                (_, 0) => return Err(format!("{op:?} needs at least one operand")),
                _ => {}
            }
            return self.operands.iter().try_for_each(|o| o.validate());
        }
        if !self.operands.is_empty() {
            return Err(format!(
                "{op:?} compares a path with a value; it takes no operands"
            ));
        }
        if self.path.is_empty() {
            return Err(format!("{op:?} needs a \"path\", e.g. [\"name\"]"));
        }
        if self.path.len().is_multiple_of(2) {
            return Err(format!(
                "path {:?} must be a property, or continue through a reference as [refProperty, Class, property, …]",
                self.path
            ));
        }
        if self.value_count() != 1 {
            return Err(format!(
                "{op:?} on {:?} needs exactly one of valueInt, valueNumber, valueBoolean, valueString, valueText, valueDate",
                self.path
            ));
        }
        let value = self
            .value()
            .map_err(|e| format!("path {:?}: {e}", self.path))?;
        if matches!(value, FilterValue::Boolean(_))
            && !matches!(op, Operator::Equal | Operator::NotEqual)
        {
            return Err(format!(
                "path {:?}: valueBoolean supports only Equal and NotEqual, not {op:?}",
                self.path
            ));
        }
        Ok(())
    }

    fn value_count(&self) -> usize {
        [
            self.value_int.is_some(),
            self.value_number.is_some(),
            self.value_boolean.is_some(),
            self.value_string.is_some(),
            self.value_text.is_some(),
            self.value_date.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }

    /// The comparison's value.
    pub fn value(&self) -> Result<FilterValue, String> {
        if let Some(v) = self.value_int {
            return Ok(FilterValue::Int(v));
        }
        if let Some(v) = self.value_number {
            return Ok(FilterValue::Number(v));
        }
        if let Some(v) = self.value_boolean {
            return Ok(FilterValue::Boolean(v));
        }
        if let Some(v) = self.value_string.as_ref().or(self.value_text.as_ref()) {
            return Ok(FilterValue::String(v.clone()));
        }
        if let Some(v) = &self.value_date {
            return chrono::DateTime::parse_from_rfc3339(v)
                .map(FilterValue::Date)
                .map_err(|e| format!("valueDate {v:?} is not an RFC 3339 date ({e}), e.g. \"2018-11-21T10:00:00Z\""));
        }
        Err("no value".into())
    }

    /// Whether any comparison goes through a reference.
    pub fn uses_reference_paths(&self) -> bool {
        self.path.len() > 1 || self.operands.iter().any(|o| o.uses_reference_paths())
    }

    /// Whether `object` matches. `resolve` follows references.
    pub fn matches(&self, object: &StoredObject, resolve: Resolver<'_>) -> bool {
        let props = object.properties();
        self.matches_props(&props, resolve)
    }

    fn matches_props(&self, props: &serde_json::Map<String, Value>, resolve: Resolver<'_>) -> bool {
        match self.op() {
            Operator::And => self
                .operands
                .iter()
                .all(|o| o.matches_props(props, resolve)),
            Operator::Or => self
                .operands
                .iter()
                .any(|o| o.matches_props(props, resolve)),
            Operator::Not => !self
                .operands
                .iter()
                .all(|o| o.matches_props(props, resolve)),
            op => {
                let Ok(value) = self.value() else {
                    return false;
                };
                path_values(props, &self.path, resolve)
                    .iter()
                    .any(|v| compare(op, v, &value))
            }
        }
    }
}

/// The values at `path` in a property bag, following references (`[ref, Class, prop, …]`).
/// Missing properties give no values; a path through a multi-reference may give several.
pub fn path_values(
    props: &serde_json::Map<String, Value>,
    path: &[String],
    resolve: Resolver<'_>,
) -> Vec<Value> {
    let Some(first) = path.first() else {
        return vec![];
    };
    let Some(v) = props.get(first) else {
        return vec![];
    };
    if path.len() == 1 {
        return vec![v.clone()];
    }
    let class = &path[1];
    let mut out = vec![];
    for target in references(v) {
        if let Some(obj) = resolve(target.0, target.1) {
            if obj.class.as_str() == class {
                out.extend(path_values(&obj.properties(), &path[2..], resolve));
            }
        }
    }
    out
}

/// The `(kind, id)` of every reference in a property value (a single ref or an array of refs).
pub fn references(value: &Value) -> Vec<(ObjectKind, Id)> {
    fn one(v: &Value) -> Option<(ObjectKind, Id)> {
        let o = v.as_object()?;
        let id: Id = o.get("$cref")?.as_str()?.parse().ok()?;
        // The 0.12 contract spells the type "Thing"/"Action"; accept any case.
        let kind = match o.get("type").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("action") => ObjectKind::Action,
            _ => ObjectKind::Thing,
        };
        Some((kind, id))
    }
    match value {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        v => one(v).into_iter().collect(),
    }
}

fn compare(op: Operator, stored: &Value, wanted: &FilterValue) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (stored, wanted) {
        (Value::Number(n), FilterValue::Int(w)) => match n.as_i64() {
            Some(i) => Some(i.cmp(w)),
            None => n.as_f64().and_then(|f| f.partial_cmp(&(*w as f64))),
        },
        (Value::Number(n), FilterValue::Number(w)) => n.as_f64().and_then(|f| f.partial_cmp(w)),
        (Value::Bool(b), FilterValue::Boolean(w)) => Some(b.cmp(w)),
        (Value::String(s), FilterValue::String(w)) => Some(s.as_str().cmp(w.as_str())),
        (Value::String(s), FilterValue::Date(w)) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.cmp(w)),
        _ => None,
    };
    let Some(ord) = ord else { return false };
    match op {
        Operator::Equal => ord == Ordering::Equal,
        Operator::NotEqual => ord != Ordering::Equal,
        Operator::GreaterThan => ord == Ordering::Greater,
        Operator::GreaterThanEqual => ord != Ordering::Less,
        Operator::LessThan => ord == Ordering::Less,
        Operator::LessThanEqual => ord != Ordering::Greater,
        Operator::And | Operator::Or | Operator::Not => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_not_with_two_operands() {
        let e = WhereFilter::parse(
            r#"{"operator":"Not","operands":[{"operator":"Equal","path":["a"],"valueInt":1},{"operator":"Equal","path":["a"],"valueInt":2}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("exactly one operand"), "{e}");
    }

    #[test]
    fn validate_rejects_two_values_and_even_paths() {
        assert!(WhereFilter::parse(
            r#"{"operator":"Equal","path":["a"],"valueInt":1,"valueString":"x"}"#
        )
        .is_err());
        assert!(
            WhereFilter::parse(r#"{"operator":"Equal","path":["a","B"],"valueInt":1}"#).is_err()
        );
        assert!(
            WhereFilter::parse(r#"{"operator":"LessThan","path":["a"],"valueBoolean":true}"#)
                .is_err()
        );
        assert!(
            WhereFilter::parse(r#"{"operator":"Equal","path":["a"],"valueDate":"yesterday"}"#)
                .is_err()
        );
    }

    #[test]
    fn compares_dates_as_instants_not_text() {
        let f = WhereFilter::parse(
            r#"{"operator":"LessThan","path":["d"],"valueDate":"2020-01-01T00:30:00+01:00"}"#,
        )
        .unwrap();
        let mut props = serde_json::Map::new();
        // The value is 23:30 UTC on Dec 31; 23:45 UTC is later, though "2019…" sorts first as text.
        props.insert("d".into(), Value::String("2019-12-31T23:45:00Z".into()));
        assert!(!f.matches_props(&props, &|_, _| None));
        props.insert("d".into(), Value::String("2019-12-31T23:15:00Z".into()));
        assert!(f.matches_props(&props, &|_, _| None));
    }
}
