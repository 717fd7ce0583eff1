//! The memory backend's map: a hash table over a slab of entries threaded on a doubly linked
//! recency list. Least recently used entries go first when the map is full; expiry is lazy (an
//! expired entry is dropped when it is next touched, or listed, or pushed out).
//!
//! Not thread-safe by itself: [`MemoryBackend`](super::memory::MemoryBackend) keeps it under a
//! mutex.

use std::{hash::BuildHasher, sync::Arc};

use hashbrown::{DefaultHashBuilder, HashTable};
use tokio::time::Instant;

use super::{KeyTtl, glob};

/// A stored value: JSON bytes, shared so that a read does not copy them.
pub(crate) type Blob = Arc<[u8]>;

const NIL: u32 = u32::MAX;

/// The most entries an `Lru` can hold (slab indices are `u32`).
pub(crate) const MAX_CAPACITY: usize = (u32::MAX - 1) as usize;

struct Entry {
    key: Box<str>,
    value: Blob,
    expires: Option<Instant>,
}

impl Entry {
    fn expired(&self, now: &mut Option<Instant>) -> bool {
        match self.expires {
            None => false,
            Some(at) => at <= *now.get_or_insert_with(Instant::now),
        }
    }
}

struct Node {
    entry: Option<Entry>,
    prev: u32,
    next: u32,
}

/// Why `incr` failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IncrError {
    NotAnInteger,
    Overflow,
}

/// Counters kept under the same lock as the map.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LruCounters {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) evictions: u64,
    pub(crate) expirations: u64,
}

/// An LRU map with per-entry expiry.
pub(crate) struct Lru {
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    len: usize,
    capacity: usize,
    pub(crate) counters: LruCounters,
}

