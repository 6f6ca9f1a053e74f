//! GraphQL `Local`: the queries of this server's own objects (`Get`, `GetMeta`, `Aggregate`),
//! their types generated from the ontology and their resolvers. The type names are described in
//! [`crate::schema`].

use std::sync::Arc;

use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, TypeRef,
    Union,
};
use async_graphql::{Error, Number, Value as GqlValue};
use serde_json::Value;
use weft_plugin_api::aggregate::{AggregateGroup, AggregateRequest, Occurrence, PropertyAggregate};
use weft_plugin_api::filter::WhereFilter;
use weft_plugin_api::ObjectKind;

use crate::arguments;
use crate::data::{Obj, RequestEnv};
use crate::registry::{capitalised, container, report, Registry, WHERE};
use weft_core::meaning::{Concepts, Movement, Scope};
use weft_core::ontology::{Class, Ontology, Property};

const LOCAL: &str = "WeaviateLocalObj";
const META_COUNT: &str = "MetaCountObj";
const META_INT: &str = "MetaIntPropertyObj";
const META_NUMBER: &str = "MetaNumberPropertyObj";
const META_STRING: &str = "MetaStringPropertyObj";
const META_OCCURRENCE: &str = "MetaTopOccurrenceObj";
const META_BOOLEAN: &str = "MetaBooleanPropertyObj";
const META_REFERENCE: &str = "MetaReferencePropertyObj";
const GROUPED_BY: &str = "AggregateGroupedByObj";
const EXPLORE_INPUT: &str = "ExploreInpObj";
pub(crate) const MOVE_INPUT: &str = "ExploreMoveInpObj";
const EXPLORE_RESULT: &str = "WeaviateLocalExploreObj";

/// The three parts of `Local`.
#[derive(Clone, Copy, PartialEq)]
enum Section {
    Get,
    GetMeta,
    Aggregate,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::Get => "Get",
            Section::GetMeta => "GetMeta",
            Section::Aggregate => "Aggregate",
        }
    }
}

/// The count of a group (`meta { count }`).
struct Count(u64);

/// One property's aggregate with its `@dataType` (the `type` field).
struct PropView {
    data_type: String,
    agg: PropertyAggregate,
}

/// The types of `Local`, and its field.
pub(crate) fn types(
    reg: &mut Registry,
    ontology: &Ontology,
    kinds: &[(ObjectKind, &str, &[Class])],
) -> Result<Field, String> {
    let mut local = Object::new(LOCAL)
        .description("Queries of this server's own objects.")
        .field(explore_field());
    for section in [Section::Get, Section::GetMeta, Section::Aggregate] {
        let section_type = format!("WeaviateLocal{}Obj", section.name());
        let mut section_obj = Object::new(&section_type);
        for (kind, word, classes) in kinds {
            let kind_type = format!("WeaviateLocal{}{word}Obj", section.name());
            let mut kind_obj = Object::new(&kind_type);
            for class in classes.iter() {
                kind_obj = kind_obj.field(class_field(section, *kind, class));
                class_types(reg, section, ontology, class)?;
            }
            reg.add(
                &kind_type,
                format!("Local.{}.{word}", section.name()),
                kind_obj,
            )?;
            section_obj = section_obj.field(container(word, &kind_type));
        }
        reg.add(
            &section_type,
            format!("Local.{}", section.name()),
            section_obj,
        )?;
        local = local.field(container(section.name(), &section_type));
    }
    reg.add(LOCAL, "Local".into(), local)?;
    Ok(container("Local", LOCAL))
}

