use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", services = ["scheduler"], permissions = ["service:scheduler: schedule"])]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {
    #[job(id = "beat")]
    async fn beat(&self) -> Result<(), CallError> {
        Ok(())
    }

    #[job(cron = "0 3 * * *", every = "1h")]
    async fn both(&self) -> Result<(), CallError> {
        Ok(())
    }
}

fn main() {}
