//! The ontology: the classes of Things and Actions, their properties and keywords; the rules a
//! schema change must follow; and the validation of an object's property bag against its class.
//!
//! Owns: the ontology document (stored in the connector as `DocumentName::Ontology`), schema
//! change rules, object validation. Must not know: HTTP, plugins, how the document is stored.
//! Every error is a sentence for the user: what is wrong, and what to change.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weft_plugin_api::{Id, ObjectKind};

/// The primitive `@dataType`s.
pub const PRIMITIVES: [&str; 6] = ["string", "text", "int", "number", "boolean", "date"];

/// Property names the host reserves (GraphQL exposes them on every object).
const RESERVED_PROPERTIES: [&str; 2] = ["uuid", "id"];

/// Both schemas.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Ontology {
    /// Classes of Actions.
    #[serde(default)]
    pub actions: SemanticSchema,
    /// Classes of Things.
    #[serde(default)]
    pub things: SemanticSchema,
}

/// One schema (`SemanticSchema` in the contract).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SemanticSchema {
    /// URL of the context.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The classes.
    #[serde(default)]
    pub classes: Vec<Class>,
    /// Maintainer's e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer: Option<String>,
    /// Schema name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `thing` or `action`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A class (`SemanticSchemaClass`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Class {
    /// Its name, CamelCase starting with a capital.
    pub class: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Weighted keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<Keyword>,
    /// Properties.
    #[serde(default)]
    pub properties: Vec<Property>,
    /// Whether the class name's words go into its objects' vectors (default: yes).
    #[serde(
        rename = "vectorizeClassName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub vectorize_class_name: Option<bool>,
    /// Its position in the contextionary's space (weighted centroid of its keywords, or mean of
    /// its name's parts); kept with the ontology, recomputed on every change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
}

/// A property (`SemanticSchemaClassProperty`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Property {
    /// Its name, camelCase starting with a lower-case letter.
    pub name: String,
    /// One primitive, or one or more class names (a reference).
    #[serde(rename = "@dataType", default)]
    pub data_type: Vec<String>,
    /// `atMostOne` (default) or `many` (references only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cardinality: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Weighted keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<Keyword>,
    /// Whether the property name's words go into its objects' vectors beside its value
    /// (default: no).
    #[serde(
        rename = "vectorizePropertyName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub vectorize_property_name: Option<bool>,
    /// Its position in the contextionary's space, like [`Class::vector`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
}

/// A weighted keyword.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Keyword {
    /// The word.
    pub keyword: String,
    /// Its weight, in (0, 1].
    pub weight: f64,
}

/// A schema change the user asked for that breaks a rule: answered as 422 (or 404/400 where
/// noted by the caller).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    /// The request is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The class or property does not exist.
    #[error("{0}")]
    NotFound(String),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, SchemaError> {
    Err(SchemaError::Invalid(msg.into()))
}

/// Which schema a kind's classes live in.
pub fn kind_word(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Thing => "thing",
        ObjectKind::Action => "action",
    }
}

impl Property {
    /// Whether this is a reference property (its `@dataType` names classes).
    pub fn is_reference(&self) -> bool {
        self.data_type
            .first()
            .is_some_and(|t| !PRIMITIVES.contains(&t.as_str()))
    }
    /// Whether it holds many values.
    pub fn is_many(&self) -> bool {
        self.cardinality.as_deref() == Some("many")
    }
}

impl Ontology {
    /// Parses the stored document (empty text is an empty ontology).
    pub fn from_json(json: &str) -> Result<Ontology, String> {
        if json.trim().is_empty() {
            return Ok(Ontology::default());
        }
        serde_json::from_str(json).map_err(|e| format!("the stored ontology does not parse: {e}"))
    }

    /// The document as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The schema of `kind`.
    pub fn schema(&self, kind: ObjectKind) -> &SemanticSchema {
        match kind {
            ObjectKind::Thing => &self.things,
            ObjectKind::Action => &self.actions,
        }
    }

    fn schema_mut(&mut self, kind: ObjectKind) -> &mut SemanticSchema {
        match kind {
            ObjectKind::Thing => &mut self.things,
            ObjectKind::Action => &mut self.actions,
        }
    }