impl Lru {
    /// A map of at most `capacity` entries (at least 1, at most [`MAX_CAPACITY`]).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        Self {
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
            capacity,
            counters: LruCounters::default(),
        }
    }

    /// How many entries are held (expired ones not yet dropped included).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn entry(&self, i: u32) -> &Entry {
        // Every index in the table or on the list refers to an occupied node.
        self.nodes[i as usize]
            .entry
            .as_ref()
            .expect("occupied node")
    }

    fn find(&self, key: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let nodes = &self.nodes;
        self.table
            .find(hash, |&i| {
                nodes[i as usize]
                    .entry
                    .as_ref()
                    .is_some_and(|e| &*e.key == key)
            })
            .copied()
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = &self.nodes[i as usize];
            (n.prev, n.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = NIL;
            n.next = old;
        }
        if old == NIL {
            self.tail = i;
        } else {
            self.nodes[old as usize].prev = i;
        }
        self.head = i;
    }

    fn touch(&mut self, i: u32) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    fn remove_at(&mut self, i: u32) -> Entry {
        self.unlink(i);
        let entry = self.nodes[i as usize].entry.take().expect("occupied node");
        let hash = self.hasher.hash_one(&*entry.key);
        if let Ok(found) = self.table.find_entry(hash, |&j| j == i) {
            found.remove();
        }
        self.free.push(i);
        self.len -= 1;
        entry
    }

    /// The live entry at `key`, dropping it if it has expired.
    fn live(&mut self, key: &str, now: &mut Option<Instant>) -> Option<u32> {
        let i = self.find(key)?;
        if self.entry(i).expired(now) {
            self.remove_at(i);
            self.counters.expirations += 1;
            return None;
        }
        Some(i)
    }

    /// Reads a value, making it the most recently used; counts a hit or a miss.
    pub(crate) fn get(&mut self, key: &str) -> Option<Blob> {
        let mut now = None;
        match self.live(key, &mut now) {
            Some(i) => {
                self.touch(i);
                self.counters.hits += 1;
                Some(self.entry(i).value.clone())
            }
            None => {
                self.counters.misses += 1;
                None
            }
        }
    }

    /// Reads a value without counting or touching it.
    #[cfg(test)]
    pub(crate) fn peek(&mut self, key: &str) -> Option<Blob> {
        let mut now = None;
        self.live(key, &mut now)
            .map(|i| self.entry(i).value.clone())
    }

    /// Whether `key` holds a live entry (recency unchanged).
    pub(crate) fn contains(&mut self, key: &str) -> bool {
        let mut now = None;
        self.live(key, &mut now).is_some()
    }

    /// The time `key` has left (recency unchanged).
    pub(crate) fn ttl(&mut self, key: &str) -> KeyTtl {
        let mut now = None;
        let Some(i) = self.live(key, &mut now) else {
            return KeyTtl::Missing;
        };
        match self.entry(i).expires {
            None => KeyTtl::Persistent,
            Some(at) => {
                KeyTtl::Expires(at.saturating_duration_since(now.unwrap_or_else(Instant::now)))
            }
        }
    }

    /// Writes a value expiring at `expires` (`None`: never), making it the most recently used;
    /// evicts the least recently used entry if the map is full.
    pub(crate) fn insert(&mut self, key: &str, value: Blob, expires: Option<Instant>) {
        if let Some(i) = self.find(key) {
            if let Some(e) = self.nodes[i as usize].entry.as_mut() {
                e.value = value;
                e.expires = expires;
            }
            self.touch(i);
            return;
        }
        if self.len >= self.capacity {
            self.evict_one();
        }
        let entry = Entry {
            key: key.into(),
            value,
            expires,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize].entry = Some(entry);
                i
            }
            None => {
                // `len < capacity <= MAX_CAPACITY`, so the slab index fits.
                let i = u32::try_from(self.nodes.len()).unwrap_or(NIL - 1);
                self.nodes.push(Node {
                    entry: Some(entry),
                    prev: NIL,
                    next: NIL,
                });
                i
            }
        };
        let hash = self.hasher.hash_one(key);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.table.insert_unique(hash, i, |&j| {
            hasher.hash_one(nodes[j as usize].entry.as_ref().map_or("", |e| &*e.key))
        });
        self.push_front(i);
        self.len += 1;
    }

    fn evict_one(&mut self) {
        let tail = self.tail;
        if tail == NIL {
            return;
        }
        let mut now = None;
        if self.entry(tail).expired(&mut now) {
            self.counters.expirations += 1;
        } else {
            self.counters.evictions += 1;
        }
        self.remove_at(tail);
    }

    /// Deletes `key`; whether a live entry was there.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        let mut now = None;
        match self.live(key, &mut now) {
            Some(i) => {
                self.remove_at(i);
                true
            }
            None => false,
        }
    }

    /// Adds `by` to the integer at `key` (a missing key counts as 0 and is created without
    /// expiry; an existing one keeps its expiry).
    pub(crate) fn incr(&mut self, key: &str, by: i64) -> Result<i64, IncrError> {
        let mut now = None;
        let (current, expires) = match self.live(key, &mut now) {
            Some(i) => {
                let e = self.entry(i);
                let n = std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(parse_redis_int)
                    .ok_or(IncrError::NotAnInteger)?;
                (n, e.expires)
            }
            None => (0, None),
        };
        let next = current.checked_add(by).ok_or(IncrError::Overflow)?;
        self.insert(key, Blob::from(next.to_string().into_bytes()), expires);
        Ok(next)
    }

    /// The slots of the live keys matching the Redis glob `pattern`; drops the expired entries
    /// met on the way.
    fn scan(&mut self, pattern: &str) -> Vec<u32> {
        let mut now = None;
        let mut expired = Vec::new();
        let mut found = Vec::new();
        let mut i = self.head;
        while i != NIL {
            let e = self.entry(i);
            if e.expired(&mut now) {
                expired.push(i);
            } else if glob::matches(pattern, &e.key) {
                found.push(i);
            }
            i = self.nodes[i as usize].next;
        }
        self.counters.expirations += expired.len() as u64;
        for i in expired {
            self.remove_at(i);
        }
        found
    }

    /// The live keys matching the Redis glob `pattern`, sorted.
    pub(crate) fn keys(&mut self, pattern: &str) -> Vec<String> {
        let found = self.scan(pattern);
        let mut keys: Vec<String> = found
            .into_iter()
            .map(|i| self.entry(i).key.to_string())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Deletes the live keys matching the Redis glob `pattern`; how many.
    pub(crate) fn remove_matching(&mut self, pattern: &str) -> u64 {
        let found = self.scan(pattern);
        let n = found.len() as u64;
        for i in found {
            self.remove_at(i);
        }
        n
    }

    /// Drops every entry (counters kept).
    #[cfg(any(test, feature = "redis"))]
    pub(crate) fn clear(&mut self) {
        self.table.clear();
        self.nodes.clear();
        self.free.clear();
        self.head = NIL;
        self.tail = NIL;
        self.len = 0;
    }
}

