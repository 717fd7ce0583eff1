//! The attributes used from a `macro_rules!` macro (values arrive wrapped in invisible
//! groups), on an enum, with a plugin that has no action and no version.
#![deny(warnings)]

use xcore::plugin::PluginManifest;
use xcore::prelude::*;

macro_rules! declare {
    ($ty:ident, $name:expr, $timeout:expr, $max:expr, $service:expr) => {
        #[derive(Default)]
        #[plugin(name = $name, timeout = $timeout, max_concurrency = $max, services = [$service])]
        enum $ty {
            #[default]
            On,
        }

        #[async_trait]
        impl Plugin for $ty {}

        #[actions]
        impl $ty {}
    };
}

declare!(Lamp, "lamp", "1s", 2, "db");

fn main() {
    let manifest = <Lamp as PluginManifest>::manifest().unwrap();
    assert_eq!(manifest.name(), "lamp");
    assert_eq!(manifest.services(), ["db"]);
    assert!(Lamp::On.action_names().is_empty());
}
