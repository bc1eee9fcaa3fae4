#[derive(Default, qom::Object)]
#[qom(name = "thing", parnet = qom::ObjectRoot)]
struct Thing {}

fn main() {}
