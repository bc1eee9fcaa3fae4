//! The one error type of the object model.
//!
//! Every variant renders the text QEMU prints for the same condition (see
//! `Display`) and knows the QMP error class QEMU reports it with
//! ([`Error::class`]). Library code returns it; binaries may wrap it.
//!
//! An error raised below the object model (a memory backend's host layer,
//! a system call) keeps its typed cause: [`Error::with_cause`] makes an
//! [`Error::Caused`] whose `Display` and class are those of a
//! [`Error::Generic`] with the same text, and whose
//! [`source`](std::error::Error::source) is the cause, for a program to
//! downcast (a VMM can tell "MAP_SYNC not supported by this file" from
//! ENOSPC after `object_add`).
//!
//! `Error` stays `Clone + Eq`: the cause is shared behind an [`Arc`] (see
//! [`Cause`]), and two causes compare equal when their texts are equal.
//! Errors compare by what they report, text and class, as a QMP client
//! sees them; the typed cause is extra information for programs, not part
//! of the identity. (`Eq` is used across the workspace: `LinkedError`
//! derives it, and tests compare errors with `assert_eq!`.)

use std::fmt;
use std::sync::Arc;

/// The QMP error classes (`QapiErrorClass` in QEMU's schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Almost every error.
    GenericError,
    /// An unknown command, or a command refused by the handshake state.
    CommandNotFound,
    /// A device exists but is not active.
    DeviceNotActive,
    /// A path, link target or class was not found.
    DeviceNotFound,
    /// KVM lacks a capability.
    KVMMissingCap,
}

impl ErrorClass {
    /// The class name exactly as it appears in a QMP error reply.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotActive => "DeviceNotActive",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
            ErrorClass::KVMMissingCap => "KVMMissingCap",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a "locked after complete" refusal is worded.
///
/// QEMU words this refusal differently from property to property; the
/// default is the generic pattern, the others exist so that a backend can
/// reproduce QEMU's text exactly where tools may match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LockStyle {
    /// `cannot change property 'NAME' of TYPE`
    #[default]
    Quoted,
    /// `cannot change property 'NAME' of TYPE.` (QEMU's `pmem`, `readonly`, `rom`)
    QuotedPeriod,
    /// `cannot change property NAME of TYPE ` (QEMU's `size`: no quotes, trailing space)
    Unquoted,
    /// `cannot change property value` (QEMU's `share`, `reserve`)
    Value,
    /// qdev's `Attempt to set property 'NAME' on device 'ID' (type 'TYPE')
    /// after it was realized`: every writable property of a device gets
    /// it unless it declares another lock (see [`Error::SetAfterRealize`]).
    Realized,
    /// The same for a link: `Attempt to set link property 'NAME' on
    /// device ...`.
    RealizedLink,
}

/// The typed cause of an [`Error::Caused`]: any error, shared so that the
/// [`Error`] stays cheap to clone.
///
/// Equality is on the text (`Display`): two causes that read the same are
/// equal, whatever their types. Get the typed value with
/// [`Cause::downcast_ref`] or through `std::error::Error::source`.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    /// Wraps an error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(e))
    }

    /// The cause as a plain error trait object.
    pub fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The cause as a `T`, when it is one.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}