/// Registers the aggregate types of GetMeta and Aggregate (`meta { count }`, each data type's
/// aggregate, `topOccurrences`, `groupedBy`).
pub(crate) fn aggregate_types(reg: &mut Registry) -> Result<(), String> {
    reg.add(
        META_COUNT,
        "meta { count }".into(),
        Object::new(META_COUNT).field(Field::new(
            "count",
            TypeRef::named_nn(TypeRef::INT),
            |ctx| {
                let n = ctx.parent_value.downcast_ref::<Count>().map(|c| c.0);
                FieldFuture::Value(n.map(|n| FieldValue::value(int(n))))
            },
        )),
    )?;
    let numeric = |name: &str, whole: bool| {
        let ty = if whole { TypeRef::INT } else { TypeRef::FLOAT };
        let num =
            move |x: Option<f64>| x.and_then(|x| if whole { whole_number(x) } else { float(x) });
        common_fields(Object::new(name))
            .field(prop_field("lowest", ty, move |p| num(p.agg.lowest)))
            .field(prop_field("highest", ty, move |p| num(p.agg.highest)))
            .field(prop_field("average", TypeRef::FLOAT, |p| {
                p.agg.average.and_then(float)
            }))
            .field(prop_field("sum", ty, move |p| num(p.agg.sum)))
    };
    reg.add(
        META_INT,
        "int properties' aggregates".into(),
        numeric(META_INT, true),
    )?;
    reg.add(
        META_NUMBER,
        "number properties' aggregates".into(),
        numeric(META_NUMBER, false),
    )?;
    let top = Field::new(
        "topOccurrences",
        TypeRef::named_nn_list(META_OCCURRENCE),
        |ctx| {
            FieldFuture::new(async move {
                let r = async {
                    let env = ctx.data::<Arc<RequestEnv>>()?;
                    let first = count_arg(&ctx, "first")?.unwrap_or(env.limit());
                    let p = ctx.parent_value.try_downcast_ref::<PropView>()?;
                    let items: Vec<FieldValue> = p
                        .agg
                        .top_occurrences
                        .iter()
                        .take(usize::try_from(first).unwrap_or(usize::MAX))
                        .cloned()
                        .map(FieldValue::owned_any)
                        .collect();
                    Ok(Some(FieldValue::list(items)))
                };
                report(&ctx, r.await)
            })
        },
    )
    .description("The distinct values, most frequent first (ties by value); `first` defaults to the server's limit.")
    .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)));
    reg.add(
        META_STRING,
        "string, text and date properties' aggregates".into(),
        common_fields(Object::new(META_STRING)).field(top),
    )?;
    let occurrence = |name: &str, ty: &str, get: fn(&Occurrence) -> GqlValue| {
        Field::new(name, TypeRef::named_nn(ty), move |ctx| {
            let o = ctx.parent_value.downcast_ref::<Occurrence>();
            FieldFuture::Value(o.map(|o| FieldValue::value(get(o))))
        })
    };
    reg.add(
        META_OCCURRENCE,
        "topOccurrences".into(),
        Object::new(META_OCCURRENCE)
            .field(occurrence("value", TypeRef::STRING, |o| {
                GqlValue::String(o.value.clone())
            }))
            .field(occurrence("occurs", TypeRef::INT, |o| int(o.occurs))),
    )?;
    reg.add(
        META_BOOLEAN,
        "boolean properties' aggregates".into(),
        common_fields(Object::new(META_BOOLEAN))
            .field(prop_field("totalTrue", TypeRef::INT, |p| {
                p.agg.total_true.map(int)
            }))
            .field(prop_field("percentageTrue", TypeRef::FLOAT, |p| {
                p.agg.percentage_true.and_then(float)
            }))
            .field(prop_field("totalFalse", TypeRef::INT, |p| {
                p.agg.total_false.map(int)
            }))
            .field(prop_field("percentageFalse", TypeRef::FLOAT, |p| {
                p.agg.percentage_false.and_then(float)
            })),
    )?;
    reg.add(
        META_REFERENCE,
        "reference properties' aggregates".into(),
        common_fields(Object::new(META_REFERENCE)).field(Field::new(
            "pointingTo",
            TypeRef::named_nn_list(TypeRef::STRING),
            |ctx| {
                let classes = ctx.parent_value.downcast_ref::<PropView>().map(|p| {
                    GqlValue::List(
                        p.agg
                            .pointing_to
                            .iter()
                            .map(|c| GqlValue::String(c.clone()))
                            .collect(),
                    )
                });
                FieldFuture::Value(classes.map(FieldValue::value))
            },
        )),
    )?;
    let grouped = Object::new(GROUPED_BY)
        .field(Field::new(
            "path",
            TypeRef::named_nn_list(TypeRef::STRING),
            |ctx| {
                let path = ctx.parent_value.downcast_ref::<AggregateGroup>().map(|g| {
                    let path = g
                        .grouped_by
                        .as_ref()
                        .map(|b| b.path.clone())
                        .unwrap_or_default();
                    GqlValue::List(path.into_iter().map(GqlValue::String).collect())
                });
                FieldFuture::Value(path.map(FieldValue::value))
            },
        ))
        .field(Field::new(
            "value",
            TypeRef::named(TypeRef::STRING),
            |ctx| {
                let value = ctx
                    .parent_value
                    .downcast_ref::<AggregateGroup>()
                    .and_then(|g| g.grouped_by.as_ref())
                    .map(|b| GqlValue::String(group_value_text(&b.value)));
                FieldFuture::Value(value.map(FieldValue::value))
            },
        ));
    reg.add(GROUPED_BY, "groupedBy".into(), grouped)
}
/// `type` and `count`, on every property aggregate.
fn common_fields(o: Object) -> Object {
    o.field(prop_field("type", TypeRef::STRING, |p| {
        Some(GqlValue::String(p.data_type.clone()))
    }))
    .field(prop_field("count", TypeRef::INT, |p| {
        Some(int(p.agg.count))
    }))
}

