use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p", services = ["scheduler"], permissions = ["service:scheduler: schedule"])]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {
    #[job(every = "30s")]
    async fn beat(&self, cx: &CallContext, count: u32) -> Result<(), CallError> {
        let _ = (cx, count);
        Ok(())
    }
}

fn main() {}
