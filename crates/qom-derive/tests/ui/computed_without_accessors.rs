#[derive(Default, qom::Object)]
#[qom(name = "thing", property(name = "next", ty = u64))]
struct Thing {}

fn main() {}
