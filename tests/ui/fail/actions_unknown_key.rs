use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p")]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {
    #[action(rename = "pong")]
    async fn ping(&self) -> Result<(), CallError> {
        Ok(())
    }
}

fn main() {}
