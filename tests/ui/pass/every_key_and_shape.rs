//! Every manifest key and every action shape, with every warning denied: the expansion must
//! not warn.
#![deny(warnings, unused, missing_docs, unreachable_pub, rust_2018_idioms)]

use serde::{Deserialize, Serialize};
use xcore::plugin::PluginManifest;
use xcore::prelude::*;

/// The plugin.
#[derive(Default)]
#[plugin(
    name = "shop",
    version = "1.2.3",
    description = "Sells things",
    author = "xcore",
    services = ["db", "cache"],
    requires = ["audit@^1.2"],
    permissions = ["db.default: read, write", "!db.default: drop"],
    allowed_callers = ["*"],
    mode = "trusted",
    timeout = "10s",
    rate_limit = "100/1m",
    max_concurrency = 16
)]
pub struct Shop;

#[async_trait]
impl Plugin for Shop {}

#[derive(Deserialize)]
struct Order {
    item: String,
    qty: u32,
}

#[derive(Serialize)]
struct Receipt {
    total: u32,
}

#[actions]
impl Shop {
    #[action]
    async fn count(&self) -> Result<u32, CallError> {
        Ok(1)
    }

    #[action(name = "tenant")]
    fn tenant_of(&self, cx: &CallContext) -> Result<String, CallError> {
        Ok(cx.tenant().to_string())
    }

    #[action]
    async fn price(&self, item: String) -> Result<u32, CallError> {
        Ok(item.len() as u32)
    }

    #[action]
    async fn order(&self, _cx: &xcore::CallContext, order: Order) -> Result<Receipt, CallError> {
        Ok(Receipt {
            total: self.price(order.item).await? * order.qty,
        })
    }

    #[action]
    fn r#match(&self) -> Result<(), CallError> {
        Ok(())
    }
}

fn main() {
    let manifest = <Shop as PluginManifest>::manifest().unwrap();
    assert_eq!(manifest.name(), "shop");
    assert_eq!(
        Shop.action_names(),
        ["count", "tenant", "price", "order", "match"]
    );
}