fn prop_field(
    name: &str,
    ty: &str,
    get: impl Fn(&PropView) -> Option<GqlValue> + Send + Sync + 'static,
) -> Field {
    Field::new(name, TypeRef::named(ty), move |ctx| {
        let v = ctx.parent_value.downcast_ref::<PropView>().and_then(&get);
        FieldFuture::Value(v.map(FieldValue::value))
    })
}

fn int(n: u64) -> GqlValue {
    GqlValue::Number(Number::from(n))
}

fn float(x: f64) -> Option<GqlValue> {
    Number::from_f64(x).map(GqlValue::Number)
}

fn whole_number(x: f64) -> Option<GqlValue> {
    // Aggregates cross as f64; an int property's lowest/highest/sum are whole numbers.
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
        Some(GqlValue::Number(Number::from(x as i64)))
    } else {
        float(x)
    }
}

/// A group's value as text: strings as they are, references as the target's id, anything
/// else as JSON.
fn group_value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("$cref").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => v.to_string(),
        },
        v => v.to_string(),
    }
}

/// The field of class `class` under `Local.<section>.<Things|Actions>`.
fn class_field(section: Section, kind: ObjectKind, class: &Class) -> Field {
    let name = class.class.clone();
    let described = |f: Field| match &class.description {
        Some(d) => f.description(d.clone()),
        None => f,
    };
    let where_arg = InputValue::new("where", TypeRef::named(WHERE));
    match section {
        Section::Get => described(Field::new(
            &class.class,
            TypeRef::named_list(&class.class),
            move |ctx| {
                let class = name.clone();
                FieldFuture::new(async move {
                    let r = get_objects(&ctx, kind, &class).await;
                    report(&ctx, r)
                })
            },
        ))
        .argument(
            InputValue::new("first", TypeRef::named(TypeRef::INT)).description(
                "How many objects (newest first); default and maximum: the server's limit.",
            ),
        )
        .argument(
            InputValue::new("after", TypeRef::named(TypeRef::INT))
                .description("How many matching objects to skip."),
        )
        .argument(InputValue::new("explore", TypeRef::named(EXPLORE_INPUT)).description(
            "Search by meaning: the objects nearest to the concepts, most certain first (`where` applies first); each answers `_certainty`.",
        ))
        .argument(where_arg),
        Section::GetMeta => described(Field::new(
            &class.class,
            TypeRef::named(format!("Meta{}Obj", class.class)),
            move |ctx| {
                let class = name.clone();
                FieldFuture::new(async move {
                    let r = aggregate(&ctx, kind, &class, None).await.map(|mut groups| {
                        let group = if groups.is_empty() {
                            AggregateGroup::default()
                        } else {
                            groups.swap_remove(0)
                        };
                        Some(FieldValue::owned_any(group))
                    });
                    report(&ctx, r)
                })
            },
        ))
        .argument(where_arg),
        Section::Aggregate => described(Field::new(
            &class.class,
            TypeRef::named_list(format!("Aggregate{}Obj", class.class)),
            move |ctx| {
                let class = name.clone();
                FieldFuture::new(async move {
                    let r = async {
                        let ontology = ctx.data::<Arc<Ontology>>()?;
                        // A single value for a list argument is a list of one (GraphQL's
                        // input coercion).
                        let arg = ctx.args.try_get("groupBy")?;
                        let path = match arg.list() {
                            Ok(items) => items
                                .iter()
                                .map(|v| v.string().map(str::to_string))
                                .collect::<Result<Vec<_>, _>>()?,
                            Err(_) => vec![arg.string()?.to_string()],
                        };
                        let path = arguments::parse_group_by(path, ontology, kind, &class)?;
                        let groups = aggregate(&ctx, kind, &class, Some(path)).await?;
                        Ok(Some(FieldValue::list(
                            groups.into_iter().map(FieldValue::owned_any),
                        )))
                    };
                    report(&ctx, r.await)
                })
            },
        ))
        .argument(
            InputValue::new("groupBy", TypeRef::named_nn_list_nn(TypeRef::STRING)).description(
                "The path to group by: a property, or [refProperty, Class, property, …].",
            ),
        )
        .argument(where_arg),
    }
}

