use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p")]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {
    #[action]
    async fn count(&self) -> u32 {
        1
    }

    #[action]
    fn reset(&self) {}
}

fn main() {}
