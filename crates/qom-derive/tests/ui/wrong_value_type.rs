#[derive(Default, qom::Object)]
#[qom(name = thing)]
struct Thing {
    #[property(rename = 5)]
    size: u64,
    #[property(read_only = true)]
    other: u64,
}

fn main() {}