/// A page of Get: the `first`, `after` and `where` arguments applied.
async fn get_objects<'b>(
    ctx: &ResolverContext<'_>,
    kind: ObjectKind,
    class: &str,
) -> Result<Option<FieldValue<'b>>, Error> {
    let env = ctx.data::<Arc<RequestEnv>>()?;
    let ontology = ctx.data::<Arc<Ontology>>()?;
    let filter = where_filter(ctx, ontology, kind, class)?;
    let limit = env.limit();
    if let Some(explore) = arg_json(ctx, "explore")? {
        let explore: ExploreArg = parse_arg("explore", explore)?;
        if !env.filter_goes_to_connector(filter.as_ref()) {
            return Err(Error::new(
                "explore with a `where` through references needs a connector that filters reference paths for this key; search without the reference path, or as a root key",
            ));
        }
        let first = count_arg(ctx, "first")?.unwrap_or(limit.min(env.max_explore_k()));
        let after = count_arg(ctx, "after")?.unwrap_or(0);
        let scope = Scope::Class {
            kind,
            class: class.to_string(),
            filter_json: filter
                .as_ref()
                .map(|f| serde_json::to_string(f).unwrap_or_default())
                .unwrap_or_default(),
        };
        let found = env
            .explore(
                &explore.concepts(),
                &scope,
                first.saturating_add(after),
                explore.certainty,
            )
            .await
            .map_err(api_error)?;
        return Ok(Some(FieldValue::list(
            found
                .into_iter()
                .skip(usize::try_from(after).unwrap_or(usize::MAX))
                .map(|f| FieldValue::owned_any(Obj::found(f))),
        )));
    }
    let first = count_arg(ctx, "first")?.map_or(limit, |n| n.min(limit));
    let after = count_arg(ctx, "after")?.unwrap_or(0);
    let page = env
        .get_page(kind, class, filter.as_ref(), after, first)
        .await
        .map_err(api_error)?;
    Ok(Some(FieldValue::list(
        page.into_iter().map(|o| FieldValue::owned_any(Obj::new(o))),
    )))
}

