//! Construction stages and the property lock: `complete` and the writes
//! of locked properties agree on one mutex, so no locked setter overlaps
//! the `complete` hook.

use super::Object;
use crate::builtins::UserCreatableClass;
use crate::error::{Error, LockStyle, Result};
use crate::property::Property;
use crate::sync;
use std::cell::RefCell;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Where an object is in its construction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    /// Created, properties being set.
    New,
    /// `complete` has begun: locked properties refuse changes.
    Completing,
    /// `complete` succeeded.
    Complete,
}

/// What `complete` and locked-property writes must agree on.
struct Progress {
    stage: Stage,
    /// Locked-property setters admitted while the stage was `New` that
    /// have not returned yet; `complete` waits for this to reach zero
    /// before it runs the hook, so no such setter overlaps it.
    locked_writes: usize,
}

/// An object's construction stage and the setters `complete` waits for.
pub(super) struct Lifecycle {
    /// Never held while user code runs (setters, hooks), so no hook can
    /// deadlock on it; see `docs/architecture.md`.
    progress: Mutex<Progress>,
    /// Signalled when `locked_writes` drops to zero during `Completing`.
    drained: Condvar,
}

impl Lifecycle {
    pub(super) fn new() -> Self {
        Lifecycle {
            progress: Mutex::new(Progress {
                stage: Stage::New,
                locked_writes: 0,
            }),
            drained: Condvar::new(),
        }
    }
}

thread_local! {
    /// The objects (by address) whose locked-property setters this thread
    /// is inside of, innermost last. A `complete` of one of them from this
    /// thread would wait for its own caller to return.
    static IN_LOCKED_SETTER: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// A locked-property write in progress: while it lives, `complete` waits.
pub(super) struct LockedWrite<'a> {
    obj: &'a Object,
}

impl Drop for LockedWrite<'_> {
    fn drop(&mut self) {
        let me = self.obj.addr();
        IN_LOCKED_SETTER.with(|v| {
            let mut v = v.borrow_mut();
            if let Some(i) = v.iter().rposition(|&a| a == me) {
                v.remove(i);
            }
        });
        let mut lc = self.obj.progress();
        lc.locked_writes -= 1;
        if lc.locked_writes == 0 && lc.stage == Stage::Completing {
            self.obj.0.lifecycle.drained.notify_all();
        }
    }
}

/// An object in the `Completing` stage (see [`Object::begin_complete`]).
/// [`Completion::finish`] makes it complete; dropping it otherwise (the
/// hook failed, the object could not be placed, a hook panicked) returns
/// it to `New`, so its locked properties open again.
pub(crate) struct Completion<'a> {
    obj: &'a Object,
    done: bool,
}

impl Completion<'_> {
    /// The hook succeeded: the object is complete for good.
    pub(crate) fn finish(mut self) {
        self.obj.progress().stage = Stage::Complete;
        self.done = true;
    }
}

impl Drop for Completion<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.obj.progress().stage = Stage::New;
        }
    }
}

impl Object {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        sync::lock(&self.0.lifecycle.progress)
    }

    /// Applies the lock policy to a write of `p`. Unlocked properties pass
    /// without touching the lifecycle mutex. A locked property is admitted
    /// only while the stage is `New`, and stays registered (so `complete`
    /// waits for it) until the returned guard drops after the setter.
    pub(super) fn admit_write(&self, p: &Property, name: &str) -> Result<Option<LockedWrite<'_>>> {
        let Some(style) = p.lock else {
            return Ok(None);
        };
        {
            let mut lc = self.progress();
            if lc.stage != Stage::New {
                drop(lc);
                return Err(match style {
                    LockStyle::Realized | LockStyle::RealizedLink => Error::SetAfterRealize {
                        name: name.to_owned(),
                        device_id: crate::device::device_id(self),
                        type_name: self.type_name().to_owned(),
                        link: style == LockStyle::RealizedLink,
                    },
                    _ => Error::Locked {
                        name: name.to_owned(),
                        type_name: self.type_name().to_owned(),
                        style,
                    },
                });
            }
            lc.locked_writes += 1;
        }
        IN_LOCKED_SETTER.with(|v| v.borrow_mut().push(self.addr()));
        Ok(Some(LockedWrite { obj: self }))
    }

    /// Whether `complete` has succeeded.
    pub fn is_complete(&self) -> bool {
        self.progress().stage == Stage::Complete
    }

    /// Whether `complete` is running right now (another thread may see an
    /// object in the tree whose creation has not finished yet).
    pub fn is_completing(&self) -> bool {
        self.progress().stage == Stage::Completing
    }

    /// The second construction stage: runs the `user-creatable` `complete`
    /// hook (if the type has one), once.
    ///
    /// From the start of this call locked properties refuse changes; the
    /// hook runs only after every locked-property setter that was admitted
    /// before that has returned, so nothing it reads changes under it. If
    /// the hook fails, locked properties are open again and `complete` may
    /// be called again.
    ///
    /// Errors: the hook's error; an object that is already complete or
    /// being completed; a call from inside a setter of a locked property of
    /// this same object on this thread (it would wait for itself).
    pub fn complete(&self) -> Result<()> {
        let completion = self.begin_complete()?;
        self.run_complete_hook()?;
        completion.finish();
        Ok(())
    }

    /// Moves the object from `New` to `Completing` and waits until the
    /// locked-property setters already admitted have returned. The stage
    /// goes back to `New` when the returned guard drops unfinished.
    pub(crate) fn begin_complete(&self) -> Result<Completion<'_>> {
        let me = self.addr();
        if IN_LOCKED_SETTER.with(|v| v.borrow().contains(&me)) {
            return Err(Error::generic(format!(
                "cannot complete an object of type '{}' from one of its own setters",
                self.type_name()
            )));
        }
        let mut lc = self.progress();
        match lc.stage {
            Stage::New => {}
            Stage::Completing => {
                return Err(Error::generic(format!(
                    "object of type '{}' is being completed",
                    self.type_name()
                )))
            }
            Stage::Complete => {
                return Err(Error::generic(format!(
                    "object of type '{}' is already complete",
                    self.type_name()
                )))
            }
        }
        lc.stage = Stage::Completing;
        while lc.locked_writes > 0 {
            lc = sync::wait(&self.0.lifecycle.drained, lc);
        }
        Ok(Completion {
            obj: self,
            done: false,
        })
    }

    /// Runs the `user-creatable` `complete` hook, if the type has one; the
    /// caller holds a [`Completion`].
    pub(crate) fn run_complete_hook(&self) -> Result<()> {
        match self
            .0
            .class
            .data::<UserCreatableClass>()
            .and_then(|uc| uc.complete.as_ref())
        {
            Some(complete) => complete(self),
            None => Ok(()),
        }
    }

    /// Whether the `user-creatable` `can_be_deleted` hook allows deletion.
    ///
    /// [`ObjectTree::object_del`](crate::ObjectTree::object_del) calls it
    /// right before unparenting, and a hook may make a yes binding: a
    /// memory backend that answers yes refuses every new user from then on
    /// (so that none can slip in before the unparent). Call it only on the
    /// way to deleting such an object.
    pub fn can_be_deleted(&self) -> bool {
        self.0
            .class
            .data::<UserCreatableClass>()
            .and_then(|uc| uc.can_be_deleted.as_ref())
            .is_none_or(|f| f(self))
    }
}
