use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", requires = ["audit@^1.2", "billing@^x"])]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