/// Runs the aggregate a GetMeta or Aggregate field asks for: the class's properties selected
/// below the field, grouped by `group_by`.
async fn aggregate(
    ctx: &ResolverContext<'_>,
    kind: ObjectKind,
    class: &str,
    group_by: Option<Vec<String>>,
) -> Result<Vec<AggregateGroup>, Error> {
    let env = ctx.data::<Arc<RequestEnv>>()?;
    let ontology = ctx.data::<Arc<Ontology>>()?;
    let filter = where_filter(ctx, ontology, kind, class)?;
    let known: Vec<&str> = ontology
        .class(kind, class)
        .map(|c| c.properties.iter().map(|p| p.name.as_str()).collect())
        .unwrap_or_default();
    let mut properties: Vec<String> = vec![];
    for f in ctx.field().selection_set() {
        let name = f.name();
        if known.contains(&name) && !properties.iter().any(|p| p == name) {
            properties.push(name.to_string());
        }
    }
    let request = AggregateRequest {
        group_by,
        properties,
    };
    let result = env
        .aggregate(ontology, kind, class, filter.as_ref(), &request)
        .await
        .map_err(api_error)?;
    Ok(result.groups)
}

/// The `where` argument, parsed and checked.
fn where_filter(
    ctx: &ResolverContext<'_>,
    ontology: &Ontology,
    kind: ObjectKind,
    class: &str,
) -> Result<Option<WhereFilter>, Error> {
    match ctx.args.get("where") {
        Some(v) if !v.is_null() => {
            let json = v.as_value().clone().into_json()?;
            Ok(Some(arguments::parse_where(json, ontology, kind, class)?))
        }
        _ => Ok(None),
    }
}

/// A non-negative count argument (`first`, `after`).
fn count_arg(ctx: &ResolverContext<'_>, name: &str) -> Result<Option<u64>, Error> {
    match ctx.args.get(name) {
        Some(v) if !v.is_null() => {
            let n = v.i64()?;
            u64::try_from(n)
                .map(Some)
                .map_err(|_| Error::new(format!("{name} {n} is negative; give 0 or more")))
        }
        _ => Ok(None),
    }
}

fn api_error(e: weft_core::Error) -> Error {
    Error::new(e.message)
}

/// An argument as JSON; `None` when absent or null.
fn arg_json(ctx: &ResolverContext<'_>, name: &str) -> Result<Option<Value>, Error> {
    match ctx.args.get(name) {
        Some(v) if !v.is_null() => Ok(Some(v.as_value().clone().into_json()?)),
        _ => Ok(None),
    }
}

fn parse_arg<T: serde::de::DeserializeOwned>(name: &str, v: Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| Error::new(format!("{name}: {e}")))
}

/// `moveTo` / `moveAwayFrom`.
#[derive(serde::Deserialize)]
struct MoveArg {
    concepts: Vec<String>,
    force: f64,
}

impl From<MoveArg> for Movement {
    fn from(m: MoveArg) -> Self {
        Movement {
            concepts: m.concepts,
            force: m.force,
        }
    }
}

/// The `explore` argument of a Get field.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExploreArg {
    concepts: Vec<String>,
    certainty: Option<f64>,
    move_to: Option<MoveArg>,
    move_away_from: Option<MoveArg>,
}

impl ExploreArg {
    fn concepts(&self) -> Concepts {
        Concepts {
            concepts: self.concepts.clone(),
            move_to: self.move_to.as_ref().map(|m| Movement {
                concepts: m.concepts.clone(),
                force: m.force,
            }),
            move_away_from: self.move_away_from.as_ref().map(|m| Movement {
                concepts: m.concepts.clone(),
                force: m.force,
            }),
        }
    }
}

