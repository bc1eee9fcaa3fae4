#![forbid(unsafe_code)]
//! An example plugin for the `qom` command, loaded at run time:
//!
//! ```text
//! cargo build -p qom-plugin-example
//! qom --plugin target/debug/libqom_plugin_example.so -object example-greeter,id=g0,greeting=Hi,repeat=2
//! ```
//!
//! It adds one user-creatable type without a device, `example-greeter`,
//! through the entry point [`qom::plugin_entry!`] exports. The crate keeps
//! `#![forbid(unsafe_code)]`: the exported functions come from qom's macro.
//! Linked into a program as an ordinary crate, it registers through
//! [`qom::register_linked!`] instead.
//!
//! ```
//! let types = qom::TypeRegistry::with_builtins();
//! types.install(qom_plugin_example::register).unwrap();
//! let tree = qom::ObjectTree::new(types).unwrap();
//! tree.object_add_str("example-greeter,id=g0,greeting=Hi,repeat=2").unwrap();
//! assert_eq!(tree.qom_get("g0", "text").unwrap(), serde_json::json!("Hi Hi"));
//! ```

use qom::{Error, ObjectImpl, ObjectRef, TypeRegistry, UserCreatableImpl};

/// The type this plugin adds.
pub const TYPE_EXAMPLE_GREETER: &str = "example-greeter";

/// The state of an `example-greeter`.
#[derive(Default, qom::Object)]
#[qom(
    name = "example-greeter",
    interfaces(qom::UserCreatable),
    property(name = "text", ty = String, get = Greeter::text, description = "The greeting, repeated")
)]
struct Greeter {
    #[property(default = "Hello".to_owned(), description = "The word to say")]
    greeting: String,
    #[property(
        locked,
        default = 1,
        description = "How many times to say it (at least 1)"
    )]
    repeat: u64,
}

impl Greeter {
    fn text(obj: &mut ObjectRef<'_, Self>) -> qom::Result<String> {
        let s = obj.state();
        Ok(vec![s.greeting.as_str(); s.repeat as usize].join(" "))
    }
}

impl ObjectImpl for Greeter {}

impl UserCreatableImpl for Greeter {
    // Class data is found by TypeId: that this hook runs in a host proves
    // the plugin's copy of qom agrees with the host's.
    fn complete(obj: &mut ObjectRef<'_, Self>) -> qom::Result<()> {
        if obj.state().repeat == 0 {
            return Err(Error::generic("example-greeter: repeat must be at least 1"));
        }
        Ok(())
    }
}

/// Registers `example-greeter`; the plugin's entry point calls it.
pub fn register(types: &TypeRegistry) -> qom::Result<()> {
    types.register_type::<Greeter>()
}

qom::plugin_entry!(register);

// The same crate linked into a program (as an rlib) registers by being
// linked instead: one crate serves both ways.
qom::register_linked!(register);

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn repeat_zero_is_refused_by_complete() {
        let types = qom::TypeRegistry::with_builtins();
        super::register(&types).unwrap();
        let tree = qom::ObjectTree::new(types).unwrap();
        let err = tree
            .object_add_str("example-greeter,id=g0,repeat=0")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "example-greeter: repeat must be at least 1"
        );
        assert!(tree.object("g0").is_none());
        tree.object_add_str("example-greeter,id=g0").unwrap();
        assert_eq!(tree.qom_get("g0", "text").unwrap(), json!("Hello"));
    }

    #[test]
    fn linked_into_a_program_it_registers_by_being_linked() {
        let types = qom::TypeRegistry::with_linked_types().unwrap();
        assert!(types.contains(super::TYPE_EXAMPLE_GREETER));
    }

    #[test]
    fn the_entry_point_registers_and_reports_the_stamp() {
        let types = qom::TypeRegistry::with_builtins();
        super::qom_plugin_register(&types).unwrap();
        assert!(types.contains(super::TYPE_EXAMPLE_GREETER));
        assert!(!super::qom_plugin_build_stamp().is_null());
        // A second registration into the same registry is an error, not a panic.
        assert!(super::qom_plugin_register(&types).is_err());
    }
}
