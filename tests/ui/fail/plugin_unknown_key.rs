use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", permisions = ["db.default: read"])]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
