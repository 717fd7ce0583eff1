//! Who owns a job, and its namespaced key `<plugin>:<tenant>:<id>`.

use std::fmt;

use super::SchedulerError;
use crate::{PluginIdentity, TenantId, plugin::WeakContext};

/// The longest job id.
pub const MAX_JOB_ID_LEN: usize = 128;

/// The owner of the host's jobs, in keys: `@` cannot start a plugin name.
const HOST: &str = "@host";

/// Who registered a job: a plugin or the host. A plugin's job registered through its
/// handle holds its instance (weakly): its runs pass the instance's gate. A job declared with
/// `#[job]` holds none: it calls the plugin's action, through the call's gate.
#[derive(Clone)]
pub(crate) enum Owner {
    Host,
    Plugin(PluginIdentity, Option<WeakContext>),
}

impl Owner {
    /// The owner in keys: the plugin's name, or `@host`.
    pub(crate) fn key(&self) -> &str {
        match self {
            Owner::Host => HOST,
            Owner::Plugin(p, _) => p.name(),
        }
    }

    /// The plugin's name, `None` for the host.
    pub(crate) fn plugin(&self) -> Option<&str> {
        match self {
            Owner::Host => None,
            Owner::Plugin(p, _) => Some(p.name()),
        }
    }

    pub(crate) fn same(&self, other: &Owner) -> bool {
        self.key() == other.key()
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Host => f.write_str("the host"),
            Owner::Plugin(p, _) => write!(f, "plugin `{}`", p.name()),
        }
    }
}

/// Checks a job id: 1 to 128 characters among ASCII letters, digits, `_`, `-` and `.` (so
/// that `:` only ever separates the parts of a key).
pub(crate) fn check_id(id: &str) -> Result<(), SchedulerError> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.len() > MAX_JOB_ID_LEN {
        "it is longer than 128 characters"
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        "it holds a character other than a letter, a digit, `_`, `-` and `.`"
    } else {
        return Ok(());
    };
    Err(SchedulerError::InvalidJobId {
        id: id.chars().take(80).collect(),
        reason,
    })
}

/// The namespaced key of a job: `<plugin>:<tenant>:<id>` (`@host:<tenant>:<id>` for the
/// host's jobs).
pub(crate) fn job_key(owner: &Owner, tenant: &TenantId, id: &str) -> String {
    format!("{}:{}:{id}", owner.key(), tenant.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["cleanup", "a", "daily.report-2", "A_b", &"x".repeat(128)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a:b", "a b", "é", "a/b", &"x".repeat(129)] {
            assert!(
                matches!(check_id(bad), Err(SchedulerError::InvalidJobId { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            job_key(&Owner::Host, &TenantId::default(), "x"),
            "@host:default:x"
        );
    }
}
