#[derive(Default, qom::Object)]
#[qom(name = "thing", parent = String)]
struct Thing {}

impl qom::ObjectImpl for Thing {}

fn main() {}
