use std::{
    collections::VecDeque,
    fmt,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use serde::Serialize;

use crate::observability::Metrics;

/// Which check said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialKind {
    /// The plugin lacks a grant (`permission_denied`).
    Permission,
    /// The target's `allowed_callers` refused the caller (`caller_denied`).
    Caller,
}

impl DenialKind {
    /// The kind as serialized and in metrics: `permission`, `caller`.
    pub fn as_str(self) -> &'static str {
        match self {
            DenialKind::Permission => "permission",
            DenialKind::Caller => "caller",
        }
    }
}

/// One denial, as kept in the [`Audit`], and the error [`Policy`](super::Policy) returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The plugin that was refused.
    pub plugin: String,
    /// The resource (`plugin:billing`, `events:user.created`, `db.default`).
    pub resource: String,
    /// The action (`refund`, `emit`, `write`).
    pub action: String,
    /// Which check refused.
    pub kind: DenialKind,
    /// When.
    pub at: SystemTime,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Denial {
            plugin,
            resource,
            action,
            ..
        } = self;
        match self.kind {
            DenialKind::Permission => write!(
                f,
                "plugin `{plugin}` may not {action} `{resource}`: it holds no grant \
                 `{resource}: {action}`"
            ),
            DenialKind::Caller => write!(
                f,
                "plugin `{plugin}` is not among the allowed callers of `{resource}` ({action})"
            ),
        }
    }
}

impl std::error::Error for Denial {}

/// The denials of one `Xcore`: a counter and a bounded buffer of the most recent ones.
///
/// ```
/// use xcore::permissions::{Audit, DenialKind};
/// let audit = Audit::with_capacity(2);
/// for action in ["a", "b", "c"] {
///     audit.record("billing", "plugin:crm", action, DenialKind::Permission);
/// }
/// assert_eq!(audit.total(), 3);
/// let kept: Vec<_> = audit.denials(None, 10).into_iter().map(|d| d.action).collect();
/// assert_eq!(kept, ["b", "c"]);
/// ```
#[derive(Debug)]
pub struct Audit {
    capacity: usize,
    total: AtomicU64,
    recent: Mutex<VecDeque<Denial>>,
    metrics: Metrics,
}

/// How many denials an `Xcore` keeps by default.
pub const DEFAULT_AUDIT_CAPACITY: usize = 1_000;

impl Default for Audit {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_AUDIT_CAPACITY)
    }
}

impl Audit {
    /// An audit that keeps the last `capacity` denials (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            total: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            metrics: Metrics::disabled(),
        }
    }

    /// The same audit, counting denials in `metrics` too (`xcore_denials_total`).
    pub(crate) fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Records a denial: logs it, counts it, keeps it (dropping the oldest if full).
    pub fn record(&self, plugin: &str, resource: &str, action: &str, kind: DenialKind) {
        self.push(Denial {
            plugin: plugin.to_owned(),
            resource: resource.to_owned(),
            action: action.to_owned(),
            kind,
            at: SystemTime::now(),
        });
    }

    /// Records `denial`: logs it, counts it, keeps it (dropping the oldest if full).
    pub(crate) fn push(&self, denial: Denial) {
        let Denial {
            plugin,
            resource,
            action,
            kind,
            ..
        } = &denial;
        tracing::warn!(plugin, resource, action, ?kind, "denied");
        self.total.fetch_add(1, Ordering::Relaxed);
        self.metrics.denial(plugin, kind.as_str());
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == self.capacity {
            recent.pop_front();
        }
        recent.push_back(denial);
    }

    /// How many denials happened since the `Xcore` was built (kept or not).
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The most recent denials, oldest first: at most `limit`, of `plugin` if given.
    pub fn denials(&self, plugin: Option<&str>, limit: usize) -> Vec<Denial> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Denial> = recent
            .iter()
            .rev()
            .filter(|d| plugin.is_none_or(|p| d.plugin == p))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// The buffer's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_filtered() {
        let audit = Audit::with_capacity(3);
        for i in 0..10 {
            let plugin = if i % 2 == 0 { "even" } else { "odd" };
            audit.record(plugin, "plugin:x", &i.to_string(), DenialKind::Caller);
        }
        assert_eq!(audit.total(), 10);
        let all = audit.denials(None, 100);
        assert_eq!(
            all.iter().map(|d| d.action.as_str()).collect::<Vec<_>>(),
            ["7", "8", "9"]
        );
        let odd = audit.denials(Some("odd"), 100);
        assert_eq!(
            odd.iter().map(|d| d.action.as_str()).collect::<Vec<_>>(),
            ["7", "9"]
        );
        assert_eq!(audit.denials(None, 1)[0].action, "9");
        assert_eq!(Audit::with_capacity(0).capacity(), 1);
    }
}
