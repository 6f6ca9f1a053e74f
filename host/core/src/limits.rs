//! Limits on what one request may ask, so that no request — however large or clever — takes
//! the server's memory or time. Each is a setting (`limits.<name>` in the configuration); each
//! refusal is a 4xx naming the limit and its setting, given before the work starts.

use serde::{Deserialize, Serialize};

use crate::Error;

/// The limits, with their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, bytes (413 past it).
    pub max_body_bytes: usize,
    /// Most items in one batch (`/batching/things`, `/batching/actions`).
    pub max_batch_items: usize,
    /// Most queries in one `/graphql/batch`.
    pub max_graphql_batch: usize,
    /// Deepest GraphQL selection.
    pub max_graphql_depth: usize,
    /// Largest GraphQL complexity (each field counts one; lists count their page size).
    pub max_graphql_complexity: usize,
    /// Most aliased fields in one GraphQL query.
    pub max_graphql_aliases: usize,
    /// Most objects one query may read (GraphQL `Get` pages, host-side filters, aggregates).
    pub max_query_objects: u64,
    /// Most words in one `/c11y/words` request.
    pub max_c11y_words: usize,
    /// Largest `k` of a `/c11y` request.
    pub max_c11y_k: u32,
    /// Most peers a peer knows (and peer names it binds to keys) at once.
    pub max_peers: usize,
    /// Most announcements one peer (by key, and by network address) may send per minute.
    pub peer_announces_per_minute: u32,
    /// Most network questions one peer may ask per minute.
    pub peer_questions_per_minute: u32,
    /// Most classes in one network question.
    pub max_question_classes: usize,
    /// Most properties in one network question.
    pub max_question_properties: usize,
    /// Most keywords of one class or property of a network question.
    pub max_question_keywords: usize,
    /// Most network questions being answered at once.
    pub max_answers_in_progress: usize,
    /// Most bytes read of any answer from another server (schemas, echoes, answers, GraphQL).
    pub max_peer_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_batch_items: 10_000,
            max_graphql_batch: 100,
            max_graphql_depth: 32,
            max_graphql_complexity: 20_000,
            max_graphql_aliases: 100,
            max_query_objects: 200_000,
            max_c11y_words: 100,
            max_c11y_k: 1_000,
            max_peers: 1_000,
            peer_announces_per_minute: 60,
            peer_questions_per_minute: 600,
            max_question_classes: 16,
            max_question_properties: 16,
            max_question_keywords: 32,
            max_answers_in_progress: 8,
            max_peer_response_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// A 413 refusal: `what` is over the limit `name` (its value `limit`).
    pub fn refuse(what: &str, name: &str, limit: impl std::fmt::Display) -> Error {
        Error::too_large(format!(
            "{what} is over the limit limits.{name} = {limit}; send less, or raise limits.{name} in the configuration"
        ))
    }

    /// `Err` (413) when `n` exceeds `limit`.
    pub fn check(what: &str, name: &str, n: usize, limit: usize) -> Result<(), Error> {
        if n > limit {
            Err(Self::refuse(&format!("{what} ({n})"), name, limit))
        } else {
            Ok(())
        }
    }
}