/// Everything that can go wrong in the object model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // ---- registration and classes -------------------------------------
    /// A type name breaks QEMU's naming rules.
    IllegalTypeName(String),
    /// A type with this name is already registered.
    DuplicateType(String),
    /// A type names a parent that is not registered.
    MissingParent {
        /// The type being built.
        type_name: String,
        /// The parent it names.
        parent: String,
    },
    /// A type names an interface that is not registered.
    MissingInterface {
        /// The interface name.
        interface: String,
        /// QEMU names the *parent* type here; so do we.
        type_name: String,
    },
    /// A registration that is inconsistent in another way (the text says how).
    InvalidRegistration(String),
    /// `object_new` of a name that is not registered.
    UnknownType(String),

    // ---- properties -------------------------------------------------------
    /// `Property 'TYPE.NAME' not found`
    PropertyNotFound {
        /// The object's type.
        type_name: String,
        /// The property asked for.
        name: String,
    },
    /// `Property 'TYPE.NAME' is not readable`
    NotReadable {
        /// The object's type.
        type_name: String,
        /// The property.
        name: String,
    },
    /// `Property 'TYPE.NAME' is not writable`
    NotWritable {
        /// The object's type.
        type_name: String,
        /// The property.
        name: String,
    },
    /// `attempt to add duplicate property 'NAME' to object (type 'OWNER')`
    DuplicateProperty {
        /// The property name.
        name: String,
        /// The type of the object (or class) that already has it.
        owner_type: String,
    },
    /// A property that may not change once the object is complete.
    Locked {
        /// The property.
        name: String,
        /// The object's type.
        type_name: String,
        /// How QEMU words it for this property.
        style: LockStyle,
    },
    /// qdev's refusal to change a property of a realized device:
    /// `Attempt to set [link ]property 'NAME' on device 'ID' (type 'TYPE')
    /// after it was realized`, or `on anonymous device (type 'TYPE')` for
    /// a device without id (a link says `on device '(null)'` there, as
    /// QEMU prints it).
    SetAfterRealize {
        /// The property.
        name: String,
        /// The device's id, if it has one.
        device_id: Option<String>,
        /// The device's type.
        type_name: String,
        /// Whether the property is a link.
        link: bool,
    },
    /// `Property NAME on TYPE is not 'ENUM' enum type`
    NotEnumType {
        /// The property.
        name: String,
        /// The object's type.
        type_name: String,
        /// The enum type asked for.
        enum_name: String,
    },

    // ---- values -----------------------------------------------------------
    /// `Invalid parameter type for 'NAME', expected: EXPECTED`
    InvalidParameterType {
        /// The parameter (dotted for nested members).
        name: String,
        /// A JSON type name such as `boolean`, or a QOM type for links.
        expected: String,
    },
    /// `Parameter 'NAME' expects WHAT` (for example `uint64`, `size`, `'on' or 'off'`).
    ParameterExpects {
        /// The parameter.
        name: String,
        /// What it expects.
        what: String,
    },
    /// `Parameter 'NAME' does not accept value 'VALUE'`
    ValueNotAccepted {
        /// The parameter.
        name: String,
        /// The refused value.
        value: String,
    },
    /// `property 'NAME' of TYPE doesn't take value 'VALUE'`
    PropertyValueRefused {
        /// The property.
        name: String,
        /// The object's type.
        type_name: String,
        /// The refused value.
        value: String,
    },
    /// `Value 'VALUE' is out of range for parameter 'NAME'`
    ValueOutOfRange {
        /// The parameter.
        name: String,
        /// The refused value as written.
        value: String,
    },
    /// `Parameter 'NAME' is missing`
    MissingParameter(String),
    /// `Parameter 'NAME' is unexpected`
    UnexpectedParameter(String),
    /// `Invalid parameter 'NAME'` (keyval: a malformed key)
    InvalidParameter(String),
    /// `Parameters 'NAME.*' are unexpected` (keyval: members given where a
    /// scalar is expected, as in `size.x=1`)
    UnexpectedMembers(String),

    // ---- keyval syntax ----------------------------------------------------
    /// `Parameters 'PREFIX' used inconsistently` (the prefix ends in `.*` or `*`)
    InconsistentParameters(String),
    /// `Parameter 'KEY' is too long`
    ParameterTooLong(String),
    /// `Parameter fragment 'FRAGMENT' is too long`
    FragmentTooLong(String),
    /// `Expected '=' after parameter 'KEY'`
    ExpectedEquals(String),
    /// `Parameter 'KEYINDEX' missing` (a gap in a keyval list)
    ListElementMissing(String),
    /// `Help is not available for this option`
    HelpNotAvailable,
    /// A JSON `-object` argument that is not valid JSON (the text says why).
    JsonSyntax(String),

    // ---- the tree and user-creatable objects ------------------------------
    /// `Parameter 'id' expects an identifier`, with a hint on the command line.
    InvalidId,
    /// `Duplicate ID 'ID' for object`: a second system-emulator `-object`
    /// with an id already used on the command line.
    DuplicateOptsId(String),
    /// `invalid object type: TYPE`
    InvalidObjectType(String),
    /// `object type 'TYPE' isn't supported by object-add`
    NotUserCreatable(String),
    /// `object type 'TYPE' is abstract`
    AbstractType(String),
    /// `object 'ID' not found`
    ObjectNotFound(String),
    /// `object 'ID' is in use, can not be deleted`
    ObjectInUse(String),
    /// `Device 'PATH' not found` (class DeviceNotFound)
    DeviceNotFound(String),
    /// `Path 'PATH' is ambiguous`
    PathAmbiguous(String),
    /// `Path 'PATH' does not uniquely identify an object`
    PathNotUnique(String),
    /// `Class 'TYPE' not found` (class DeviceNotFound)
    ClassNotFound(String),
    /// `Parameter 'typename' expects a QOM type`
    NotAQomType,

    // ---- everything else --------------------------------------------------
    /// A command that does not exist, or that the QMP state refuses (class CommandNotFound).
    CommandNotFound(String),
    /// A free-form GenericError, for conditions specific to a type (for
    /// example a memory backend that cannot map its file).
    Generic(String),
    /// A GenericError that keeps the typed error it comes from (made with
    /// [`Error::with_cause`] or [`Error::caused_by`]): `Display` is
    /// `message`, the class is GenericError, and
    /// `std::error::Error::source` returns `cause`.
    Caused {
        /// QEMU's text for the condition.
        message: String,
        /// The typed error below the object model.
        cause: Cause,
    },
}

