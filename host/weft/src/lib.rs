//! `weft`: the Weft host binary — command line, configuration and wiring, nothing else.
//!
//! [`cli`] parses the command line, [`config`] reads the environments file, [`plugins`] finds
//! plugin libraries on disk, [`serve`] wires the connector and contextionary handles into
//! `weft-core` and the front ends (`weft-rest`, `weft-graphql`), [`contextionary_fetch`] makes
//! the default contextionary, [`backup`] downloads a running server's backup. Must not know: request shapes, schema or key rules (those are in
//! the front ends and the core).
pub mod backup;
pub mod cli;
pub mod config;
pub mod contextionary_fetch;
pub mod plugins;
pub mod serve;
