use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", services = ["scheduler"], permissions = ["service:scheduler: schedule"])]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {
    #[job(evrey = "30s")]
    async fn beat(&self) -> Result<(), CallError> {
        Ok(())
    }
}

fn main() {}
