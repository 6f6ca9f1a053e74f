//! `weft-contextionary`: the Weft contextionary plugin `finalfusion` — word embeddings (GloVe
//! 6B 50d by default) from an mmapped finalfusion file, with exact and approximate (HNSW)
//! nearest neighbours.
//!
//! This crate is only the export: the implementation is `weft-contextionary-core`
//! (`plugins/contextionary/core`), which the host also links for `weft contextionary fetch`.
//! Keeping the exported root module here means no other binary ever carries it.
//!
//! Config (the environment's `contextionary` object, less `name`), only `path` required:
//!
//! ```json
//! {"path": "data/glove-6b-50d.fifu", "index_path": "data/glove-6b-50d.fifu.hnsw",
//!  "ef_search": 64, "threads": 2}
//! ```

use weft_contextionary_core::{FinalfusionContextionary, CONFIG_HELP, PLUGIN_NAME};

weft_plugin_api::export_contextionary! {
    name: PLUGIN_NAME,
    config_help: CONFIG_HELP,
    new: FinalfusionContextionary::from_context,
}
