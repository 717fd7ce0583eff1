//! [`TaskId`]: the id of one sent task.

use std::{fmt, num::ParseIntError, str::FromStr};

use serde::{Deserialize, Serialize};

/// The id of a sent task, unique in its queue (in process, or the Postgres table shared by
/// every instance). Shown and parsed as a decimal number; serialized as one.
///
/// ```
/// use xcore::services::worker::TaskId;
///
/// let id: TaskId = "42".parse().unwrap();
/// assert_eq!(id.get(), 42);
/// assert_eq!(id.to_string(), "42");
/// assert_eq!(serde_json::to_string(&id).unwrap(), "42");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(u64);

impl TaskId {
    /// The id with this number (as [`get`](Self::get) gave it).
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for TaskId {
    type Err = ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

impl From<u64> for TaskId {
    fn from(id: u64) -> Self {
        Self(id)
    }
}