/// Registers the inputs of a search by meaning and the type of `Local.Explore`'s answers
/// (`Network.Explore` takes the same inputs).
pub(crate) fn explore_types(reg: &mut Registry) -> Result<(), String> {
    reg.add(
        MOVE_INPUT,
        "moveTo/moveAwayFrom".into(),
        InputObject::new(MOVE_INPUT)
            .description(
                "Moves the search towards (moveTo) or away from (moveAwayFrom) other concepts.",
            )
            .field(InputValue::new(
                "concepts",
                TypeRef::named_nn_list_nn(TypeRef::STRING),
            ))
            .field(
                InputValue::new("force", TypeRef::named_nn(TypeRef::FLOAT))
                    .description("How far, from 0 to 1."),
            ),
    )?;
    reg.add(
        EXPLORE_INPUT,
        "the explore argument".into(),
        InputObject::new(EXPLORE_INPUT)
            .description("A search by meaning: concepts (words or phrases) and how to move them.")
            .field(InputValue::new(
                "concepts",
                TypeRef::named_nn_list_nn(TypeRef::STRING),
            ))
            .field(
                InputValue::new("certainty", TypeRef::named(TypeRef::FLOAT)).description(
                    "Leave out objects less certain than this, from 0 to 1: (1 + cos)/2.",
                ),
            )
            .field(InputValue::new("moveTo", TypeRef::named(MOVE_INPUT)))
            .field(InputValue::new("moveAwayFrom", TypeRef::named(MOVE_INPUT))),
    )?;
    let text = |name: &str, f: fn(&ExploreHit) -> String| {
        Field::new(name, TypeRef::named_nn(TypeRef::STRING), move |ctx| {
            let v = ctx.parent_value.downcast_ref::<ExploreHit>().map(f);
            FieldFuture::Value(v.map(|v| FieldValue::value(GqlValue::String(v))))
        })
    };
    reg.add(
        EXPLORE_RESULT,
        "an answer of Local.Explore".into(),
        Object::new(EXPLORE_RESULT)
            .description("An object found by meaning.")
            .field(
                text("beacon", |h| {
                    format!("weaviate://localhost/{}/{}", kind_path(h.kind), h.id)
                })
                .description("weaviate://localhost/things/<uuid> (or actions)"),
            )
            .field(text("className", |h| h.class.clone()))
            .field(Field::new(
                "certainty",
                TypeRef::named_nn(TypeRef::FLOAT),
                |ctx| {
                    let c = ctx
                        .parent_value
                        .downcast_ref::<ExploreHit>()
                        .and_then(|h| float(h.certainty));
                    FieldFuture::Value(c.map(FieldValue::value))
                },
            )),
    )
}

/// `things` or `actions`.
fn kind_path(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Thing => "things",
        ObjectKind::Action => "actions",
    }
}

/// One answer of `Local.Explore`.
struct ExploreHit {
    kind: ObjectKind,
    id: weft_plugin_api::Id,
    class: String,
    certainty: f64,
}

