//! `weft`: the Weft host binary — command line, configuration and wiring, nothing else.
//!
//! [`cli`] parses the command line, [`config`] reads the environments file, [`plugins`] finds
//! plugin libraries on disk, [`serve`] wires the connector and contextionary handles into
//! `weft-core` and the front ends (`weft-rest`, `weft-graphql`), [`backup_download`] downloads a
//! running server's backup; `weft contextionary fetch` runs `weft-contextionary-fetch`. Must not
//! know: request shapes, schema or key rules (those are in the front ends and the core), nor how
//! a contextionary is downloaded or written (the contextionary's crates).
pub mod backup_download;
pub mod cli;
pub mod config;
pub mod migrate;
pub mod plugins;
pub mod serve;
