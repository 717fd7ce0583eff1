//! [`Registry`]: the task handlers registered on one worker, by full name.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use super::{
    name::Owner,
    task::{CheckFn, HandlerFn},
};

/// One registered handler.
pub(crate) struct Registered {
    pub(crate) owner: Owner,
    pub(crate) run: HandlerFn,
    pub(crate) check: CheckFn,
}

/// The names the worker has handlers for: only tasks of these names are claimed.
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub(crate) list: Vec<Arc<str>>,
    /// The names joined with `,` (task names hold no comma), for the durable queue's query.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) joined: String,
}

#[derive(Default)]
struct Table {
    handlers: HashMap<Arc<str>, Arc<Registered>>,
    names: Arc<Names>,
}

impl Table {
    fn refresh(&mut self) {
        let mut list: Vec<Arc<str>> = self.handlers.keys().cloned().collect();
        list.sort_unstable();
        let joined = list.iter().map(|n| &**n).collect::<Vec<_>>().join(",");
        self.names = Arc::new(Names { list, joined });
    }
}

/// The handlers of one worker.
#[derive(Default)]
pub(crate) struct Registry {
    table: RwLock<Table>,
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers (or replaces) the handler of `full`.
    pub(crate) fn insert(&self, full: Arc<str>, handler: Registered) {
        let mut table = self.write();
        table.handlers.insert(full, Arc::new(handler));
        table.refresh();
    }

    /// Removes the handler of `full`; whether there was one.
    pub(crate) fn remove(&self, full: &str) -> bool {
        let mut table = self.write();
        let removed = table.handlers.remove(full).is_some();
        if removed {
            table.refresh();
        }
        removed
    }

    /// Removes every handler `plugin` registered; how many.
    pub(crate) fn remove_plugin(&self, plugin: &str) -> usize {
        let mut table = self.write();
        let before = table.handlers.len();
        table
            .handlers
            .retain(|_, h| h.owner.plugin() != Some(plugin));
        let removed = before - table.handlers.len();
        if removed > 0 {
            table.refresh();
        }
        removed
    }

    /// The handler of `full`.
    pub(crate) fn get(&self, full: &str) -> Option<Arc<Registered>> {
        self.read().handlers.get(full).cloned()
    }

    /// The names with a handler.
    pub(crate) fn names(&self) -> Arc<Names> {
        self.read().names.clone()
    }
}