    /// The class `name` of `kind`.
    pub fn class(&self, kind: ObjectKind, name: &str) -> Option<&Class> {
        self.schema(kind).classes.iter().find(|c| c.class == name)
    }

    /// The kind of the class `name`, if it exists in either schema.
    pub fn kind_of(&self, name: &str) -> Option<ObjectKind> {
        [ObjectKind::Thing, ObjectKind::Action]
            .into_iter()
            .find(|k| self.class(*k, name).is_some())
    }

    fn class_mut(&mut self, kind: ObjectKind, name: &str) -> Result<&mut Class, SchemaError> {
        self.schema_mut(kind)
            .classes
            .iter_mut()
            .find(|c| c.class == name)
            .ok_or_else(|| {
                SchemaError::NotFound(format!(
                    "there is no {} class {name:?}; create it with POST /schema/{}s",
                    kind_word(kind),
                    kind_word(kind)
                ))
            })
    }

    /// Checks a whole ontology (another server's, downloaded) by the rules a local one is built
    /// with: names, keywords, no class twice (across things and actions), no property twice,
    /// property types that are primitives or classes of it, and at most `max_classes` classes
    /// and `max_properties` properties per class. The error names the first fault.
    pub fn check(&self, max_classes: usize, max_properties: usize) -> Result<(), SchemaError> {
        let classes = self.things.classes.len() + self.actions.classes.len();
        if classes > max_classes {
            return invalid(format!(
                "it has {classes} classes, more than the {max_classes} allowed"
            ));
        }
        let mut rebuilt = Ontology::default();
        for (kind, schema) in [
            (ObjectKind::Thing, &self.things),
            (ObjectKind::Action, &self.actions),
        ] {
            for c in &schema.classes {
                if c.properties.len() > max_properties {
                    return invalid(format!(
                        "class {} has {} properties, more than the {max_properties} allowed",
                        c.class,
                        c.properties.len()
                    ));
                }
                let mut bare = c.clone();
                bare.properties.clear();
                rebuilt.add_class(kind, bare)?;
            }
        }
        for schema in [&self.things, &self.actions] {
            for c in &schema.classes {
                let mut seen = BTreeSet::new();
                for p in &c.properties {
                    if !seen.insert(p.name.clone()) {
                        return invalid(format!(
                            "class {} declares the property {:?} twice",
                            c.class, p.name
                        ));
                    }
                    rebuilt.check_property(&c.class, p)?;
                }
            }
        }
        Ok(())
    }

