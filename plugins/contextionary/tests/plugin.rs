//! The built plugin library, loaded the way the host loads it, on the test slice
//! (scripts/fetch-test-contextionary.sh; `WEFT_TEST_CONTEXTIONARY` overrides its path).

use std::path::PathBuf;

use weft_plugin_api::{ErrorKind, HostLogger, PluginKind};
use weft_plugin_loader as loader;

/// `libweft_contextionary.so` beside the test executable or one level up (`cargo test` leaves
/// cdylibs in deps/), or `WEFT_CONTEXTIONARY_SO`.
fn library() -> PathBuf {
    if let Some(p) = std::env::var_os("WEFT_CONTEXTIONARY_SO").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let file = format!(
        "{}weft_contextionary{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    [dir.join(&file), dir.parent().unwrap().join(&file)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{file} not found beside {}", dir.display()))
}

fn slice_path() -> PathBuf {
    if let Some(p) = std::env::var_os("WEFT_TEST_CONTEXTIONARY").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/contextionary/glove-top20000.fifu");
    assert!(
        p.exists(),
        "the test contextionary {} is missing: run scripts/fetch-test-contextionary.sh (or set \
         WEFT_TEST_CONTEXTIONARY to a .fifu file)",
        p.display()
    );
    p
}

#[test]
fn loads_as_the_finalfusion_contextionary() {
    let plugin = loader::load(&library()).expect("load the plugin");
    assert_eq!(plugin.name, "finalfusion");
    assert_eq!(plugin.kind, PluginKind::Contextionary);
    assert_eq!(plugin.interface_version, weft_plugin_api::INTERFACE_VERSION);
    let help = plugin.config_help.as_deref().unwrap_or_default();
    assert!(
        help.contains("path") && help.contains("index_path"),
        "{help}"
    );
}

#[test]
fn answers_through_the_abi() {
    let plugin = loader::load(&library()).unwrap();
    let config = serde_json::json!({ "path": slice_path() }).to_string();
    let c = plugin
        .new_contextionary(&config, HostLogger::discard())
        .expect("open the slice");
    assert_eq!(c.dimensions(), 50);
    assert_eq!(c.vocabulary_size(), 20_000);
    assert!(c.contains("city".into()));
    assert!(!c.contains("zebrafoo".into()));
    let near = c
        .nearest_to_word("city".into(), 5, false)
        .into_result()
        .unwrap();
    let words: Vec<&str> = near.iter().map(|w| w.word.as_str()).collect();
    assert!(words.contains(&"town"), "{words:?}");
    let e = c
        .nearest_to_word("zebrafoo".into(), 5, true)
        .into_result()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let md5 = c.content_hash("md5".into()).into_result().unwrap();
    assert_eq!(md5.len(), 32);
}

#[test]
fn a_missing_path_is_an_invalid_config() {
    let plugin = loader::load(&library()).unwrap();
    let e = plugin
        .new_contextionary("{}", HostLogger::discard())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("contextionary.path"), "{}", e.message);
    assert!(
        e.message.contains("weft contextionary fetch"),
        "{}",
        e.message
    );
}

/// Interface 1.2: the plugin has `new_contextionary_parts`, so opening it answers the look-ups
/// whose panics are errors, over the same embeddings (a three-word file written here, so this
/// test needs no download).
#[test]
fn opens_with_word_lookups_over_the_same_embeddings() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("weft-contextionary-lookups");
    let path = dir.join(format!("tiny-{}.fifu", std::process::id()));
    let words = vec!["berlin".to_string(), "paris".into(), "city".into()];
    let matrix = vec![3.0, 4.0, 0.0, 1.0, 1.0, 1.0];
    weft_contextionary_core::write_embeddings(&path, words, matrix, 2, &[]).unwrap();
    let plugin = loader::load(&library()).unwrap();
    let config = serde_json::json!({ "path": path }).to_string();
    let opened = plugin
        .open_contextionary(&config, HostLogger::discard())
        .expect("open the tiny embeddings");
    let lookups = opened
        .lookups
        .expect("built against 1.2: the plugin has look-ups");
    assert_eq!(opened.contextionary.vocabulary_size(), 3);
    assert_eq!(lookups.try_contains("paris".into()).into_result(), Ok(true));
    assert_eq!(
        lookups.try_contains("zebrafoo".into()).into_result(),
        Ok(false)
    );
    let v = lookups.try_vector("berlin".into()).into_result().unwrap();
    assert_eq!(
        v.into_option().map(|v| v.into_vec()),
        opened
            .contextionary
            .vector("berlin".into())
            .into_option()
            .map(|v| v.into_vec())
    );
    assert!(lookups
        .try_vector("zebrafoo".into())
        .into_result()
        .unwrap()
        .is_none());
    let e = plugin
        .open_contextionary("{}", HostLogger::discard())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    let _ = std::fs::remove_file(&path);
}
