#[derive(Default, qom::Object)]
#[qom(name = "thing", parent = qom::ObjectRoot, parent_name = "object")]
struct Thing {}

fn main() {}
