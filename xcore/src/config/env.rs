//! The environment a load reads: the process's, or an explicit map (for tests).

use std::{collections::BTreeMap, env::VarError};

use super::error::ConfigError;

/// Where environment variables come from.
#[derive(Debug, Clone, Default)]
pub(crate) enum Env {
    /// `std::env`.
    #[default]
    Process,
    /// An explicit map; the process environment is not read.
    Vars(BTreeMap<String, String>),
}

impl Env {
    /// The variable's value.
    pub(crate) fn var(&self, name: &str) -> Result<String, VarError> {
        match self {
            Env::Process => std::env::var(name),
            Env::Vars(vars) => vars.get(name).cloned().ok_or(VarError::NotPresent),
        }
    }

    /// The variables whose names start with `prefix`, sorted by name.
    pub(crate) fn with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, ConfigError> {
        let mut found = match self {
            Env::Process => {
                let mut found = Vec::new();
                for (name, value) in std::env::vars_os() {
                    let Some(name) = name.to_str().filter(|n| n.starts_with(prefix)) else {
                        continue;
                    };
                    let value = value.into_string().map_err(|_| ConfigError::Override {
                        var: name.to_owned(),
                        message: "the value is not valid UTF-8; set it to UTF-8 text".to_owned(),
                    })?;
                    found.push((name.to_owned(), value));
                }
                found
            }
            Env::Vars(vars) => vars
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        };
        found.sort();
        Ok(found)
    }
}
