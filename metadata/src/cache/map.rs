//! One cache map: entries with their load time, and a generation that every invalidation moves
//! on, so a value read from the index before an invalidation is never stored after it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Beyond this many entries a map starts again empty (unknown keys must not grow it forever).
const MAX_ENTRIES: usize = 10_000;

pub(crate) struct Map<K, V> {
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    entries: HashMap<K, (Instant, V)>,
    generation: u64,
}

/// Taken before a value is read from the index; `Map::put` stores the value only if no
/// invalidation came in between, aged from when the ticket was taken (a change that commits
/// while the read runs is never served for longer than the TTL after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64, Instant);

impl<K: Eq + Hash, V: Clone> Map<K, V> {
    pub(crate) fn new() -> Self {
        Map {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                generation: 0,
            }),
        }
    }

    /// The value if it was loaded less than `max_age` ago; otherwise a ticket for loading it.
    pub(crate) fn get(&self, k: &K, max_age: Duration) -> Result<V, Ticket> {
        let Ok(inner) = self.inner.lock() else {
            return Err(Ticket(u64::MAX, Instant::now()));
        };
        match inner.entries.get(k) {
            Some((at, v)) if at.elapsed() < max_age => Ok(v.clone()),
            _ => Err(Ticket(inner.generation, Instant::now())),
        }
    }

    /// Stores a value read from the index under `ticket`, unless an invalidation happened since.
    pub(crate) fn put(&self, ticket: Ticket, k: K, v: V) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.generation != ticket.0 {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        inner.entries.insert(k, (ticket.1, v));
    }

    pub(crate) fn remove(&self, k: &K) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            inner.entries.remove(k);
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            inner.entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn a_value_read_before_an_invalidation_is_not_stored() {
        let m: Map<&str, i32> = Map::new();
        let t = m.get(&"a", LONG).unwrap_err();
        // The change commits and is invalidated while the old value is being read.
        m.remove(&"a");
        m.put(t, "a", 1);
        let t2 = m.get(&"a", LONG).expect_err("the stale value was dropped");
        m.put(t2, "a", 2);
        assert_eq!(m.get(&"a", LONG), Ok(2));
    }

    #[test]
    fn entries_expire_after_max_age() {
        let m: Map<&str, i32> = Map::new();
        let t = m.get(&"a", LONG).unwrap_err();
        m.put(t, "a", 1);
        assert_eq!(m.get(&"a", LONG), Ok(1));
        assert!(m.get(&"a", Duration::ZERO).is_err());
    }

    #[test]
    fn clear_drops_everything_and_pending_loads() {
        let m: Map<&str, i32> = Map::new();
        let t = m.get(&"a", LONG).unwrap_err();
        m.put(t, "a", 1);
        let pending = m.get(&"b", LONG).unwrap_err();
        m.clear();
        m.put(pending, "b", 2);
        assert!(m.get(&"a", LONG).is_err());
        assert!(m.get(&"b", LONG).is_err());
    }
}
