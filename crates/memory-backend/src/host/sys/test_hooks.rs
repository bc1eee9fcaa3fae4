//! Seams that let the unit tests play the other thread in the window
//! between a failed `MAP_FIXED` and the take-back (compiled for tests
//! only).
use std::ffi::c_void;

thread_local! {
    /// How many target ranges this thread gave up.
    pub(super) static LOST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

pub(super) fn target_lost() {
    LOST.with(|n| n.set(n.get() + 1));
}

thread_local! {
    /// Called with the target range after a failed `MAP_FIXED`.
    pub(super) static AFTER_FAILED_FIXED: std::cell::RefCell<Option<Box<dyn FnMut(*mut c_void, usize)>>> =
        const { std::cell::RefCell::new(None) };
}

pub(super) fn after_failed_fixed(target: *mut c_void, len: usize) {
    AFTER_FAILED_FIXED.with(|h| {
        if let Some(f) = h.borrow_mut().as_mut() {
            f(target, len)
        }
    });
}
