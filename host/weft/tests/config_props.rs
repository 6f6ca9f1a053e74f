//! Property tests of configuration parsing (`weft::config`): any text, any JSON document and any
//! overrides give an environment or a one-line error, never a panic; what loads is valid, and
//! overrides win over the file.
//!
//! Bounded and reproducible: `PROPTEST_CASES` cases (default below) from the fixed seed
//! `PROPTEST_RNG_SEED` (default below). Failures are saved in
//! `tests/proptest-regressions/config_props.txt`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
use serde_json::{json, Map, Value};

use weft::config::{load, parse_text, ConfigError, Environment, Overrides};

const CASES: u32 = 256;
const SEED: u64 = 0x5eed_c0f1;

fn config(cases: u32) -> Config {
    let mut c = Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/config_props.txt",
        ))),
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(SEED);
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Generators. No generated key or value holds a line break (`\n`, `\r`): errors that echo one
// are not one line, a known bug kept in `known_bug_an_error_echoing_a_line_break_is_not_one_line`;
// add line breaks back when it is fixed.

const UUIDS: &[&str] = &[
    "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000001",
    "0b1d3a3e7d2b4c559c1e6f3f0a000002",
    "not-a-uuid",
    "",
];
/// Strings that are, or nearly are, what the keys want.
const STRINGS: &[&str] = &[
    "127.0.0.1:8080",
    "127.0.0.1:0",
    "[::1]:80",
    "localhost",
    "127.0.0.1:99999",
    "http://127.0.0.1:8111",
    "http://127.0.0.1:0",
    "https://weft.example",
    "http://",
    "http://:80",
    "ftp://x",
    "dev-memory",
    "embedded",
    "finalfusion",
    "peer-1",
    "-bad",
    "data",
    "/tmp/weft",
    "10.0.0.0/8",
    "not-a-cidr",
    " ",
    "",
];

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(STRINGS).prop_map(str::to_string),
        2 => prop::sample::select(UUIDS).prop_map(str::to_string),
        2 => "[^\r\n]{0,12}",
        1 => "\\PC{0,6}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![0i64, 1, -1, 100, 65535, i64::MIN, i64::MAX])
            .prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        prop::sample::select(vec![0.0f64, 0.05, 0.01, 0.3, 3600.0, 3600.5, -1.0, 1e300])
            .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// The keys of an environment and of its sections, and a few that are not.
const KEYS: &[&str] = &[
    "name",
    "listen",
    "plugin_dir",
    "database",
    "database_config",
    "contextionary",
    "path",
    "auth",
    "root_key",
    "root_token",
    "network",
    "genesis_url",
    "public_url",
    "peer_name",
    "ping_interval_s",
    "peers",
    "url",
    "api_key",
    "api_token",
    "forward_caller_key",
    "P2P",
    "genesis",
    "bootstrappedPeers",
    "requestContextionary",
    "data_dir",
    "limit",
    "limits",
    "max_body_bytes",
    "max_graphql_depth",
    "trusted_proxies",
    "debug",
    "environments",
    "unknown",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => "[^\r\n]{0,6}",
    ]
}

/// An object with some of `fields` (always those named in `required`), each mostly of a
/// plausible type, and sometimes a key that does not belong.
fn section(
    required: &'static [&'static str],
    fields: Vec<(&'static str, BoxedStrategy<Value>)>,
) -> BoxedStrategy<Value> {
    let picks: Vec<_> = fields
        .into_iter()
        .map(|(k, s)| {
            let p = if required.contains(&k) { 0.97 } else { 0.4 };
            prop::option::weighted(p, prop_oneof![19 => s, 1 => any_json()])
                .prop_map(move |v| (k, v))
        })
        .collect();
    (picks, prop::option::weighted(0.05, (key(), any_json())))
        .prop_map(move |(picked, extra)| {
            let mut m = Map::new();
            for (k, v) in picked {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            }
            if let Some((k, v)) = extra {
                m.insert(k, v);
            }
            Value::Object(m)
        })
        .boxed()
}

fn s() -> BoxedStrategy<Value> {
    string().prop_map(Value::from).boxed()
}
fn b() -> BoxedStrategy<Value> {
    any::<bool>().prop_map(Value::from).boxed()
}
fn n() -> BoxedStrategy<Value> {
    prop_oneof![9 => (0u64..100_000).prop_map(Value::from), 1 => number()].boxed()
}
fn list(of: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop::collection::vec(of, 0..3)
        .prop_map(Value::Array)
        .boxed()
}

