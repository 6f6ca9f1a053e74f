//! Data fidelity: large objects and Unicode.

use abi_stable::std_types::RString;
use serde_json::{json, Value};
use weft_plugin_api::{
    Capabilities, DocumentName, ObjectKind, ObjectQuery, StoredKey, StoredObject,
};

use crate::checks::filter::{cmp, expect_filter, seed_rows, OPS};
use crate::support::*;
use crate::Subject;

/// About `bytes` bytes of mixed-width text (ASCII, Latin-1, CJK, emoji).
fn big_text(bytes: usize, salt: &str) -> String {
    let unit = format!("Weft {salt} 🕸 große Daten 大きいデータ ¡sí! ");
    unit.repeat(bytes / unit.len() + 1)
}

/// A ~1 MB string property and a 10 000-element array round-trip through create, get,
/// get_objects, query_objects, update and (with `HISTORY`) history; with `FILTER` an `Equal`
/// filter on the 1 MB value finds the object.
pub async fn check_large_object(s: &Subject) {
    let c = Conn::new(s);
    let text = big_text(1 << 20, "v1");
    let numbers: Vec<i64> = (0..10_000).map(|i| i * 7 - 3).collect();
    let o = labelled(
        ObjectKind::Thing,
        "Document",
        "big",
        T0,
        json!({"body": text, "numbers": numbers}),
    );
    c.create(&o).await;
    c.get_same("get_object of a ~1 MB object", &o).await;
    let many = c.get_many(ObjectKind::Thing, &[o.id]).await;
    match many.first() {
        Some(Some(g)) => c.same_object("get_objects of a ~1 MB object", &o, g),
        _ => c.fail(format!(
            "get_objects([~1 MB object]) answered {}",
            dbg(&many)
        )),
    }
    let page = c.query(&query(ObjectKind::Thing)).await;
    c.same_page(
        "query_objects with a ~1 MB object",
        &page,
        &["big".into()],
        1,
    );
    c.same_object(
        "a ~1 MB object as query_objects answers it",
        &o,
        &page.objects[0],
    );

    let v2 = with_properties(
        &o,
        T0 + 1000,
        json!({"label": "big v2", "body": big_text(1 << 20, "v2")}),
    );
    c.update(&v2).await;
    c.get_same(
        "get_object after updating a ~1 MB object with another ~1 MB value",
        &v2,
    )
    .await;
    if s.has(Capabilities::HISTORY) {
        let h = c.history(&o).await;
        match h.versions.first() {
            Some(v) if h.versions.len() == 1 => {
                c.same_object("object_history of an updated ~1 MB object", &o, &v.object)
            }
            _ => c.fail(format!(
                "object_history of an updated ~1 MB object must hold 1 version, got {}",
                h.versions.len()
            )),
        }
    }
    if s.has(Capabilities::FILTER) {
        let small = labelled(
            ObjectKind::Thing,
            "Document",
            "small",
            T0 + 5,
            json!({"body": "short"}),
        );
        c.create(&small).await;
        let objects = [v2.clone(), small];
        let v2_body = v2.properties()["body"].clone();
        let f = cmp("Equal", &["body"], "valueText", v2_body);
        expect_filter(
            &c,
            "Document",
            &f,
            &objects,
            |o| label(o) == "big v2",
            "Equal on a ~1 MB text",
        )
        .await;
    }
}

/// Strings that must come back byte for byte: emoji with ZWJ sequences and skin tones, CJK,
/// decomposed and composed accents (no normalisation), RTL, astral-plane symbols, quotes,
/// backslashes, control characters.
fn unicode_values() -> Vec<(&'static str, &'static str)> {
    vec![
        ("emoji", "🦀 Rustacean 👩‍👩‍👧‍👦 👍🏽 🏳️‍🌈"),
        ("cjk", "東京都 北京市 서울 とうきょう"),
        ("decomposed", "Cafe\u{301} Zu\u{308}rich"),
        ("composed", "Caf\u{e9} Z\u{fc}rich"),
        ("rtl", "שלום עולם مرحبا"),
        ("astral", "𝄞 𝕎𝕖𝕗𝕥 𠜎"),
        (
            "escapes",
            "quote \" backslash \\ slash / tab \t newline \n cr \r bell \u{7}",
        ),
        ("bom and zero width", "\u{feff}a\u{200b}b\u{200d}c"),
        ("fullwidth", "ｚ ＷＥＦＴ"),
    ]
}

