#[derive(Default, qom::Object)]
#[qom(name = "thing")]
struct Thing(u64);

fn main() {}
