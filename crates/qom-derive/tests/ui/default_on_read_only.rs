#[derive(Default, qom::Object)]
#[qom(name = "thing")]
struct Thing {
    #[property(read_only, default = 4)]
    size: u64,
    #[property(read_only, locked)]
    other: u64,
}

fn main() {}
