#[derive(qom::Object)]
#[qom(name = "thing")]
enum Thing {
    A,
}

fn main() {}
