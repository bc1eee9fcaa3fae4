use qom::ObjectRef;

#[derive(Default, qom::Object)]
#[qom(name = "thing")]
struct Thing {}

#[derive(Default, qom::Object)]
#[qom(name = "stranger")]
struct Stranger {
    secret: u64,
}

impl qom::ObjectImpl for Thing {
    fn instance_init(obj: &mut ObjectRef<'_, Self>) {
        let _ = obj.ancestor::<Stranger, _>().secret;
    }
}
impl qom::ObjectImpl for Stranger {}

fn main() {}
