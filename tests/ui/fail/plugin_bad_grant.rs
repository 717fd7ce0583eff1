use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", permissions = ["db.default: read", "db.cache read", "cache.x: *"])]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
