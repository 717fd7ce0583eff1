use xcore::prelude::*;

#[derive(Default)]
#[plugin(
    name = "p",
    version = 1,
    timeout = 10s,
    max_concurrency = "16",
    allowed_callers = [billing]
)]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