impl Error {
    /// The QMP error class QEMU reports this condition with.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::DeviceNotFound(_) | Error::ClassNotFound(_) => ErrorClass::DeviceNotFound,
            Error::CommandNotFound(_) => ErrorClass::CommandNotFound,
            _ => ErrorClass::GenericError,
        }
    }

    /// A second line QEMU prints on the command line (never in QMP).
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::InvalidId => Some(
                "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.",
            ),
            _ => None,
        }
    }

    /// A free-form GenericError.
    pub fn generic(message: impl Into<String>) -> Self {
        Error::Generic(message.into())
    }

    /// A GenericError whose text is `cause`'s and whose
    /// [`source`](std::error::Error::source) is `cause`.
    pub fn with_cause(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Caused {
            message: cause.to_string(),
            cause: Cause::new(cause),
        }
    }

    /// A GenericError with its own text (QEMU's wording, often `what:
    /// strerror`) whose [`source`](std::error::Error::source) is `cause`.
    pub fn caused_by(
        message: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Caused {
            message: message.into(),
            cause: Cause::new(cause),
        }
    }

    /// The typed cause, for an [`Error::Caused`].
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Error::Caused { cause, .. } => Some(cause),
            _ => None,
        }
    }

    /// The same error with `name` as the parameter name, where the error
    /// carries one. Used to rename a value error raised for a nested or
    /// forwarded member.
    pub fn with_parameter_name(self, new: &str) -> Self {
        let n = new.to_owned();
        match self {
            Error::InvalidParameterType { expected, .. } => {
                Error::InvalidParameterType { name: n, expected }
            }
            Error::ParameterExpects { what, .. } => Error::ParameterExpects { name: n, what },
            Error::ValueNotAccepted { value, .. } => Error::ValueNotAccepted { name: n, value },
            Error::ValueOutOfRange { value, .. } => Error::ValueOutOfRange { name: n, value },
            Error::UnexpectedMembers(_) => Error::UnexpectedMembers(n),
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::IllegalTypeName(n) => write!(f, "Registering '{n}' with illegal type name"),
            Error::DuplicateType(n) => write!(f, "Registering `{n}' which already exists"),
            Error::MissingParent { type_name, parent } => {
                write!(f, "Type '{type_name}' is missing its parent '{parent}'")
            }
            Error::MissingInterface {
                interface,
                type_name,
            } => {
                write!(
                    f,
                    "missing interface '{interface}' for object '{type_name}'"
                )
            }
            Error::InvalidRegistration(m) => f.write_str(m),
            Error::UnknownType(n) => write!(f, "unknown type '{n}'"),
            Error::PropertyNotFound { type_name, name } => {
                write!(f, "Property '{type_name}.{name}' not found")
            }
            Error::NotReadable { type_name, name } => {
                write!(f, "Property '{type_name}.{name}' is not readable")
            }
            Error::NotWritable { type_name, name } => {
                write!(f, "Property '{type_name}.{name}' is not writable")
            }
            Error::DuplicateProperty { name, owner_type } => {
                write!(
                    f,
                    "attempt to add duplicate property '{name}' to object (type '{owner_type}')"
                )
            }
            Error::Locked {
                name,
                type_name,
                style,
            } => match style {
                LockStyle::Quoted => write!(f, "cannot change property '{name}' of {type_name}"),
                LockStyle::QuotedPeriod => {
                    write!(f, "cannot change property '{name}' of {type_name}.")
                }
                LockStyle::Unquoted => write!(f, "cannot change property {name} of {type_name} "),
                LockStyle::Value => f.write_str("cannot change property value"),
                LockStyle::Realized | LockStyle::RealizedLink => {
                    write!(f, "cannot change property '{name}' of realized {type_name}")
                }
            },
            Error::SetAfterRealize {
                name,
                device_id,
                type_name,
                link,
            } => match (link, device_id) {
                (false, Some(id)) => write!(
                    f,
                    "Attempt to set property '{name}' on device '{id}' (type '{type_name}') after it was realized"
                ),
                (false, None) => write!(
                    f,
                    "Attempt to set property '{name}' on anonymous device (type '{type_name}') after it was realized"
                ),
                (true, id) => write!(
                    f,
                    "Attempt to set link property '{name}' on device '{}' (type '{type_name}') after it was realized",
                    id.as_deref().unwrap_or("(null)")
                ),
            },
            Error::NotEnumType {
                name,
                type_name,
                enum_name,
            } => {
                write!(
                    f,
                    "Property {name} on {type_name} is not '{enum_name}' enum type"
                )
            }
            Error::InvalidParameterType { name, expected } => {
                write!(
                    f,
                    "Invalid parameter type for '{name}', expected: {expected}"
                )
            }
            Error::ParameterExpects { name, what } => {
                write!(f, "Parameter '{name}' expects {what}")
            }
            Error::ValueNotAccepted { name, value } => {
                write!(f, "Parameter '{name}' does not accept value '{value}'")
            }
            Error::PropertyValueRefused {
                name,
                type_name,
                value,
            } => {
                write!(
                    f,
                    "property '{name}' of {type_name} doesn't take value '{value}'"
                )
            }
            Error::ValueOutOfRange { name, value } => {
                write!(f, "Value '{value}' is out of range for parameter '{name}'")
            }
            Error::MissingParameter(n) => write!(f, "Parameter '{n}' is missing"),
            Error::UnexpectedParameter(n) => write!(f, "Parameter '{n}' is unexpected"),
            Error::InvalidParameter(n) => write!(f, "Invalid parameter '{n}'"),
            Error::UnexpectedMembers(n) => write!(f, "Parameters '{n}.*' are unexpected"),
            Error::InconsistentParameters(p) => write!(f, "Parameters '{p}' used inconsistently"),
            Error::ParameterTooLong(k) => write!(f, "Parameter '{k}' is too long"),
            Error::FragmentTooLong(k) => write!(f, "Parameter fragment '{k}' is too long"),
            Error::ExpectedEquals(k) => write!(f, "Expected '=' after parameter '{k}'"),
            Error::ListElementMissing(k) => write!(f, "Parameter '{k}' missing"),
            Error::HelpNotAvailable => f.write_str("Help is not available for this option"),
            Error::JsonSyntax(m) => f.write_str(m),
            Error::InvalidId => f.write_str("Parameter 'id' expects an identifier"),
            Error::DuplicateOptsId(id) => write!(f, "Duplicate ID '{id}' for object"),
            Error::InvalidObjectType(t) => write!(f, "invalid object type: {t}"),
            Error::NotUserCreatable(t) => {
                write!(f, "object type '{t}' isn't supported by object-add")
            }
            Error::AbstractType(t) => write!(f, "object type '{t}' is abstract"),
            Error::ObjectNotFound(id) => write!(f, "object '{id}' not found"),
            Error::ObjectInUse(id) => write!(f, "object '{id}' is in use, can not be deleted"),
            Error::DeviceNotFound(p) => write!(f, "Device '{p}' not found"),
            Error::PathAmbiguous(p) => write!(f, "Path '{p}' is ambiguous"),
            Error::PathNotUnique(p) => write!(f, "Path '{p}' does not uniquely identify an object"),
            Error::ClassNotFound(t) => write!(f, "Class '{t}' not found"),
            Error::NotAQomType => f.write_str("Parameter 'typename' expects a QOM type"),
            Error::CommandNotFound(m) => f.write_str(m),
            Error::Generic(m) => f.write_str(m),
            Error::Caused { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Caused { cause, .. } => Some(cause.as_error()),
            _ => None,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[derive(Debug, PartialEq)]
    struct Low(i32);
    impl fmt::Display for Low {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "low level failure {}", self.0)
        }
    }
    impl std::error::Error for Low {}

    #[test]
    fn a_caused_error_reads_as_generic_and_keeps_its_source() {
        let e = Error::with_cause(Low(28));
        assert_eq!(e.to_string(), "low level failure 28");
        assert_eq!(e.class(), ErrorClass::GenericError);
        assert_eq!(e.hint(), None);
        assert_eq!(e.source().unwrap().downcast_ref::<Low>(), Some(&Low(28)));
        assert_eq!(e.cause().unwrap().downcast_ref::<Low>(), Some(&Low(28)));
        let e = Error::caused_by("what: why", Low(5));
        assert_eq!(e.to_string(), "what: why");
        assert_eq!(e.source().unwrap().to_string(), "low level failure 5");
        assert!(Error::generic("what: why").source().is_none());
    }

    #[test]
    fn caused_errors_compare_by_text() {
        let e = Error::with_cause(Low(1));
        assert_eq!(e.clone(), e);
        assert_eq!(Error::with_cause(Low(1)), Error::with_cause(Low(1)));
        assert_ne!(Error::with_cause(Low(1)), Error::with_cause(Low(2)));
        assert_ne!(
            Error::caused_by("same", Low(1)),
            Error::caused_by("same", Low(2))
        );
        // A Generic with the same text is another variant: not equal.
        assert_ne!(
            Error::with_cause(Low(1)),
            Error::generic("low level failure 1")
        );
        // The renaming of parameters leaves a caused error as it is.
        assert_eq!(
            Error::with_cause(Low(3)).with_parameter_name("x"),
            Error::with_cause(Low(3))
        );
    }
}
