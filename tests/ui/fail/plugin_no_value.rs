use xcore::prelude::*;

#[derive(Default)]
#[plugin(name)]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {}

fn main() {}