    /// Adds a class; checks names, keywords and property types.
    pub fn add_class(&mut self, kind: ObjectKind, class: Class) -> Result<(), SchemaError> {
        check_class_name(&class.class)?;
        if let Some(k) = self.kind_of(&class.class) {
            return invalid(format!(
                "a {} class named {:?} exists already; class names are unique across things and actions, choose another name",
                kind_word(k),
                class.class
            ));
        }
        check_keywords(&format!("class {}", class.class), &class.keywords)?;
        let mut seen = BTreeSet::new();
        for p in &class.properties {
            if !seen.insert(p.name.clone()) {
                return invalid(format!(
                    "class {} declares the property {:?} twice; keep one",
                    class.class, p.name
                ));
            }
        }
        // Properties may refer to the class itself, so check them with the class in place.
        let props = class.properties.clone();
        let name = class.class.clone();
        self.schema_mut(kind).classes.push(class);
        for p in &props {
            if let Err(e) = self.check_property(&name, p) {
                self.schema_mut(kind).classes.retain(|c| c.class != name);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Renames a class and/or replaces its keywords.
    pub fn update_class(
        &mut self,
        kind: ObjectKind,
        name: &str,
        new_name: Option<String>,
        keywords: Option<Vec<Keyword>>,
    ) -> Result<(), SchemaError> {
        self.class_mut(kind, name)?;
        if let Some(k) = &keywords {
            check_keywords(&format!("class {name}"), k)?;
        }
        if let Some(n) = new_name.as_ref().filter(|n| n.as_str() != name) {
            check_class_name(n)?;
            if self.kind_of(n).is_some() {
                return invalid(format!(
                    "cannot rename {name} to {n}: a class named {n} exists already"
                ));
            }
        }
        let class = self.class_mut(kind, name)?;
        if let Some(k) = keywords {
            class.keywords = k;
        }
        if let Some(n) = new_name {
            class.class = n.clone();
            // References to the class follow the rename.
            for schema in [&mut self.things, &mut self.actions] {
                for c in &mut schema.classes {
                    for p in &mut c.properties {
                        for t in &mut p.data_type {
                            if t == name {
                                *t = n.clone();
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes a class. Refused while another class's property refers to it.
    pub fn delete_class(&mut self, kind: ObjectKind, name: &str) -> Result<(), SchemaError> {
        self.class_mut(kind, name)?;
        for schema in [&self.things, &self.actions] {
            for c in &schema.classes {
                if c.class == name {
                    continue;
                }
                if let Some(p) = c
                    .properties
                    .iter()
                    .find(|p| p.data_type.iter().any(|t| t == name))
                {
                    return invalid(format!(
                        "class {name} is referred to by {}.{}; delete or change that property first",
                        c.class, p.name
                    ));
                }
            }
        }
        self.schema_mut(kind).classes.retain(|c| c.class != name);
        Ok(())
    }

    /// Adds a property to a class.
    pub fn add_property(
        &mut self,
        kind: ObjectKind,
        class: &str,
        p: Property,
    ) -> Result<(), SchemaError> {
        let c = self.class_mut(kind, class)?;
        if c.properties.iter().any(|x| x.name == p.name) {
            return invalid(format!(
                "class {class} has a property {:?} already; choose another name or update it with PUT",
                p.name
            ));
        }
        self.check_property(class, &p)?;
        self.class_mut(kind, class)?.properties.push(p);
        Ok(())
    }

    /// Renames a property and/or replaces its keywords.
    pub fn update_property(
        &mut self,
        kind: ObjectKind,
        class: &str,
        name: &str,
        new_name: Option<String>,
        keywords: Option<Vec<Keyword>>,
    ) -> Result<(), SchemaError> {
        let c = self.class_mut(kind, class)?;
        if !c.properties.iter().any(|p| p.name == name) {
            return Err(SchemaError::NotFound(format!(
                "class {class} has no property {name:?}"
            )));
        }
        if let Some(n) = new_name.as_ref().filter(|n| n.as_str() != name) {
            check_property_name(n)?;
            if c.properties.iter().any(|p| &p.name == n) {
                return invalid(format!(
                    "cannot rename {class}.{name} to {n}: the class has a property {n} already"
                ));
            }
        }
        if let Some(k) = &keywords {
            check_keywords(&format!("property {class}.{name}"), k)?;
        }
        let p = c
            .properties
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                SchemaError::NotFound(format!("class {class} has no property {name:?}"))
            })?;
        if let Some(n) = new_name {
            p.name = n;
        }
        if let Some(k) = keywords {
            p.keywords = k;
        }
        Ok(())
    }

    /// Deletes a property.
    pub fn delete_property(
        &mut self,
        kind: ObjectKind,
        class: &str,
        name: &str,
    ) -> Result<(), SchemaError> {
        let c = self.class_mut(kind, class)?;
        let before = c.properties.len();
        c.properties.retain(|p| p.name != name);
        if c.properties.len() == before {
            return Err(SchemaError::NotFound(format!(
                "class {class} has no property {name:?}"
            )));
        }
        Ok(())
    }

    fn check_property(&self, class: &str, p: &Property) -> Result<(), SchemaError> {
        check_property_name(&p.name)?;
        let at = format!("property {class}.{}", p.name);
        check_keywords(&at, &p.keywords)?;
        if p.data_type.is_empty() {
            return invalid(format!(
                "{at} has no @dataType; give one of {PRIMITIVES:?} or the names of the classes it refers to"
            ));
        }
        let primitives: Vec<&String> = p
            .data_type
            .iter()
            .filter(|t| PRIMITIVES.contains(&t.as_str()))
            .collect();
        if !primitives.is_empty() && p.data_type.len() > 1 {
            return invalid(format!(
                "{at}: @dataType {:?} mixes a primitive type with others; give exactly one primitive, or only class names",
                p.data_type
            ));
        }
        if primitives.is_empty() {
            for t in &p.data_type {
                if self.kind_of(t).is_none() {
                    return invalid(format!(
                        "{at}: @dataType {t:?} is neither a primitive ({}) nor an existing class; create class {t} first or fix the name",
                        PRIMITIVES.join(", ")
                    ));
                }
            }
        }
        match p.cardinality.as_deref() {
            None | Some("atMostOne") => {}
            Some("many") if primitives.is_empty() => {}
            Some("many") => {
                return invalid(format!(
                "{at}: cardinality \"many\" is only for reference properties; use atMostOne for {}",
                p.data_type[0]
            ))
            }
            Some(other) => {
                return invalid(format!(
                    "{at}: cardinality {other:?} is unknown; use \"atMostOne\" or \"many\""
                ))
            }
        }
        Ok(())
    }

    /// Validates an object's property bag against class `class` of `kind`. Answers the
    /// references found (to be checked for existence by the caller) or one sentence naming the
    /// property at fault.
    pub fn validate_object(
        &self,
        kind: ObjectKind,
        class: &str,
        props: &Map<String, Value>,
    ) -> Result<Vec<FoundReference>, String> {
        let Some(c) = self.class(kind, class) else {
            let hint = match self.kind_of(class) {
                Some(k) => format!(
                    "{class} is a{} {} class; send it to /{}s",
                    if k == ObjectKind::Action { "n" } else { "" },
                    kind_word(k),
                    kind_word(k)
                ),
                None => format!("create it first with POST /schema/{}s", kind_word(kind)),
            };
            return Err(format!(
                "@class {class:?} is not a {} class: {hint}",
                kind_word(kind)
            ));
        };
        let mut refs = vec![];
        for (name, value) in props {
            let Some(p) = c.properties.iter().find(|p| &p.name == name) else {
                let known: Vec<&str> = c.properties.iter().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "class {class} has no property {name:?} (its properties: {}); add it to the schema or fix the name",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
            };
            if value.is_null() {
                continue;
            }
            let at = format!("property {name:?} of class {class}");
            if p.is_reference() {
                let items: Vec<&Value> = match (value, p.is_many()) {
                    (Value::Array(items), true) => items.iter().collect(),
                    (v @ Value::Object(_), false) => vec![v],
                    (Value::Array(_), false) => {
                        return Err(format!(
                            "{at} holds at most one reference (cardinality atMostOne); send one {{\"$cref\",\"locationUrl\",\"type\"}} object, not an array"
                        ))
                    }
                    (_, true) => {
                        return Err(format!(
                            "{at} holds many references (cardinality many); send an array of {{\"$cref\",\"locationUrl\",\"type\"}} objects"
                        ))
                    }
                    _ => {
                        return Err(format!(
                            "{at} is a reference to {}; send {{\"$cref\":\"<uuid>\",\"locationUrl\":\"http://localhost/\",\"type\":\"Thing\"}}",
                            p.data_type.join(" or ")
                        ))
                    }
                };
                for item in items {
                    let r = parse_reference(item).map_err(|e| format!("{at}: {e}"))?;
                    refs.push(FoundReference {
                        property: name.clone(),
                        allowed_classes: p.data_type.clone(),
                        reference: r,
                    });
                }
            } else {
                check_primitive(&p.data_type[0], value).map_err(|e| format!("{at}: {e}"))?;
            }
        }
        Ok(refs)
    }
}

/// A reference `{"$cref","locationUrl","type"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The target id.
    pub id: Id,
    /// Where the target lives (`http://localhost/` when not given).
    pub location_url: String,
    /// Thing or Action (`None` for a `Key` reference).
    pub kind: Option<ObjectKind>,
}

/// A reference found in an object, with the classes its property allows.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundReference {
    /// The property holding it.
    pub property: String,
    /// Classes the property allows.
    pub allowed_classes: Vec<String>,
    /// The reference.
    pub reference: Reference,
}

/// The contract's default location: this server.
pub const LOCALHOST_URL: &str = "http://localhost/";

/// Parses a `SingleRef` value.
pub fn parse_reference(v: &Value) -> Result<Reference, String> {
    let o = v.as_object().ok_or_else(|| {
        "a reference is an object {\"$cref\":\"<uuid>\",\"locationUrl\":\"http://localhost/\",\"type\":\"Thing\"}".to_string()
    })?;
    for k in o.keys() {
        if !matches!(k.as_str(), "$cref" | "locationUrl" | "type") {
            return Err(format!(
                "a reference has only \"$cref\", \"locationUrl\" and \"type\"; remove {k:?}"
            ));
        }
    }
    let id = o
        .get("$cref")
        .and_then(Value::as_str)
        .ok_or("a reference needs \"$cref\": the UUID of the object it points to")?;
    let id: Id = id
        .parse()
        .map_err(|_| format!("\"$cref\" {id:?} is not a UUID"))?;
    let location_url = match o.get("locationUrl") {
        None => LOCALHOST_URL.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("\"locationUrl\" must be a URL string".into()),
    };
    let kind = match o.get("type").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("thing") => Some(ObjectKind::Thing),
        Some(t) if t.eq_ignore_ascii_case("action") => Some(ObjectKind::Action),
        Some(t) if t.eq_ignore_ascii_case("key") => None,
        Some(t) => {
            return Err(format!(
                "reference \"type\" {t:?} must be \"Thing\", \"Action\" or \"Key\""
            ))
        }
        None => return Err("a reference needs \"type\": \"Thing\" or \"Action\"".into()),
    };
    Ok(Reference {
        id,
        location_url,
        kind,
    })
}

fn check_primitive(t: &str, v: &Value) -> Result<(), String> {
    let ok = match t {
        "string" | "text" => v.is_string(),
        "int" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "date" => {
            let s = v
                .as_str()
                .ok_or("expects a date: an RFC 3339 string such as \"2018-11-21T10:00:00Z\"")?;
            chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
                format!("{s:?} is not an RFC 3339 date ({e}); write e.g. \"2018-11-21T10:00:00Z\"")
            })?;
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expects {} but got {}",
            describe_type(t),
            describe_value(v)
        ))
    }
}

fn describe_type(t: &str) -> &'static str {
    match t {
        "string" => "a string",
        "text" => "a text (string)",
        "int" => "an int (a whole number)",
        "number" => "a number",
        "boolean" => "a boolean (true or false)",
        _ => "a value of its @dataType",
    }
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn check_class_name(name: &str) -> Result<(), SchemaError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "class name {name:?} must be CamelCase: a capital letter, then letters and digits (e.g. \"City\", \"AirPort\")"
        ))
    }
}

