use xcore::prelude::*;

#[derive(Default)]
#[plugin(
    name = "p",
    services = ["db", "Cache"],
    mode = "sandboxed",
    rate_limit = "fast",
    allowed_callers = ["*", "Billing"]
)]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
