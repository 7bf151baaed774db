//! Threads that take work off the pipeline thread (decoding whole batches, see
//! [`crate::sources::Source`]; encoding a window's rows, see
//! [`crate::sinks::Output::encode_elsewhere`]), so a pipeline uses more than one core.
//!
//! The pipeline thread stays the only one that runs records through transforms,
//! windows and outputs, in input order: what the workers do must not depend on order,
//! and its results are taken back in the order it was handed out. `--threads 1` starts
//! no workers, and everything runs on the pipeline thread as before.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a thread waiting for a job or a result looks for it before it sleeps:
/// jobs come every hundred microseconds or so while input flows, and waking a sleeping
/// thread cost the one waking it a system call per job (3% of the pipeline thread's
/// time in a hopping window) and the one woken tens of microseconds.
const LOOK_BEFORE_SLEEPING: Duration = Duration::from_micros(50);

/// One piece of work; it sends its own result back.
pub type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of worker threads taking jobs from one queue. Cloning shares them.
#[derive(Clone)]
pub struct Workers {
    jobs: mpsc::Sender<Job>,
    count: usize,
}

impl Workers {
    /// Starts `count` (at least one) worker threads; they end with the process.
    pub fn start(count: usize) -> std::io::Result<Workers> {
        let count = count.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..count {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("rill-worker-{n}"))
                .spawn(move || work(&queue))?;
        }
        Ok(Workers { jobs, count })
    }

    /// How many threads take jobs.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Queues `job` for the next free worker. A job whose worker is gone is dropped,
    /// and with it the sender of its result: the one waiting for it sees that.
    pub fn run(&self, job: Job) {
        let _ = self.jobs.send(job);
    }
}

fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held only while taking a job, not while running it.
        let job = match queue.lock() {
            Ok(queue) => recv_soon(&queue),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A job that panics loses its result (its waiter is told); the thread goes on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// [`mpsc::Receiver::recv`], looking for [`LOOK_BEFORE_SLEEPING`] before it sleeps: a
/// message sent meanwhile is taken without the sender waking this thread. Between
/// looks it yields its core to any other thread that wants it (more threads than
/// cores), so looking never delays the work it waits for.
pub fn recv_soon<T>(from: &mpsc::Receiver<T>) -> Result<T, mpsc::RecvError> {
    let until = Instant::now() + LOOK_BEFORE_SLEEPING;
    loop {
        for _ in 0..64 {
            match from.try_recv() {
                Ok(message) => return Ok(message),
                Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
                Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        if Instant::now() >= until {
            return from.recv();
        }
        std::thread::yield_now();
    }
}

/// Worker threads to start for `threads` threads in all: the pipeline thread is one of
/// them. `None` for one thread: no workers.
pub fn for_threads(threads: usize) -> Option<usize> {
    (threads > 1).then(|| threads - 1)
}

/// The default `--threads`: the cores this process may use.
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_other_threads_and_send_their_results() {
        let workers = Workers::start(2).unwrap();
        let (tx, rx) = mpsc::channel();
        for n in 0..10u64 {
            let tx = tx.clone();
            workers.run(Box::new(move || {
                let on = std::thread::current().name().unwrap_or_default().to_owned();
                tx.send((n * n, on)).unwrap();
            }));
        }
        drop(tx);
        let mut got: Vec<(u64, String)> = rx.iter().collect();
        got.sort();
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
        );
        assert!(got.iter().all(|g| g.1.starts_with("rill-worker-")), "{got:?}");
    }

    #[test]
    fn a_job_that_panics_loses_its_result_and_the_worker_goes_on() {
        let workers = Workers::start(1).unwrap();
        let (tx, rx) = mpsc::channel::<u32>();
        let lost = tx.clone();
        workers.run(Box::new(move || {
            let _keep = lost;
            panic!("a decoder bug");
        }));
        workers.run(Box::new(move || tx.send(7).unwrap()));
        assert_eq!(rx.recv(), Ok(7));
        assert!(rx.recv().is_err(), "every sender is gone: the panicked job's too");
    }

    #[test]
    fn a_message_comes_whether_it_is_sent_while_the_receiver_looks_or_after_it_sleeps() {
        let (tx, rx) = mpsc::channel::<u32>();
        let sender = std::thread::spawn(move || {
            tx.send(1).unwrap();
            std::thread::sleep(LOOK_BEFORE_SLEEPING * 20);
            tx.send(2).unwrap();
        });
        assert_eq!(recv_soon(&rx), Ok(1));
        assert_eq!(recv_soon(&rx), Ok(2));
        sender.join().unwrap();
        assert_eq!(recv_soon(&rx), Err(mpsc::RecvError), "every sender is gone");
    }

    #[test]
    fn one_thread_starts_no_workers() {
        assert_eq!(for_threads(1), None);
        assert_eq!(for_threads(2), Some(1));
        assert_eq!(for_threads(8), Some(7));
    }
}
