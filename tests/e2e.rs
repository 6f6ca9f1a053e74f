//! The end-to-end tests: the real `weft` binary with real plugin files, one module per subject,
//! all linked into this one test binary (one link instead of one per file; the tests run in
//! parallel threads, so none may change process-wide state such as environment variables).
//! `real_server_outage.rs`, which stops and starts the real servers under running tests, is a
//! binary of its own. A file under `tests/` that is neither a module here nor a target of its own
//! fails [`test_layout`].
//!
//! `scripts/test.sh` runs `rest_api`, `graphql` and `newest_first` once more through each
//! distributed connector: `cargo test -p weft-e2e-tests --test e2e -- rest_api:: graphql::
//! newest_first::` (test names are `module::test`, and no other module has those names).
mod admission;
mod authorization;
mod cli_config;
mod concurrency;
mod connector_template;
mod console;
mod contextionary;
mod distributed_store;
mod embedded_store;
mod genesis;
mod graphql;
mod graphql_fuzz;
mod key_tree;
mod layers;
mod limits;
mod migrate;
mod network_queries;
mod newest_first;
mod openapi_document;
mod p2p_network;
mod p2p_tls;
mod peer_attacks;
mod plugin_faults;
mod plugin_loading;
mod plugins_check_cli;
mod real_servers;
mod rest_api;
mod rust_modules;
mod search_by_meaning;
mod test_layout;
