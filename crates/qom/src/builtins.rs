//! QEMU's built-in types: `object`, `interface`, `container` and the
//! `user-creatable` interface.

use crate::error::Result;
use crate::object::Object;
use crate::registry::TypeRegistry;
use crate::type_info::TypeInfo;
use serde_json::Value;
use std::sync::Arc;

/// The root of all object types.
pub const TYPE_OBJECT: &str = "object";
/// The root of all interfaces.
pub const TYPE_INTERFACE: &str = "interface";
/// A plain node of the tree (`/objects`, `/chardevs`...).
pub const TYPE_CONTAINER: &str = "container";
/// The interface of types that `-object` and `object-add` may create.
pub const TYPE_USER_CREATABLE: &str = "user-creatable";

/// The `complete` hook: the second construction stage.
pub type CompleteFn = Arc<dyn Fn(&Object) -> Result<()> + Send + Sync>;
/// The `can_be_deleted` hook.
pub type CanBeDeletedFn = Arc<dyn Fn(&Object) -> bool + Send + Sync>;

/// The class data of the `user-creatable` interface.
///
/// A type implementing the interface overrides the hooks in its
/// `class_init` with `class.data_mut::<UserCreatableClass>()`.
#[derive(Clone, Default)]
pub struct UserCreatableClass {
    /// Runs after all properties are set; a failure undoes the creation.
    pub complete: Option<CompleteFn>,
    /// Whether the object may be deleted now (absent: yes).
    pub can_be_deleted: Option<CanBeDeletedFn>,
}

pub(crate) fn register(types: &TypeRegistry) -> Result<()> {
    types.register(
        TypeInfo::new(TYPE_OBJECT)
            .abstract_type(true)
            .class_init(|c| {
                c.raw_property("type", "string")
                    .getter(|obj| Ok(Value::String(obj.type_name().to_owned())))
                    .schema(serde_json::json!({"type": "string", "readOnly": true}));
                Ok(())
            }),
    )?;
    types.register(TypeInfo::new(TYPE_INTERFACE).abstract_type(true))?;
    types.register(TypeInfo::new(TYPE_CONTAINER).parent(TYPE_OBJECT))?;
    types.register(TypeInfo::interface(TYPE_USER_CREATABLE).class_init(|c| {
        c.data_mut::<UserCreatableClass>();
        Ok(())
    }))?;
    Ok(())
}
