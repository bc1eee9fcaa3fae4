#[derive(Default, qom::Object)]
#[qom(name = "thing", interfaces(qom::UserCreatable))]
struct Thing {}

impl qom::ObjectImpl for Thing {}

fn main() {}
