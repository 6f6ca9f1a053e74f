//! The request side of the contract: the server takes exactly the bodies its OpenAPI document
//! describes.
//!
//! poem-openapi parses leniently — a number or a boolean where a string is declared becomes its
//! text, `null` where an optional field is declared means "absent" — so every JSON body of a
//! keyed operation (the 0.12 API; the peer-facing P2P operations keep weft-p2p's own parsing) is
//! checked against its operation's schema before the handler ([`BodySchemas::check`]): a body
//! the document does not allow (a value of another type, `null` where the schema is not
//! `nullable`, a missing required field, an integer out of its format's range) is answered 400
//! with the JSON Pointer of what is wrong. The document states the integer ranges
//! ([`document_request_schemas`]).
//!
//! Owns: that check and that document change. Must not know: what any operation does.

use std::collections::BTreeSet;

use poem::http::Method;
use serde_json::Value;

/// Operations with a JSON request body, by method and path template, with the body's schema.
pub struct BodySchemas {
    templates: Vec<Vec<Option<String>>>,
    ops: Vec<(Method, Vec<Option<String>>, Value)>,
    schemas: Value,
}

const JSON: &str = "application/json; charset=utf-8";

/// Whether a `Content-Type` is one poem-openapi's JSON payload accepts.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
}

/// A path split into segments, `None` for a `{parameter}`.
pub(crate) fn segments(template: &str) -> Vec<Option<String>> {
    template
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
        .collect()
}

/// Whether `segments` match `parts`.
pub(crate) fn matches(segments: &[Option<String>], parts: &[&str]) -> bool {
    segments.len() == parts.len()
        && segments
            .iter()
            .zip(parts)
            .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p))
}

/// How specific a template is, as the router prefers: a fixed segment before a parameter,
/// earliest first (`/keys/me` before `/keys/{keyId}`).
pub(crate) fn specificity(segments: &[Option<String>]) -> Vec<bool> {
    segments.iter().map(Option::is_some).collect()
}

impl BodySchemas {
    /// The keyed operations of a finished document that take a JSON body (by their
    /// `x-weft-access`; peer-facing ones, `none`, are left to their own parsing).
    pub fn new(doc: &Value) -> Self {
        let (mut templates, mut ops) = (vec![], vec![]);
        for (path, methods) in doc["paths"].as_object().into_iter().flatten() {
            templates.push(segments(path));
            for (method, op) in methods.as_object().into_iter().flatten() {
                let Ok(method) = method.to_uppercase().parse::<Method>() else {
                    continue;
                };
                if op["x-weft-access"] == "none" {
                    continue;
                }
                if let Some(schema) = op["requestBody"]["content"][JSON].get("schema") {
                    ops.push((method, segments(path), schema.clone()));
                }
            }
        }
        BodySchemas {
            templates,
            ops,
            schemas: doc["components"]["schemas"].clone(),
        }
    }

    /// The body schema of the operation the router takes `path` (relative to the base) to.
    fn schema_for(&self, method: &Method, path: &str) -> Option<&Value> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let best = self
            .templates
            .iter()
            .filter(|segments| matches(segments, &parts))
            .max_by_key(|segments| specificity(segments))?;
        self.ops
            .iter()
            .find(|(m, segments, _)| m == method && segments == best)
            .map(|(_, _, schema)| schema)
    }

    /// `Err` with what is wrong (a JSON Pointer and the expectation) when `value` is not a body
    /// the document allows for `method` `path`; `Ok` when it is, or the operation has no JSON
    /// body.
    pub fn check(&self, method: &Method, path: &str, value: &Value) -> Result<(), String> {
        match self.schema_for(method, path) {
            Some(schema) => self.check_value(value, schema, &mut String::new(), 0),
            None => Ok(()),
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut s = schema;
        for _ in 0..16 {
            match s
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                Some(name) => s = &self.schemas[name],
                None => break,
            }
        }
        s
    }

    fn check_value(
        &self,
        v: &Value,
        schema: &Value,
        at: &mut String,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 64 {
            return Err(format!("{} is nested too deeply", pointer(at)));
        }
        let s = self.resolve(schema);
        if v.is_null() && s.get("nullable") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for part in all {
                self.check_value(v, part, at, depth + 1)?;
            }
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
            if !allowed.contains(v) {
                let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
                return Err(format!(
                    "{} must be one of {}, not {}",
                    pointer(at),
                    names.join(", "),
                    short(v)
                ));
            }
        }
        let Some(ty) = s.get("type").and_then(Value::as_str) else {
            return Ok(());
        };
        let ok = match ty {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => true,
        };
        if !ok {
            let a = if ty == "array" || ty == "object" || ty == "integer" {
                "an"
            } else {
                "a"
            };
            return Err(format!("{} must be {a} {ty}, not {}", pointer(at), kind(v)));
        }
        if let Some(n) = v.as_f64() {
            if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                if n < min {
                    return Err(format!("{} must be at least {min}, not {v}", pointer(at)));
                }
            }
            if let Some(max) = s.get("maximum") {
                let over = match (v.as_u64(), max.as_u64()) {
                    (Some(n), Some(max)) => n > max,
                    _ => max.as_f64().is_some_and(|max| n > max),
                };
                if over {
                    return Err(format!("{} must be at most {max}, not {v}", pointer(at)));
                }
            }
        }
        if let Some(obj) = v.as_object() {
            let props = s.get("properties").and_then(Value::as_object);
            for name in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !obj.contains_key(name) {
                    return Err(format!("{} needs the field {name:?}", pointer(at)));
                }
            }
            for (name, value) in obj {
                let sub = props
                    .and_then(|p| p.get(name))
                    .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(sub) = sub {
                    let len = at.len();
                    at.push('/');
                    at.push_str(&name.replace('~', "~0").replace('/', "~1"));
                    self.check_value(value, sub, at, depth + 1)?;
                    at.truncate(len);
                } else if s.get("additionalProperties") == Some(&Value::Bool(false)) {
                    return Err(format!("{} has no field {name:?}", pointer(at)));
                }
            }
        }
        if let (Some(items), Some(schema)) = (v.as_array(), s.get("items")) {
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                self.check_value(item, schema, at, depth + 1)?;
                at.truncate(len);
            }
        }
        Ok(())
    }
}

