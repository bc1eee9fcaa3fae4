#[derive(Default, qom::Object)]
#[qom(name = "thing")]
struct Thing {
    #[property(lcoked)]
    size: u64,
}

fn main() {}
