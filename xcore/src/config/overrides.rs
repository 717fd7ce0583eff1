//! `XCORE__SECTION__KEY=value` overrides, applied after interpolation.
//!
//! Each override sets one value as a string marked as coming from the environment; the
//! deserializer coerces it by the target field's type. Keys are lowercased and split on `__`.

use indexmap::IndexMap;

use super::{
    env::Env,
    error::ConfigError,
    from_yaml::MAX_DEPTH,
    node::{Entry, Node, Source, Value},
};

/// Applies every `<prefix>__…` variable of `env` to the tree, in the order of their names.
pub(crate) fn apply_all(root: &mut Node, env: &Env, prefix: &str) -> Result<(), ConfigError> {
    let prefix = format!("{prefix}__");
    for (var, value) in env.with_prefix(&prefix)? {
        let keys = keys(&var[prefix.len()..]).ok_or_else(|| ConfigError::Override {
            var: var.clone(),
            message: format!(
                "it names no key, or has an empty key segment; write `{prefix}SECTION__KEY=value` with `__` between keys"
            ),
        })?;
        if keys.len() >= MAX_DEPTH {
            return Err(ConfigError::Override {
                var: var.clone(),
                message: format!(
                    "it names {} levels of keys, more than the {} a config may nest",
                    keys.len(),
                    MAX_DEPTH - 1
                ),
            });
        }
        apply(root, &var, &keys, value)?;
    }
    Ok(())
}

/// `SERVICES__CACHE__TTL` → `["services", "cache", "ttl"]`.
fn keys(rest: &str) -> Option<Vec<String>> {
    let keys: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
    (!keys.iter().any(String::is_empty)).then_some(keys)
}

/// Sets the value at `keys`, creating the mappings on the way.
fn apply(root: &mut Node, var: &str, keys: &[String], value: String) -> Result<(), ConfigError> {
    let source = Source::Override(var.to_owned());
    let mut node = root;
    for (depth, key) in keys.iter().enumerate() {
        let last = depth + 1 == keys.len();
        if node.value == Value::Null {
            node.value = Value::Map(IndexMap::new());
        }
        node = match &mut node.value {
            Value::Map(entries) => {
                let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
                    key_line: None,
                    key_source: source.clone(),
                    value: Node {
                        value: Value::Null,
                        line: None,
                        source: source.clone(),
                    },
                });
                &mut entry.value
            }
            Value::Seq(items) => match key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => item,
                None => return Err(not_a_mapping(var, keys, depth, "a list")),
            },
            other => return Err(not_a_mapping(var, keys, depth, other.kind())),
        };
        if last {
            *node = Node {
                value: Value::Str(value),
                line: None,
                source,
            };
            return Ok(());
        }
    }
    Ok(())
}

fn not_a_mapping(var: &str, keys: &[String], depth: usize, kind: &str) -> ConfigError {
    ConfigError::Override {
        var: var.to_owned(),
        message: format!(
            "cannot set `{}`: `{}` is {kind}, not a mapping; fix the variable's name",
            keys.join("."),
            keys[..depth].join(".")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node::Value;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::Vars(
            vars.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn override_depth_is_bounded() {
        let var = |n: usize| format!("XCORE__{}", vec!["A"; n].join("__"));
        let mut root = Node::empty_map();
        let at = var(MAX_DEPTH - 1);
        apply_all(&mut root, &env(&[(&at, "x")]), "XCORE").unwrap();
        let over = var(MAX_DEPTH);
        let err = apply_all(&mut root, &env(&[(&over, "x")]), "XCORE").unwrap_err();
        assert!(err.to_string().contains("64 levels of keys"), "{err}");
        let huge = var(30_000);
        assert!(apply_all(&mut Node::empty_map(), &env(&[(&huge, "x")]), "XCORE").is_err());
    }

    #[test]
    fn creates_and_replaces_values() {
        let mut root = Node::from_json(&serde_json::json!({"services": {"cache": {"ttl": 5}}}));
        apply_all(
            &mut root,
            &env(&[
                ("XCORE__SERVICES__CACHE__TTL", "30"),
                ("XCORE__APP__NAME", "shop"),
                ("OTHER", "x"),
            ]),
            "XCORE",
        )
        .unwrap();
        let ttl = root.get(&["services", "cache", "ttl"]).unwrap();
        assert_eq!(ttl.value, Value::Str("30".into()));
        assert_eq!(
            ttl.source,
            Source::Override("XCORE__SERVICES__CACHE__TTL".into())
        );
        let app = root.entry(&["app"]).unwrap();
        assert_eq!(app.key_source, Source::Override("XCORE__APP__NAME".into()));
        assert_eq!(
            root.get(&["app", "name"]).unwrap().value,
            Value::Str("shop".into())
        );
    }

    #[test]
    fn sets_list_items_by_index() {
        let mut root = Node::from_json(&serde_json::json!({"a": ["x", "y"]}));
        apply_all(&mut root, &env(&[("XCORE__A__1", "z")]), "XCORE").unwrap();
        let Some(Value::Seq(items)) = root.get(&["a"]).map(|a| &a.value) else {
            panic!("not a list")
        };
        assert_eq!(items[1].value, Value::Str("z".into()));
        assert_eq!(items[1].source, Source::Override("XCORE__A__1".into()));
    }

    #[test]
    fn rejects_bad_names_and_paths() {
        let mut root = Node::from_json(&serde_json::json!({"app": {"name": "x"}}));
        let err = apply_all(&mut root, &env(&[("XCORE__APP__NAME__X", "1")]), "XCORE").unwrap_err();
        assert!(err.to_string().contains("`app.name` is a string"), "{err}");
        let err = apply_all(&mut root, &env(&[("XCORE__APP____NAME", "1")]), "XCORE").unwrap_err();
        assert!(err.to_string().contains("XCORE__APP____NAME"), "{err}");
        let err = apply_all(&mut root, &env(&[("XCORE__", "1")]), "XCORE").unwrap_err();
        assert!(matches!(err, ConfigError::Override { .. }));
    }
}
