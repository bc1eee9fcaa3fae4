#[derive(Default, qom::Object)]
#[qom(name = "board")]
struct Board {
    #[property(child)]
    sensor: qom::Link,
}

impl qom::ObjectImpl for Board {}

fn main() {}
