//! Budgets for what other servers may ask: so many per minute per sender (a peer's key, or a
//! network address), remembered for a bounded number of senders.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// At most `per_minute` events per sender in any minute-long window that starts with the
/// sender's first event in it (a fixed window per sender).
pub struct PerMinute {
    per_minute: u32,
    senders: Mutex<HashMap<String, (Instant, u32)>>,
    capacity: usize,
}

/// Refused by a budget: how long until the sender may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    /// Seconds to wait (at least 1).
    pub retry_after_s: u64,
}

impl PerMinute {
    /// A budget of `per_minute` per sender, remembering at most `capacity` senders at once
    /// (past it, senders that are not remembered are refused until windows expire).
    pub fn new(per_minute: u32, capacity: usize) -> Self {
        PerMinute {
            per_minute,
            senders: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The limit per minute.
    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Takes one event of `sender` from the budget.
    pub fn take(&self, sender: &str) -> Result<(), OverBudget> {
        self.take_at(sender, Instant::now())
    }

    fn take_at(&self, sender: &str, now: Instant) -> Result<(), OverBudget> {
        let mut senders = self
            .senders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !senders.contains_key(sender) && senders.len() >= self.capacity {
            senders.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if senders.len() >= self.capacity {
                return Err(OverBudget { retry_after_s: 60 });
            }
        }
        let entry = senders.entry(sender.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            let left = WINDOW.saturating_sub(now.duration_since(entry.0));
            return Err(OverBudget {
                retry_after_s: left.as_secs().max(1),
            });
        }
        entry.1 += 1;
        Ok(())
    }
}

/// A count of things in progress, at most `limit` at once; each [`Slot`] frees its place when
/// dropped.
pub struct InProgress {
    limit: usize,
    now: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// One place taken in an [`InProgress`].
pub struct Slot(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl InProgress {
    /// At most `limit` at once.
    pub fn new(limit: usize) -> Self {
        InProgress {
            limit,
            now: Default::default(),
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A place, or `None` when `limit` are taken.
    pub fn try_take(&self) -> Option<Slot> {
        use std::sync::atomic::Ordering;
        let mut cur = self.now.load(Ordering::SeqCst);
        loop {
            if cur >= self.limit {
                return None;
            }
            match self
                .now
                .compare_exchange(cur, cur + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Some(Slot(self.now.clone())),
                Err(actual) => cur = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_gets_its_budget_per_minute_and_others_theirs() {
        let b = PerMinute::new(3, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            b.take_at("a", t0).unwrap();
        }
        let refused = b.take_at("a", t0 + Duration::from_secs(20)).unwrap_err();
        assert_eq!(refused.retry_after_s, 40);
        b.take_at("b", t0).unwrap();
        b.take_at("a", t0 + Duration::from_secs(61)).unwrap();
    }

    #[test]
    fn the_senders_remembered_are_bounded() {
        let b = PerMinute::new(1, 2);
        let t0 = Instant::now();
        b.take_at("a", t0).unwrap();
        b.take_at("b", t0).unwrap();
        assert!(b.take_at("c", t0).is_err());
        b.take_at("c", t0 + Duration::from_secs(61)).unwrap();
    }

    #[test]
    fn places_in_progress_are_bounded_and_freed() {
        let p = InProgress::new(2);
        let a = p.try_take().unwrap();
        let _b = p.try_take().unwrap();
        assert!(p.try_take().is_none());
        drop(a);
        assert!(p.try_take().is_some());
    }
}
