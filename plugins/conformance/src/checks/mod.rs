//! The checks. Each is `pub async fn check_xxx(s: &Subject)`: it takes fresh connectors from the
//! subject, exercises one rule of the contract and panics with a message naming the connector,
//! the call, what the contract expects and what the connector answered.
//!
//! [`conformance_tests!`](crate::conformance_tests) turns each into a `#[test]`; the doc comment of
//! each check states the rule it checks.

mod aggregate;
mod capabilities;
mod concurrency;
mod data;
mod documents;
mod filter;
mod history;
mod keys;
mod migrate;
mod objects;
mod query;
mod vectors;
mod versions;

pub use aggregate::*;
pub use capabilities::*;
pub use concurrency::*;
pub use data::*;
pub use documents::*;
pub use filter::*;
pub use history::*;
pub use keys::*;
pub use migrate::*;
pub use objects::*;
pub use query::*;
pub use vectors::*;
pub use versions::*;
