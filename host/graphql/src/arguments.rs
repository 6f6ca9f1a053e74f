//! The arguments of the generated fields: `where` becomes the plugin contract's filter tree
//! ([`WhereFilter`]) and `groupBy` a path, both type-checked against the ontology before anything
//! runs. Every error is one sentence naming the path and the value at fault and what would fit.

use serde_json::Value;
use weft_plugin_api::filter::WhereFilter;
use weft_plugin_api::ObjectKind;

use weft_core::ontology::{kind_word, Class, Ontology, Property};

/// A path as the user wrote it, e.g. `["inCountry","Country","name"]`.
pub fn show_path(path: &[String]) -> String {
    serde_json::to_string(path).unwrap_or_else(|_| format!("{path:?}"))
}

/// Turns the GraphQL `where` argument (as JSON) into a filter over class `class` of `kind`,
/// checked against `ontology`.
pub fn parse_where(
    json: Value,
    ontology: &Ontology,
    kind: ObjectKind,
    class: &str,
) -> Result<WhereFilter, String> {
    let filter: WhereFilter = serde_json::from_value(strip_nulls(json))
        .map_err(|e| format!("where: the filter is not valid: {e}"))?;
    filter.validate().map_err(|e| format!("where: {e}"))?;
    check(&filter, ontology, kind, class)?;
    Ok(filter)
}

/// Checks a `groupBy` path: a property of the class, or a path through references ending at a
/// property (a reference property itself groups by the referenced object's id).
pub fn parse_group_by(
    path: Vec<String>,
    ontology: &Ontology,
    kind: ObjectKind,
    class: &str,
) -> Result<Vec<String>, String> {
    if path.is_empty() || path.len().is_multiple_of(2) {
        return Err(format!(
            "groupBy: path {} must be a property, e.g. [\"name\"], or continue through a reference as [refProperty, Class, property, …]",
            show_path(&path)
        ));
    }
    resolve_path(ontology, kind, class, &path, true).map_err(|e| format!("groupBy: {e}"))?;
    Ok(path)
}

/// Explicit `null`s in an input object mean "not given", and a single value given for a list
/// field (`path`, `operands`) is a list of one (GraphQL's input coercion).
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let v = strip_nulls(v);
                    let v = match (k.as_str(), v) {
                        ("path" | "operands", Value::Array(items)) => Value::Array(items),
                        ("path" | "operands", one) => Value::Array(vec![one]),
                        (_, v) => v,
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        v => v,
    }
}

fn check(
    f: &WhereFilter,
    ontology: &Ontology,
    kind: ObjectKind,
    class: &str,
) -> Result<(), String> {
    if !f.operands.is_empty() {
        return f
            .operands
            .iter()
            .try_for_each(|o| check(o, ontology, kind, class));
    }
    let prop =
        resolve_path(ontology, kind, class, &f.path, false).map_err(|e| format!("where: {e}"))?;
    let data_type = prop.data_type.first().map(String::as_str).unwrap_or("");
    let (given, value) = given_value(f);
    let fits: &[&str] = match data_type {
        "int" => &["valueInt"],
        "number" => &["valueNumber", "valueInt"],
        "string" | "text" => &["valueString", "valueText"],
        "boolean" => &["valueBoolean"],
        "date" => &["valueDate"],
        _ => &[],
    };
    if fits.contains(&given) {
        return Ok(());
    }
    Err(format!(
        "where: path {} is a{} {data_type} property, so {given} {value} does not fit; compare it with {}",
        show_path(&f.path),
        if data_type.starts_with(['a', 'e', 'i', 'o', 'u']) { "n" } else { "" },
        fits.join(" or ")
    ))
}

/// The name and the JSON text of a comparison's value.
fn given_value(f: &WhereFilter) -> (&'static str, String) {
    let quoted = |s: &String| Value::String(s.clone()).to_string();
    if let Some(v) = f.value_int {
        return ("valueInt", v.to_string());
    }
    if let Some(v) = f.value_number {
        return ("valueNumber", Value::from(v).to_string());
    }
    if let Some(v) = f.value_boolean {
        return ("valueBoolean", v.to_string());
    }
    if let Some(v) = &f.value_string {
        return ("valueString", quoted(v));
    }
    if let Some(v) = &f.value_text {
        return ("valueText", quoted(v));
    }
    if let Some(v) = &f.value_date {
        return ("valueDate", quoted(v));
    }
    ("no value", String::new())
}

