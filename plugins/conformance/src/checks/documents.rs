//! Documents: the ontology and the connector state, versioned with compare-and-set.

use serde_json::Value;
use weft_plugin_api::{DocumentName, ErrorKind, VersionedDocument};

use crate::support::*;
use crate::Subject;

const DOCS: [DocumentName; 2] = [DocumentName::Ontology, DocumentName::ConnectorState];

/// The document must hold `json` (compared as JSON) at `version`.
pub(crate) fn same_document(
    c: &Conn<'_>,
    what: &str,
    got: &VersionedDocument,
    json: &str,
    version: u64,
) {
    let want: Value = serde_json::from_str(json).expect("kit bug: bad JSON");
    let same = serde_json::from_str::<Value>(&got.json).is_ok_and(|g| g == want);
    if !same || got.version != version {
        c.fail(format!(
            "{what}: expected version {version} with {}, got version {} with {}",
            short(json),
            got.version,
            short(&got.json)
        ));
    }
}

/// A document never written reads as version 0 with empty JSON (empty text or `{}`).
pub async fn check_document_initially_empty(s: &Subject) {
    let c = Conn::new(s);
    for d in DOCS {
        let doc = c.get_document(d).await;
        let text = doc.json.trim();
        ensure!(
            c,
            doc.version == 0 && (text.is_empty() || text == "{}"),
            "get_document({d:?}) of a fresh connector must answer version 0 and empty JSON, got \
             version {} with {}",
            doc.version,
            short(&doc.json)
        );
    }
}

/// `put_document` is a compare-and-set: with the stored version it writes and answers version
/// + 1; with a stale or future version it answers `Conflict` and nothing changes.
pub async fn check_document_compare_and_set(s: &Subject) {
    let c = Conn::new(s);
    for d in DOCS {
        let v1 = r#"{"things":{"classes":[{"class":"City"}]},"version":1}"#;
        let r = c.try_put_document(d, v1, 0).await;
        let n = c.ok(
            &format!("put_document({d:?}, expected version 0) on a fresh connector"),
            r,
        );
        c.same(
            &format!("put_document({d:?}, expected 0): the new version"),
            &n,
            &1,
        );
        same_document(
            &c,
            &format!("get_document({d:?}) after the first write"),
            &c.get_document(d).await,
            v1,
            1,
        );

        let v2 = r#"{"things":{"classes":[{"class":"City"},{"class":"Country"}]},"version":2}"#;
        let r = c.try_put_document(d, v2, 1).await;
        let n = c.ok(&format!("put_document({d:?}, expected version 1)"), r);
        c.same(
            &format!("put_document({d:?}, expected 1): the new version"),
            &n,
            &2,
        );
        same_document(
            &c,
            &format!("get_document({d:?}) after the second write"),
            &c.get_document(d).await,
            v2,
            2,
        );

        for (stale, what) in [
            (1, "stale"),
            (0, "initial"),
            (3, "future"),
            (u64::MAX, "u64::MAX"),
        ] {
            let r = c.try_put_document(d, r#"{"lost":true}"#, stale).await;
            c.expect_err(
                &format!(
                    "put_document({d:?}) with the {what} version {stale} while version 2 is stored"
                ),
                r,
                ErrorKind::Conflict,
                "compare-and-set: the expected version must be the stored one",
            );
            same_document(
                &c,
                &format!("get_document({d:?}) after a rejected put_document ({what} version)"),
                &c.get_document(d).await,
                v2,
                2,
            );
        }
        let r = c.try_put_document(d, "{}", 2).await;
        let n = c.ok(
            &format!("put_document({d:?}, \"{{}}\", expected version 2)"),
            r,
        );
        c.same(
            &format!("put_document({d:?}, expected 2): the new version"),
            &n,
            &3,
        );
        same_document(
            &c,
            &format!("get_document({d:?}) after writing {{}}"),
            &c.get_document(d).await,
            "{}",
            3,
        );
    }
}

/// The ontology and the connector state are independent documents with their own versions.
pub async fn check_documents_are_independent(s: &Subject) {
    let c = Conn::new(s);
    let onto = r#"{"actions":{"classes":[]},"things":{"classes":[{"class":"City"}]}}"#;
    let r = c.try_put_document(DocumentName::Ontology, onto, 0).await;
    c.ok("put_document(Ontology, expected 0)", r);
    let state = c.get_document(DocumentName::ConnectorState).await;
    ensure!(
        c,
        state.version == 0,
        "writing the Ontology changed the ConnectorState document: it is now version {} with {}",
        state.version,
        short(&state.json)
    );
    let st = r#"{"peers":["alpha"],"seq":7}"#;
    let r = c
        .try_put_document(DocumentName::ConnectorState, st, 0)
        .await;
    c.ok(
        "put_document(ConnectorState, expected 0) after the Ontology was written once (versions are per document)",
        r,
    );
    let r = c
        .try_put_document(DocumentName::ConnectorState, st, 1)
        .await;
    c.ok("put_document(ConnectorState, expected 1)", r);
    same_document(
        &c,
        "get_document(Ontology) after writing ConnectorState twice",
        &c.get_document(DocumentName::Ontology).await,
        onto,
        1,
    );
    same_document(
        &c,
        "get_document(ConnectorState)",
        &c.get_document(DocumentName::ConnectorState).await,
        st,
        2,
    );
    let r = c.try_put_document(DocumentName::Ontology, onto, 2).await;
    c.expect_err(
        "put_document(Ontology, expected 2) when the Ontology is at version 1 (and ConnectorState at 2)",
        r,
        ErrorKind::Conflict,
        "each document has its own version",
    );
}
