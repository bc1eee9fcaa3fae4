#[derive(Default, qom::Object)]
#[qom(name = "thing")]
struct Thing {
    #[property]
    mem_path: String,
    #[property(rename = "mem-path")]
    path: String,
}

fn main() {}
