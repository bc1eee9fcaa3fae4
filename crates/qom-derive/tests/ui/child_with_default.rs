#[derive(Default, qom::Object)]
#[qom(name = "probe")]
struct Probe {}

impl qom::ObjectImpl for Probe {}

#[derive(Default, qom::Object)]
#[qom(name = "board")]
struct Board {
    #[property(child, default = 3, description = "the sensor")]
    sensor: qom::Child<Probe>,
}

fn main() {}
