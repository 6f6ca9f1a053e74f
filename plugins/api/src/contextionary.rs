//! The contextionary contract: word embeddings the host uses to validate and place the ontology.
//!
//! Calls are synchronous: a contextionary answers from memory (an mmapped file), so a call is
//! pure computation. Implement [`Contextionary`] and export it with
//! [`export_contextionary!`](crate::export_contextionary); every call runs under `catch_unwind`.
//!
//! # Added in 1.2: word look-ups that report panics
//!
//! [`ContextionaryFfi::contains`] and [`ContextionaryFfi::vector`] cannot report an error, so a
//! panic in them reads as "unknown word". [`WordLookupFfi`] answers the same questions as
//! `RResult`s, a panic being an `Internal` error ([`PluginError::panicked_in`] names the call).
//! It is a second ABI object over the same contextionary instance, made by the root module's
//! `new_contextionary_parts` (added in 1.2) as [`ContextionaryParts`]; a host opens both with
//! `LoadedPlugin::open_contextionary` of the host's loader (`weft-plugin-loader`), which
//! answers `lookups: None` for a plugin built before 1.2.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use abi_stable::sabi_trait;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec};

use crate::connector::panic_error;
use crate::error::{PluginError, PluginResult};
use crate::types::{WordDistance, WordVector};

