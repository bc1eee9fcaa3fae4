#[derive(Clone, Copy, qom::Enum)]
#[qom(name = "Mode", values = 3)]
enum Mode {
    On(u8),
    #[qom(rename = 1)]
    Off,
}

fn main() {}
