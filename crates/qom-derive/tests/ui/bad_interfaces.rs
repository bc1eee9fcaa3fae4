#[derive(Default, qom::Object)]
#[qom(name = "thing", interfaces(qom::UserCreatable, "no such", qom::UserCreatable))]
struct Thing {}

fn main() {}
