#[derive(Default, qom::Object)]
#[qom(name = "thing")]
struct Thing {}

fn main() {}