/// Parses an integer the way Redis `INCRBY` does: optional `-`, digits, no leading zeros
/// (except `0` itself), no `+`, no spaces, in the `i64` range.
fn parse_redis_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
        || s == "-0"
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn blob(s: &str) -> Blob {
        Blob::from(s.as_bytes())
    }

    #[test]
    fn lru_order_and_eviction() {
        let mut m = Lru::new(2);
        m.insert("a", blob("1"), None);
        m.insert("b", blob("2"), None);
        assert_eq!(m.get("a").as_deref(), Some(&b"1"[..])); // a is now the most recent
        m.insert("c", blob("3"), None); // evicts b
        assert!(m.get("b").is_none());
        assert!(m.get("a").is_some());
        assert!(m.get("c").is_some());
        assert_eq!(m.len(), 2);
        assert_eq!(m.counters.evictions, 1);
        assert_eq!(m.counters.hits, 3);
        assert_eq!(m.counters.misses, 1);
        // Overwrite keeps the size.
        m.insert("a", blob("9"), None);
        assert_eq!(m.len(), 2);
        assert_eq!(m.peek("a").as_deref(), Some(&b"9"[..]));
    }

    #[test]
    fn removal_reuses_slots() {
        let mut m = Lru::new(3);
        for round in 0..100 {
            let k = format!("k{round}");
            m.insert(&k, blob("x"), None);
            assert!(m.remove(&k));
            assert!(!m.remove(&k));
        }
        assert_eq!(m.len(), 0);
        assert!(m.nodes.len() <= 1);
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_is_lazy_and_keys_skip_expired() {
        let mut m = Lru::new(10);
        let soon = Instant::now() + Duration::from_millis(100);
        m.insert("short", blob("1"), Some(soon));
        m.insert("long", blob("2"), None);
        assert!(matches!(m.ttl("short"), KeyTtl::Expires(d) if d == Duration::from_millis(100)));
        assert_eq!(m.keys("*"), ["long", "short"]);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(m.keys("*"), ["long"]);
        assert_eq!(m.len(), 1);
        assert!(m.get("short").is_none());
        assert_eq!(m.ttl("long"), KeyTtl::Persistent);
        assert_eq!(m.counters.expirations, 1);
    }

    #[test]
    fn incr_rules() {
        let mut m = Lru::new(10);
        assert_eq!(m.incr("n", 5), Ok(5));
        assert_eq!(m.incr("n", -7), Ok(-2));
        m.insert("s", blob("\"12\""), None);
        assert_eq!(m.incr("s", 1), Err(IncrError::NotAnInteger));
        m.insert("big", blob(&i64::MAX.to_string()), None);
        assert_eq!(m.incr("big", 1), Err(IncrError::Overflow));
        for bad in ["", "-", "+1", "01", "1.0", " 1", "-0", "1e3"] {
            assert_eq!(parse_redis_int(bad), None, "{bad}");
        }
        assert_eq!(parse_redis_int("-12"), Some(-12));
        assert_eq!(parse_redis_int("0"), Some(0));
    }

    #[test]
    fn patterns() {
        let mut m = Lru::new(10);
        for k in ["p:a:1", "p:a:2", "p:b:1", "q:a:1"] {
            m.insert(k, blob("1"), None);
        }
        assert_eq!(m.keys("p:a:*"), ["p:a:1", "p:a:2"]);
        assert_eq!(m.remove_matching("p:*"), 3);
        assert_eq!(m.keys("*"), ["q:a:1"]);
        m.clear();
        assert_eq!(m.len(), 0);
        assert!(m.get("q:a:1").is_none());
    }
}
