//! A tiny persistent fork-join pool that never allocates after construction.
//!
//! Why not rayon: every `ThreadPool::install`/`join` entered from outside the
//! pool pushes a job onto rayon's global injector (a crossbeam `Injector`),
//! which heap-allocates a new 63-slot block every 63 pushes, so a plan that
//! calls into rayon is not allocation-free in steady state. `std::thread::scope`
//! allocates (and spawns) per call. This pool keeps `threads - 1` workers parked
//! on a `Condvar` (futex based on Linux: no allocation) and hands them a borrowed
//! closure per call.
//!
//! Protocol: the caller publishes the job, runs it itself, then retracts it and
//! waits only for the workers that actually *took* it (`active`). A worker that
//! wakes late simply finds no job, so a descheduled worker never stalls a call.
//! The job itself is a work-claiming loop, so any subset of threads finishes it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;

/// A borrowed job with its lifetime erased (see the SAFETY note in [`Pool::run`]).
type Job = &'static (dyn Fn() + Sync);

struct State {
    /// Incremented for every published job so a worker runs each job at most once.
    generation: u64,
    job: Option<Job>,
    /// Workers currently executing `job`.
    active: usize,
    /// Workers that have started (construction waits for all of them, so the
    /// allocations std makes when a thread starts happen inside `Pool::new`).
    started: usize,
    /// Jobs executed by workers so far (diagnostics: shows the pool is used).
    worker_runs: u64,
    panicked: bool,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    start: Condvar,
    done: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a job is caught before touching the state, so poisoning can
    // only come from a panic between lock/unlock here; the state stays consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serialises concurrent callers; a caller that finds the pool busy runs inline.
    busy: Mutex<()>,
}

impl Pool {
    /// A pool with `threads - 1` background workers (the caller is the last thread).
    pub(crate) fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                active: 0,
                started: 0,
                worker_runs: 0,
                panicked: false,
                shutdown: false,
            }),
            start: Condvar::new(),
            done: Condvar::new(),
        });
        let workers = (1..threads.max(1))
            .map(|i| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("dctchop-native-{i}"))
                    .spawn(move || worker(&s))
                    .expect("failed to spawn dctchop worker thread")
            })
            .collect::<Vec<_>>();
        let mut st = lock(&shared.state);
        while st.started < workers.len() {
            st = shared.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        drop(st);
        Pool {
            shared,
            workers,
            busy: Mutex::new(()),
        }
    }

    /// Total threads that may execute a job (workers + caller).
    pub(crate) fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Jobs executed by worker threads so far.
    pub(crate) fn worker_runs(&self) -> u64 {
        lock(&self.shared.state).worker_runs
    }

    /// Runs `f` on the calling thread and, concurrently, on every idle worker;
    /// returns when every thread that started `f` has finished it.
    pub(crate) fn run<'a>(&self, f: &'a (dyn Fn() + Sync + 'a)) {
        if self.workers.is_empty() {
            return f();
        }
        let _busy = match self.busy.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return f(),
        };
        // SAFETY: the only unsafe in the pool. We erase the lifetime of `f` so the
        // workers can see it. `Retire` (below) is constructed before anything that
        // can unwind and, in its `Drop`, removes `f` from the shared state and
        // waits until every worker that copied the reference has finished calling
        // it (`active == 0`); workers only copy it under the lock while it is
        // published. Hence no reference to `f` is used after `run` returns or
        // unwinds, which is exactly the guarantee `std::thread::scope` relies on.
        #[allow(unsafe_code)]
        let job: Job = unsafe { std::mem::transmute::<&'a (dyn Fn() + Sync + 'a), Job>(f) };
        let retire = Retire(&self.shared);
        {
            let mut st = lock(&self.shared.state);
            st.job = Some(job);
            st.generation = st.generation.wrapping_add(1);
            st.panicked = false;
        }
        self.shared.start.notify_all();
        f();
        drop(retire);
        if lock(&self.shared.state).panicked {
            panic!("a dctchop-native worker thread panicked");
        }
    }
}

/// Retracts the published job and waits for the workers running it (also on unwind).
struct Retire<'a>(&'a Shared);

impl Drop for Retire<'_> {
    fn drop(&mut self) {
        let mut st = lock(&self.0.state);
        st.job = None;
        while st.active > 0 {
            st = self.0.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn worker(shared: &Shared) {
    let mut seen = 0u64;
    lock(&shared.state).started += 1;
    shared.done.notify_all();
    loop {
        let job = {
            let mut st = lock(&shared.state);
            loop {
                if st.shutdown {
                    return;
                }
                if st.generation != seen {
                    seen = st.generation;
                    if let Some(job) = st.job {
                        st.active += 1;
                        break job;
                    }
                }
                st = shared.start.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        let ok = catch_unwind(AssertUnwindSafe(job)).is_ok();
        let mut st = lock(&shared.state);
        st.panicked |= !ok;
        st.worker_runs += 1;
        st.active -= 1;
        if st.active == 0 {
            shared.done.notify_all();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.start.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
