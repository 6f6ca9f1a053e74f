//! The JSON payloads of the API, each declaring the same content type and schema as
//! poem-openapi's `Json<T>` so that the OpenAPI document does not change:
//!
//! * [`SerdeJson`], a response written straight from the model with serde. poem-openapi's
//!   `Json<T>` turns a model into a `serde_json::Value` tree (copying every string and the whole
//!   property bag), serialises the tree and drops it. Profiled under `GET /things/{id}` load,
//!   that took ~13 % of the server's CPU. The model's `Serialize` must write what its `ToJSON`
//!   writes, which `tests` below checks for every model that uses it.
//! * [`CheckedJson`], a request body parsed once. The contract check ([`crate::contract`])
//!   parses a body to check it against its operation's schema and leaves the parsed value in
//!   the request ([`CheckedBody::stash`], dropping the bytes); `CheckedJson<T>` turns that value
//!   into `T`, where `Json<T>` would parse the bytes again. Without a checked value (an
//!   operation the check leaves alone, a body that is not JSON) it is `Json<T>` exactly: the
//!   same statuses and messages.

use std::sync::{Arc, Mutex, PoisonError};

use poem::{IntoResponse, Request, RequestBody, Response};
use poem_openapi::error::ParseRequestPayloadError;
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use poem_openapi::ApiResponse;
use serde::Serialize;
use serde_json::Value;

/// A `200 application/json` answer serialised with serde (see the module documentation).
pub struct SerdeJson<T>(pub T);

impl<T: Type + Send> Payload for SerdeJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Serialize + Send> IntoResponse for SerdeJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::builder()
                .content_type("application/json; charset=utf-8")
                .body(body),
            Err(e) => Response::builder()
                .status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("application/json; charset=utf-8")
                .body(
                    serde_json::to_string(&crate::ErrorResponse::new(format!(
                        "the answer could not be written as JSON: {e}"
                    )))
                    .unwrap_or_default(),
                ),
        }
    }
}

impl<T: Type + Serialize + Send> ApiResponse for SerdeJson<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: <Self as Payload>::CONTENT_TYPE,
                    schema: <Self as Payload>::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// A JSON body already parsed (and checked) before the handler, waiting in the request's
/// extensions for its [`CheckedJson`] extractor, which takes it (extensions are shared, hence
/// the lock; it is taken once, by one extractor).
#[derive(Clone)]
pub struct CheckedBody(Arc<Mutex<Option<Value>>>);

impl CheckedBody {
    /// Leaves `value`, the parsed body of `req`, for the handler's [`CheckedJson`]. The caller
    /// has taken the body's bytes (and drops them): only an extractor that looks here sees the
    /// body.
    pub fn stash(req: &mut Request, value: Value) {
        req.extensions_mut()
            .insert(CheckedBody(Arc::new(Mutex::new(Some(value)))));
    }

    /// The stashed body of `req`, taken: `None` when there is none (or it was taken).
    pub(crate) fn take(req: &Request) -> Option<Value> {
        req.extensions()
            .get::<CheckedBody>()?
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// A JSON request body: `Json<T>` in the document and on the wire, parsed once (see the module
/// documentation).
pub struct CheckedJson<T>(pub T);

impl<T: Type> Payload for CheckedJson<T> {
    const CONTENT_TYPE: &'static str = <Json<T> as Payload>::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        <Json<T> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        <Json<T> as Payload>::schema_ref()
    }

    fn register(registry: &mut Registry) {
        <Json<T> as Payload>::register(registry);
    }
}

impl<T: ParseFromJSON> ParsePayload for CheckedJson<T> {
    const IS_REQUIRED: bool = <Json<T> as ParsePayload>::IS_REQUIRED;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        match CheckedBody::take(request) {
            // What `Json<T>` does after parsing the bytes, with its error.
            Some(value) => T::parse_from_json(Some(value)).map(Self).map_err(|err| {
                ParseRequestPayloadError {
                    reason: err.into_message(),
                }
                .into()
            }),
            None => <Json<T> as ParsePayload>::from_request(request, body)
                .await
                .map(|Json(v)| Self(v)),
        }
    }
}

