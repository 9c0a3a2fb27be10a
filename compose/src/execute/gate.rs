//! Concurrency for the executor and the compose verbs: a counting semaphore, a turnstile that
//! admits numbered tickets in order, a bounded parallel map and an unbounded one that keeps
//! every error.

use std::sync::{Condvar, Mutex};

use super::lock;

/// A counting semaphore: at most `n` tasks at once across all levels.
pub struct Semaphore {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Semaphore {
    pub fn new(n: usize) -> Self {
        Self {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }

    pub(super) fn acquire(&self) {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
    }

    pub(super) fn release(&self) {
        *lock(&self.free) += 1;
        self.cv.notify_one();
    }
}

/// Admits numbered tickets strictly in order, at most `n` inside at once.
///
/// Only one ticket can ever be next, so a change wakes only the threads sleeping on that
/// ticket's slot. With one condition variable for all, every admission and every exit woke
/// every waiter (a hundred services: some 20,000 wake-ups, each a context switch and a turn
/// on the lock, for 200 admissions).
pub struct Turnstile {
    /// (next ticket to admit, tickets inside)
    state: Mutex<(usize, usize)>,
    /// Ticket `t` waits on `slots[t % SLOTS]`; tickets that share a slot wake each other
    /// only to check again.
    slots: [Condvar; Turnstile::SLOTS],
    n: usize,
}

/// Holding one keeps a place inside the turnstile.
pub struct Turn<'a>(&'a Turnstile);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut st = lock(&self.0.state);
        st.1 -= 1;
        // Room again: only the next ticket can use it.
        self.0.slot(st.0).notify_all();
    }
}

impl Turnstile {
    const SLOTS: usize = 64;

    pub fn new(n: usize) -> Self {
        Self {
            state: Mutex::new((0, 0)),
            slots: std::array::from_fn(|_| Condvar::new()),
            n: n.max(1),
        }
    }

    fn slot(&self, ticket: usize) -> &Condvar {
        &self.slots[ticket % Self::SLOTS]
    }

    /// Blocks until every lower ticket was admitted and there is room. Each ticket from 0
    /// up must enter exactly once, or the later ones wait forever.
    pub fn enter(&self, ticket: usize) -> Turn<'_> {
        let mut st = lock(&self.state);
        while st.0 != ticket || st.1 >= self.n {
            st = self
                .slot(ticket)
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
        st.0 += 1;
        st.1 += 1;
        // The next ticket is due now (it waits on if there is no room).
        self.slot(st.0).notify_all();
        Turn(self)
    }
}

/// Runs `f` on every item in parallel (bounded by `sem`); returns the first error, after all
/// started tasks have finished.
pub fn parallel<T: Sync, E: Send>(
    items: &[T],
    sem: &Semaphore,
    f: impl Fn(&T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    if items.len() == 1 {
        sem.acquire();
        let r = f(&items[0]);
        sem.release();
        return r;
    }
    let results: Vec<Result<(), E>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .iter()
            .map(|item| {
                let f = &f;
                s.spawn(move || {
                    sem.acquire();
                    let r = f(item);
                    sem.release();
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.into_iter().collect()
}

/// Runs `f` on every item at once, one thread each (the work is waiting on containers, not
/// CPU); returns every error, in item order, after all have finished.
pub fn each<T: Sync, E: Send>(items: &[T], f: impl Fn(&T) -> Result<(), E> + Sync) -> Vec<E> {
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .iter()
            .map(|item| {
                let f = &f;
                s.spawn(move || f(item))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| {
                h.join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
                    .err()
            })
            .collect()
    })
}

/// Runs `background` on a thread of its own while `foreground` runs here; `background` gets a
/// `stop` check that turns true once `foreground` returned, and is waited for before this
/// returns `foreground`'s result.
pub fn alongside<T>(
    background: impl FnOnce(&(dyn Fn() -> bool + Sync)) + Send,
    foreground: impl FnOnce() -> T,
) -> T {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let done = &done;
        s.spawn(move || background(&|| done.load(std::sync::atomic::Ordering::SeqCst)));
        let out = foreground();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        out
    })
}

/// Runs every task on a detached thread and returns the first result to arrive (`None`
/// without tasks). The others keep running until they finish or the process exits: meant
/// for waits that cannot be interrupted, such as waiting for any of several containers.
pub fn first_of<T: Send + 'static>(tasks: Vec<Box<dyn FnOnce() -> T + Send>>) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    for task in tasks {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(task());
        });
    }
    drop(tx);
    rx.recv().ok()
}