fn pointer(at: &str) -> String {
    if at.is_empty() {
        "the body".to_string()
    } else {
        format!("`{at}`")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// An endpoint whose JSON request bodies are checked against the document first.
pub struct CheckBodies<E> {
    /// The API.
    pub inner: E,
    /// The operations' body schemas.
    pub bodies: std::sync::Arc<BodySchemas>,
}

impl<E: poem::Endpoint> poem::Endpoint for CheckBodies<E> {
    type Output = poem::Response;

    async fn call(&self, req: poem::Request) -> poem::Result<poem::Response> {
        check_request(&self.bodies, &self.inner, req).await
    }
}

/// Checks the JSON body of a request against its operation's schema before the handler: a body
/// the document does not allow is answered 400 naming what is wrong. A body that is allowed is
/// parsed once: its value is left in the request for the handler's
/// [`crate::payload::CheckedJson`] and its bytes are dropped (so every handler of an operation
/// checked here takes its body as `CheckedJson`). Bodies that are not JSON (or have no JSON
/// `Content-Type`) go on to poem as they came, which answers them (400/415).
async fn check_request<E: poem::Endpoint>(
    bodies: &BodySchemas,
    ep: &E,
    mut req: poem::Request,
) -> poem::Result<poem::Response> {
    use poem::IntoResponse;
    let json = req
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json);
    if json {
        let path = req.uri().path();
        let rel = path.strip_prefix(crate::BASE_PATH).unwrap_or(path);
        if let Some(schema) = bodies.schema_for(req.method(), rel) {
            let bytes = req.take_body().into_bytes().await.map_err(|e| {
                poem::Error::from_string(
                    format!("the request body could not be read: {e}"),
                    poem::http::StatusCode::BAD_REQUEST,
                )
            })?;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(value) => {
                    drop(bytes);
                    if let Err(what) = bodies.check_value(&value, schema, &mut String::new(), 0) {
                        return Ok(crate::ApiError::bad_request(format!(
                            "{what}; see {}/openapi.json for this operation's body",
                            crate::BASE_PATH
                        ))
                        .into_response());
                    }
                    crate::payload::CheckedBody::stash(&mut req, value);
                }
                // Not JSON: the extractor answers it as it answers any such body.
                Err(_) => req.set_body(bytes),
            }
        }
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// Finishes the request side of the document (see the module): every integer with a `format`
/// in a request (body or parameter) gets that format's range, which poem-openapi's parsers
/// refuse values outside of.
pub fn document_request_schemas(doc: &mut Value) {
    // The schemas request bodies reach.
    let mut reached = BTreeSet::new();
    let mut todo: Vec<Value> = vec![];
    for methods in doc["paths"].as_object().into_iter().flatten() {
        for op in methods
            .1
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, op)| op)
        {
            for media in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                todo.push(media.1["schema"].clone());
            }
        }
    }
    while let Some(v) = todo.pop() {
        match v {
            Value::Object(m) => {
                if let Some(name) = m
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    if reached.insert(name.to_string()) {
                        todo.push(doc["components"]["schemas"][name].clone());
                    }
                }
                todo.extend(m.into_iter().map(|(_, v)| v));
            }
            Value::Array(items) => todo.extend(items),
            _ => {}
        }
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        for (name, schema) in schemas.iter_mut() {
            if reached.contains(name) {
                integer_ranges(schema);
            }
        }
    }
    for methods in doc["paths"].as_object_mut().into_iter().flatten() {
        for op in methods
            .1
            .as_object_mut()
            .into_iter()
            .flatten()
            .map(|(_, op)| op)
        {
            for part in ["requestBody", "parameters"] {
                if let Some(v) = op.get_mut(part) {
                    integer_ranges(v);
                }
            }
        }
    }
}

