//! The committed OpenAPI document is the one the handlers generate.
#[test]
fn committed_openapi_document_matches_the_handlers() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/weft-openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = weft_rest::openapi_document();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/weft-openapi.json is stale: the REST handlers changed. Regenerate it with\n  cargo run -p weft -- openapi > openapi/weft-openapi.json\nand commit it."
    );
}

#[test]
fn the_served_document_is_the_committed_one() {
    let server = weft_e2e_tests::Server::start();
    let served: serde_json::Value = reqwest::blocking::get(server.at("/openapi.json"))
        .unwrap()
        .json()
        .unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/weft-openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        served == committed,
        "GET /openapi.json differs from openapi/weft-openapi.json"
    );
    // The Swagger UI is served from the binary (no network needed).
    let ui = reqwest::blocking::get(server.at("/swagger/")).unwrap();
    assert_eq!(ui.status(), 200);
    let html = ui.text().unwrap();
    assert!(
        html.contains("swagger-ui"),
        "{}",
        &html[..html.len().min(300)]
    );
    for remote in ["src=\"http", "href=\"http", "src='http", "href='http"] {
        assert!(
            !html.contains(remote),
            "the Swagger page must not load anything from the network ({remote})"
        );
    }
}
