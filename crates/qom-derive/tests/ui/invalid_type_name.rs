#[derive(Default, qom::Object)]
#[qom(name = "0thing")]
struct Thing {}

fn main() {}
