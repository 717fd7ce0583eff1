//! What a plugin declares for the services that run it ([`Declarations`]): a type-erased bag,
//! so that the kernel contracts ([`Actions`](crate::Actions),
//! [`StartedPlugin`](crate::StartedPlugin)) name no concrete service. The map is on
//! [`Declarations`].

use std::{
    any::{Any, TypeId},
    fmt,
    sync::Arc,
};

/// A kind of declaration a plugin makes for one service (a scheduler job, say).
///
/// ```
/// use xcore::plugin::{Declaration, Declarations};
///
/// #[derive(Debug)]
/// struct Topic(&'static str);
///
/// impl Declaration for Topic {
///     const SERVICE: &'static str = "broker";
///     const WHAT: &'static str = "topics with `#[topic]`";
///     fn label(&self) -> &str {
///         self.0
///     }
/// }
///
/// static TOPICS: [Topic; 2] = [Topic("orders"), Topic("refunds")];
/// let bag = Declarations::new().with(&TOPICS);
/// assert_eq!(bag.get::<Topic>().len(), 2);
/// assert!(bag.check_services(&["broker"]).is_ok());
/// let refused = bag.check_services(&["db"]).unwrap_err();
/// assert!(refused.contains("`orders`") && refused.contains("services = [\"broker\"]"));
/// ```
pub trait Declaration: Any + Send + Sync + fmt::Debug {
    /// The name of the service that consumes declarations of this type; a plugin making one
    /// must declare it (`services = ["<SERVICE>"]`).
    const SERVICE: &'static str;
    /// How declarations of this type are named in messages, plural: ``jobs with `#[job]` ``.
    const WHAT: &'static str;
    /// This declaration's name in messages (a job's id).
    fn label(&self) -> &str;
}

/// The items of one entry: borrowed for the whole program (what the macros emit) or owned.
enum Items<T: 'static> {
    Static(&'static [T]),
    Owned(Vec<T>),
}

impl<T> Items<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Items::Static(items) => items,
            Items::Owned(items) => items,
        }
    }
}

/// One entry of the bag: the declarations of one type.
#[derive(Clone)]
struct Entry {
    type_id: TypeId,
    type_name: &'static str,
    service: &'static str,
    what: &'static str,
    /// An `Items<T>`.
    items: Arc<dyn Any + Send + Sync>,
    /// The labels of `items`, read through `T`.
    labels: fn(&(dyn Any + Send + Sync)) -> Vec<&str>,
}

fn labels_of<T: Declaration>(items: &(dyn Any + Send + Sync)) -> Vec<&str> {
    items
        .downcast_ref::<Items<T>>()
        .map(|items| items.as_slice().iter().map(T::label).collect())
        .unwrap_or_default()
}

/// What a plugin declares for the services that run it, by type: at most one list per
/// [`Declaration`] type, each naming the service that consumes it. Empty lists are not kept.
///
/// Built by [`Actions::declarations`](crate::Actions::declarations) (by `#[actions]` for
/// `#[job]`), read by services through [`StartedPlugin::get`](crate::StartedPlugin::get).
///
/// A service that takes declarations defines their type and implements [`Declaration`] for
/// it, naming itself as the consumer; a plugin puts them in the bag it returns from
/// [`Actions::declarations`](crate::Actions::declarations) (`#[actions]` does, for `#[job]`);
/// the service reads its type back in [`Service::on_plugin_start`](crate::Service::on_plugin_start)
/// with [`StartedPlugin::get`](crate::StartedPlugin::get). Before any service sees the plugin,
/// the kernel checks that the plugin declares in its manifest every service its declarations
/// are for:
///
/// | the bag holds | the manifest's `services` | when the plugin starts |
/// |---|---|---|
/// | nothing, or only empty lists | anything | no check |
/// | declarations of type `T` | holds `T::SERVICE` | each service reads what is its own |
/// | declarations of type `T` | lacks `T::SERVICE` | the plugin fails to start; the reason names the declaration and the service to add |
///
/// | declaration | consumed by | written with |
/// |---|---|---|
/// | [`DeclaredJob`](crate::services::scheduler::DeclaredJob) | `scheduler` | `#[job(cron = "…")]`, `#[job(every = "…")]` |
#[derive(Clone, Default)]
pub struct Declarations {
    entries: Vec<Entry>,
}

impl Declarations {
    /// An empty bag.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bag with `items` as its declarations of type `T` (replacing any list of that type
    /// already in it; an empty list removes it).
    #[must_use]
    pub fn with<T: Declaration>(self, items: &'static [T]) -> Self {
        self.insert(Items::Static(items), items.is_empty())
    }

    /// The bag with `items`, built at run time, as its declarations of type `T` (replacing any
    /// list of that type already in it; an empty list removes it).
    #[must_use]
    pub fn with_owned<T: Declaration>(self, items: Vec<T>) -> Self {
        let empty = items.is_empty();
        self.insert(Items::Owned(items), empty)
    }

