//! Single flight for `get_or_set`: of the concurrent misses of one key, one (the leader) runs
//! the factory and the others wait for its outcome.
//!
//! The outcome travels as the stored JSON bytes, so waiters decode their own copy. If the
//! leader is cancelled before it finishes, its entry goes and the waiters try again (one of
//! them becomes the next leader): nobody waits forever on a dropped future.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use tokio::sync::watch;

use super::{CacheError, lru::Blob};

type Outcome = Option<Result<Blob, CacheError>>;

/// The flights in progress, by full key.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, watch::Receiver<Outcome>>>,
}

/// What a caller of [`Flights::join`] does.
pub(crate) enum Join<'a> {
    /// Run the factory, then [`Leader::finish`].
    Leader(Leader<'a>),
    /// Wait for the leader with [`wait`].
    Follower(watch::Receiver<Outcome>),
}

/// The caller that runs the factory; dropping it unfinished lets the followers retry.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: String,
    tx: watch::Sender<Outcome>,
}

impl Flights {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, watch::Receiver<Outcome>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the flight of `key`, or starts it.
    pub(crate) fn join(&self, key: &str) -> Join<'_> {
        let mut map = self.lock();
        if let Some(rx) = map.get(key) {
            return Join::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.to_owned(), rx);
        Join::Leader(Leader {
            flights: self,
            key: key.to_owned(),
            tx,
        })
    }

    /// How many flights are in progress.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Leader<'_> {
    /// Hands the outcome to the followers and ends the flight.
    pub(crate) fn finish(self, outcome: Result<Blob, CacheError>) {
        self.tx.send_replace(Some(outcome));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.flights.lock().remove(&self.key);
    }
}

/// Waits for the leader's outcome; `None` if the leader was dropped unfinished (try again).
pub(crate) async fn wait(mut rx: watch::Receiver<Outcome>) -> Option<Result<Blob, CacheError>> {
    match rx.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone(),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_leader_and_followers_get_its_outcome() {
        let flights = Flights::default();
        let Join::Leader(leader) = flights.join("k") else {
            panic!("first caller leads")
        };
        let Join::Follower(rx) = flights.join("k") else {
            panic!("second caller follows")
        };
        leader.finish(Ok(Blob::from(&b"1"[..])));
        assert_eq!(flights.len(), 0);
        assert_eq!(wait(rx).await, Some(Ok(Blob::from(&b"1"[..]))));
        assert!(matches!(flights.join("k"), Join::Leader(_)));
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_followers() {
        let flights = Flights::default();
        let leader = flights.join("k");
        let Join::Follower(rx) = flights.join("k") else {
            panic!("second caller follows")
        };
        drop(leader);
        assert_eq!(wait(rx).await, None);
        assert_eq!(flights.len(), 0);
    }
}