/// The ABI-stable contextionary interface. Implement [`Contextionary`] instead.
#[sabi_trait]
pub trait ContextionaryFfi: Send + Sync {
    /// See [`Contextionary::dimensions`].
    fn dimensions(&self) -> u32;
    /// See [`Contextionary::vocabulary_size`].
    fn vocabulary_size(&self) -> u64;
    /// See [`Contextionary::contains`].
    fn contains(&self, word: RStr<'_>) -> bool;
    /// See [`Contextionary::vector`].
    fn vector(&self, word: RStr<'_>) -> ROption<RVec<f32>>;
    /// See [`Contextionary::nearest_to_vector`].
    fn nearest_to_vector(
        &self,
        vector: RSlice<'_, f32>,
        k: u32,
        exact: bool,
    ) -> RResult<RVec<WordDistance>, PluginError>;
    /// See [`Contextionary::nearest_to_word`].
    fn nearest_to_word(
        &self,
        word: RStr<'_>,
        k: u32,
        exact: bool,
    ) -> RResult<RVec<WordDistance>, PluginError>;
    /// See [`Contextionary::content_hash`].
    fn content_hash(&self, algorithm: RStr<'_>) -> RResult<RString, PluginError>;
}

/// An owned contextionary object as the host holds it.
pub type ContextionaryBox = ContextionaryFfi_TO<'static, RBox<()>>;

/// **Added in 1.2.** Word look-ups whose panics are errors, not "unknown word". Implemented by
/// [`GuardedContextionary`]; implement [`Contextionary`] instead.
///
/// It never gains methods within a major version; later additions get new root-module fields.
#[sabi_trait]
pub trait WordLookupFfi: Send + Sync {
    /// [`Contextionary::contains`]; a panic is an `Internal` error.
    fn try_contains(&self, word: RStr<'_>) -> RResult<bool, PluginError>;
    /// [`Contextionary::vector`]; a panic is an `Internal` error.
    fn try_vector(&self, word: RStr<'_>) -> RResult<ROption<RVec<f32>>, PluginError>;
}

/// **Added in 1.2.** An owned word-lookup object as the host holds it.
pub type WordLookupBox = WordLookupFfi_TO<'static, RBox<()>>;

/// **Added in 1.5.** Many words at once with their frequency ranks: what object vectors are
/// made with. Implemented by [`GuardedContextionary`]; implement [`Contextionary`] (and
/// override [`Contextionary::word_rank`]) instead.
#[sabi_trait]
pub trait WordVectorsFfi: Send + Sync {
    /// For each word (as given; the host lower-cases), its vector and rank, `None` when
    /// unknown; a panic is an `Internal` error.
    fn word_vectors(&self, words: RVec<RString>)
        -> RResult<RVec<ROption<WordVector>>, PluginError>;
}

/// **Added in 1.5.** An owned word-vectors object as the host holds it.
pub type WordVectorsBox = WordVectorsFfi_TO<'static, RBox<()>>;

/// **Added in 1.5.** What the root module's `new_contextionary_parts_1_5` answers: three ABI
/// objects over **one** contextionary instance.
#[repr(C)]
#[derive(abi_stable::StableAbi)]
pub struct ContextionaryParts15 {
    /// The contextionary contract ([`ContextionaryFfi`]).
    pub contextionary: ContextionaryBox,
    /// Its look-ups that report panics ([`WordLookupFfi`]).
    pub lookups: WordLookupBox,
    /// Its batch look-up with ranks ([`WordVectorsFfi`]).
    pub words: WordVectorsBox,
}

impl ContextionaryParts15 {
    /// The three ABI objects over one instance of `contextionary`.
    pub fn of<T: Contextionary>(contextionary: T) -> Self {
        let shared = Arc::new(contextionary);
        ContextionaryParts15 {
            contextionary: contextionary_box(Arc::clone(&shared)),
            lookups: WordLookupFfi_TO::from_value(
                GuardedContextionary::new(Arc::clone(&shared)),
                abi_stable::sabi_trait::TD_Opaque,
            ),
            words: WordVectorsFfi_TO::from_value(
                GuardedContextionary::new(shared),
                abi_stable::sabi_trait::TD_Opaque,
            ),
        }
    }
}

/// **Added in 1.2.** What the root module's `new_contextionary_parts` answers: two ABI objects
/// over **one** contextionary instance.
#[repr(C)]
#[derive(abi_stable::StableAbi)]
pub struct ContextionaryParts {
    /// The contextionary contract ([`ContextionaryFfi`]).
    pub contextionary: ContextionaryBox,
    /// Its look-ups that report panics ([`WordLookupFfi`]).
    pub lookups: WordLookupBox,
}

impl ContextionaryParts {
    /// Both ABI objects over one instance of `contextionary`.
    pub fn of<T: Contextionary>(contextionary: T) -> Self {
        let shared = Arc::new(contextionary);
        ContextionaryParts {
            contextionary: contextionary_box(Arc::clone(&shared)),
            lookups: WordLookupFfi_TO::from_value(
                GuardedContextionary::new(shared),
                abi_stable::sabi_trait::TD_Opaque,
            ),
        }
    }
}

/// **Added in 1.2.** A contextionary as the host opens it
/// (`LoadedPlugin::open_contextionary` of the host's loader, `weft-plugin-loader`, or
/// [`contextionary_parts`] for a statically linked one). A plain Rust value.
pub struct OpenedContextionary {
    /// The contextionary contract.
    pub contextionary: ContextionaryBox,
    /// Its look-ups that report panics; `None` for a plugin built before 1.2.
    pub lookups: Option<WordLookupBox>,
    /// **Added in 1.5.** Its batch look-up with ranks; `None` for a plugin built before 1.5.
    pub words: Option<WordVectorsBox>,
}

impl From<ContextionaryParts15> for OpenedContextionary {
    fn from(parts: ContextionaryParts15) -> Self {
        OpenedContextionary {
            contextionary: parts.contextionary,
            lookups: Some(parts.lookups),
            words: Some(parts.words),
        }
    }
}

impl From<ContextionaryParts> for OpenedContextionary {
    fn from(parts: ContextionaryParts) -> Self {
        OpenedContextionary {
            contextionary: parts.contextionary,
            lookups: Some(parts.lookups),
            words: None,
        }
    }
}

/// A contextionary without a look-up object (as from a plugin built before 1.2).
impl From<ContextionaryBox> for OpenedContextionary {
    fn from(contextionary: ContextionaryBox) -> Self {
        OpenedContextionary {
            contextionary,
            lookups: None,
            words: None,
        }
    }
}

impl fmt::Debug for OpenedContextionary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedContextionary")
            .field("contextionary", &"ContextionaryBox")
            .field("lookups", &self.lookups.as_ref().map(|_| "WordLookupBox"))
            .field("words", &self.words.as_ref().map(|_| "WordVectorsBox"))
            .finish()
    }
}

/// The contextionary contract in plain Rust.
pub trait Contextionary: Send + Sync + 'static {
    /// Length of every vector.
    fn dimensions(&self) -> u32;
    /// Number of known words.
    fn vocabulary_size(&self) -> u64;
    /// Whether `word` (as given; the host lower-cases) is known.
    fn contains(&self, word: &str) -> bool;
    /// The vector of `word`, `None` when unknown.
    fn vector(&self, word: &str) -> Option<Vec<f32>>;
    /// The `k` words nearest to `vector` by cosine, nearest first. `exact` asks for an exhaustive
    /// search; otherwise an approximate index may answer. `Invalid` when the length is wrong.
    fn nearest_to_vector(
        &self,
        vector: &[f32],
        k: u32,
        exact: bool,
    ) -> PluginResult<Vec<WordDistance>>;
    /// The `k` words nearest to `word`, excluding the word itself. `NotFound` when unknown.
    fn nearest_to_word(&self, word: &str, k: u32, exact: bool) -> PluginResult<Vec<WordDistance>>;
    /// A hex digest of the embeddings (`"md5"` or `"sha256"`); `Unsupported` for other names.
    fn content_hash(&self, algorithm: &str) -> PluginResult<String>;
    /// **Added in 1.5.** The rank of `word` by frequency in the training corpus (0: the most
    /// frequent); `None` when unknown or when the order is not known (the default).
    fn word_rank(&self, word: &str) -> Option<u64> {
        let _ = word;
        None
    }
}

/// A shared contextionary is a contextionary: every call goes to the one instance (how
/// [`ContextionaryParts`] gives its two objects one instance).
impl<T: Contextionary> Contextionary for Arc<T> {
    fn dimensions(&self) -> u32 {
        (**self).dimensions()
    }
    fn vocabulary_size(&self) -> u64 {
        (**self).vocabulary_size()
    }
    fn contains(&self, word: &str) -> bool {
        (**self).contains(word)
    }
    fn vector(&self, word: &str) -> Option<Vec<f32>> {
        (**self).vector(word)
    }
    fn nearest_to_vector(
        &self,
        vector: &[f32],
        k: u32,
        exact: bool,
    ) -> PluginResult<Vec<WordDistance>> {
        (**self).nearest_to_vector(vector, k, exact)
    }
    fn nearest_to_word(&self, word: &str, k: u32, exact: bool) -> PluginResult<Vec<WordDistance>> {
        (**self).nearest_to_word(word, k, exact)
    }
    fn content_hash(&self, algorithm: &str) -> PluginResult<String> {
        (**self).content_hash(algorithm)
    }
    fn word_rank(&self, word: &str) -> Option<u64> {
        (**self).word_rank(word)
    }
}

/// Adapts a [`Contextionary`] to [`ContextionaryFfi`], catching panics.
pub struct GuardedContextionary<T> {
    inner: T,
}

impl<T: Contextionary> GuardedContextionary<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        GuardedContextionary { inner }
    }
}