/// An environment: mostly the right keys with plausible values.
fn environment() -> BoxedStrategy<Value> {
    let limits = section(
        &[],
        vec![
            ("max_body_bytes", n()),
            ("max_batch_items", n()),
            ("max_graphql_batch", n()),
            ("max_graphql_depth", n()),
            ("max_graphql_complexity", n()),
            ("max_graphql_aliases", n()),
            ("max_query_objects", n()),
            ("max_c11y_words", n()),
            ("max_c11y_k", n()),
        ],
    );
    let peer = section(
        &["url", "api_key", "api_token"],
        vec![("url", s()), ("api_key", s()), ("api_token", s())],
    );
    section(
        &["name"],
        vec![
            ("name", s()),
            ("listen", s()),
            ("plugin_dir", s()),
            (
                "database",
                section(
                    &["name"],
                    vec![
                        ("name", s()),
                        (
                            "database_config",
                            prop_oneof![Just(json!({})), any_json()].boxed(),
                        ),
                    ],
                ),
            ),
            (
                "contextionary",
                section(&["name"], vec![("name", s()), ("path", s()), ("k", n())]),
            ),
            (
                "auth",
                section(&[], vec![("root_key", s()), ("root_token", s())]),
            ),
            (
                "network",
                section(
                    &[],
                    vec![
                        ("genesis_url", s()),
                        ("public_url", s()),
                        ("peer_name", s()),
                        ("ping_interval_s", n()),
                        ("peers", list(peer)),
                        ("forward_caller_key", b()),
                    ],
                ),
            ),
            (
                "P2P",
                section(
                    &[],
                    vec![
                        ("genesis", b()),
                        ("bootstrappedPeers", list(s())),
                        ("requestContextionary", b()),
                    ],
                ),
            ),
            ("data_dir", s()),
            ("limit", n()),
            ("limits", limits),
            ("trusted_proxies", list(s())),
            ("debug", b()),
        ],
    )
}

/// A config file: mostly `{"environments": [...]}`, sometimes any JSON.
fn document() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => environment().prop_map(|env| json!({"environments": [env]})),
        2 => prop::collection::vec(environment(), 0..4).prop_map(|envs| json!({"environments": envs})),
        1 => (prop::collection::vec(environment(), 0..2), key(), any_json()).prop_map(|(envs, k, v)| {
            let mut doc = json!({"environments": envs});
            doc[k] = v;
            doc
        }),
        1 => any_json(),
    ]
}

fn opt_string() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(0.3, string())
}

