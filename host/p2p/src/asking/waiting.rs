//! The answers a peer waits for ([`Waiting`]): by answer id, each from the peer it was asked
//! of, and the answers that overtook their 202.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;
use uuid::Uuid;
use weft_core::network::Answer;
use weft_core::Result;

/// How many answers that overtook their 202 are held per (asker, peer).
const EARLY_ANSWERS: usize = 16;

pub(super) type Slot = (String, String);

struct Waiter {
    slot: Slot,
    tx: oneshot::Sender<Result<Answer>>,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<Uuid, Waiter>,
    expecting: HashMap<Slot, usize>,
    early: HashMap<Slot, Vec<(Uuid, Result<Answer>)>>,
}

/// The answers a peer waits for: by answer id, each from the peer it asked; and the answers
/// that overtook their 202, held while that peer's 202 is awaited.
#[derive(Default, Clone)]
pub(crate) struct Waiting(Arc<Mutex<Table>>);

impl Waiting {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn expecting(&self, slot: Slot) -> Expecting {
        *self.table().expecting.entry(slot.clone()).or_default() += 1;
        Expecting(self.clone(), slot)
    }

    pub(super) fn wait_for(
        &self,
        id: Uuid,
        slot: Slot,
    ) -> (oneshot::Receiver<Result<Answer>>, Forget) {
        let (tx, rx) = oneshot::channel();
        let mut w = self.table();
        let early = w.early.get_mut(&slot).and_then(|list| {
            let i = list.iter().position(|(e, _)| *e == id)?;
            Some(list.swap_remove(i).1)
        });
        match early {
            Some(answer) => {
                let _ = tx.send(answer);
            }
            None => {
                w.by_id.insert(id, Waiter { slot, tx });
            }
        }
        (rx, Forget(self.clone(), id))
    }

    pub(super) fn deliver(
        &self,
        asker: &str,
        peer: &str,
        id: Uuid,
        answer: Result<Answer>,
    ) -> std::result::Result<(), Refused> {
        let mut w = self.table();
        let asked = w.by_id.get(&id).map(|x| x.slot.clone());
        match asked {
            Some((a, p)) if a == asker => {
                if p != peer {
                    return Err(Refused::WrongPeer(format!(
                        "answer {id} was asked of peer {p}, not of {peer}"
                    )));
                }
                if let Some(waiter) = w.by_id.remove(&id) {
                    let _ = waiter.tx.send(answer);
                }
                Ok(())
            }
            _ => {
                let slot = (asker.to_string(), peer.to_string());
                if w.expecting.get(&slot).is_some_and(|n| *n > 0) {
                    let list = w.early.entry(slot).or_default();
                    if list.len() < EARLY_ANSWERS {
                        list.push((id, answer));
                    }
                    return Ok(());
                }
                Err(Refused::NotWaiting(format!(
                    "no question waits for answer {id} from peer {peer:?}: it was never asked here, or its networkTimeout has passed"
                )))
            }
        }
    }
}

pub(super) struct Expecting(Waiting, Slot);

impl Drop for Expecting {
    fn drop(&mut self) {
        let mut w = self.0.table();
        let n = w.expecting.get(&self.1).copied().unwrap_or(1) - 1;
        if n == 0 {
            w.expecting.remove(&self.1);
            w.early.remove(&self.1);
        } else {
            w.expecting.insert(self.1.clone(), n);
        }
    }
}

pub(super) struct Forget(Waiting, Uuid);

impl Drop for Forget {
    fn drop(&mut self) {
        self.0.table().by_id.remove(&self.1);
    }
}

pub(super) enum Refused {
    NotWaiting(String),
    WrongPeer(String),
}

#[cfg(test)]
mod tests {
    use weft_core::network::Beacon;

    use super::*;

    fn answer(n: usize) -> Answer {
        Answer {
            beacons: (0..n)
                .map(|i| Beacon {
                    beacon: format!("weaviate://beta/{i}"),
                    certainty: 0.9,
                    class: "City".into(),
                })
                .collect(),
            classes: vec![],
        }
    }

    #[tokio::test]
    async fn an_answer_is_delivered_to_the_question_waiting_for_its_id_from_its_peer_only() {
        let waiting = Waiting::default();
        let asker = "http://asker-1".to_string();
        let id = Uuid::new_v4();
        let (rx, _forget) = waiting.wait_for(id, (asker.clone(), "beta".into()));
        // Another peer cannot answer in beta's place; another asker's question is not this one.
        assert!(matches!(
            waiting.deliver(&asker, "gamma", id, Ok(answer(1))),
            Err(Refused::WrongPeer(_))
        ));
        assert!(matches!(
            waiting.deliver("http://asker-2", "beta", id, Ok(answer(1))),
            Err(Refused::NotWaiting(_))
        ));
        assert!(waiting.deliver(&asker, "beta", id, Ok(answer(2))).is_ok());
        assert_eq!(rx.await.unwrap().unwrap().beacons.len(), 2);
        // Once delivered, the id is no longer waited for.
        assert!(matches!(
            waiting.deliver(&asker, "beta", id, Ok(answer(1))),
            Err(Refused::NotWaiting(_))
        ));
    }

    #[tokio::test]
    async fn an_answer_that_overtakes_its_202_is_held_until_the_id_is_known() {
        let waiting = Waiting::default();
        let slot = ("http://asker-3".to_string(), "beta".to_string());
        let id = Uuid::new_v4();
        // Nobody expects beta's answers: refused.
        assert!(matches!(
            waiting.deliver(&slot.0, "beta", id, Ok(answer(1))),
            Err(Refused::NotWaiting(_))
        ));
        let expecting = waiting.expecting(slot.clone());
        assert!(waiting.deliver(&slot.0, "beta", id, Ok(answer(3))).is_ok());
        let (rx, _forget) = waiting.wait_for(id, slot.clone());
        drop(expecting);
        assert_eq!(rx.await.unwrap().unwrap().beacons.len(), 3);
        assert!(!waiting.table().expecting.contains_key(&slot));
        assert!(!waiting.table().early.contains_key(&slot));
    }
}
