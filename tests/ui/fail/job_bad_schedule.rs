use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", services = ["scheduler"], permissions = ["service:scheduler: schedule"])]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {
    #[job(cron = "0 3 * *")]
    async fn short(&self) -> Result<(), CallError> {
        Ok(())
    }

    #[job(cron = "@fortnightly")]
    async fn nickname(&self) -> Result<(), CallError> {
        Ok(())
    }

    #[job(every = "30")]
    async fn unitless(&self) -> Result<(), CallError> {
        Ok(())
    }

    #[job(every = "500ms")]
    async fn too_often(&self) -> Result<(), CallError> {
        Ok(())
    }
}

fn main() {}