/// Wraps a contextionary into the boxed ABI object, without a library (tests, benchmarks).
pub fn contextionary_box<T: Contextionary>(c: T) -> ContextionaryBox {
    ContextionaryFfi_TO::from_value(
        GuardedContextionary::new(c),
        abi_stable::sabi_trait::TD_Opaque,
    )
}

/// **Added in 1.2.** The ABI objects of one contextionary instance, both panic-guarded: what
/// `export_contextionary!`'s `new_contextionary_parts` answers, for statically linked use.
pub fn contextionary_parts<T: Contextionary>(c: T) -> OpenedContextionary {
    ContextionaryParts15::of(c).into()
}

impl<T: Contextionary> WordVectorsFfi for GuardedContextionary<T> {
    fn word_vectors(
        &self,
        words: RVec<RString>,
    ) -> RResult<RVec<ROption<WordVector>>, PluginError> {
        guarded_result("word_vectors", || {
            Ok(words
                .iter()
                .map(|w| {
                    self.inner
                        .vector(w.as_str())
                        .map(|v| WordVector {
                            vector: v.into(),
                            rank: self.inner.word_rank(w.as_str()).into(),
                        })
                        .into()
                })
                .collect())
        })
    }
}

fn guarded<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

fn guarded_result<R>(op: &str, f: impl FnOnce() -> PluginResult<R>) -> RResult<R, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.into(),
        Err(p) => RResult::RErr(panic_error(op, &*p)),
    }
}

