//! The type registry of the GraphQL schema, and what every part of it shares: type names are
//! handed out once (a collision is a build error naming both uses), the `where` filter input
//! with its operators, grouping fields, and the report of a resolver's error. `Local`
//! ([`crate::local_query`]) and `Network` ([`crate::network_query`]) add their types here;
//! [`crate::schema`] composes them.

use std::collections::HashMap;

use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, ResolverContext, Type, TypeRef,
};
use async_graphql::{Error, PathSegment};

/// The filter input (`where`).
pub(crate) const WHERE: &str = "WhereInpObj";
/// The filter's operators.
pub(crate) const OPERATOR: &str = "WhereOperatorEnum";

const OPERATORS: [&str; 9] = [
    "And",
    "Or",
    "Not",
    "Equal",
    "NotEqual",
    "GreaterThan",
    "GreaterThanEqual",
    "LessThan",
    "LessThanEqual",
];

/// Type names handed out so far, each with what it is for (to explain a collision).
pub(crate) struct Registry {
    names: HashMap<String, String>,
    types: Vec<Type>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        let names = ["Int", "Float", "String", "Boolean", "ID"]
            .into_iter()
            .map(|n| (n.to_string(), format!("the built-in scalar {n}")))
            .collect();
        Registry {
            names,
            types: vec![],
        }
    }

    /// Whether `name` is taken.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    pub(crate) fn add(
        &mut self,
        name: &str,
        what: String,
        ty: impl Into<Type>,
    ) -> Result<(), String> {
        if let Some(first) = self.names.get(name) {
            return Err(format!(
                "the GraphQL schema cannot be built: the type name {name} is needed for {first} and for {what}; rename the class"
            ));
        }
        self.names.insert(name.to_string(), what);
        self.types.push(ty.into());
        Ok(())
    }

    /// Every type added, in the order added.
    pub(crate) fn into_types(self) -> Vec<Type> {
        self.types
    }
}

/// `name` with its first letter upper-case (a reference property's name in a type name).
pub(crate) fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A field that only groups others (`Local`, `Get`, `Things`, …).
pub(crate) fn container(name: &str, ty: &str) -> Field {
    Field::new(name, TypeRef::named_nn(ty), |_| {
        FieldFuture::Value(Some(FieldValue::owned_any(())))
    })
}

/// Registers the `where` filter input and its operators, which `Local` and each peer's
/// `Network.Get` take alike.
pub(crate) fn filter_types(reg: &mut Registry) -> Result<(), String> {
    let value = |name: &str, ty: &str| InputValue::new(name, TypeRef::named(ty));
    let filter = InputObject::new(WHERE)
        .description("A filter: a comparison of the value at `path` with one value, or `operands` combined by And, Or or Not. A path continues through references as [refProperty, Class, property, …].")
        .field(InputValue::new("operator", TypeRef::named_nn(OPERATOR)))
        .field(InputValue::new("operands", TypeRef::named_nn_list(WHERE)))
        .field(InputValue::new("path", TypeRef::named_nn_list(TypeRef::STRING)))
        .field(value("valueInt", TypeRef::INT))
        .field(value("valueNumber", TypeRef::FLOAT))
        .field(value("valueBoolean", TypeRef::BOOLEAN))
        .field(value("valueString", TypeRef::STRING))
        .field(value("valueText", TypeRef::STRING))
        .field(value("valueDate", TypeRef::STRING).description("An RFC 3339 date."));
    reg.add(WHERE, "the where filter".into(), filter)?;
    reg.add(
        OPERATOR,
        "the filter operators".into(),
        Enum::new(OPERATOR).items(OPERATORS),
    )?;
    Ok(())
}

/// Reports a resolver's error with the field's path (the dynamic schema leaves it out) and
/// answers null for the field.
pub(crate) fn report<'b>(
    ctx: &ResolverContext<'_>,
    r: Result<Option<FieldValue<'b>>, Error>,
) -> Result<Option<FieldValue<'b>>, Error> {
    match r {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = ctx
                .path_node
                .map(|n| n.to_string_vec())
                .unwrap_or_default()
                .into_iter()
                .map(PathSegment::Field)
                .collect();
            ctx.add_error(e.into_server_error(ctx.item.pos).with_path(path));
            Ok(None)
        }
    }
}
