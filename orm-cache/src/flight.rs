//! Single-flight: on a miss, one loader per key in this process; readers that miss the same
//! key meanwhile wait for its result instead of loading too.
//!
//! A waiting reader takes the leader's result only if the leader read the same table
//! generations before loading: then no write completed between the leader's start and the
//! reader's, so the leader's result is as fresh as the reader's own load would be. Otherwise
//! the reader loads by itself.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

/// Loads in flight, by storage key.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, Arc<Flight>>>,
}

/// One load in flight.
#[derive(Debug)]
pub(crate) struct Flight {
    generations: Vec<u64>,
    /// `None` while loading; then the entry's bytes, or `None` if the load failed.
    result: Mutex<Option<Option<Arc<Vec<u8>>>>>,
    done: Condvar,
}

/// What a reader that missed does.
pub(crate) enum Role<'a> {
    /// Load, then [`Leader::finish`].
    Leader(Leader<'a>),
    /// Wait for this flight.
    Follower(Arc<Flight>),
    /// Another load of the key, under other generations, is in flight: load alone.
    Alone,
}

/// The loader of a key; finishing (or dropping, on a panic or error) wakes the followers.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: String,
    flight: Arc<Flight>,
    finished: bool,
}

impl Flights {
    /// Lead the load of `key` under `generations`, or follow the one in flight.
    pub fn join(&self, key: &str, generations: &[u64]) -> Role<'_> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flight) = map.get(key) {
            return if flight.generations == generations {
                Role::Follower(flight.clone())
            } else {
                Role::Alone
            };
        }
        let flight = Arc::new(Flight {
            generations: generations.to_vec(),
            result: Mutex::new(None),
            done: Condvar::new(),
        });
        map.insert(key.to_owned(), flight.clone());
        Role::Leader(Leader {
            flights: self,
            key: key.to_owned(),
            flight,
            finished: false,
        })
    }
}

impl Flight {
    /// Wait for the leader: its entry bytes, or `None` if its load failed.
    pub fn wait(&self) -> Option<Arc<Vec<u8>>> {
        let mut result = self.result.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(outcome) = result.as_ref() {
                return outcome.clone();
            }
            result = self.done.wait(result).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Leader<'_> {
    /// Hand `entry` (or `None`: the load failed) to the followers.
    pub fn finish(mut self, entry: Option<Arc<Vec<u8>>>) {
        self.complete(entry);
    }

    fn complete(&mut self, entry: Option<Arc<Vec<u8>>>) {
        self.finished = true;
        {
            let mut map = self.flights.map.lock().unwrap_or_else(|e| e.into_inner());
            if map
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                map.remove(&self.key);
            }
        }
        *self.flight.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(entry);
        self.flight.done.notify_all();
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.complete(None);
        }
    }
}
