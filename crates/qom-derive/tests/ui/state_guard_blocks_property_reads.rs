use qom::{ObjectRef, Result};

#[derive(Default, qom::Object)]
#[qom(name = "thing", interfaces(qom::UserCreatable))]
struct Thing {
    #[property]
    size: u64,
}

impl qom::ObjectImpl for Thing {}

impl qom::UserCreatableImpl for Thing {
    fn complete(obj: &mut ObjectRef<'_, Self>) -> Result<()> {
        let mut state = obj.state();
        // Would wait forever for `state`: refused at compile time.
        let size = obj.get("size")?;
        state.size = size.as_u64().unwrap_or(0);
        Ok(())
    }
}

fn main() {}
