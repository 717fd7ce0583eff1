use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", requires = ["audit", "p@1"])]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