fn check_property_name(name: &str) -> Result<(), SchemaError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if !ok {
        return invalid(format!(
            "property name {name:?} must be camelCase: a lower-case letter, then letters and digits (e.g. \"name\", \"inCountry\")"
        ));
    }
    if RESERVED_PROPERTIES.contains(&name) {
        return invalid(format!(
            "property name {name:?} is reserved (every object has it already); choose another name"
        ));
    }
    Ok(())
}

fn check_keywords(at: &str, keywords: &[Keyword]) -> Result<(), SchemaError> {
    for k in keywords {
        if k.keyword.trim().is_empty() {
            return invalid(format!("{at}: a keyword is empty; give a word"));
        }
        if !(k.weight > 0.0 && k.weight <= 1.0) {
            return invalid(format!(
                "{at}: keyword {:?} has weight {}; weights must be greater than 0 and at most 1",
                k.keyword, k.weight
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(name: &str, props: Value) -> Class {
        serde_json::from_value(json!({"class": name, "properties": props})).unwrap()
    }

    #[test]
    fn another_servers_ontology_is_checked_by_the_local_rules() {
        let good = sample();
        good.check(100, 100).unwrap();
        // The same class in things and in actions.
        let mut twice = sample();
        twice.actions.classes.push(twice.things.classes[0].clone());
        assert!(twice
            .check(100, 100)
            .unwrap_err()
            .to_string()
            .contains("exists already"));
        // A property twice, a reference to a class it lacks, a bad name, too many classes.
        let mut dup = sample();
        let p = dup.things.classes[1].properties[0].clone();
        dup.things.classes[1].properties.push(p);
        assert!(dup
            .check(100, 100)
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let mut dangling = sample();
        dangling.things.classes.retain(|c| c.class != "Country");
        assert!(dangling.check(100, 100).is_err());
        let mut named = sample();
        named.things.classes[0].class = "not-a-class".into();
        assert!(named.check(100, 100).is_err());
        assert!(good
            .check(1, 100)
            .unwrap_err()
            .to_string()
            .contains("classes"));
        assert!(good
            .check(100, 1)
            .unwrap_err()
            .to_string()
            .contains("properties"));
    }

    fn sample() -> Ontology {
        let mut o = Ontology::default();
        o.add_class(
            ObjectKind::Thing,
            class("Country", json!([{"name":"name","@dataType":["string"]}])),
        )
        .unwrap();
        o.add_class(
            ObjectKind::Thing,
            class(
                "City",
                json!([
                    {"name":"name","@dataType":["string"]},
                    {"name":"population","@dataType":["int"]},
                    {"name":"founded","@dataType":["date"]},
                    {"name":"inCountry","@dataType":["Country"]},
                    {"name":"twins","@dataType":["City"],"cardinality":"many"}
                ]),
            ),
        )
        .unwrap();
        o
    }

    #[test]
    fn class_names_are_unique_across_things_and_actions() {
        let mut o = sample();
        let e = o
            .add_class(ObjectKind::Action, class("City", json!([])))
            .unwrap_err();
        assert!(
            e.to_string().contains("unique across things and actions"),
            "{e}"
        );
    }

    #[test]
    fn reference_to_unknown_class_is_refused_and_nothing_changes() {
        let mut o = sample();
        let before = o.clone();
        let e = o
            .add_class(
                ObjectKind::Thing,
                class("Airport", json!([{"name":"city","@dataType":["Town"]}])),
            )
            .unwrap_err();
        assert!(e.to_string().contains("\"Town\""), "{e}");
        assert_eq!(o, before);
    }

    #[test]
    fn wrong_value_type_names_the_property() {
        let o = sample();
        let props = json!({"population": "many"});
        let e = o
            .validate_object(ObjectKind::Thing, "City", props.as_object().unwrap())
            .unwrap_err();
        assert!(e.contains("\"population\"") && e.contains("int"), "{e}");
    }

    #[test]
    fn cardinality_is_enforced() {
        let o = sample();
        let r = json!({"$cref": Id::random().to_string(), "locationUrl": "http://localhost/", "type": "Thing"});
        let e = o
            .validate_object(
                ObjectKind::Thing,
                "City",
                json!({"inCountry": [r.clone()]}).as_object().unwrap(),
            )
            .unwrap_err();
        assert!(e.contains("atMostOne"), "{e}");
        let e = o
            .validate_object(
                ObjectKind::Thing,
                "City",
                json!({"twins": r.clone()}).as_object().unwrap(),
            )
            .unwrap_err();
        assert!(e.contains("array"), "{e}");
        let refs = o
            .validate_object(
                ObjectKind::Thing,
                "City",
                json!({"twins": [r.clone(), r]}).as_object().unwrap(),
            )
            .unwrap();
        assert_eq!(refs.len(), 2);
    }

    #[test]
    fn dates_must_be_rfc3339() {
        let o = sample();
        let e = o
            .validate_object(
                ObjectKind::Thing,
                "City",
                json!({"founded": "1237"}).as_object().unwrap(),
            )
            .unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
    }

    #[test]
    fn keyword_weights_must_be_in_range() {
        let mut o = sample();
        let e = o
            .update_class(
                ObjectKind::Thing,
                "City",
                None,
                Some(vec![Keyword {
                    keyword: "town".into(),
                    weight: 1.5,
                }]),
            )
            .unwrap_err();
        assert!(e.to_string().contains("at most 1"), "{e}");
    }

    #[test]
    fn renaming_a_class_renames_references_to_it() {
        let mut o = sample();
        o.update_class(ObjectKind::Thing, "Country", Some("Nation".into()), None)
            .unwrap();
        let city = o.class(ObjectKind::Thing, "City").unwrap();
        assert_eq!(city.properties[3].data_type, vec!["Nation".to_string()]);
    }

    #[test]
    fn a_referred_class_cannot_be_deleted() {
        let mut o = sample();
        let e = o.delete_class(ObjectKind::Thing, "Country").unwrap_err();
        assert!(e.to_string().contains("City.inCountry"), "{e}");
    }
}
