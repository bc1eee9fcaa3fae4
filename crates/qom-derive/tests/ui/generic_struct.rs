#[derive(Default, qom::Object)]
#[qom(name = "thing")]
struct Thing<T> {
    value: T,
}

fn main() {}
