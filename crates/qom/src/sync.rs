//! Locking without poisoning.
//!
//! Every lock in this crate is taken through these functions, which take
//! the guard from a poisoned lock too. That is sound because of what the
//! locks guard. The framework's tables (properties, parents, lifecycle,
//! types, modules) are changed in a few statements with no user code in
//! between, so a panic cannot leave them half-updated; the registry's
//! build lock, held across `class_init`, guards no data at all. The
//! per-level state locks guard a type's own plain data, which a panicking
//! setter may leave half-written exactly as it would leave a `RefCell`'s
//! contents after a caught panic. Refusing the guard instead would turn
//! one panicking hook into a panic in every later caller: each QMP client
//! thread, object-del, the tree's teardown.

use std::sync::{
    Condvar, LockResult, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

/// The value of a lock operation, poisoned or not.
pub(crate) fn recover<T>(result: LockResult<T>) -> T {
    result.unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks `m`.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    recover(m.lock())
}

/// Takes `l` for reading.
pub(crate) fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    recover(l.read())
}

/// Takes `l` for writing.
pub(crate) fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    recover(l.write())
}

/// Waits on `cv`, giving back the guard.
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    recover(cv.wait(guard))
}
