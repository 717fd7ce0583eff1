use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p")]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {
    #[action]
    async fn ping(&self) -> Result<(), CallError> {
        Ok(())
    }

    #[action(name = "ping")]
    async fn ping_again(&self) -> Result<(), CallError> {
        Ok(())
    }
}

fn main() {}
