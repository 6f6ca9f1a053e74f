//! The access every REST operation needs, declared once here by operation id.
//!
//! The authorisation middleware finds the operation a request is for (by method and path
//! template, from the generated OpenAPI document) and asks [`weft_core::Access::check`]; the
//! document carries each operation's access as `x-weft-access`, which the authorisation test
//! reads. An operation without an entry here is a bug that [`Operations::new`] refuses at
//! start-up (and a unit test refuses at build time).

use std::collections::HashMap;

use poem::http::Method;
use weft_core::Access;

/// Access by operation id. Reading keys needs any valid key, making a child or renewing a token
/// the write right, deleting the delete right; on top, the key tree's own rules (a key sees and
/// manages only its subtree) apply in the key service.
pub const OPERATIONS: &[(&str, Access)] = &[
    // Things and Actions.
    ("weaviate.things.list", Access::Read),
    ("weaviate.things.create", Access::Write),
    ("weaviate.things.validate", Access::Write),
    ("weaviate.things.get", Access::Read),
    ("weaviate.things.update", Access::Write),
    ("weaviate.things.patch", Access::Write),
    ("weaviate.things.delete", Access::Delete),
    ("weaviate.thing.history.get", Access::Read),
    ("weaviate.things.properties.create", Access::Write),
    ("weaviate.things.properties.update", Access::Write),
    ("weaviate.things.properties.delete", Access::Delete),
    ("weaviate.actions.list", Access::Read),
    ("weaviate.actions.create", Access::Write),
    ("weaviate.actions.validate", Access::Write),
    ("weaviate.actions.get", Access::Read),
    ("weaviate.action.update", Access::Write),
    ("weaviate.actions.patch", Access::Write),
    ("weaviate.actions.delete", Access::Delete),
    ("weaviate.action.history.get", Access::Read),
    ("weaviate.actions.properties.create", Access::Write),
    ("weaviate.actions.properties.update", Access::Write),
    ("weaviate.actions.properties.delete", Access::Delete),
    // Batching.
    ("weaviate.batching.things.create", Access::Write),
    ("weaviate.batching.actions.create", Access::Write),
    // The schema: root only.
    ("weaviate.schema.dump", Access::Root),
    ("weaviate.schema.things.create", Access::Root),
    ("weaviate.schema.things.update", Access::Root),
    ("weaviate.schema.things.delete", Access::Root),
    ("weaviate.schema.things.properties.add", Access::Root),
    ("weaviate.schema.things.properties.update", Access::Root),
    ("weaviate.schema.things.properties.delete", Access::Root),
    ("weaviate.schema.actions.create", Access::Root),
    ("weaviate.schema.actions.update", Access::Root),
    ("weaviate.schema.actions.delete", Access::Root),
    ("weaviate.schema.actions.properties.add", Access::Root),
    ("weaviate.schema.actions.properties.update", Access::Root),
    ("weaviate.schema.actions.properties.delete", Access::Root),
    // Keys.
    ("weaviate.key.create", Access::Write),
    ("weaviate.keys.me.get", Access::AnyKey),
    ("weaviate.keys.me.children.get", Access::AnyKey),
    ("weaviate.keys.get", Access::AnyKey),
    ("weaviate.keys.children.get", Access::AnyKey),
    ("weaviate.keys.delete", Access::Delete),
    ("weaviate.keys.renew.token", Access::Write),
    // Meta, contextionary, GraphQL (`Local` reads).
    ("weaviate.meta.get", Access::Read),
    ("weft.c11y.words", Access::Read),
    ("weft.c11y.classes.nearest", Access::Read),
    ("weft.c11y.classes.get", Access::Read),
    ("weaviate.graphql.post", Access::Read),
    ("weaviate.graphql.batch", Access::Read),
    // Backups (a Weft addition): root only.
    ("weft.backups.create", Access::Root),
    // P2P membership (weft-p2p, api.rs): peer-facing, no key.
    ("weaviate.p2p.health", Access::None),
    ("weaviate.p2p.genesis_update", Access::None),
    ("weft.p2p.ping", Access::None),
    ("weft.p2p.peers.list", Access::None),
    ("weft.p2p.schema", Access::None),
    ("weft.p2p.contextionary.get", Access::None),
    ("weft.p2p.contextionary.download", Access::None),
    ("weaviate.peers.announce", Access::None),
    ("weaviate.peers.echo", Access::None),
    // The browser console's network page (weft-p2p, network_view.rs): what peers are known,
    // with their keys and classes, is for key holders.
    ("weft.p2p.network", Access::Read),
    // The operator forgets a peer and frees its name (weft-p2p, api.rs).
    ("weft.p2p.peers.remove", Access::Root),
    // P2P questions (weft-p2p, asking.rs): peer-facing, no key.
    ("weaviate.peers.questions.create", Access::None),
    ("weaviate.peers.answers.create", Access::None),
];

