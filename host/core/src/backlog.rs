//! The backlog of `async` creates: objects answered 202 and not yet stored. It is bounded
//! (`limits.max_async_backlog`): a request whose objects would not fit is refused whole — 503
//! with `Retry-After` — before any of them is accepted, so memory held for background writes
//! stays bounded and a client never gets half a batch accepted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::{Error, Result};

/// How long a refused client is asked to wait: about the time a group-committing store takes
/// to write a few thousand objects.
pub const RETRY_AFTER_S: u64 = 1;

/// The number of objects accepted and not yet stored.
#[derive(Debug, Default, Clone)]
pub struct Backlog {
    waiting: Arc<AtomicUsize>,
}

/// Room for `n` objects in the backlog, given back as they are stored (or all at once when
/// dropped, e.g. when the background task ends early).
#[derive(Debug)]
pub struct BacklogPermit {
    waiting: Arc<AtomicUsize>,
    held: usize,
}

impl Backlog {
    /// Objects waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Room for `n` more objects when they fit under `max`, else the refusal: 413 when `n`
    /// alone is over `max` (sending it again cannot help), otherwise 503 with `Retry-After`.
    pub fn reserve(&self, n: usize, max: usize) -> Result<BacklogPermit> {
        if n > max {
            return Err(Error::too_large(format!(
                "this request has {n} objects to create in the background (async), more than limits.max_async_backlog = {max} allows at once; send at most {max} per request, send them without async (stored before the answer), or raise limits.max_async_backlog in the configuration"
            )));
        }
        let mut current = self.waiting.load(Ordering::Acquire);
        loop {
            if current + n > max {
                return Err(Error::busy(
                    format!(
                        "the server has {current} objects of async creates waiting to be stored and holds at most limits.max_async_backlog = {max}; none of this request's {n} objects was accepted: send the request again after Retry-After seconds, send it without async (stored before the answer), or raise limits.max_async_backlog in the configuration"
                    ),
                    RETRY_AFTER_S,
                ));
            }
            match self.waiting.compare_exchange_weak(
                current,
                current + n,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(BacklogPermit {
                        waiting: self.waiting.clone(),
                        held: n,
                    })
                }
                Err(now) => current = now,
            }
        }
    }
}

impl BacklogPermit {
    /// Gives back room for `n` objects (stored, failed, or never accepted).
    pub fn release(&mut self, n: usize) {
        let n = n.min(self.held);
        self.held -= n;
        self.waiting.fetch_sub(n, Ordering::AcqRel);
    }

    /// Room still held.
    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for BacklogPermit {
    fn drop(&mut self) {
        self.waiting.fetch_sub(self.held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn a_request_that_does_not_fit_is_refused_whole_and_room_comes_back_as_objects_are_stored() {
        let b = Backlog::default();
        let mut first = b.reserve(8, 10).unwrap();
        assert_eq!(b.waiting(), 8);
        let refused = b.reserve(3, 10).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Unavailable);
        assert_eq!(refused.retry_after_s, Some(RETRY_AFTER_S));
        assert!(refused.message.contains("limits.max_async_backlog = 10"));
        assert_eq!(b.waiting(), 8, "nothing of the refused request is held");
        first.release(2);
        let second = b.reserve(3, 10).unwrap();
        assert_eq!(b.waiting(), 9);
        drop(first);
        assert_eq!(b.waiting(), 3);
        drop(second);
        assert_eq!(b.waiting(), 0);
        let too_many = b.reserve(11, 10).unwrap_err();
        assert_eq!(too_many.kind, ErrorKind::TooLarge);
    }
}
