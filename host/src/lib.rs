//! `weft`: the Weft host — a knowledge-graph server whose storage and contextionary are plugins
//! loaded at run time.
//!
//! One module per concern (see ARCHITECTURE.md): [`cli`] parses the command line, [`config`]
//! reads the environments file, [`plugins`] finds and loads plugin libraries and wraps the
//! connector for the rest of the host.
pub mod auth;
pub mod c11y;
pub mod cli;
pub mod config;
pub mod contextionary_fetch;
pub mod graphql;
pub mod ontology;
pub mod plugins;
pub mod rest;
pub mod server;
