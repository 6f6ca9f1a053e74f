//! `/graphql` and `/graphql/batch`: GraphQL over HTTP as the 0.12 contract has it. A GraphQL
//! error (a query that does not parse, a filter of the wrong type) is answered with 200 and
//! `{"data": …, "errors": [{"message", "locations", "path"}]}`; only a missing query, bad
//! credentials and storage failures get a 4xx/5xx.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::Value;

use super::{ApiError, ApiResult, ApiTags};
use crate::payload::CheckedJson;
use weft_core::Core;
use weft_graphql::{Graphql, GraphqlRequest};

/// A GraphQL request.
#[derive(Object, Debug, Clone, Default)]
#[oai(example)]
pub struct GraphQLQuery {
    /// The query document, e.g. `{ Local { Get { Things { City { name } } } } }`.
    #[oai(skip_serializing_if_is_none)]
    pub query: Option<String>,
    /// Which operation of the document to run, when it has several.
    #[oai(rename = "operationName", skip_serializing_if_is_none)]
    pub operation_name: Option<String>,
    /// Values of the query's variables.
    #[oai(skip_serializing_if_is_none)]
    pub variables: Option<BTreeMap<String, Value>>,
}

impl poem_openapi::types::Example for GraphQLQuery {
    fn example() -> Self {
        GraphQLQuery {
            query: Some("{ Local { Get { Things { City { name population } } } } }".into()),
            ..GraphQLQuery::default()
        }
    }
}

/// Where in the query an error is.
#[derive(Object, Debug, Clone)]
pub struct GraphQLErrorLocation {
    /// Line, from 1.
    pub line: i64,
    /// Column, from 1.
    pub column: i64,
}

/// One GraphQL error.
#[derive(Object, Debug, Clone)]
pub struct GraphQLError {
    /// What is wrong and what to change.
    pub message: String,
    /// Where in the query.
    #[oai(skip_serializing_if_is_none)]
    pub locations: Option<Vec<GraphQLErrorLocation>>,
    /// The field of the answer it concerns (list indices as decimal text).
    #[oai(skip_serializing_if_is_none)]
    pub path: Option<Vec<String>>,
}

/// A GraphQL answer.
#[derive(Object, Debug, Clone)]
pub struct GraphQLResponse {
    /// The data; `null` when the query could not run (it did not parse, had no `query`, …),
    /// as GraphQL and Weaviate 0.12 answer.
    #[oai(nullable)]
    pub data: Option<BTreeMap<String, Value>>,
    /// The errors, when there were any.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<GraphQLError>>,
}

impl From<async_graphql::Response> for GraphQLResponse {
    fn from(r: async_graphql::Response) -> Self {
        let data = match r.data.into_json() {
            Ok(Value::Object(m)) => Some(m.into_iter().collect()),
            _ => None,
        };
        let errors: Vec<GraphQLError> = r
            .errors
            .into_iter()
            .map(|e| GraphQLError {
                message: e.message,
                locations: (!e.locations.is_empty()).then(|| {
                    e.locations
                        .iter()
                        .map(|p| GraphQLErrorLocation {
                            line: p.line as i64,
                            column: p.column as i64,
                        })
                        .collect()
                }),
                path: (!e.path.is_empty()).then(|| {
                    e.path
                        .iter()
                        .map(|s| match s {
                            async_graphql::PathSegment::Field(f) => f.clone(),
                            async_graphql::PathSegment::Index(i) => i.to_string(),
                        })
                        .collect()
                }),
            })
            .collect();
        GraphQLResponse {
            data,
            errors: (!errors.is_empty()).then_some(errors),
        }
    }
}

impl From<GraphQLQuery> for GraphqlRequest {
    fn from(q: GraphQLQuery) -> Self {
        GraphqlRequest {
            query: q.query,
            operation_name: q.operation_name,
            variables: q.variables.map(|v| Value::Object(v.into_iter().collect())),
        }
    }
}

/// The key the caller presented, which a `Network` query forwards to peers without configured
/// credentials when `network.forward_caller_key` is on.
fn caller_key(req: &poem::Request) -> Option<weft_core::network::CallerKey> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Some(weft_core::network::CallerKey {
        key: header("X-API-KEY")?,
        token: header("X-API-TOKEN")?,
    })
}

/// The GraphQL operations.
pub struct GraphqlApi {
    core: Arc<Core>,
    graphql: Graphql,
}

impl GraphqlApi {
    /// The endpoints over `core`, with their own schema cache.
    pub fn new(core: Arc<Core>) -> Self {
        GraphqlApi {
            core,
            graphql: Graphql::new(),
        }
    }
}

#[OpenApi(tag = "ApiTags::Graphql")]
impl GraphqlApi {
    /// Runs one GraphQL query.
    ///
    /// `{ Local { Get | GetMeta | Aggregate { Things | Actions { <Class> … } } } }` over the
    /// objects the key may read; on a peer of a network also `{ Network(networkTimeout: Int) {
    /// Get | Fetch | Introspect } }` over the peers it knows, which needs the execute right.
    /// GraphQL errors (a query that does not parse, a filter of the wrong type, a peer that
    /// did not answer in time) are answered with 200 in `errors`; a body without `query` with
    /// 422.
    #[oai(
        path = "/graphql",
        method = "post",
        operation_id = "weaviate.graphql.post"
    )]
    async fn post(
        &self,
        req: &poem::Request,
        body: CheckedJson<GraphQLQuery>,
    ) -> ApiResult<Json<GraphQLResponse>> {
        let p = crate::context::principal(req)?;
        if body.0.query.as_deref().is_none_or(|q| q.trim().is_empty()) {
            return Err(ApiError::unprocessable(
                "the body has no \"query\"; send {\"query\": \"{ Local { Get { Things { <Class> { uuid } } } } }\"}",
            ));
        }
        let mut answers = self
            .graphql
            .execute_as(&self.core, &p, caller_key(req), vec![body.0.into()])
            .await?;
        let answer = answers
            .pop()
            .ok_or_else(|| ApiError::internal("the query got no answer"))?;
        Ok(Json(answer.into()))
    }

    /// Runs several GraphQL queries.
    ///
    /// The answers come in request order, each with its own `data` and `errors`.
    #[oai(
        path = "/graphql/batch",
        method = "post",
        operation_id = "weaviate.graphql.batch"
    )]
    async fn batch(
        &self,
        req: &poem::Request,
        body: CheckedJson<Vec<GraphQLQuery>>,
    ) -> ApiResult<Json<Vec<GraphQLResponse>>> {
        let p = crate::context::principal(req)?;
        weft_core::Limits::check(
            "the number of queries in the batch",
            "max_graphql_batch",
            body.0.len(),
            self.core.limits.max_graphql_batch,
        )?;
        let requests = body.0.into_iter().map(Into::into).collect();
        let answers = self
            .graphql
            .execute_as(&self.core, &p, caller_key(req), requests)
            .await?;
        Ok(Json(answers.into_iter().map(Into::into).collect()))
    }
}
