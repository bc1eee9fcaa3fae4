#[derive(Default, qom::Object)]
#[qom(name = "thing")]
struct Thing {
    #[property(link = "thing", get = Thing::peer)]
    peer: qom::Link,
}

fn main() {}
