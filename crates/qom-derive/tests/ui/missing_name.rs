#[derive(Default, qom::Object)]
#[qom(abstract)]
struct Thing {}

fn main() {}