/// `Local.Explore(concepts, limit, certainty, moveTo, moveAwayFrom)`: every class of Things
/// and Actions the key may read, most certain first.
fn explore_field() -> Field {
    Field::new(
        "Explore",
        TypeRef::named_list(EXPLORE_RESULT),
        move |ctx| {
            FieldFuture::new(async move {
                let r = async {
                    let env = ctx.data::<Arc<RequestEnv>>()?;
                    let concepts: Vec<String> = parse_arg(
                        "concepts",
                        arg_json(&ctx, "concepts")?.unwrap_or(Value::Array(vec![])),
                    )?;
                    let move_to: Option<MoveArg> = arg_json(&ctx, "moveTo")?
                        .map(|v| parse_arg("moveTo", v))
                        .transpose()?;
                    let move_away_from: Option<MoveArg> = arg_json(&ctx, "moveAwayFrom")?
                        .map(|v| parse_arg("moveAwayFrom", v))
                        .transpose()?;
                    let certainty: Option<f64> = arg_json(&ctx, "certainty")?
                        .map(|v| parse_arg("certainty", v))
                        .transpose()?;
                    let limit = count_arg(&ctx, "limit")?
                        .unwrap_or(env.limit().min(env.max_explore_k()));
                    let concepts = Concepts {
                        concepts,
                        move_to: move_to.map(Movement::from),
                        move_away_from: move_away_from.map(Movement::from),
                    };
                    let found = env
                        .explore(&concepts, &Scope::Everything, limit, certainty)
                        .await
                        .map_err(api_error)?;
                    Ok(Some(FieldValue::list(found.into_iter().map(|f| {
                        FieldValue::owned_any(ExploreHit {
                            kind: f.object.kind,
                            id: f.object.id,
                            class: f.object.class.to_string(),
                            certainty: f.certainty,
                        })
                    }))))
                };
                report(&ctx, r.await)
            })
        },
    )
    .description("Objects of every class the key may read, nearest in meaning to the concepts, most certain first: beacons, classes and certainties.")
    .argument(InputValue::new("concepts", TypeRef::named_nn_list_nn(TypeRef::STRING)))
    .argument(
        InputValue::new("limit", TypeRef::named(TypeRef::INT))
            .description("How many (default: the server's page size; at most limits.max_explore_k)."),
    )
    .argument(
        InputValue::new("certainty", TypeRef::named(TypeRef::FLOAT))
            .description("Leave out objects less certain than this, from 0 to 1: (1 + cos)/2."),
    )
    .argument(InputValue::new("moveTo", TypeRef::named(MOVE_INPUT)))
    .argument(InputValue::new("moveAwayFrom", TypeRef::named(MOVE_INPUT)))
}

/// The types of class `class` that `section` needs.
fn class_types(
    reg: &mut Registry,
    section: Section,
    ontology: &Ontology,
    class: &Class,
) -> Result<(), String> {
    let c = &class.class;
    match section {
        Section::Get => {
            let mut obj = Object::new(c).field(Field::new(
                "uuid",
                TypeRef::named_nn(TypeRef::STRING),
                |ctx| {
                    let id = ctx.parent_value.downcast_ref::<Obj>().map(|o| o.stored.id);
                    FieldFuture::Value(
                        id.map(|id| FieldValue::value(GqlValue::String(id.to_string()))),
                    )
                },
            ));
            if let Some(d) = &class.description {
                obj = obj.description(d.clone());
            }
            obj = obj.field(
                Field::new("_certainty", TypeRef::named(TypeRef::FLOAT), |ctx| {
                    let c = ctx
                        .parent_value
                        .downcast_ref::<Obj>()
                        .and_then(|o| o.certainty)
                        .and_then(float);
                    FieldFuture::Value(c.map(FieldValue::value))
                })
                .description("How certainly the object matches the `explore` of the query: (1 + cos)/2; null without `explore`."),
            );
            for p in &class.properties {
                if !p.is_reference() {
                    obj = obj.field(primitive_field(p));
                    continue;
                }
                let allowed: Vec<String> = p
                    .data_type
                    .iter()
                    .filter(|t| ontology.kind_of(t).is_some())
                    .cloned()
                    .collect();
                if allowed.is_empty() {
                    continue;
                }
                let field_name = capitalised(&p.name);
                let union_name = format!("{c}{field_name}Obj");
                let union = allowed
                    .iter()
                    .fold(Union::new(&union_name), |u, t| u.possible_type(t));
                reg.add(&union_name, format!("the union of {c}.{}", p.name), union)?;
                obj = obj.field(reference_field(p, &field_name, &union_name, allowed));
            }
            reg.add(c, format!("the Get type of class {c}"), obj)
        }
        Section::GetMeta | Section::Aggregate => {
            let (name, fixed): (String, &[&str]) = if section == Section::GetMeta {
                (format!("Meta{c}Obj"), &["meta"])
            } else {
                (format!("Aggregate{c}Obj"), &["meta", "groupedBy"])
            };
            let mut obj = Object::new(&name).field(Field::new(
                "meta",
                TypeRef::named_nn(META_COUNT),
                |ctx| {
                    let n = ctx
                        .parent_value
                        .downcast_ref::<AggregateGroup>()
                        .map(|g| g.count);
                    FieldFuture::Value(n.map(|n| FieldValue::owned_any(Count(n))))
                },
            ));
            if section == Section::Aggregate {
                obj = obj.field(Field::new("groupedBy", TypeRef::named(GROUPED_BY), |ctx| {
                    let g = ctx
                        .parent_value
                        .downcast_ref::<AggregateGroup>()
                        .filter(|g| g.grouped_by.is_some())
                        .cloned();
                    FieldFuture::Value(g.map(FieldValue::owned_any))
                }));
            }
            // A property named like a fixed field is left out (its name is taken).
            for p in class
                .properties
                .iter()
                .filter(|p| !fixed.contains(&p.name.as_str()))
            {
                obj = obj.field(aggregate_field(p));
            }
            reg.add(
                &name,
                format!("the {} type of class {c}", section.name()),
                obj,
            )
        }
    }
}