// The request-body extractor, as poem-openapi declares `Json<T>`'s (content type checked first:
// 415 without one or with another).
poem_openapi::impl_apirequest_for_payload!(CheckedJson<T>, T: ParseFromJSON);

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON;
    use serde_json::json;

    use crate::models::{ActionGetResponse, PropertyBag, RefType, SingleRef, ThingGetResponse};

    fn bag() -> PropertyBag {
        serde_json::from_value(json!({
            "name": "Ulm \"an der Donau\" ü \u{1}",
            "population": 126000,
            "area": 118.69,
            "isCapital": false,
            "founded": "0850-01-01T00:00:00Z",
            "nothing": null,
            "tags": ["a", 1, {"deep": [true]}],
            "inCountry": {"$cref": "3b2c0f4e-5f7a-4b1e-9a57-1c0d2e3f4a5b", "locationUrl": "http://localhost/", "type": "Thing"}
        }))
        .unwrap()
    }

    fn key() -> SingleRef {
        SingleRef {
            cref: "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000001".parse().unwrap(),
            location_url: "http://localhost/".into(),
            kind: RefType::Key,
        }
    }

    #[test]
    fn serde_writes_what_poem_writes_for_every_model_that_uses_it() {
        for schema in [bag(), PropertyBag::new()] {
            let thing = ThingGetResponse {
                context: "http://example.org/ü".into(),
                class: "City".into(),
                schema: schema.clone(),
                key: key(),
                creation_time_unix: -1,
                last_update_time_unix: i64::MAX,
                id: uuid::Uuid::now_v7(),
            };
            assert_eq!(
                serde_json::to_value(&thing).unwrap(),
                thing.to_json().unwrap()
            );
            let action = ActionGetResponse {
                context: String::new(),
                class: "Flight".into(),
                schema,
                key: key(),
                creation_time_unix: 0,
                last_update_time_unix: 1,
                id: uuid::Uuid::new_v4(),
            };
            assert_eq!(
                serde_json::to_value(&action).unwrap(),
                action.to_json().unwrap()
            );
        }
    }

    mod checked_json {
        use poem::http::StatusCode;
        use poem::{Endpoint, IntoEndpoint, Request};
        use poem_openapi::payload::Json;
        use poem_openapi::{Object, OpenApi, OpenApiService};
        use serde_json::{json, Value};

        use crate::payload::{CheckedBody, CheckedJson};

        #[derive(Object)]
        struct Item {
            name: String,
        }

        /// The same operation twice: the body as `CheckedJson` and as poem-openapi's `Json`.
        struct Both;

        #[OpenApi]
        impl Both {
            #[oai(path = "/checked", method = "post")]
            async fn checked(&self, body: CheckedJson<Item>) -> Json<String> {
                Json(body.0.name)
            }

            #[oai(path = "/plain", method = "post")]
            async fn plain(&self, body: Json<Item>) -> Json<String> {
                Json(body.0.name)
            }
        }

        struct WithChecked;

        #[OpenApi]
        impl WithChecked {
            #[oai(path = "/items", method = "post")]
            async fn create(&self, body: CheckedJson<Vec<Item>>) -> Json<usize> {
                Json(body.0.len())
            }
        }

        struct WithJson;

        #[OpenApi]
        impl WithJson {
            #[oai(path = "/items", method = "post")]
            async fn create(&self, body: Json<Vec<Item>>) -> Json<usize> {
                Json(body.0.len())
            }
        }

        /// `POST path` with `content_type` and `body`, and optionally a stashed value: the status
        /// and the body (or poem's error message) of the answer.
        async fn call(
            path: &str,
            content_type: Option<&str>,
            body: &str,
            stash: Option<Value>,
        ) -> (StatusCode, String) {
            let ep = OpenApiService::new(Both, "t", "1").into_endpoint();
            let mut req = Request::builder()
                .method(poem::http::Method::POST)
                .uri(path.parse().unwrap());
            if let Some(ct) = content_type {
                req = req.content_type(ct);
            }
            let mut req = req.body(body.to_string());
            if let Some(value) = stash {
                CheckedBody::stash(&mut req, value);
            }
            match ep.call(req).await {
                Ok(resp) => (resp.status(), resp.into_body().into_string().await.unwrap()),
                Err(e) => (e.status(), e.to_string()),
            }
        }

        #[tokio::test]
        async fn the_handler_gets_the_stashed_value_not_the_bytes() {
            let json = Some("application/json");
            let (status, body) = call(
                "/checked",
                json,
                r#"{"name": "from the bytes"}"#,
                Some(json!({"name": "from the stash"})),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, r#""from the stash""#);
            // With the bytes gone, as the contract check leaves them.
            let (status, body) =
                call("/checked", json, "", Some(json!({"name": "only stashed"}))).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, r#""only stashed""#)
            );
            // Without a stash, the bytes are parsed.
            let (status, body) =
                call("/checked", json, r#"{"name": "from the bytes"}"#, None).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, r#""from the bytes""#)
            );
        }

        #[test]
        fn a_stash_is_taken_once() {
            let mut req = Request::default();
            assert_eq!(CheckedBody::take(&req), None);
            CheckedBody::stash(&mut req, json!([1]));
            assert_eq!(CheckedBody::take(&req), Some(json!([1])));
            assert_eq!(CheckedBody::take(&req), None);
        }

        #[tokio::test]
        async fn it_answers_every_body_as_json_does() {
            let cases: &[(Option<&str>, &str)] = &[
                (Some("application/json"), r#"{"name": "x"}"#),
                (Some("application/json; charset=utf-8"), r#"{"name": 7}"#),
                (Some("application/merge-patch+json"), r#"{"name": "x"}"#),
                (Some("application/json"), r#"{"name": "#),
                (Some("application/json"), "not json"),
                (Some("application/json"), ""),
                (Some("application/json"), "null"),
                (Some("application/json"), "{}"),
                (Some("application/json"), r#"{"name": null}"#),
                (Some("application/json"), "[]"),
                (Some("text/plain"), r#"{"name": "x"}"#),
                (Some("application/xml"), "<a/>"),
                (Some("not a type"), r#"{"name": "x"}"#),
                (None, r#"{"name": "x"}"#),
            ];
            for &(ct, body) in cases {
                let plain = call("/plain", ct, body, None).await;
                let checked = call("/checked", ct, body, None).await;
                assert_eq!(checked, plain, "{ct:?} {body:?}");
                let expected = match (ct, body) {
                    (Some(ct), _) if ct.ends_with("json") || ct.ends_with("utf-8") => None,
                    _ => Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                };
                if let Some(status) = expected {
                    assert_eq!(checked.0, status, "{ct:?} {body:?}");
                } else if body.contains("\"x\"") || body.contains('7') {
                    assert_eq!(checked.0, StatusCode::OK, "{ct:?} {body:?}");
                } else {
                    assert_eq!(checked.0, StatusCode::BAD_REQUEST, "{ct:?} {body:?}");
                }
                // A stashed value that is not a `T` is refused as the same bytes are.
                if let (Some("application/json"), Ok(value)) = (ct, serde_json::from_str(body)) {
                    let stashed = call("/checked", ct, "", Some(value)).await;
                    assert_eq!(stashed, plain, "stashed {body:?}");
                }
            }
        }

        #[test]
        fn the_document_is_the_one_json_writes() {
            let checked = OpenApiService::new(WithChecked, "t", "1").spec();
            let json = OpenApiService::new(WithJson, "t", "1").spec();
            assert_eq!(checked, json);
            assert!(checked.contains("application/json; charset=utf-8"));
        }
    }
}
