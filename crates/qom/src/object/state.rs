//! Each hierarchy level's typed Rust state inside an object.

use super::Object;
use crate::class::Class;
use crate::sync;
use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};

/// One level's typed state inside an object.
pub(super) struct StateSlot {
    type_id: TypeId,
    level: usize,
    cell: Mutex<Box<dyn Any + Send>>,
}

/// A fresh state for every level of `class` that declares one, root first.
pub(super) fn new_slots(class: &Class) -> Box<[StateSlot]> {
    class
        .levels
        .iter()
        .enumerate()
        .filter_map(|(level, l)| {
            l.state.as_ref().map(|d| StateSlot {
                type_id: d.type_id,
                level,
                cell: Mutex::new((d.factory)()),
            })
        })
        .collect()
}

/// Runs the finalize hooks leaf to root, each on its own level's state,
/// then drops the states leaf first as well (links they hold go with them).
pub(super) fn finalize(class: &Class, slots: &mut Box<[StateSlot]>) {
    for slot in slots.iter_mut().rev() {
        if let Some(fin) = &class.levels[slot.level].finalize {
            let state = sync::recover(slot.cell.get_mut());
            fin(state.as_mut());
        }
    }
    let slots = std::mem::take(slots).into_vec();
    for slot in slots.into_iter().rev() {
        drop(slot);
    }
}

/// Exclusive access to one level's typed state; see [`Object::state`].
pub struct StateGuard<'a, S> {
    guard: MutexGuard<'a, Box<dyn Any + Send>>,
    _s: PhantomData<S>,
}

impl<S: Any> Deref for StateGuard<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        self.guard.downcast_ref().expect("slot chosen by TypeId")
    }
}

impl<S: Any> DerefMut for StateGuard<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        self.guard.downcast_mut().expect("slot chosen by TypeId")
    }
}

impl Object {
    /// Exclusive access to the typed state of the level that declared `S`.
    ///
    /// # Panics
    /// When no level of this object's type declared state `S`: a
    /// programming error in a type's own code, never a user input. Use
    /// [`try_state`](Self::try_state) where the type is not known.
    pub fn state<S: Any>(&self) -> StateGuard<'_, S> {
        self.try_state::<S>().unwrap_or_else(|| {
            panic!(
                "type '{}' has no state {}",
                self.type_name(),
                std::any::type_name::<S>()
            )
        })
    }

    /// Exclusive access to the typed state `S`, if a level declared it.
    ///
    /// Each level's state has its own lock: a setter may hold its own level
    /// and read an ancestor's, but must not ask for the level it holds.
    pub fn try_state<S: Any>(&self) -> Option<StateGuard<'_, S>> {
        let id = TypeId::of::<S>();
        let slot = self.0.states.iter().find(|s| s.type_id == id)?;
        Some(StateGuard {
            guard: sync::lock(&slot.cell),
            _s: PhantomData,
        })
    }
}
