//! Three ways a type from outside the core reaches a registry, from the
//! most static to the most dynamic:
//!
//! 1. a plugin crate the VMM links and installs by name
//!    (`types.install(qom_toy_plugin::register)`), the usual way;
//! 2. a lazy module: registered only when its type name is first looked
//!    up (`types.add_module`), as QEMU loads its modules on demand;
//! 3. a shared library loaded at run time by the `qom` binary
//!    (`qom --plugin lib.so`): `crates/qom-plugin-example` is a complete
//!    one; it must come from the same build as `qom` (see the README).
//!
//! ```sh
//! cargo run -p qom-examples --example plugins
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use qom::{ObjectTree, TypeInfo, TypeRegistry};

/// Builds a registry with a linked plugin and a lazy module, and reports
/// how often the module's registration ran.
fn registry() -> qom::Result<(TypeRegistry, Arc<AtomicUsize>)> {
    let types = TypeRegistry::with_builtins();

    // 1. A plugin crate: a function (or any `qom::Plugin`) that registers
    //    its types.
    types.install(qom_toy_plugin::register)?;

    // 2. A lazy module: nothing is registered until "lazy-thing" is asked
    //    for; then the closure runs once.
    let loads = Arc::new(AtomicUsize::new(0));
    let counter = loads.clone();
    types.add_module("lazy-thing", move |types| {
        counter.fetch_add(1, Ordering::SeqCst);
        types.register(
            TypeInfo::new("lazy-thing")
                .parent(qom::TYPE_OBJECT)
                .interface_impl(qom::TYPE_USER_CREATABLE),
        )
    });
    Ok((types, loads))
}

fn run() -> qom::Result<()> {
    let (types, loads) = registry()?;
    println!(
        "before any lookup, lazy-thing loaded {} times",
        loads.load(Ordering::SeqCst)
    );
    let tree = ObjectTree::new(types)?;
    tree.object_add_str("toy-rng,id=rng0,seed=42")?;
    tree.object_add_str("lazy-thing,id=lazy0")?;
    println!("rng0.next = {}", tree.qom_get("rng0", "next")?);
    println!(
        "after creating lazy0, lazy-thing loaded {} times",
        loads.load(Ordering::SeqCst)
    );
    println!(
        "3. at run time: cargo build -p qom-plugin-example -p qom-cli && \
         target/debug/qom --plugin target/debug/libqom_plugin_example.so \
         -object example-greeter,id=g0,greeting=Hi,repeat=2"
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("plugins: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn linked_and_lazy_types_are_created_by_name() {
        let (types, loads) = registry().unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 0);
        let tree = ObjectTree::new(types).unwrap();
        tree.object_add_str("toy-rng,id=r,seed=7").unwrap();
        assert_eq!(tree.qom_get("r", "next").unwrap(), json!(7));
        tree.object_add_str("lazy-thing,id=a").unwrap();
        tree.object_add_str("lazy-thing,id=b").unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 1, "the module loads once");
        assert_eq!(
            tree.object_add_str("no-such-thing,id=c")
                .unwrap_err()
                .to_string(),
            "Parameter 'qom-type' does not accept value 'no-such-thing'"
        );
    }
}
