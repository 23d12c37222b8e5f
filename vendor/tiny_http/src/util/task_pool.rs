use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// Manages a collection of threads.
///
/// A new thread is created every time all the existing threads are full.
/// Any idle thread will automatically die after a few seconds.
pub struct TaskPool {
    sharing: Arc<Sharing>,
}

struct Sharing {
    // list of the tasks to be done by worker threads
    todo: Mutex<VecDeque<Box<dyn FnMut() + Send>>>,

    // condvar that will be notified whenever a task is added to `todo`
    condvar: Condvar,

    // number of total worker threads running
    active_tasks: AtomicUsize,

    // number of idle worker threads
    waiting_tasks: AtomicUsize,

    /// Twin Paxos patch: set by `join`; idle threads end instead of waiting for tasks.
    closing: AtomicBool,

    /// Twin Paxos patch: every thread the pool started and has not joined. Upstream detached
    /// them, so a stopping server could not know when its connection threads had ended.
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

/// Minimum number of active threads.
static MIN_THREADS: usize = 4;

struct Registration<'a> {
    nb: &'a AtomicUsize,
}

impl<'a> Registration<'a> {
    fn new(nb: &'a AtomicUsize) -> Registration<'a> {
        nb.fetch_add(1, Ordering::Release);
        Registration { nb }
    }
}

impl<'a> Drop for Registration<'a> {
    fn drop(&mut self) {
        self.nb.fetch_sub(1, Ordering::Release);
    }
}

impl TaskPool {
    pub fn new() -> TaskPool {
        let pool = TaskPool {
            sharing: Arc::new(Sharing {
                todo: Mutex::new(VecDeque::new()),
                condvar: Condvar::new(),
                active_tasks: AtomicUsize::new(0),
                waiting_tasks: AtomicUsize::new(0),
                closing: AtomicBool::new(false),
                threads: Mutex::new(Vec::new()),
            }),
        };

        for _ in 0..MIN_THREADS {
            pool.add_thread(None)
        }

        pool
    }

    /// Executes a function in a thread.
    /// If no thread is available, spawns a new one.
    pub fn spawn(&self, code: Box<dyn FnMut() + Send>) {
        let mut queue = self.sharing.todo.lock().unwrap();

        // Twin Paxos patch: an idle thread takes a queued task only once it wakes, so until then
        // it still counts as idle. Upstream queued every task while any thread was idle, so a
        // burst could queue several tasks for one idle thread; each task serves a keep-alive
        // connection until it closes, so the rest waited, unserved, until some connection
        // closed. A task is queued only while there are more idle threads than queued tasks.
        if self.sharing.waiting_tasks.load(Ordering::Acquire) <= queue.len() {
            self.add_thread(Some(code));
        } else {
            queue.push_back(code);
            self.sharing.condvar.notify_one();
        }
    }

    /// Twin Paxos patch: ends the pool. Idle threads end at once; the others end when the task
    /// they run returns (for a server, when its connection closes); this waits for all of them.
    /// Nothing may be spawned meanwhile.
    pub fn join(self) {
        self.sharing.closing.store(true, Ordering::SeqCst);
        // Taking the lock orders the flag before any idle thread's next look at it.
        drop(self.sharing.todo.lock().unwrap());
        self.sharing.condvar.notify_all();
        let threads = std::mem::take(&mut *self.sharing.threads.lock().unwrap());
        for thread in threads {
            // A panic in a task has been reported by the panic hook already.
            let _ = thread.join();
        }
    }

    fn add_thread(&self, initial_fn: Option<Box<dyn FnMut() + Send>>) {
        let sharing = self.sharing.clone();

        // Twin Paxos patch: threads that ended on their own (idle too long) are joined here, so
        // the list holds only threads that may still run.
        let mut threads = self.sharing.threads.lock().unwrap();
        let (ended, running) = std::mem::take(&mut *threads)
            .into_iter()
            .partition::<Vec<_>, _>(|thread| thread.is_finished());
        *threads = running;
        for thread in ended {
            let _ = thread.join();
        }

        let thread = thread::spawn(move || {
            let sharing = sharing;
            let _active_guard = Registration::new(&sharing.active_tasks);

            if let Some(mut f) = initial_fn {
                f();
            }

            loop {
                let mut task: Box<dyn FnMut() + Send> = {
                    let mut todo = sharing.todo.lock().unwrap();

                    let task;
                    loop {
                        if let Some(poped_task) = todo.pop_front() {
                            task = poped_task;
                            break;
                        }
                        // Twin Paxos patch: a joined pool takes no more tasks.
                        if sharing.closing.load(Ordering::SeqCst) {
                            return;
                        }
                        let _waiting_guard = Registration::new(&sharing.waiting_tasks);

                        let received =
                            if sharing.active_tasks.load(Ordering::Acquire) <= MIN_THREADS {
                                todo = sharing.condvar.wait(todo).unwrap();
                                true
                            } else {
                                let (new_lock, waitres) = sharing
                                    .condvar
                                    .wait_timeout(todo, Duration::from_millis(5000))
                                    .unwrap();
                                todo = new_lock;
                                !waitres.timed_out()
                            };

                        if !received && todo.is_empty() {
                            return;
                        }
                    }

                    task
                };

                task();
            }
        });
        threads.push(thread);
    }
}

impl Drop for TaskPool {
    fn drop(&mut self) {
        self.sharing
            .active_tasks
            .store(999_999_999, Ordering::Release);
        self.sharing.condvar.notify_all();
    }
}
