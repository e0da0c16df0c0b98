//! The scheduled refresher: a background thread that refreshes materialized views every
//! interval, never two refreshes of one view at once (across processes too, on PostgreSQL),
//! retrying failures with backoff, until it is stopped or dropped.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::view::{refresh_on, LockWait, MaterializedView, Refreshed};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::exec::{Access, Executor};
use crate::meta::TableMeta;

/// Called after each refresh, while its lock is still held: the view's table name and when
/// the refresh ran.
type RefreshHook = Arc<dyn Fn(&str, &Refreshed) + Send + Sync>;

/// Settings of a scheduled refresher: `Refresher::every(interval).view::<SalesSummary>()`,
/// started with [`Refresher::start`].
///
/// Each round refreshes every view once, `CONCURRENTLY` for a view declared with
/// `refresh_concurrently`. A view another refresher is refreshing (this process or another one)
/// is skipped for the round. A failed refresh is logged (`tracing` warning) and retried after a
/// backoff that doubles from one second (or the interval, if shorter) up to
/// [`Refresher::max_backoff`]; the thread never ends on an error (nor on a panic).
#[must_use = "a refresher does nothing until `.start(&db)`"]
pub struct Refresher {
    interval: Duration,
    max_backoff: Duration,
    views: Vec<&'static TableMeta>,
    on_refresh: Option<RefreshHook>,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher")
            .field("interval", &self.interval)
            .field("max_backoff", &self.max_backoff)
            .field(
                "views",
                &self.views.iter().map(|v| v.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Refresher {
    /// Refresh every `interval`, the first round at once.
    pub fn every(interval: Duration) -> Self {
        Self {
            interval,
            max_backoff: Duration::from_secs(300).max(interval),
            views: Vec::new(),
            on_refresh: None,
        }
    }

    /// Refresh view `V` each round.
    pub fn view<V: MaterializedView>(mut self) -> Self {
        if !self.views.iter().any(|v| v.name == V::TABLE.name) {
            self.views.push(V::TABLE);
        }
        self
    }

    /// The longest wait before retrying a failed refresh. Default: five minutes, or the
    /// interval if longer.
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// Call `hook` after each refresh, while the refresh still holds its lock: for metrics, or
    /// to record when refreshes ran.
    pub fn on_refresh(mut self, hook: impl Fn(&str, &Refreshed) + Send + Sync + 'static) -> Self {
        self.on_refresh = Some(Arc::new(hook));
        self
    }

    /// Start the background thread. [`Error::InvalidConfig`] for a zero interval or no view.
    pub fn start(self, db: &Database) -> Result<RefresherHandle> {
        if self.interval.is_zero() {
            return Err(Error::InvalidConfig {
                field: "interval",
                reason: "a refresher needs an interval above zero".to_owned(),
            });
        }
        if self.views.is_empty() {
            return Err(Error::InvalidConfig {
                field: "view",
                reason: "name at least one view: `Refresher::every(interval).view::<V>()`"
                    .to_owned(),
            });
        }
        let status = Arc::new(Mutex::new(
            self.views
                .iter()
                .map(|v| RefreshStatus::new(v.name))
                .collect(),
        ));
        let (stop, stopped) = mpsc::channel();
        let worker = Worker {
            db: db.clone(),
            settings: self,
            status: Arc::clone(&status),
        };
        // The worker logs to the subscriber current where the refresher is started.
        let logs_to = tracing::dispatcher::get_default(Clone::clone);
        let thread = std::thread::Builder::new()
            .name("orm-refresher".to_owned())
            .spawn(move || tracing::dispatcher::with_default(&logs_to, || worker.run(stopped)))
            .map_err(|e| Error::InvalidConfig {
                field: "thread",
                reason: format!("the refresher thread could not start: {e}"),
            })?;
        Ok(RefresherHandle {
            stop: Some(stop),
            thread: Some(thread),
            status,
        })
    }
}

/// What a refresher knows of one view so far.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshStatus {
    /// The view's name.
    pub view: &'static str,
    /// Refreshes that succeeded.
    pub refreshes: u64,
    /// Refreshes that failed.
    pub failures: u64,
    /// Rounds that skipped the view because another refresher held its lock.
    pub skipped: u64,
    /// When the last successful refresh ended.
    pub last_success: Option<SystemTime>,
    /// When the last failed refresh ended, and its error.
    pub last_failure: Option<(SystemTime, String)>,
    /// How long the last successful refresh took.
    pub last_duration: Option<Duration>,
}

impl RefreshStatus {
    fn new(view: &'static str) -> Self {
        Self {
            view,
            refreshes: 0,
            failures: 0,
            skipped: 0,
            last_success: None,
            last_failure: None,
            last_duration: None,
        }
    }
}

/// A running refresher. [`RefresherHandle::stop`] (or dropping it) stops the thread after
/// the refresh in progress, if any, and waits for it.
#[derive(Debug)]
pub struct RefresherHandle {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    status: Arc<Mutex<Vec<RefreshStatus>>>,
}

impl RefresherHandle {
    /// The status of each view, in the order they were added.
    pub fn status(&self) -> Vec<RefreshStatus> {
        lock(&self.status).clone()
    }

    /// Stop the thread and wait for it to end.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        drop(self.stop.take()); // the thread's wait ends at once
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RefresherHandle {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Worker {
    db: Database,
    settings: Refresher,
    status: Arc<Mutex<Vec<RefreshStatus>>>,
}

impl Worker {
    fn run(self, stopped: mpsc::Receiver<()>) {
        let first_backoff = Duration::from_secs(1).min(self.settings.interval);
        let mut backoff: Option<Duration> = None;
        let mut wait = Duration::ZERO;
        loop {
            match stopped.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let failed = self.round();
            if failed {
                let next = backoff.map_or(first_backoff, |b| b * 2);
                let next = next.min(self.settings.max_backoff);
                backoff = Some(next);
                wait = next;
            } else {
                backoff = None;
                wait = self.settings.interval;
            }
        }
    }

    /// Refresh each view once; whether one failed.
    fn round(&self) -> bool {
        let mut failed = false;
        for (i, table) in self.settings.views.iter().enumerate() {
            let concurrently = table.view.is_some_and(|v| v.concurrent_refresh);
            let hook = |done: &Refreshed| {
                if let Some(hook) = &self.settings.on_refresh {
                    hook(table.name, done);
                }
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                refresh_table(&self.db, table, concurrently, LockWait::Try, &hook)
            }))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                Err(Error::Model {
                    model: table.model,
                    message: format!("refresh panicked: {what}"),
                })
            });
            let mut status = lock(&self.status);
            let status = &mut status[i];
            match outcome {
                Ok(Some(done)) => {
                    status.refreshes += 1;
                    status.last_success = Some(SystemTime::now());
                    status.last_duration = Some(done.duration());
                    tracing::debug!(view = table.name, duration = ?done.duration(), "view refreshed");
                }
                Ok(None) => {
                    status.skipped += 1;
                    tracing::debug!(
                        view = table.name,
                        "refresh skipped: another refresher holds the view's lock"
                    );
                }
                Err(error) => {
                    failed = true;
                    status.failures += 1;
                    status.last_failure = Some((SystemTime::now(), error.to_string()));
                    tracing::warn!(view = table.name, %error, "view refresh failed; retrying with backoff");
                }
            }
        }
        failed
    }
}

/// Run one refresh of `table` through the database's write road, marking the view's table as
/// written (so caches of it are invalidated). `inside` runs while the lock is still held.
/// `Ok(None)` when `wait` is [`LockWait::Try`] and another refresh holds the lock.
pub(crate) fn refresh_table(
    db: &Database,
    table: &'static TableMeta,
    concurrently: bool,
    wait: LockWait,
    inside: &(dyn Fn(&Refreshed) + Sync),
) -> Result<Option<Refreshed>> {
    db.run(Access::writes(std::slice::from_ref(&table.name)), |conn| {
        refresh_on(conn, table, concurrently, wait, inside)
    })
}
