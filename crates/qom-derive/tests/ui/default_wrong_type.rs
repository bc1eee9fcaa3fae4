#[derive(Default, qom::Object)]
#[qom(name = "thing")]
struct Thing {
    #[property(default = "big")]
    size: u64,
}

impl qom::ObjectImpl for Thing {}

fn main() {}