// `..Overrides::default()` covers settings added after this test was written.
#[allow(clippy::needless_update)]
fn overrides() -> impl Strategy<Value = Overrides> {
    (
        (
            opt_string(),
            opt_string().prop_map(|p| p.map(PathBuf::from)),
            opt_string(),
            prop::option::weighted(
                0.2,
                prop_oneof![
                    Just("{}".to_string()),
                    Just("{\"path\": \"x\"}".to_string()),
                    any_json().prop_map(|v| v.to_string()),
                    string(),
                ],
            ),
            opt_string(),
            opt_string(),
            opt_string(),
        ),
        (
            opt_string().prop_map(|p| p.map(PathBuf::from)),
            opt_string(),
            opt_string(),
            prop::option::weighted(0.2, prop::collection::vec(string(), 0..3)),
            prop::option::weighted(0.2, any::<bool>()),
            prop::option::weighted(0.2, any::<bool>()),
            prop::option::weighted(
                0.2,
                prop_oneof![
                    any::<f64>(),
                    Just(f64::NAN),
                    Just(f64::INFINITY),
                    Just(0.3),
                    Just(0.05)
                ],
            ),
            opt_string().prop_map(|p| p.map(PathBuf::from)),
        ),
    )
        .prop_map(
            |(
                (listen, plugin_dir, database, database_config, root_key, root_token, public_url),
                (
                    contextionary_path,
                    peer_name,
                    genesis_url,
                    bootstrapped_peers,
                    first_peer,
                    request_contextionary,
                    ping_interval_s,
                    data_dir,
                ),
            )| Overrides {
                listen,
                plugin_dir,
                database,
                database_config,
                root_key,
                root_token,
                public_url,
                contextionary_path,
                peer_name,
                genesis_url,
                bootstrapped_peers,
                first_peer,
                request_contextionary,
                ping_interval_s,
                data_dir,
                ..Overrides::default()
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Checks.

/// A configuration error is one line (it is printed as the one line of a failed start).
fn one_line(e: &str) -> Result<(), TestCaseError> {
    prop_assert!(!e.trim().is_empty(), "an empty error");
    prop_assert!(
        !e.contains('\n') && !e.contains('\r'),
        "the error is not one line: {:?}",
        e
    );
    Ok(())
}

/// What every loaded environment satisfies.
fn valid(env: &Environment, o: &Overrides) -> Result<(), TestCaseError> {
    prop_assert!(
        env.listen.parse::<SocketAddr>().is_ok(),
        "listen {:?}",
        env.listen
    );
    prop_assert!(!env.database.name.trim().is_empty());
    prop_assert!(env.database.database_config.is_object());
    prop_assert!(env.limit >= 1);
    for v in [&env.auth.root_key, &env.auth.root_token]
        .into_iter()
        .flatten()
    {
        prop_assert!(v.parse::<uuid::Uuid>().is_ok(), "{:?}", v);
    }
    // Overrides win over the file.
    if let Some(l) = &o.listen {
        prop_assert_eq!(&env.listen, l);
    }
    if let Some(d) = &o.database {
        prop_assert_eq!(&env.database.name, d);
    }
    if let Some(k) = &o.root_key {
        prop_assert_eq!(env.auth.root_key.as_ref(), Some(k));
    }
    if let Some(t) = &o.root_token {
        prop_assert_eq!(env.auth.root_token.as_ref(), Some(t));
    }
    if let Some(p) = &o.plugin_dir {
        prop_assert_eq!(env.plugin_dir.as_ref(), Some(p));
    }
    Ok(())
}

fn load_text(
    text: &str,
    name: Option<&str>,
    o: &Overrides,
) -> Result<Result<Environment, ConfigError>, TestCaseError> {
    let mut file =
        tempfile::NamedTempFile::new().map_err(|e| TestCaseError::fail(e.to_string()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    Ok(load(Some(file.path()), name, o))
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn any_text_parses_or_gives_a_one_line_error(text in "\\PC{0,80}|.{0,80}") {
        if let Err(e) = parse_text(&text) {
            one_line(&e)?;
        }
    }

    #[test]
    fn any_document_parses_or_gives_a_one_line_error(doc in document()) {
        match parse_text(&doc.to_string()) {
            Ok(file) => prop_assert_eq!(
                file.environments.len(),
                doc["environments"].as_array().map_or(0, Vec::len)
            ),
            Err(e) => one_line(&e)?,
        }
    }

    #[test]
    fn any_document_and_overrides_load_or_give_a_one_line_error(
        doc in document(),
        name in prop::option::weighted(0.3, string()),
        o in overrides(),
    ) {
        match load_text(&doc.to_string(), name.as_deref(), &o)? {
            Ok(env) => {
                valid(&env, &o)?;
                if let Some(n) = &name {
                    prop_assert_eq!(&env.name, n);
                }
            }
            Err(e) => one_line(&e.0)?,
        }
    }

    #[test]
    fn any_overrides_without_a_file_load_or_give_a_one_line_error(o in overrides()) {
        match load(None, None, &o) {
            Ok(env) => valid(&env, &o)?,
            Err(e) => one_line(&e.0)?,
        }
    }

    /// A valid environment with valid overrides loads, and the overrides win.
    #[test]
    fn a_valid_environment_loads_and_overrides_win(
        env_name in "[a-z][a-z0-9-]{0,8}",
        port in 0u16..,
        limit in 1u64..10_000,
        debug in any::<bool>(),
        root in prop::option::of(Just(("0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000001", "0b1d3a3e-7d2b-4c55-9c1e-6f3f0a000002"))),
        listen in prop::option::of((0u16..).prop_map(|p| format!("127.0.0.1:{p}"))),
        database in prop::option::of(prop::sample::select(&["dev-memory", "embedded", "x"][..]).prop_map(str::to_string)),
    ) {
        let mut env = json!({"name": env_name, "listen": format!("127.0.0.1:{port}"),
                             "database": {"name": "dev-memory", "database_config": {}},
                             "limit": limit, "debug": debug});
        if let Some((k, t)) = root {
            env["auth"] = json!({"root_key": k, "root_token": t});
        }
        let o = Overrides { listen: listen.clone(), database, ..Overrides::default() };
        let doc = json!({"environments": [env]});
        let loaded = load_text(&doc.to_string(), Some(&env_name), &o)?
            .map_err(|e| TestCaseError::fail(format!("{doc}: {}", e.0)))?;
        valid(&loaded, &o)?;
        prop_assert_eq!(loaded.limit, limit);
        prop_assert_eq!(loaded.debug, debug);
        prop_assert_eq!(loaded.listen, listen.unwrap_or(format!("127.0.0.1:{port}")));
    }
}

/// Was a bug, now fixed (found by `any_document_parses_or_gives_a_one_line_error` and
/// `any_overrides_without_a_file_load_or_give_a_one_line_error`): an error that echoes a key or
/// a value holding a line break is not one line, because the texts of serde ("unknown field
/// `a<LF>b`", and serde_path_to_error's key path) and of uuid ("invalid character: found
/// `<LF>`") print it raw. E.g. a config file with the key `"a\nb"` in `auth`, or
/// `WEFT_ROOT_KEY=$'a\nb'`. Expected: one line (escape the echoed text, e.g. with `{:?}`, or
/// replace line breaks in `weft::config`'s messages). Un-ignore when fixed.
#[test]

fn an_error_echoing_a_line_break_is_one_line() {
    let mut errors = vec![];
    for text in [
        r#"{"environments": [{"name": "x", "auth": {"a\nb": 1}}]}"#,
        r#"{"a\rb": []}"#,
    ] {
        errors.push(parse_text(text).unwrap_err());
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        errors.push(
            load(Some(file.path()), None, &Overrides::default())
                .unwrap_err()
                .0,
        );
    }
    for root_key in ["a\nb", "a\rb"] {
        let o = Overrides {
            root_key: Some(root_key.into()),
            ..Overrides::default()
        };
        errors.push(load(None, None, &o).unwrap_err().0);
    }
    let broken: Vec<&String> = errors
        .iter()
        .filter(|e| e.contains('\n') || e.contains('\r'))
        .collect();
    assert!(
        broken.is_empty(),
        "errors of more than one line: {broken:#?}"
    );
}
