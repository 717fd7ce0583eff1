use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", services = "db")]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
