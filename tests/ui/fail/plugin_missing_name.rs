use xcore::prelude::*;

#[derive(Default)]
#[plugin(version = "1.0.0", timeout = "1s")]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
