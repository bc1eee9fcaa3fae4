use qom::{ObjectRef, Result};

#[derive(Default, qom::Object)]
#[qom(name = "thing", interfaces(qom::UserCreatable))]
struct Thing {}

#[derive(Default)]
struct Other;

impl qom::ObjectImpl for Thing {}

impl qom::UserCreatableImpl for Thing {
    fn complete(obj: &mut ObjectRef<'_, Other>) -> Result<()> {
        let _ = obj;
        Ok(())
    }
}

fn main() {}