/// A primitive property of a Get type.
fn primitive_field(p: &Property) -> Field {
    let name = p.name.clone();
    let data_type = p.data_type.first().cloned().unwrap_or_default();
    let ty = match data_type.as_str() {
        "int" => TypeRef::INT,
        "number" => TypeRef::FLOAT,
        "boolean" => TypeRef::BOOLEAN,
        _ => TypeRef::STRING,
    };
    let mut f = Field::new(&p.name, TypeRef::named(ty), move |ctx| {
        let v = ctx
            .parent_value
            .downcast_ref::<Obj>()
            .and_then(|o| o.props.get(&name))
            .filter(|v| match data_type.as_str() {
                "int" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                _ => v.is_string(),
            })
            .and_then(|v| GqlValue::from_json(v.clone()).ok());
        FieldFuture::Value(v.map(FieldValue::value))
    });
    if let Some(d) = &p.description {
        f = f.description(d.clone());
    }
    f
}

/// A reference property of a Get type: the referenced objects stored here that the caller may
/// see.
fn reference_field(
    p: &Property,
    field_name: &str,
    union_name: &str,
    allowed: Vec<String>,
) -> Field {
    let prop = p.name.clone();
    let mut f = Field::new(field_name, TypeRef::named_list(union_name), move |ctx| {
        let prop = prop.clone();
        let allowed = allowed.clone();
        FieldFuture::new(async move {
            let r = async {
                let env = ctx.data::<Arc<RequestEnv>>()?;
                let parent = ctx.parent_value.try_downcast_ref::<Obj>()?;
                let targets = env
                    .referenced(&parent.props, &prop, &allowed)
                    .await
                    .map_err(api_error)?;
                Ok(Some(FieldValue::list(targets.into_iter().map(|o| {
                    let class = o.class.to_string();
                    FieldValue::owned_any(Obj::new(o)).with_type(class)
                }))))
            };
            report(&ctx, r.await)
        })
    });
    if let Some(d) = &p.description {
        f = f.description(d.clone());
    }
    f
}

/// A property of a GetMeta or Aggregate type, typed by its `@dataType`.
fn aggregate_field(p: &Property) -> Field {
    let name = p.name.clone();
    let data_type = p.data_type.join(",");
    let ty = if p.is_reference() {
        META_REFERENCE
    } else {
        match data_type.as_str() {
            "int" => META_INT,
            "number" => META_NUMBER,
            "boolean" => META_BOOLEAN,
            _ => META_STRING,
        }
    };
    Field::new(&p.name, TypeRef::named_nn(ty), move |ctx| {
        let view = ctx
            .parent_value
            .downcast_ref::<AggregateGroup>()
            .map(|g| PropView {
                data_type: data_type.clone(),
                agg: g.properties.get(&name).cloned().unwrap_or_default(),
            });
        FieldFuture::Value(view.map(FieldValue::owned_any))
    })
}
