use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", max_concurrency = 0)]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
