//! [`SendOptions`]: how one task is sent.

use std::time::Duration;

/// How one task is sent: its attempts, a delay, an idempotency key.
///
/// ```
/// use std::time::Duration;
/// use xcore::services::worker::SendOptions;
///
/// let options = SendOptions::new()
///     .max_attempts(5)
///     .delay(Duration::from_secs(60))
///     .idempotency_key("welcome:42");
/// assert_eq!(options.max_attempts, Some(5));
///
/// // The fields are public too.
/// let options = SendOptions { delay: Some(Duration::from_secs(1)), ..SendOptions::default() };
/// assert!(options.idempotency_key.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Attempts before the task becomes a dead letter (at least 1). Default: the worker's
    /// (`services.worker.max_retries` + 1).
    pub max_attempts: Option<u32>,
    /// How long to wait before the first attempt. Default none.
    pub delay: Option<Duration>,
    /// A key that makes the send idempotent: while a task of the same name and tenant with
    /// this key is known to the queue (queued, running, finished and not yet forgotten),
    /// sending again returns that task's id and queues nothing. At most 200 characters.
    pub idempotency_key: Option<String>,
}

/// The longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

impl SendOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attempts before the task becomes a dead letter.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// A wait before the first attempt.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// An idempotency key.
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}
