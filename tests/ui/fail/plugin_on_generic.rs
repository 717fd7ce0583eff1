#[derive(Default)]
#[xcore::plugin(name = "p")]
struct P<T: Default>(T);

fn main() {}
