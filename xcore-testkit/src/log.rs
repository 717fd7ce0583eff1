use std::sync::{Arc, Mutex};

/// A shared, ordered log of what fake nodes did (`"db: init"`, `"users: on_stop"`, ...).
///
/// Clones share the same log.
#[derive(Debug, Clone, Default)]
pub struct HookLog(Arc<Mutex<Vec<String>>>);

impl HookLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry.
    pub fn push(&self, entry: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry.into());
    }

    /// Every entry, in order.
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The position of the first entry equal to `entry`.
    pub fn position(&self, entry: &str) -> Option<usize> {
        self.entries().iter().position(|e| e == entry)
    }

    /// The entries that end with `suffix` (`": on_stop"`), in order.
    pub fn ending_with(&self, suffix: &str) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter(|e| e.ends_with(suffix))
            .collect()
    }
}
