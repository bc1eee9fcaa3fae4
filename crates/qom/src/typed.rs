//! Declaring a type from a Rust struct: [`ObjectType`].

use crate::class::ClassBuilder;
use crate::error::Result;
use crate::object::Object;
use crate::registry::TypeRegistry;
use crate::type_info::TypeInfo;
use std::any::Any;

/// A type whose level state is the implementing struct: name, parent,
/// interfaces and properties declared in one place.
///
/// ```
/// use qom::{ClassBuilder, ObjectTree, ObjectType, TypeRegistry, UserCreatableClass};
///
/// #[derive(Default)]
/// struct Rng { filename: String, seed: u64 }
///
/// impl ObjectType for Rng {
///     const NAME: &'static str = "rng-demo";
///     const PARENT: &'static str = "object";
///     const INTERFACES: &'static [&'static str] = &["user-creatable"];
///     fn class_init(class: &mut ClassBuilder<'_>) -> qom::Result<()> {
///         class.field("filename", |s: &mut Rng| &mut s.filename).locked();
///         class.field("seed", |s: &mut Rng| &mut s.seed).default(42);
///         Ok(())
///     }
/// }
///
/// let types = TypeRegistry::with_builtins();
/// types.register_type::<Rng>().unwrap();
/// let tree = ObjectTree::new(types).unwrap();
/// tree.object_add_args(serde_json::json!({"qom-type": "rng-demo", "id": "rng0", "filename": "/dev/urandom"})
///     .as_object().unwrap()).unwrap();
/// assert_eq!(tree.qom_get("/objects/rng0", "seed").unwrap(), 42);
/// let err = tree.qom_set("rng0", "filename", &"/dev/random".into()).unwrap_err();
/// assert_eq!(err.to_string(), "cannot change property 'filename' of rng-demo");
/// ```
pub trait ObjectType: Any + Send + Default {
    /// The type name.
    const NAME: &'static str;
    /// The parent type's name.
    const PARENT: &'static str;
    /// Whether the type is abstract.
    const ABSTRACT: bool = false;
    /// The interfaces the type implements.
    const INTERFACES: &'static [&'static str] = &[];

    /// Declares properties and overrides class data.
    fn class_init(_class: &mut ClassBuilder<'_>) -> Result<()> {
        Ok(())
    }

    /// Runs for each new instance after the defaults are applied.
    fn instance_init(_obj: &Object) {}

    /// The registration this type stands for.
    fn type_info() -> TypeInfo {
        let mut info = TypeInfo::new(Self::NAME)
            .parent(Self::PARENT)
            .abstract_type(Self::ABSTRACT)
            .state::<Self>()
            .class_init(Self::class_init)
            .instance_init(Self::instance_init);
        for i in Self::INTERFACES {
            info = info.interface_impl(*i);
        }
        info
    }
}

impl TypeRegistry {
    /// Registers an [`ObjectType`].
    pub fn register_type<T: ObjectType>(&self) -> Result<()> {
        self.register(T::type_info())
    }
}
