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
    /// Largest `limit` of an `Explore` and `first` of a `Get` with `explore`.
    pub max_explore_k: u64,
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
    /// Most connections open at once; a connection past it is closed as soon as it is
    /// accepted. `None`: the open-file limit less [`Limits::RESERVED_FILES`].
    pub max_connections: Option<usize>,
    /// Most requests being answered at once; past it a request is answered 503 with
    /// `Retry-After`.
    pub max_requests_in_progress: usize,
    /// Longest time, milliseconds, from a request's first byte to the end of its headers.
    pub header_read_timeout_ms: u64,
    /// Longest time, milliseconds, a connection may stay open without a request in progress
    /// and without a byte sent or received.
    pub idle_timeout_ms: u64,
    /// Longest time, milliseconds, a request may take to be answered (a backup excepted).
    pub request_timeout_ms: u64,
    /// Most objects of `async` creates accepted and not yet stored.
    pub max_async_backlog: usize,
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
            max_explore_k: 1_000,
            max_peers: 1_000,
            peer_announces_per_minute: 60,
            peer_questions_per_minute: 600,
            max_question_classes: 16,
            max_question_properties: 16,
            max_question_keywords: 32,
            max_answers_in_progress: 8,
            max_peer_response_bytes: 4 * 1024 * 1024,
            max_connections: None,
            max_requests_in_progress: 512,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            request_timeout_ms: 120_000,
            max_async_backlog: 100_000,
        }
    }
}

impl Limits {
    /// Open files kept for everything but incoming connections (the store, plugins, backups,
    /// calls to peers and to distributed stores) when the connection cap is derived from the
    /// open-file limit, and at least left over when it is configured.
    pub const RESERVED_FILES: u64 = 256;

    /// The connection cap for a process whose soft open-file limit is `open_files`: the
    /// configured one when it fits under the limit with [`Limits::RESERVED_FILES`] to spare,
    /// otherwise an error naming the setting; unset, the limit less the reserve.
    pub fn connection_cap(&self, open_files: u64, hard: u64) -> Result<usize, String> {
        let room = open_files.saturating_sub(Self::RESERVED_FILES);
        match self.max_connections {
            None if room == 0 => Err(format!(
                "the open-file limit ({open_files}, hard limit {hard}) leaves no room for connections beside the {} files kept for the store, plugins and peers; raise it (ulimit -n, LimitNOFILE= of a systemd unit)",
                Self::RESERVED_FILES
            )),
            None => Ok(usize::try_from(room).unwrap_or(usize::MAX)),
            Some(0) => Err(
                "limits.max_connections = 0 would refuse every connection; set at least 1, or leave it out to derive it from the open-file limit".into(),
            ),
            Some(n) if n as u64 > room => Err(format!(
                "limits.max_connections = {n} does not fit under this process's open-file limit of {open_files} (hard limit {hard}) with {} files kept for the store, plugins and peers; set limits.max_connections to at most {room}, or raise the hard limit (ulimit -Hn, LimitNOFILE= of a systemd unit)",
                Self::RESERVED_FILES
            )),
            Some(n) => Ok(n),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_fits_under_the_open_file_limit_or_names_the_setting() {
        let unset = Limits::default();
        assert_eq!(unset.connection_cap(1024, 4096), Ok(768));
        assert!(unset.connection_cap(200, 200).is_err());
        let set = |n| Limits {
            max_connections: Some(n),
            ..Limits::default()
        };
        assert_eq!(set(700).connection_cap(1024, 1024), Ok(700));
        assert_eq!(set(768).connection_cap(1024, 1024), Ok(768));
        let e = set(900).connection_cap(1024, 1024).unwrap_err();
        assert!(
            e.contains("limits.max_connections = 900") && e.contains("at most 768"),
            "{e}"
        );
        assert!(set(0).connection_cap(1024, 1024).is_err());
    }
}
