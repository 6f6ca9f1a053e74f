//! The ontology's meaning: checking its words against the contextionary and placing classes and
//! properties in the contextionary's vector space.
//!
//! Owns: the word rules (every keyword, or without keywords every CamelCase part of the name,
//! must be a word of the contextionary), the suggestions in their errors, and the vectors
//! (weighted centroid of the keywords, or mean of the name's parts). Must not know: HTTP, how the
//! contextionary stores its embeddings (it is a plugin behind [`ContextionaryHandle`]).

use weft_plugin_api::ObjectKind;

use crate::handles::ContextionaryHandle;
use crate::ontology::{Keyword, Ontology};
use crate::Error;

/// The lower-cased CamelCase parts of a name: `AirPort` → `["air", "port"]`, `inCountry` →
/// `["in", "country"]`, `HTTPServer` → `["http", "server"]`.
pub fn name_parts(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut parts = vec![];
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let prev_lower_or_digit =
            i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
        if c.is_uppercase() && !cur.is_empty() && (prev_lower_or_digit || next_lower) {
            parts.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts.into_iter().map(|p| p.to_lowercase()).collect()
}

/// The words a class or property is placed by, with their weights.
fn words(name: &str, keywords: &[Keyword]) -> Vec<(String, f32)> {
    if keywords.is_empty() {
        name_parts(name).into_iter().map(|w| (w, 1.0)).collect()
    } else {
        keywords
            .iter()
            .map(|k| (k.keyword.to_lowercase(), k.weight as f32))
            .collect()
    }
}

/// A suggestion for an unknown word: the longest known word it starts or ends with, and that
/// word's nearest neighbours.
pub(crate) async fn suggestion(c: &ContextionaryHandle, word: &str) -> Result<String, Error> {
    let chars: Vec<char> = word.chars().collect();
    let mut known = None;
    for n in (3..chars.len()).rev() {
        for p in [
            chars[..n].iter().collect::<String>(),
            chars[chars.len() - n..].iter().collect::<String>(),
        ] {
            if c.contains(&p)? {
                known = Some(p);
                break;
            }
        }
        if known.is_some() {
            break;
        }
    }
    Ok(match known {
        Some(p) => {
            let near: Vec<String> = c
                .nearest_to_word(&p, 5)
                .await
                .map(|v| v.into_iter().map(|w| w.word.to_string()).collect())
                .unwrap_or_default();
            format!(
                "did you mean \"{p}\"{}?",
                if near.is_empty() {
                    String::new()
                } else {
                    format!(" (near it: {})", near.join(", "))
                }
            )
        }
        None => "check its spelling".to_string(),
    })
}

/// Checks the words of a class or property and answers its vector, or an `Invalid` error whose
/// one sentence names the missing word (`Internal` when the contextionary failed).
pub async fn place(
    c: &ContextionaryHandle,
    what: &str,
    name: &str,
    keywords: &[Keyword],
) -> Result<Vec<f32>, Error> {
    let ws = words(name, keywords);
    let dims = c.dimensions() as usize;
    let mut sum = vec![0f32; dims];
    let mut total = 0f32;
    for (w, weight) in &ws {
        let Some(v) = c.vector(w)? else {
            let how = if keywords.is_empty() {
                "every part of the name must be a word; split it in CamelCase or give \"keywords\" that are words".to_string()
            } else {
                "use keywords that are words".to_string()
            };
            return Err(Error::unprocessable(format!(
                "{what}: \"{w}\" is not a word of the contextionary ({}); {}; {how}",
                c.name,
                suggestion(c, w).await?
            )));
        };
        for (s, x) in sum.iter_mut().zip(&v) {
            *s += weight * x;
        }
        total += weight;
    }
    if total <= 0.0 {
        return Err(Error::unprocessable(format!(
            "{what}: it has no words to place it by; give it keywords"
        )));
    }
    Ok(sum.into_iter().map(|s| s / total).collect())
}

/// Checks and places every class and property of `after` that is new or changed since
/// `before` (name or keywords), and keeps the vectors of the others.
pub async fn annotate(
    c: &ContextionaryHandle,
    before: &Ontology,
    after: &mut Ontology,
) -> Result<(), Error> {
    for kind in [ObjectKind::Thing, ObjectKind::Action] {
        let old = before.schema(kind).classes.clone();
        let schema = match kind {
            ObjectKind::Thing => &mut after.things,
            ObjectKind::Action => &mut after.actions,
        };
        for class in &mut schema.classes {
            let prev = old
                .iter()
                .find(|o| o.class == class.class && o.keywords == class.keywords);
            class.vector = match prev.and_then(|p| p.vector.clone()) {
                Some(v) => Some(v),
                None => Some(
                    place(
                        c,
                        &format!("class {}", class.class),
                        &class.class,
                        &class.keywords,
                    )
                    .await?,
                ),
            };
            let old_props = prev.map(|p| p.properties.clone()).unwrap_or_default();
            for p in &mut class.properties {
                let kept = old_props
                    .iter()
                    .find(|o| o.name == p.name && o.keywords == p.keywords)
                    .and_then(|o| o.vector.clone());
                p.vector = match kept {
                    Some(v) => Some(v),
                    None => Some(
                        place(
                            c,
                            &format!("property {}.{}", class.class, p.name),
                            &p.name,
                            &p.keywords,
                        )
                        .await?,
                    ),
                };
            }
        }
    }
    Ok(())
}

/// Cosine distance (1 − cosine similarity).
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return 1.0;
    }
    1.0 - dot / (na * nb)
}

/// The classes nearest to `v`, nearest first.
pub fn nearest_classes(o: &Ontology, v: &[f32], k: usize) -> Vec<(ObjectKind, String, f32)> {
    let mut all: Vec<(ObjectKind, String, f32)> = [ObjectKind::Thing, ObjectKind::Action]
        .into_iter()
        .flat_map(|kind| {
            o.schema(kind).classes.iter().filter_map(move |c| {
                c.vector
                    .as_ref()
                    .map(|cv| (kind, c.class.clone(), cosine_distance(v, cv)))
            })
        })
        .collect();
    all.sort_by(|a, b| a.2.total_cmp(&b.2).then_with(|| a.1.cmp(&b.1)));
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_names_split_into_lower_case_words() {
        assert_eq!(name_parts("City"), ["city"]);
        assert_eq!(name_parts("AirPort"), ["air", "port"]);
        assert_eq!(name_parts("inCountry"), ["in", "country"]);
        assert_eq!(name_parts("HTTPServer"), ["http", "server"]);
        assert_eq!(name_parts("Zebrafoo"), ["zebrafoo"]);
    }

    #[test]
    fn cosine_distance_of_parallel_vectors_is_zero() {
        assert!(cosine_distance(&[1.0, 2.0], &[2.0, 4.0]).abs() < 1e-6);
        assert!((cosine_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-6);
    }
}
