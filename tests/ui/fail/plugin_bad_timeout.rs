use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", timeout = "10")]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
