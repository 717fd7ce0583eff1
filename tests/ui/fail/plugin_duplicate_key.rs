use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", timeout = "1s", timeout = "2s")]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