/// The range of each integer `format` poem-openapi writes, stated as `minimum`/`maximum` where
/// the schema states none (what the parsers refuse outside it).
fn integer_ranges(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("type").and_then(Value::as_str) == Some("integer") {
                let range: Option<(Value, Value)> = match m.get("format").and_then(Value::as_str) {
                    Some("int8") => Some((i8::MIN.into(), i8::MAX.into())),
                    Some("int16") => Some((i16::MIN.into(), i16::MAX.into())),
                    Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
                    Some("int64") => Some((i64::MIN.into(), i64::MAX.into())),
                    Some("uint8") => Some((0.into(), u8::MAX.into())),
                    Some("uint16") => Some((0.into(), u16::MAX.into())),
                    Some("uint32") => Some((0.into(), u32::MAX.into())),
                    // poem-openapi reads JSON integers as i64 first: u64 past it fails.
                    Some("uint64") => Some((0.into(), i64::MAX.into())),
                    _ => None,
                };
                if let Some((min, max)) = range {
                    m.entry("minimum").or_insert(min);
                    m.entry("maximum").or_insert(max);
                }
            }
            for child in m.values_mut() {
                integer_ranges(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integer_ranges),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "paths": {
                "/things": {"post": {"requestBody": {"content": {JSON: {"schema": {"$ref": "#/components/schemas/T"}}}}}},
                "/keys/me": {"get": {}},
                "/keys/{keyId}": {"put": {"requestBody": {"content": {JSON: {"schema": {"type": "array", "items": {"type": "string"}}}}}}},
                "/peers": {"post": {"x-weft-access": "none", "requestBody": {"content": {JSON: {"schema": {"type": "object"}}}}}}
            },
            "components": {"schemas": {
                "T": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"},
                    "n": {"type": "integer", "format": "uint32"},
                    "inner": {"$ref": "#/components/schemas/U"},
                    "kind": {"$ref": "#/components/schemas/E"},
                    "bag": {"type": "object", "additionalProperties": {}}
                }},
                "U": {"type": "object", "properties": {"flag": {"type": "boolean"}}},
                "E": {"type": "string", "enum": ["a", "b"]}
            }}
        })
    }

    fn finished() -> BodySchemas {
        let mut d = doc();
        document_request_schemas(&mut d);
        BodySchemas::new(&d)
    }

    #[test]
    fn bodies_are_taken_as_the_document_says() {
        let b = finished();
        let post = Method::POST;
        assert!(b.check(&post, "/things", &json!({"name": "x"})).is_ok());
        assert!(b
            .check(
                &post,
                "/things",
                &json!({"name": "x", "n": 7, "inner": {"flag": true}, "bag": {"any": [1, null]}})
            )
            .is_ok());
        let e = b
            .check(&post, "/things", &json!({"name": false}))
            .unwrap_err();
        assert!(e.contains("`/name` must be a string, not a boolean"), "{e}");
        let e = b
            .check(&post, "/things", &json!({"name": "x", "n": null}))
            .unwrap_err();
        assert!(e.contains("`/n` must be an integer, not null"), "{e}");
        let e = b.check(&post, "/things", &json!({})).unwrap_err();
        assert!(e.contains("needs the field \"name\""), "{e}");
        let e = b
            .check(&post, "/things", &json!({"name": "x", "n": -1}))
            .unwrap_err();
        assert!(e.contains("at least 0"), "{e}");
        let e = b
            .check(&post, "/things", &json!({"name": "x", "kind": "c"}))
            .unwrap_err();
        assert!(e.contains("`/kind` must be one of"), "{e}");
        let e = b
            .check(
                &post,
                "/things",
                &json!({"name": "x", "inner": {"flag": "yes"}}),
            )
            .unwrap_err();
        assert!(e.contains("`/inner/flag` must be a boolean"), "{e}");
        let e = b
            .check(&Method::PUT, "/keys/k", &json!(["a", 1]))
            .unwrap_err();
        assert!(e.contains("`/1` must be a string"), "{e}");
        // An operation without a JSON body, a path the router sends elsewhere, and a
        // peer-facing operation.
        assert!(b.check(&Method::GET, "/keys/me", &json!(1)).is_ok());
        assert!(b.check(&Method::PUT, "/keys/me", &json!(1)).is_ok());
        assert!(b.check(&post, "/peers", &json!(1)).is_ok());
    }

    #[test]
    fn request_integers_have_their_formats_ranges() {
        let mut d = doc();
        document_request_schemas(&mut d);
        let t = &d["components"]["schemas"]["T"]["properties"];
        assert_eq!(t["n"]["minimum"], 0);
        assert_eq!(t["n"]["maximum"], u32::MAX);
        assert_eq!(t["name"].get("nullable"), None);
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
    }

    /// What the handler behind [`CheckBodies`] is given: the stashed value and the bytes left.
    async fn handed_on(
        path: &str,
        content_type: &str,
        body: &'static str,
    ) -> (poem::http::StatusCode, Value) {
        use poem::Endpoint;
        let inner = poem::endpoint::make(|mut req: poem::Request| async move {
            let stashed = crate::payload::CheckedBody::take(&req);
            let bytes = req.take_body().into_bytes().await.unwrap();
            poem::web::Json(json!({
                "stashed": stashed,
                "bytes": String::from_utf8_lossy(&bytes),
            }))
        });
        let ep = CheckBodies {
            inner,
            bodies: std::sync::Arc::new(finished()),
        };
        let req = poem::Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", crate::BASE_PATH).parse().unwrap())
            .content_type(content_type)
            .body(body);
        let resp = ep.call(req).await.unwrap_or_else(|e| e.into_response());
        let status = resp.status();
        let text = resp.into_body().into_string().await.unwrap();
        (status, serde_json::from_str(&text).unwrap())
    }

    #[tokio::test]
    async fn a_checked_body_is_parsed_once_and_handed_on_as_its_value() {
        let ok = poem::http::StatusCode::OK;
        // Checked: the value goes on, the bytes do not.
        let (status, seen) = handed_on("/things", JSON, r#"{"name": "x"}"#).await;
        assert_eq!(status, ok);
        assert_eq!(seen, json!({"stashed": {"name": "x"}, "bytes": ""}));
        // Refused by the check: the handler is not reached.
        let (status, seen) = handed_on("/things", JSON, r#"{"name": 1}"#).await;
        assert_eq!(status, poem::http::StatusCode::BAD_REQUEST);
        let message = seen["error"][0]["message"].as_str().unwrap();
        assert!(message.contains("`/name` must be a string"), "{message}");
        // Not JSON, not a JSON content type, an operation the check leaves alone: the bytes go
        // on as they came, for the extractor to answer.
        for (path, ct, body) in [
            ("/things", JSON, r#"{"name": "#),
            ("/things", JSON, ""),
            ("/things", "text/plain", r#"{"name": "x"}"#),
            ("/peers", JSON, r#"{"name": "x"}"#),
        ] {
            let (status, seen) = handed_on(path, ct, body).await;
            assert_eq!(status, ok);
            assert_eq!(
                seen,
                json!({"stashed": null, "bytes": body}),
                "{path} {ct} {body}"
            );
        }
    }

    /// The check drops the bytes of every body it parses, so every operation it checks must
    /// take its body as `CheckedJson`: none of weft-p2p's (which take `Json`) is checked, and no
    /// handler here takes a `Json` body.
    #[test]
    fn every_checked_operation_takes_its_body_as_checked_json() {
        let doc: Value = serde_json::from_str(&crate::openapi_document()).unwrap();
        let bodies = BodySchemas::new(&doc);
        let p2p: Value = serde_json::from_str(
            &poem_openapi::OpenApiService::new(weft_p2p::apis(None), "p2p", "1").spec(),
        )
        .unwrap();
        let mut checked = 0;
        for (path, methods) in p2p["paths"].as_object().into_iter().flatten() {
            for (method, op) in methods.as_object().into_iter().flatten() {
                let method = method.to_uppercase().parse::<Method>().unwrap();
                assert!(
                    bodies.schema_for(&method, path).is_none(),
                    "{} ({method} {path}) is a weft-p2p operation with a JSON body the contract check parses",
                    op["operationId"]
                );
            }
        }
        for (path, methods) in doc["paths"].as_object().into_iter().flatten() {
            for method in methods.as_object().into_iter().flatten().map(|(m, _)| m) {
                let method = method.to_uppercase().parse::<Method>().unwrap();
                checked += usize::from(bodies.schema_for(&method, path).is_some());
            }
        }
        assert!(checked > 20, "{checked} operations checked");
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            // The handlers, not their tests (which compare the two).
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                assert!(
                    !line.contains(": Json<"),
                    "{}:{}: a handler takes a `Json` body; take `CheckedJson` (payload.rs): {line}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
}
