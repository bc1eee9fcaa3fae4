//! Watching and stopping long preallocations: progress reports at a
//! bounded rate, and cancellation from any thread or from the report
//! callback itself.
//!
//! QEMU has neither. Preallocating tens of gigabytes takes minutes, so an
//! operator wants to see it move and a VMM wants to stop it (a guest that
//! will never start, a user pressing Ctrl-C) without leaving a half-made
//! backend behind.

use std::cell::RefCell;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How far one preallocation has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreallocProgress<'a> {
    /// What is being preallocated: the backend's memory-region name (its
    /// id), or what the caller of [`Mapping::prealloc_with`](super::Mapping::prealloc_with)
    /// passed.
    pub name: &'a str,
    /// Bytes populated so far.
    pub done: u64,
    /// Bytes to populate in all.
    pub total: u64,
    /// Time since the preallocation started.
    pub elapsed: Duration,
    /// This is the last report of this preallocation: it is over, done
    /// (`done == total`) or stopped by an error or a cancellation.
    pub ended: bool,
}

/// The progress callback: `Break` cancels the preallocation.
pub type ProgressFn = dyn Fn(&PreallocProgress<'_>) -> ControlFlow<()> + Send + Sync;

struct Inner {
    cancelled: AtomicBool,
    report: Option<Box<ProgressFn>>,
    interval: Duration,
}

/// A handle that watches and can stop the preallocations it is attached
/// to. Clones share one cancellation flag and one callback.
///
/// Attach it to the preallocations a thread starts with
/// [`scope`](Self::scope) (an `object-add` runs its backend's
/// preallocation in the calling thread), or to every preallocation of the
/// process with [`set_process_default`](Self::set_process_default).
///
/// The callback runs on one of the preallocating threads, never on two at
/// once, at most once per interval (100 ms unless
/// [`with_interval`](Self::with_interval) says otherwise), and once more
/// with `done == total` when a preallocation ends well. Reports of one
/// preallocation never go back. Keep the callback short: the thread that
/// runs it is not populating meanwhile.
///
/// A cancelled preallocation stops within one chunk of work per thread
/// (16 MiB) and fails with [`HostError::PreallocCancelled`](super::HostError::PreallocCancelled);
/// an `object-add` that it was part of fails and leaves nothing behind.
/// The flag stays set: a cancelled handle cancels every later
/// preallocation it is attached to, until [`reset`](Self::reset).
#[derive(Clone)]
pub struct PreallocControl(Arc<Inner>);

impl fmt::Debug for PreallocControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreallocControl")
            .field("cancelled", &self.is_cancelled())
            .field("reports", &self.0.report.is_some())
            .field("interval", &self.0.interval)
            .finish()
    }
}

impl Default for PreallocControl {
    fn default() -> Self {
        Self::new()
    }
}

/// The default time between two progress reports.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_millis(100);

thread_local! {
    static SCOPED: RefCell<Vec<PreallocControl>> = const { RefCell::new(Vec::new()) };
}

static PROCESS_DEFAULT: RwLock<Option<PreallocControl>> = RwLock::new(None);

impl PreallocControl {
    /// A handle without progress reports: only cancellation.
    pub fn new() -> Self {
        PreallocControl(Arc::new(Inner {
            cancelled: AtomicBool::new(false),
            report: None,
            interval: DEFAULT_REPORT_INTERVAL,
        }))
    }

    /// A handle that reports progress to `report`.
    pub fn with_progress(
        report: impl Fn(&PreallocProgress<'_>) -> ControlFlow<()> + Send + Sync + 'static,
    ) -> Self {
        Self::with_interval(DEFAULT_REPORT_INTERVAL, report)
    }

    /// A handle that reports progress to `report` at most once per
    /// `interval` (plus the final report).
    pub fn with_interval(
        interval: Duration,
        report: impl Fn(&PreallocProgress<'_>) -> ControlFlow<()> + Send + Sync + 'static,
    ) -> Self {
        PreallocControl(Arc::new(Inner {
            cancelled: AtomicBool::new(false),
            report: Some(Box::new(report)),
            interval,
        }))
    }

    /// Stops the preallocations this handle is attached to (from any
    /// thread); see the type's documentation.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called (or a callback returned
    /// `Break`) since the last [`reset`](Self::reset).
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// Clears the cancellation, for the next preallocation.
    pub fn reset(&self) {
        self.0.cancelled.store(false, Ordering::Release);
    }

    /// Runs `f` with this handle attached to every preallocation that this
    /// thread starts meanwhile (the innermost scope wins).
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Pop;
        impl Drop for Pop {
            fn drop(&mut self) {
                SCOPED.with(|s| s.borrow_mut().pop());
            }
        }
        SCOPED.with(|s| s.borrow_mut().push(self.clone()));
        let _pop = Pop;
        f()
    }

    /// Attaches `control` to every preallocation of the process that no
    /// [`scope`](Self::scope) covers (`None` detaches it). A program such as
    /// `qom` uses it to draw one progress line and to cancel on Ctrl-C.
    pub fn set_process_default(control: Option<PreallocControl>) {
        *PROCESS_DEFAULT.write().unwrap_or_else(|e| e.into_inner()) = control;
    }

    /// The handle for a preallocation starting on this thread: the
    /// innermost scope's, else the process default.
    pub fn current() -> Option<PreallocControl> {
        SCOPED.with(|s| s.borrow().last().cloned()).or_else(|| {
            PROCESS_DEFAULT
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        })
    }
}

/// The bookkeeping of one preallocation, shared by its threads.
pub(crate) struct Tracker<'a> {
    control: Option<&'a PreallocControl>,
    name: &'a str,
    done: AtomicU64,
    total: u64,
    start: Instant,
    /// When the last report went out; held while a report runs, so that
    /// reports never overlap and never go back.
    last: Mutex<Instant>,
}

impl<'a> Tracker<'a> {
    pub(crate) fn new(control: Option<&'a PreallocControl>, name: &'a str, total: u64) -> Self {
        let start = Instant::now();
        Tracker {
            control,
            name,
            done: AtomicU64::new(0),
            total,
            start,
            last: Mutex::new(start),
        }
    }

    /// Whether the threads should stop.
    pub(crate) fn cancelled(&self) -> bool {
        self.control.is_some_and(PreallocControl::is_cancelled)
    }

    /// Bytes populated so far.
    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::Acquire)
    }

    /// Counts `bytes` as done and reports, if a report is due and no other
    /// thread is reporting.
    pub(crate) fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::AcqRel);
        let Some(control) = self.control else { return };
        if control.0.report.is_none() {
            return;
        }
        // A thread that finds another one reporting skips its turn rather
        // than wait: the next chunk reports soon enough.
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        let now = Instant::now();
        if now.duration_since(*last) < control.0.interval {
            return;
        }
        *last = now;
        // Read under the lock, so that reports never go back.
        self.report(control, self.done(), now, false);
    }

    /// The last report: the whole total when the preallocation went well.
    pub(crate) fn end(&self, well: bool) {
        let Some(control) = self.control else { return };
        let _last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let done = if well { self.total } else { self.done() };
        self.report(control, done, Instant::now(), true);
    }

    fn report(&self, control: &PreallocControl, done: u64, now: Instant, ended: bool) {
        let Some(report) = &control.0.report else {
            return;
        };
        let progress = PreallocProgress {
            name: self.name,
            done: done.min(self.total),
            total: self.total,
            elapsed: now.duration_since(self.start),
            ended,
        };
        // Asking to stop what has ended already changes nothing.
        if report(&progress).is_break() && !ended {
            control.cancel();
        }
    }
}
