//! Task names: who owns a task, and the full names `<plugin>.<name>` tasks are queued under.

use std::sync::Arc;

use super::WorkerError;
use crate::plugin::WeakContext;

/// The namespace of the host's own tasks (not a valid plugin name, so no plugin collides).
pub(crate) const HOST: &str = "@host";

/// The longest task name (without its namespace).
pub const MAX_TASK_NAME_LEN: usize = 64;

/// Who registers and sends through a handle: a plugin (its instance, weakly: its handlers
/// run through the instance's gate), or the host.
#[derive(Clone)]
pub(crate) enum Owner {
    Host,
    Plugin(WeakContext),
}

impl Owner {
    /// The namespace of this owner's tasks: the plugin's name, or `@host`.
    pub(crate) fn namespace(&self) -> &str {
        match self {
            Owner::Host => HOST,
            Owner::Plugin(instance) => instance.identity().name(),
        }
    }

    /// The plugin's name; `None` for the host.
    pub(crate) fn plugin(&self) -> Option<&str> {
        match self {
            Owner::Host => None,
            Owner::Plugin(instance) => Some(instance.identity().name()),
        }
    }
}

/// A task's full name, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FullName {
    /// `<namespace>.<name>`.
    pub(crate) full: Arc<str>,
    /// The length of the namespace.
    split: usize,
}

impl FullName {
    pub(crate) fn new(namespace: &str, name: &str) -> Result<Self, WorkerError> {
        check_name(name)?;
        Ok(Self {
            full: Arc::from(format!("{namespace}.{name}")),
            split: namespace.len(),
        })
    }

    /// Reads a full name (`mailer.send_welcome`, `@host.cleanup`).
    pub(crate) fn parse(full: &str) -> Result<Self, WorkerError> {
        let invalid = |reason: &str| WorkerError::InvalidName {
            name: full.chars().take(140).collect(),
            reason: reason.to_owned(),
        };
        let (namespace, name) = full
            .split_once('.')
            .ok_or_else(|| invalid("a full task name is `<plugin>.<name>`"))?;
        if namespace != HOST {
            xcore_manifest::validate_name(namespace).map_err(|e| invalid(&e.to_string()))?;
        }
        Self::new(namespace, name)
    }

    /// The namespace: a plugin's name, or `@host`.
    pub(crate) fn namespace(&self) -> &str {
        &self.full[..self.split]
    }

    /// The name inside the namespace.
    pub(crate) fn local(&self) -> &str {
        &self.full[self.split + 1..]
    }

    /// The owning plugin's name; `None` for the host's tasks.
    pub(crate) fn plugin(&self) -> Option<&str> {
        Some(self.namespace()).filter(|n| *n != HOST)
    }
}

/// Checks a task name: 1 to 64 characters among lowercase letters, digits, `_`, `-` and `:`,
/// starting with a letter.
pub(crate) fn check_name(name: &str) -> Result<(), WorkerError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_TASK_NAME_LEN {
        "it is longer than 64 characters"
    } else if !name.as_bytes()[0].is_ascii_lowercase() {
        "it does not start with a lowercase letter"
    } else if name.contains('.') {
        "it holds a `.`: a plugin's handle takes unprefixed names (`send_welcome`, not \
         `mailer.send_welcome`)"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b':'))
    {
        "it holds a character other than a-z, 0-9, `_`, `-` and `:`"
    } else {
        return Ok(());
    };
    Err(WorkerError::InvalidName {
        name: name.chars().take(80).collect(),
        reason: reason.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = FullName::new("mailer", "send_welcome").unwrap();
        assert_eq!(&*n.full, "mailer.send_welcome");
        assert_eq!(n.namespace(), "mailer");
        assert_eq!(n.local(), "send_welcome");
        assert_eq!(n.plugin(), Some("mailer"));
        let h = FullName::parse("@host.cleanup").unwrap();
        assert_eq!(h.plugin(), None);
        assert_eq!(h.local(), "cleanup");
        assert!(FullName::parse("Mailer.x").is_err());
        assert!(FullName::parse("mailer").is_err());
        assert!(FullName::parse("mailer.a.b").is_err());
        for bad in ["", "Send", "1x", "a b", "a,b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["send", "send_welcome", "emails:send-v2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }
}
