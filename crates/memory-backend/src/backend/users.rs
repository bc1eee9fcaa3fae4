//! Who uses a backend's memory, and the one atomic that decides it.
//!
//! A backend's users and its deletion are serialised by a single
//! `AtomicUsize`: the low bits count the live [`MappedMemory`] handles, the
//! top bit ([`DELETING`]) says `object-del` has accepted the backend. Every
//! decision is one read-modify-write on that word, so no check can be
//! overtaken between looking and acting:
//!
//! - `map` adds a user unless `DELETING` is set;
//! - `map_exclusive` moves 0 to 1 and nothing else (busy otherwise);
//! - `can_be_deleted` moves 0 to `DELETING` (or finds it set already: a
//!   second `object-del` of the same backend then loses the unparent race
//!   and says "not found", not "in use");
//! - dropping a handle subtracts one (it can only exist while the count is
//!   at least one, so it never touches `DELETING`).
//!
//! `DELETING` is never cleared: `ObjectTree::object_del` unparents the
//! object right after the hook said yes, and that unparent cannot fail
//! except by finding the object already unparented, which means it is
//! being deleted anyway. So once set the backend gets no new user, and
//! its memory can be dropped (discard-data) with nobody mapping it.
//!
//! [`MappedMemory`]: super::MappedMemory

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The top bit: the backend is being deleted and takes no new user.
const DELETING: usize = 1 << (usize::BITS - 1);

/// The user count and deletion mark of one backend.
#[derive(Debug, Default)]
pub(super) struct Users(AtomicUsize);

/// Why a claim was refused, before the caller names the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// Someone uses it and the claim wanted to be the only user.
    Busy,
    /// `object-del` has accepted it.
    Deleting,
}

impl Users {
    /// Adds a user: any number may share (`exclusive == false`), or only
    /// the first (`exclusive == true`). One atomic step either way.
    pub(super) fn claim(&self, exclusive: bool) -> Result<(), Refused> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                if n & DELETING != 0 || (exclusive && n != 0) {
                    None
                } else {
                    Some(n + 1)
                }
            })
            .map(drop)
            .map_err(|n| {
                if n & DELETING != 0 {
                    Refused::Deleting
                } else {
                    Refused::Busy
                }
            })
    }

    /// Removes a user added by [`Users::claim`].
    pub(super) fn release(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether some user holds the memory now.
    pub(super) fn in_use(&self) -> bool {
        self.0.load(Ordering::Acquire) & !DELETING != 0
    }

    /// `object-del`'s question and answer in one step: true when nobody
    /// uses the backend, and then nobody ever will again.
    pub(super) fn begin_delete(&self) -> bool {
        match self
            .0
            .compare_exchange(0, DELETING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(n) => n == DELETING,
        }
    }
}

/// Why [`map`](super::map) or [`map_exclusive`](super::map_exclusive)
/// refused a backend. `Display` gives the message; converted into
/// [`qom::Error`] it keeps the text and stays reachable as its `source()`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapError {
    /// The object is not a memory backend.
    NotBackend {
        /// Its type.
        type_name: String,
    },
    /// The backend's creation has not finished: it has no memory yet.
    NoMemory {
        /// The backend's id.
        id: String,
    },
    /// [`map_exclusive`](super::map_exclusive) found another user (QEMU's
    /// wording when a memdev is given to a second device or node).
    Busy {
        /// The backend's id.
        id: String,
    },
    /// `object-del` has accepted the backend: it takes no new user.
    Deleting {
        /// The backend's id.
        id: String,
    },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::NotBackend { type_name } => {
                write!(f, "object type '{type_name}' is not a memory backend")
            }
            MapError::NoMemory { id } => write!(f, "memory backend '{id}' has no memory yet"),
            MapError::Busy { id } => write!(f, "can't use already busy memdev: {id}"),
            MapError::Deleting { id } => write!(f, "memory backend '{id}' is being deleted"),
        }
    }
}

impl std::error::Error for MapError {}

impl From<MapError> for qom::Error {
    fn from(e: MapError) -> qom::Error {
        qom::Error::with_cause(e)
    }
}