    fn insert<T: Declaration>(mut self, items: Items<T>, empty: bool) -> Self {
        let type_id = TypeId::of::<T>();
        self.entries.retain(|e| e.type_id != type_id);
        if !empty {
            self.entries.push(Entry {
                type_id,
                type_name: std::any::type_name::<T>(),
                service: T::SERVICE,
                what: T::WHAT,
                items: Arc::new(items),
                labels: labels_of::<T>,
            });
        }
        self
    }

    /// The declarations of type `T`; empty when the plugin makes none.
    pub fn get<T: Declaration>(&self) -> &[T] {
        self.entries
            .iter()
            .find(|e| e.type_id == TypeId::of::<T>())
            .and_then(|e| e.items.downcast_ref::<Items<T>>())
            .map_or(&[], Items::as_slice)
    }

    /// Whether the bag holds no declaration.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The services the declarations are for, in the order they were added, each once.
    pub fn services(&self) -> Vec<&'static str> {
        let mut services: Vec<&'static str> = Vec::new();
        for entry in &self.entries {
            if !services.contains(&entry.service) {
                services.push(entry.service);
            }
        }
        services
    }

    /// Checks that `declared` (a manifest's `services`) holds every service the declarations
    /// are for. The error names, for each missing service, what the plugin declares for it
    /// (the first labels) and what to add to the manifest.
    pub fn check_services<S: AsRef<str>>(&self, declared: &[S]) -> Result<(), String> {
        let missing: Vec<String> = self
            .entries
            .iter()
            .filter(|e| !declared.iter().any(|s| s.as_ref() == e.service))
            .map(|e| {
                let labels = (e.labels)(&*e.items);
                let mut shown = labels
                    .iter()
                    .take(3)
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                if labels.len() > 3 {
                    shown.push_str(&format!(" and {} more", labels.len() - 3));
                }
                format!(
                    "it declares {} ({shown}) but not the service that runs them; add \
                     `services = [\"{}\"]` to its manifest",
                    e.what, e.service
                )
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    }
}

impl fmt::Debug for Declarations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for entry in &self.entries {
            map.entry(&entry.type_name, &(entry.labels)(&*entry.items));
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Job(&'static str);

    impl Declaration for Job {
        const SERVICE: &'static str = "scheduler";
        const WHAT: &'static str = "jobs with `#[job]`";
        fn label(&self) -> &str {
            self.0
        }
    }

    #[derive(Debug, PartialEq)]
    struct Topic(String);

    impl Declaration for Topic {
        const SERVICE: &'static str = "broker";
        const WHAT: &'static str = "topics";
        fn label(&self) -> &str {
            &self.0
        }
    }

    static JOBS: [Job; 2] = [Job("nightly"), Job("beat")];

    #[test]
    fn typed_lists_come_back_by_type() {
        let bag = Declarations::new()
            .with(&JOBS)
            .with_owned(vec![Topic("orders".into())]);
        assert_eq!(bag.get::<Job>(), &JOBS);
        assert_eq!(bag.get::<Topic>(), [Topic("orders".into())]);
        assert_eq!(bag.services(), ["scheduler", "broker"]);
        assert!(!bag.is_empty());
        // A type the bag does not hold reads as empty.
        #[derive(Debug)]
        struct Other;
        impl Declaration for Other {
            const SERVICE: &'static str = "x";
            const WHAT: &'static str = "others";
            fn label(&self) -> &str {
                "other"
            }
        }
        assert!(bag.get::<Other>().is_empty());
        assert_eq!(
            format!("{bag:?}"),
            format!(
                "{{{:?}: [\"nightly\", \"beat\"], {:?}: [\"orders\"]}}",
                std::any::type_name::<Job>(),
                std::any::type_name::<Topic>()
            )
        );
    }

    #[test]
    fn a_list_replaces_the_previous_one_of_its_type_and_empty_lists_are_not_kept() {
        static ONE: [Job; 1] = [Job("one")];
        let bag = Declarations::new().with(&JOBS).with(&ONE);
        assert_eq!(bag.get::<Job>(), &ONE);
        let bag = bag.with::<Job>(&[]);
        assert!(bag.is_empty());
        assert!(bag.check_services::<&str>(&[]).is_ok());
        assert!(
            Declarations::new()
                .with_owned::<Topic>(Vec::new())
                .is_empty()
        );
    }

    #[test]
    fn the_check_names_each_missing_service_and_its_declarations() {
        let bag = Declarations::new()
            .with(&JOBS)
            .with_owned((0..5).map(|i| Topic(format!("t{i}"))).collect());
        assert!(bag.check_services(&["scheduler", "broker"]).is_ok());
        assert_eq!(
            bag.check_services(&["broker".to_owned()]).unwrap_err(),
            "it declares jobs with `#[job]` (`nightly`, `beat`) but not the service that runs \
             them; add `services = [\"scheduler\"]` to its manifest"
        );
        let both = bag.check_services(&["db"]).unwrap_err();
        assert!(
            both.contains("services = [\"scheduler\"]")
                && both.contains("topics (`t0`, `t1`, `t2` and 2 more)")
                && both.contains("services = [\"broker\"]"),
            "{both}"
        );
    }
}
