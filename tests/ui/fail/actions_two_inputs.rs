use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p")]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {
    #[action]
    async fn add(&self, a: u32, b: u32) -> Result<u32, CallError> {
        Ok(a + b)
    }
}

fn main() {}
