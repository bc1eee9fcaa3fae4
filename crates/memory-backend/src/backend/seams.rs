//! Test seams: each lets a test run code of its own, on the calling
//! thread, inside one of the windows the claim protocol of `users` closes,
//! so that a race can be forced instead of hoped for. Not part of the API.
//!
//! A hook is taken out of its slot while it runs, so a claim or delete it
//! makes itself does not run it again.

use std::cell::RefCell;

use qom::Object;

/// A hook: gets the backend concerned.
pub type Hook = Box<dyn FnMut(&Object)>;

thread_local! {
    static BEFORE_CLAIM: RefCell<Option<Hook>> = const { RefCell::new(None) };
    static DELETE_ACCEPTED: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Sets (or clears) this thread's hook run by `map` and `map_exclusive`
/// after they found the backend's memory and before they claim it.
pub fn set_before_claim(hook: Option<Hook>) {
    BEFORE_CLAIM.with(|h| *h.borrow_mut() = hook);
}

/// Sets (or clears) this thread's hook run by the backend's
/// `can_be_deleted` after it agreed to the deletion (so before
/// `object_del` unparents the object).
pub fn set_delete_accepted(hook: Option<Hook>) {
    DELETE_ACCEPTED.with(|h| *h.borrow_mut() = hook);
}

pub(super) fn before_claim(obj: &Object) {
    run(&BEFORE_CLAIM, obj);
}

pub(super) fn delete_accepted(obj: &Object) {
    run(&DELETE_ACCEPTED, obj);
}

fn run(slot: &'static std::thread::LocalKey<RefCell<Option<Hook>>>, obj: &Object) {
    let Some(mut hook) = slot.with(|h| h.borrow_mut().take()) else {
        return;
    };
    hook(obj);
    slot.with(|h| {
        let mut h = h.borrow_mut();
        if h.is_none() {
            *h = Some(hook);
        }
    });
}
