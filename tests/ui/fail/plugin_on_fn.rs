#[xcore::plugin(name = "p")]
fn p() {}

fn main() {}
