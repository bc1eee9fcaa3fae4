use qom::{ClassBuilder, ObjectRef, Result};

/// A parent with a virtual method its concrete subclasses must implement.
#[derive(Default, qom::Object)]
#[qom(name = "backend", abstract, manual_subclass_init)]
struct Backend {}

trait BackendImpl: qom::ObjectImpl {
    fn alloc(obj: &mut ObjectRef<'_, Self>) -> Result<u64>;
}

impl<T: BackendImpl> qom::SubclassInit<T> for Backend {
    fn subclass_init(_class: &mut ClassBuilder<'_>) -> Result<()> {
        Ok(())
    }
}

impl qom::ObjectImpl for Backend {}

#[derive(Default, qom::Object)]
#[qom(name = "lazy-backend", parent = Backend)]
struct LazyBackend {}

impl qom::ObjectImpl for LazyBackend {}

fn main() {}
