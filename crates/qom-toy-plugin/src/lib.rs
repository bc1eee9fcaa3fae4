#![forbid(unsafe_code)]
//! An example plugin for qom: a crate outside the core that registers its
//! own user-creatable type, `toy-rng`, through the one public entry point.
//!
//! ```
//! let types = qom::TypeRegistry::with_builtins();
//! types.install(qom_toy_plugin::register).unwrap();
//! let tree = qom::ObjectTree::new(types).unwrap();
//! tree.object_add_str("toy-rng,id=rng0,seed=7").unwrap();
//! assert_eq!(tree.qom_get("rng0", "next").unwrap(), serde_json::json!(7));
//! ```

use qom::{Error, ObjectRef, TypeRegistry};

/// The type name this plugin adds.
pub const TYPE_TOY_RNG: &str = <ToyRng as qom::StaticType>::TYPE_NAME;

/// A deterministic number source: `seed` is fixed at creation, `next`
/// reads the following value of a linear congruential sequence.
#[derive(Default, qom::Object)]
#[qom(
    name = "toy-rng",
    interfaces(qom::UserCreatable),
    property(name = "next", ty = u64, get = ToyRng::next,
             description = "The next value (advances the sequence)")
)]
pub struct ToyRng {
    #[property(locked, description = "First value of the sequence")]
    seed: u64,
    state: u64,
}

impl ToyRng {
    fn next(obj: &mut ObjectRef<'_, Self>) -> qom::Result<u64> {
        let mut s = obj.state();
        let v = s.state;
        s.state = s
            .state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Ok(v)
    }
}

impl qom::ObjectImpl for ToyRng {}

impl qom::UserCreatableImpl for ToyRng {
    fn complete(obj: &mut ObjectRef<'_, Self>) -> qom::Result<()> {
        let mut s = obj.state();
        if s.seed == u64::MAX {
            return Err(Error::PropertyValueRefused {
                name: "seed".into(),
                type_name: TYPE_TOY_RNG.into(),
                value: s.seed.to_string(),
            });
        }
        s.state = s.seed;
        Ok(())
    }
}

/// Registers the plugin's types: pass it to [`TypeRegistry::install`].
pub fn register(types: &TypeRegistry) -> qom::Result<()> {
    types.register_type::<ToyRng>()
}

/// Registers the plugin lazily: the type appears on its first lookup.
pub fn register_lazily(types: &TypeRegistry) {
    types.add_module(TYPE_TOY_RNG, register);
}