/// Unicode class names, property names, property values, contexts, key e-mails and documents
/// round-trip byte for byte (no normalisation, no escaping artefacts), and `class` matches
/// Unicode class names exactly.
pub async fn check_unicode_round_trip(s: &Subject) {
    let c = Conn::new(s);
    let mut objects = vec![];
    for (i, (name, value)) in unicode_values().into_iter().enumerate() {
        let class = match i % 3 {
            0 => "Stadt_Ü",
            1 => "都市",
            _ => "🏙Metropolis",
        };
        let mut o = labelled(
            ObjectKind::Thing,
            class,
            name,
            T0 + i as i64 * 1000,
            json!({"wert": value, "名前": value, "ключ🔑": [value, {"nested": value}]}),
        );
        o.context = RString::from(format!("http://example.org/ctx/{name}/ü/東京"));
        c.create(&o).await;
        c.get_same(
            &format!("get_object of an object with Unicode ({name})"),
            &o,
        )
        .await;
        objects.push(o);
    }
    for class in ["Stadt_Ü", "都市", "🏙Metropolis"] {
        let matching: Vec<StoredObject> = objects
            .iter()
            .filter(|o| o.class.as_str() == class)
            .cloned()
            .collect();
        let q = ObjectQuery {
            class: class.into(),
            ..query(ObjectKind::Thing)
        };
        let page = c.query(&q).await;
        c.same_page(
            &format!("query_objects(Things of class {class:?})"),
            &page,
            &labels(&newest_first(&matching)),
            matching.len() as u64,
        );
        for o in &page.objects {
            let want = objects.iter().find(|w| w.id == o.id).unwrap();
            c.same_object("a Unicode object as query_objects answers it", want, o);
        }
    }
    // The two spellings of "Café Zürich" are different strings and must stay different.
    let decomposed = c.get(ObjectKind::Thing, objects[2].id).await.unwrap();
    ensure!(
        c,
        decomposed.properties()["wert"] == json!("Cafe\u{301} Zu\u{308}rich"),
        "a decomposed string (e + U+0301) was normalised or altered: got {}",
        decomposed.properties()["wert"]
    );

    let k = StoredKey {
        email: "ünïcødé+東京@例え.jp".into(),
        token_hash: "🔑hash".into(),
        ..key(None, T0, "")
    };
    c.add_key(&k).await;
    match c.get_key(k.id).await {
        Some(got) => c.same_key("get_key of a key with a Unicode e-mail", &k, &got),
        None => c.fail("get_key answered None for a key just added"),
    }
    let doc =
        json!({"things": {"classes": [{"class": "都市", "description": "🏙 Städte"}]}}).to_string();
    let r = c.try_put_document(DocumentName::Ontology, &doc, 0).await;
    c.ok("put_document(Ontology) with Unicode", r);
    let got = c.get_document(DocumentName::Ontology).await;
    let same =
        serde_json::from_str::<Value>(&got.json).ok() == serde_json::from_str::<Value>(&doc).ok();
    ensure!(
        c,
        same && got.version == 1,
        "get_document(Ontology) after writing Unicode JSON: expected version 1 with {doc}, got version {} with {}",
        got.version,
        short(&got.json)
    );
}

/// Filters on Unicode strings: `Equal` matches byte-identical strings only (composed and
/// decomposed accents differ), and ordering is by Unicode **code point** — not UTF-16 code
/// units (U+FF5A `ｚ` sorts before U+1F980 `🦀`), not locale collation.
pub async fn check_unicode_filters(s: &Subject) {
    if !requires(s, Capabilities::FILTER, "check_unicode_filters") {
        return;
    }
    let c = Conn::new(s);
    let values = [
        "a", "z", "é", "e\u{301}", "東京", "🦀", "Ω", "ｚ", "Ä", "\u{ffff}", "𝄞",
    ];
    let rows: Vec<(&str, Option<Value>)> = values.iter().map(|v| (*v, Some(json!(v)))).collect();
    let objects = seed_rows(&c, "都市", "名前", &rows).await;
    for target in ["é", "東京", "ｚ", "🦀", "e\u{301}"] {
        for op in OPS {
            let f = cmp(op, &["名前"], "valueString", json!(target));
            let holds = |o: &StoredObject| {
                let v = label(o);
                let ord = v.as_str().cmp(target);
                match op {
                    "Equal" => ord.is_eq(),
                    "NotEqual" => ord.is_ne(),
                    "GreaterThan" => ord.is_gt(),
                    "GreaterThanEqual" => ord.is_ge(),
                    "LessThan" => ord.is_lt(),
                    _ => ord.is_le(),
                }
            };
            expect_filter(
                &c,
                "都市",
                &f,
                &objects,
                holds,
                "strings compare by Unicode code point, byte for byte",
            )
            .await;
        }
    }
}