/// The access of `operation_id`, if declared.
pub fn access_of(operation_id: &str) -> Option<Access> {
    OPERATIONS
        .iter()
        .find(|(op, _)| *op == operation_id)
        .map(|(_, a)| *a)
}

/// What the root-key refusal says an operation does.
pub fn root_purpose(operation_id: &str) -> &'static str {
    if operation_id.starts_with("weaviate.schema.") {
        "changing or reading the schema"
    } else if operation_id == "weft.backups.create" {
        "making a backup"
    } else if operation_id == "weft.p2p.peers.remove" {
        "removing a peer"
    } else {
        "this operation"
    }
}

/// One operation of the document, matchable against a request.
#[derive(Debug, Clone)]
struct Operation {
    method: Method,
    /// Path segments; `None` is a `{parameter}`.
    segments: Vec<Option<String>>,
    id: String,
    access: Access,
}

/// Every operation of the document, to find the one a request is for.
#[derive(Debug, Clone)]
pub struct Operations {
    ops: Vec<Operation>,
}

/// The operation a request is for and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// Its operation id.
    pub operation_id: String,
    /// The access it declares.
    pub access: Access,
}

impl Operations {
    /// The operations of a finished OpenAPI document (paths relative to the API's base).
    /// Errs naming any operation without a declared access.
    pub fn new(doc: &serde_json::Value) -> Result<Self, String> {
        let mut ops = vec![];
        let mut missing = vec![];
        for (path, methods) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in methods.as_object().into_iter().flatten() {
                let Ok(method) = method.to_uppercase().parse::<Method>() else {
                    continue;
                };
                let id = op["operationId"].as_str().unwrap_or_default().to_string();
                let Some(access) = access_of(&id) else {
                    missing.push(id);
                    continue;
                };
                let segments = path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
                    .collect();
                ops.push(Operation {
                    method,
                    segments,
                    id,
                    access,
                });
            }
        }
        if missing.is_empty() {
            Ok(Operations { ops })
        } else {
            Err(format!(
                "operations without a declared access (add them to weft_rest::access::OPERATIONS): {}",
                missing.join(", ")
            ))
        }
    }

    /// The operation `method` on `path` (relative to the API's base) is for: of the templates
    /// that match, the one with the most literal segments (`/things/validate` before
    /// `/things/{thingId}`).
    pub fn find(&self, method: &Method, path: &str) -> Option<Matched> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.ops
            .iter()
            .filter(|o| o.method == *method && o.segments.len() == parts.len())
            .filter(|o| {
                o.segments
                    .iter()
                    .zip(&parts)
                    .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p))
            })
            .max_by_key(|o| o.segments.iter().filter(|s| s.is_some()).count())
            .map(|o| Matched {
                operation_id: o.id.clone(),
                access: o.access,
            })
    }

    /// The methods the operations at `path` answer (empty when no operation has this path).
    pub fn methods_of(&self, path: &str) -> Vec<String> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut out: Vec<String> = self
            .ops
            .iter()
            .filter(|o| o.segments.len() == parts.len())
            .filter(|o| {
                o.segments
                    .iter()
                    .zip(&parts)
                    .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p))
            })
            .map(|o| o.method.to_string())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Operation id → access, for the document's `x-weft-access`.
    pub fn table() -> HashMap<&'static str, Access> {
        OPERATIONS.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_of_the_document_declares_its_access() {
        let doc: serde_json::Value =
            serde_json::from_str(&crate::openapi_document()).expect("the document is JSON");
        let ops = Operations::new(&doc).expect("every operation has an access");
        assert_eq!(
            ops.ops.len(),
            OPERATIONS.len(),
            "a declared access names no operation"
        );
    }

    #[test]
    fn literal_segments_win_over_parameters() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_document()).unwrap();
        let ops = Operations::new(&doc).unwrap();
        let m = |method: Method, p: &str| ops.find(&method, p).map(|m| m.operation_id);
        assert_eq!(
            m(Method::POST, "/things/validate").as_deref(),
            Some("weaviate.things.validate")
        );
        assert_eq!(
            m(Method::GET, "/things/0f9a52a6-1e24-4b7c-9a1e-1c6f3f0c6a00").as_deref(),
            Some("weaviate.things.get")
        );
        assert_eq!(
            m(Method::GET, "/keys/me").as_deref(),
            Some("weaviate.keys.me.get")
        );
        assert_eq!(m(Method::GET, "/nothing/here"), None);
        assert_eq!(
            ops.find(&Method::DELETE, "/things/x/properties/y")
                .map(|m| m.access),
            Some(Access::Delete)
        );
    }
}
