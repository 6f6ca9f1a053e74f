//! Aggregation requests and results (`Connector::aggregate`), as JSON, and the reference
//! implementation [`compute`] that in-memory connectors and the host's fallback use.
//!
//! Request: `{"groupBy": ["prop"] | null, "properties": ["population", "name"]}`.
//! Result: one group (with `groupedBy: null`) when `groupBy` is absent, otherwise one group per
//! distinct value at the `groupBy` path, ordered by count descending then value.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::exact_sum::ExactSum;
use crate::filter::{path_values, references, Resolver};
use crate::types::StoredObject;

/// What to aggregate.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AggregateRequest {
    /// Group by the value at this path (a property, or through references); `None`: one group.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// Properties to aggregate in each group.
    #[serde(default)]
    pub properties: Vec<String>,
}

/// The answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AggregateResult {
    /// The groups.
    pub groups: Vec<AggregateGroup>,
}

/// One group.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AggregateGroup {
    /// The grouping value (`None` without `groupBy`).
    pub grouped_by: Option<GroupedBy>,
    /// Objects in the group.
    pub count: u64,
    /// Per requested property.
    pub properties: BTreeMap<String, PropertyAggregate>,
}

/// The path and value a group stands for.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct GroupedBy {
    /// The `groupBy` path.
    pub path: Vec<String>,
    /// The value.
    pub value: Value,
}

/// Aggregates of one property over a group. Only the fields fitting the values' type are set.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PropertyAggregate {
    /// `int`, `number`, `string`, `boolean`, `reference`, or `mixed`/`none`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Objects in the group that have a value for the property.
    pub count: u64,
    /// Numbers: smallest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowest: Option<f64>,
    /// Numbers: largest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest: Option<f64>,
    /// Numbers: sum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    /// Numbers: mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average: Option<f64>,
    /// Strings: every distinct value with its count, most frequent first (ties by value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_occurrences: Vec<Occurrence>,
    /// Booleans: number of `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_true: Option<u64>,
    /// Booleans: number of `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_false: Option<u64>,
    /// Booleans: share of `true`, 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_true: Option<f64>,
    /// Booleans: share of `false`, 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_false: Option<f64>,
    /// References: the classes pointed to, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pointing_to: Vec<String>,
}

/// A string value and how often it occurs.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Occurrence {
    /// The value.
    pub value: String,
    /// How many objects have it.
    pub occurs: u64,
}

/// Aggregates `objects` (already filtered) as `request` asks.
pub fn compute(
    objects: &[StoredObject],
    request: &AggregateRequest,
    resolve: Resolver<'_>,
) -> AggregateResult {
    let bags: Vec<_> = objects.iter().map(|o| o.properties()).collect();
    let mut groups: Vec<(Option<Value>, Vec<usize>)> = vec![];
    match &request.group_by {
        None => groups.push((None, (0..bags.len()).collect())),
        Some(path) => {
            let mut by_value: BTreeMap<String, (Value, Vec<usize>)> = BTreeMap::new();
            for (i, bag) in bags.iter().enumerate() {
                let mut seen = BTreeSet::new();
                for v in path_values(bag, path, resolve) {
                    let key = v.to_string();
                    if seen.insert(key.clone()) {
                        by_value.entry(key).or_insert_with(|| (v, vec![])).1.push(i);
                    }
                }
            }
            let mut g: Vec<_> = by_value.into_values().collect();
            g.sort_by_key(|(_, members)| std::cmp::Reverse(members.len()));
            groups.extend(g.into_iter().map(|(v, m)| (Some(v), m)));
        }
    }
    AggregateResult {
        groups: groups
            .into_iter()
            .map(|(value, members)| AggregateGroup {
                grouped_by: value.map(|value| GroupedBy {
                    path: request.group_by.clone().unwrap_or_default(),
                    value,
                }),
                count: members.len() as u64,
                properties: request
                    .properties
                    .iter()
                    .map(|p| {
                        let values: Vec<&Value> =
                            members.iter().filter_map(|i| bags[*i].get(p)).collect();
                        (p.clone(), aggregate_values(&values, resolve))
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn aggregate_values(values: &[&Value], resolve: Resolver<'_>) -> PropertyAggregate {
    let mut a = PropertyAggregate {
        count: values.len() as u64,
        ..Default::default()
    };
    let all = |f: fn(&Value) -> bool| !values.is_empty() && values.iter().all(|v| f(v));
    if values.is_empty() {
        a.kind = "none".into();
    } else if all(|v| v.is_i64() || v.is_u64()) || all(Value::is_number) {
        a.kind = if all(|v| v.is_i64() || v.is_u64()) {
            "int"
        } else {
            "number"
        }
        .into();
        let nums: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
        // Exact, then rounded once: the same in any order, as a running total kept beside
        // the objects answers it (`crate::exact_sum`).
        let sum = nums.iter().copied().collect::<ExactSum>().value();
        a.lowest = nums.iter().copied().reduce(f64::min);
        a.highest = nums.iter().copied().reduce(f64::max);
        a.sum = Some(sum);
        a.average = Some(sum / nums.len() as f64);
    } else if all(Value::is_string) {
        a.kind = "string".into();
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for v in values {
            *counts.entry(v.as_str().unwrap_or_default()).or_default() += 1;
        }
        let mut occ: Vec<Occurrence> = counts
            .into_iter()
            .map(|(value, occurs)| Occurrence {
                value: value.to_string(),
                occurs,
            })
            .collect();
        occ.sort_by(|x, y| y.occurs.cmp(&x.occurs).then_with(|| x.value.cmp(&y.value)));
        a.top_occurrences = occ;
    } else if all(Value::is_boolean) {
        a.kind = "boolean".into();
        let t = values.iter().filter(|v| v.as_bool() == Some(true)).count() as u64;
        let f = a.count - t;
        a.total_true = Some(t);
        a.total_false = Some(f);
        a.percentage_true = Some(t as f64 / a.count as f64);
        a.percentage_false = Some(f as f64 / a.count as f64);
    } else if values.iter().all(|v| !references(v).is_empty()) {
        a.kind = "reference".into();
        let classes: BTreeSet<String> = values
            .iter()
            .flat_map(|v| references(v))
            .filter_map(|(k, id)| resolve(k, id).map(|o| o.class.into_string()))
            .collect();
        a.pointing_to = classes.into_iter().collect();
    } else {
        a.kind = "mixed".into();
    }
    a
}