/// Follows `path` from class `class` of `kind` and answers the property it ends at. Each step
/// must exist; a reference hop must name a class the property allows. `reference_end` allows
/// the path to end at a reference property.
pub fn resolve_path<'o>(
    ontology: &'o Ontology,
    kind: ObjectKind,
    class: &str,
    path: &[String],
    reference_end: bool,
) -> Result<&'o Property, String> {
    let shown = show_path(path);
    let mut current: &Class = ontology.class(kind, class).ok_or_else(|| {
        format!(
            "path {shown}: there is no {} class {class:?}",
            kind_word(kind)
        )
    })?;
    let mut i = 0;
    loop {
        let Some(name) = path.get(i) else {
            return Err(format!(
                "path {shown} ends with a class; name a property of {} after it",
                current.class
            ));
        };
        let prop = current
            .properties
            .iter()
            .find(|p| &p.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = current.properties.iter().map(|p| p.name.as_str()).collect();
                format!(
                    "path {shown}: class {} has no property {name:?} (its properties: {})",
                    current.class,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )
            })?;
        if i + 1 == path.len() {
            if prop.is_reference() && !reference_end {
                return Err(format!(
                    "path {shown} ends at {}.{name}, a reference to {}; continue through it to a property, e.g. [{name:?}, {:?}, \"<property>\"]",
                    current.class,
                    prop.data_type.join(" or "),
                    prop.data_type.first().map(String::as_str).unwrap_or("Class")
                ));
            }
            return Ok(prop);
        }
        if !prop.is_reference() {
            return Err(format!(
                "path {shown}: {}.{name} is a {} property, not a reference; only references continue a path",
                current.class,
                prop.data_type.join("")
            ));
        }
        let target = &path[i + 1];
        if !prop.data_type.iter().any(|t| t == target) {
            return Err(format!(
                "path {shown}: {}.{name} refers to {}, not {target:?}",
                current.class,
                prop.data_type.join(" or ")
            ));
        }
        current = ontology
            .kind_of(target)
            .and_then(|k| ontology.class(k, target))
            .ok_or_else(|| format!("path {shown}: class {target:?} is not in the schema"))?;
        i += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ontology() -> Ontology {
        let mut o = Ontology::default();
        let class = |v: Value| serde_json::from_value::<Class>(v).unwrap();
        o.add_class(
            ObjectKind::Thing,
            class(json!({"class": "Country", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "founded", "@dataType": ["date"]}]})),
        )
        .unwrap();
        o.add_class(
            ObjectKind::Thing,
            class(json!({"class": "City", "properties": [
                {"name": "name", "@dataType": ["string"]},
                {"name": "population", "@dataType": ["int"]},
                {"name": "area", "@dataType": ["number"]},
                {"name": "isCapital", "@dataType": ["boolean"]},
                {"name": "inCountry", "@dataType": ["Country"]}]})),
        )
        .unwrap();
        o
    }

    fn parse(v: Value) -> Result<WhereFilter, String> {
        parse_where(v, &ontology(), ObjectKind::Thing, "City")
    }

    #[test]
    fn a_filter_that_fits_the_ontology_passes() {
        let f = parse(json!({"operator": "And", "operands": [
            {"operator": "GreaterThan", "path": ["population"], "valueInt": 5, "valueText": null},
            {"operator": "LessThan", "path": ["area"], "valueInt": 5},
            {"operator": "Not", "operands": [{"operator": "Equal", "path": ["isCapital"], "valueBoolean": true}]},
            {"operator": "Equal", "path": ["inCountry", "Country", "name"], "valueText": "France"},
            {"operator": "LessThan", "path": ["inCountry", "Country", "founded"], "valueDate": "1900-01-01T00:00:00Z"}
        ]}))
        .unwrap();
        assert!(f.uses_reference_paths());
    }

    #[test]
    fn a_value_of_the_wrong_type_names_the_path_the_value_and_what_fits() {
        let e = parse(json!({"operator": "Equal", "path": ["population"], "valueString": "many"}))
            .unwrap_err();
        assert!(e.contains("[\"population\"]"), "{e}");
        assert!(e.contains("valueString \"many\""), "{e}");
        assert!(e.contains("valueInt"), "{e}");
        let e = parse(
            json!({"operator": "Equal", "path": ["inCountry", "Country", "name"], "valueInt": 3}),
        )
        .unwrap_err();
        assert!(
            e.contains("[\"inCountry\",\"Country\",\"name\"]") && e.contains("valueInt 3"),
            "{e}"
        );
        assert!(e.contains("valueString or valueText"), "{e}");
    }

    #[test]
    fn paths_must_exist_and_hop_only_through_allowed_classes() {
        let e =
            parse(json!({"operator": "Equal", "path": ["nmae"], "valueString": "x"})).unwrap_err();
        assert!(
            e.contains("no property \"nmae\"") && e.contains("population"),
            "{e}"
        );
        let e = parse(
            json!({"operator": "Equal", "path": ["inCountry", "City", "name"], "valueString": "x"}),
        )
        .unwrap_err();
        assert!(e.contains("refers to Country, not \"City\""), "{e}");
        let e = parse(
            json!({"operator": "Equal", "path": ["name", "Country", "name"], "valueString": "x"}),
        )
        .unwrap_err();
        assert!(e.contains("not a reference"), "{e}");
        let e = parse(json!({"operator": "Equal", "path": ["inCountry"], "valueString": "x"}))
            .unwrap_err();
        assert!(e.contains("continue through it"), "{e}");
    }

    #[test]
    fn group_by_may_end_at_a_reference_but_not_at_a_class() {
        let o = ontology();
        assert!(parse_group_by(vec!["inCountry".into()], &o, ObjectKind::Thing, "City").is_ok());
        assert!(parse_group_by(
            vec!["inCountry".into(), "Country".into(), "name".into()],
            &o,
            ObjectKind::Thing,
            "City"
        )
        .is_ok());
        let e = parse_group_by(
            vec!["inCountry".into(), "Country".into()],
            &o,
            ObjectKind::Thing,
            "City",
        )
        .unwrap_err();
        assert!(e.starts_with("groupBy: path"), "{e}");
    }
}