impl<T: Contextionary> ContextionaryFfi for GuardedContextionary<T> {
    fn dimensions(&self) -> u32 {
        guarded(0, || self.inner.dimensions())
    }
    fn vocabulary_size(&self) -> u64 {
        guarded(0, || self.inner.vocabulary_size())
    }
    fn contains(&self, word: RStr<'_>) -> bool {
        guarded(false, || self.inner.contains(word.as_str()))
    }
    fn vector(&self, word: RStr<'_>) -> ROption<RVec<f32>> {
        guarded(ROption::RNone, || {
            self.inner.vector(word.as_str()).map(RVec::from).into()
        })
    }
    fn nearest_to_vector(
        &self,
        vector: RSlice<'_, f32>,
        k: u32,
        exact: bool,
    ) -> RResult<RVec<WordDistance>, PluginError> {
        guarded_result("nearest_to_vector", || {
            self.inner
                .nearest_to_vector(vector.as_slice(), k, exact)
                .map(RVec::from)
        })
    }
    fn nearest_to_word(
        &self,
        word: RStr<'_>,
        k: u32,
        exact: bool,
    ) -> RResult<RVec<WordDistance>, PluginError> {
        guarded_result("nearest_to_word", || {
            self.inner
                .nearest_to_word(word.as_str(), k, exact)
                .map(RVec::from)
        })
    }
    fn content_hash(&self, algorithm: RStr<'_>) -> RResult<RString, PluginError> {
        guarded_result("content_hash", || {
            self.inner
                .content_hash(algorithm.as_str())
                .map(RString::from)
        })
    }
}

impl<T: Contextionary> WordLookupFfi for GuardedContextionary<T> {
    fn try_contains(&self, word: RStr<'_>) -> RResult<bool, PluginError> {
        guarded_result("contains", || Ok(self.inner.contains(word.as_str())))
    }
    fn try_vector(&self, word: RStr<'_>) -> RResult<ROption<RVec<f32>>, PluginError> {
        guarded_result("vector", || {
            Ok(self.inner.vector(word.as_str()).map(RVec::from).into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Knows one word, "known" (vector `[1, 0]`), and panics on "boom".
    struct OneWord;

    impl Contextionary for OneWord {
        fn dimensions(&self) -> u32 {
            2
        }
        fn vocabulary_size(&self) -> u64 {
            1
        }
        fn contains(&self, word: &str) -> bool {
            assert_ne!(word, "boom", "deliberate panic");
            word == "known"
        }
        fn vector(&self, word: &str) -> Option<Vec<f32>> {
            assert_ne!(word, "boom", "deliberate panic");
            (word == "known").then(|| vec![1.0, 0.0])
        }
        fn nearest_to_vector(&self, _: &[f32], _: u32, _: bool) -> PluginResult<Vec<WordDistance>> {
            Ok(vec![])
        }
        fn nearest_to_word(&self, _: &str, _: u32, _: bool) -> PluginResult<Vec<WordDistance>> {
            Ok(vec![])
        }
        fn content_hash(&self, _: &str) -> PluginResult<String> {
            Ok(String::new())
        }
    }

    #[test]
    fn lookups_answer_words_and_report_panics_as_errors() {
        let opened = contextionary_parts(OneWord);
        let lookups = opened.lookups.expect("parts always have lookups");
        assert_eq!(lookups.try_contains("known".into()).into_result(), Ok(true));
        assert_eq!(
            lookups.try_contains("other".into()).into_result(),
            Ok(false)
        );
        assert_eq!(
            lookups.try_vector("known".into()).into_result(),
            Ok(ROption::RSome(RVec::from(vec![1.0, 0.0])))
        );
        assert_eq!(
            lookups.try_vector("other".into()).into_result(),
            Ok(ROption::RNone)
        );
        let e = lookups.try_contains("boom".into()).unwrap_err();
        assert_eq!(e.panicked_in(), Some("contains"), "{e}");
        assert!(e.message.contains("deliberate panic"), "{e}");
        let e = lookups.try_vector("boom".into()).unwrap_err();
        assert_eq!(e.panicked_in(), Some("vector"), "{e}");
        // The 1.1 calls keep their answers: a panic reads as an unknown word.
        assert!(!opened.contextionary.contains("boom".into()));
        assert!(opened.contextionary.contains("known".into()));
        assert_eq!(opened.contextionary.dimensions(), 2);
    }
}
