use xcore::prelude::*;

#[derive(Default)]
#[plugin(name = "p")]
struct P;

#[async_trait]
impl Plugin for P {}

#[actions]
impl P {
    #[action(name = "get user")]
    async fn get_user(&self) -> Result<(), CallError> {
        Ok(())
    }
}

fn main() {}
