//! [`SerdeJson`]: a JSON response payload written straight from the model with serde.
//!
//! poem-openapi's `Json<T>` turns a model into a `serde_json::Value` tree (copying every
//! string and the whole property bag), serialises the tree and drops it. Profiled under
//! `GET /things/{id}` load, that took ~13 % of the server's CPU. `SerdeJson<T>` declares the same
//! content type and schema in the OpenAPI document, so the contract does not change; the model's
//! `Serialize` must write what its `ToJSON` writes, which `tests` below checks for every model
//! that uses it.

use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{payload::Payload, ApiResponse};
use serde::Serialize;

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
}
