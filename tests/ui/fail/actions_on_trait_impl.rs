use xcore::prelude::*;

#[derive(Default)]
struct P;

trait Ping {
    fn ping(&self) -> Result<(), CallError>;
}

#[actions]
impl Ping for P {
    fn ping(&self) -> Result<(), CallError> {
        Ok(())
    }
}

fn main() {}
