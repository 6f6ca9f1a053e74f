//! The contextionary contract: word embeddings the host uses to validate and place the ontology.
//!
//! Calls are synchronous: a contextionary answers from memory (an mmapped file), so a call is
//! pure computation. Implement [`Contextionary`] and export it with
//! [`export_contextionary!`](crate::export_contextionary); every call runs under `catch_unwind`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::sabi_trait;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec};

use crate::connector::panic_error;
use crate::error::{PluginError, PluginResult};
use crate::types::WordDistance;

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
