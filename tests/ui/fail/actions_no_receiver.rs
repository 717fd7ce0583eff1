use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p")]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {
    #[action]
    async fn ping() -> Result<(), CallError> {
        Ok(())
    }
}

fn main() {}
