//! The store thread. It takes the core's writes in order and commits them in batches: whatever
//! is queued when it is free (up to `max_batch`), and, while writes come faster than
//! [`BUSY_RATE`], whatever more arrives until `max_delay` after the last commit started. So
//! under load many messages share one commit, at low load nobody waits for a batch to fill,
//! and SQLite never blocks the socket reader.
//!
//! What depends on a write rides with it: after each commit the thread hands the batch's items,
//! in order and each with the outcome of its write, to a [`Deliver`] (the shell's link sender,
//! which writes the stanzas to the socket). So nothing goes out before the write it follows is
//! committed, and a message costs one hand-off between threads, not two.

use std::cell::Cell;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::retention::{self, PurgeFilter, Purged};
use super::{Store, StoreError, StoreOp};
use crate::time::Timestamp;

/// What became of the write an item rode with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The item rode with no write.
    NoWrite,
    Stored,
    /// Not stored, with the reason.
    Failed(String),
}

/// Runs on the store thread after every commit.
pub trait Deliver: Send + 'static {
    type Item: Send + 'static;
    /// The batch's items in the order they were submitted.
    fn deliver(&mut self, items: Vec<(Self::Item, Outcome)>);
    /// Before `deliver`: how the batch's commit went, for monitoring.
    fn committed(&mut self, _report: CommitReport) {}
}

/// One batch's commit: how many writes it had, how many failed, and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitReport {
    pub writes: u64,
    pub failed: u64,
    pub took: Duration,
}

/// Resolves when the write is committed (`Ok`) or has failed (`Err` with the reason).
pub type Ack = oneshot::Receiver<Result<(), String>>;

/// A [`Deliver`] that answers oneshot channels: for tests and tools that wait on single writes.
pub struct Acks;

impl Deliver for Acks {
    type Item = oneshot::Sender<Result<(), String>>;
    fn deliver(&mut self, items: Vec<(Self::Item, Outcome)>) {
        for (tx, outcome) in items {
            let _ = tx.send(match outcome {
                Outcome::Failed(e) => Err(e),
                Outcome::Stored | Outcome::NoWrite => Ok(()),
            });
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub max_batch: usize,
    pub max_delay: Duration,
    /// `[store] retain_days`: purge older CLOSED sessions at start and every day after.
    pub retain_days: Option<u32>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch: 100,
            // The least time between commits, only while busy (see `Pace`). Measured
            // (docs/benchmark-notes.md): always waiting 2 ms added 2 ms to every message at
            // low load; never waiting made commits so small under load that their fixed cost
            // saturated the CPU sooner.
            max_delay: Duration::from_millis(1),
            retain_days: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub batches: u64,
    pub ops: u64,
    pub failed_ops: u64,
}

enum Job<T> {
    /// A write, and what rides with it.
    Write(StoreOp, Option<T>),
    /// Something that rides with no write; it still keeps its place in the order.
    Item(T),
    /// A read, once everything before it is committed, that makes the item delivered in its
    /// place (history older than memory: core/replay.rs).
    Read(Read<T>),
}

/// A read on the store thread that makes an item to deliver.
pub type Read<T> = Box<dyn FnOnce(&Store) -> T + Send>;

pub struct Writer<D: Deliver> {
    tx: Sender<Job<D::Item>>,
    handle: JoinHandle<WriterStats>,
    checkpointer: Option<(std::sync::mpsc::Sender<()>, JoinHandle<()>)>,
}

/// How often the checkpointer folds the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// WAL length (frames of one page) at which the writer finishes a checkpoint so that the WAL
/// starts over: ~32 MB with 4 KiB pages. The checkpointer has usually copied most of it by
/// then. Each time costs the writer an fsync; smaller values showed in p99 under load
/// (docs/benchmark-notes.md).
const RESTART_WAL_FRAMES: i64 = 8000;
/// Writes per second above which commits are paced (see [`Pace`]). Below it a write is
/// committed the moment it comes, so that low load pays no wait; the measurements behind the
/// figure are in docs/benchmark-notes.md (round 5).
const BUSY_RATE: u64 = 3_000;
/// How long the write rate is measured over before pacing is switched on or off.
const RATE_WINDOW: Duration = Duration::from_millis(10);

/// When the next commit may start. A commit has a fixed cost (BEGIN and COMMIT, the WAL's
/// header and locks: most of a one-line commit, benches/store.rs) that only more writes per
/// commit spread. So while writes come faster than [`BUSY_RATE`], commits
/// start at least `interval` apart and each carries what arrived meanwhile; otherwise nobody
/// waits. Keeps its own clock readings out: the caller passes `now`.
#[derive(Debug)]
struct Pace {
    interval: Duration,
    window_start: Instant,
    window_writes: u64,
    busy: bool,
    last_commit: Instant,
}

impl Pace {
    fn new(now: Instant, interval: Duration) -> Pace {
        Pace {
            interval,
            window_start: now,
            window_writes: 0,
            busy: false,
            last_commit: now,
        }
    }

    /// How long a commit that could start at `now` should wait.
    fn wait(&self, now: Instant) -> Duration {
        if self.busy {
            (self.last_commit + self.interval).saturating_duration_since(now)
        } else {
            Duration::ZERO
        }
    }

    /// A commit of `jobs` starts at `now`.
    fn committing(&mut self, now: Instant, jobs: usize) {
        self.window_writes += jobs as u64;
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= RATE_WINDOW {
            self.busy = u128::from(self.window_writes) * 1_000_000
                >= u128::from(BUSY_RATE) * elapsed.as_micros();
            self.window_start = now;
            self.window_writes = 0;
        }
        self.last_commit = now;
    }
}

impl<D: Deliver> Writer<D> {
    pub fn spawn(store: Store, cfg: WriterConfig, deliver: D) -> Result<Writer<D>, StoreError> {
        // SQLite's automatic checkpoint runs inside a commit, and it stalled the commit (and
        // the messages waiting on it) for several ms every 1000 pages: the p99 of every
        // message. A checkpointer thread with its own connection does it beside the writer
        // (PASSIVE never blocks it). In-memory databases have no WAL and need none.
        let checkpointer = match store.path() {
            Some(path) => {
                store.disable_autocheckpoint()?;
                let (stop_tx, stop_rx) = mpsc::channel::<()>();
                // Told the WAL's length after every commit (see `finish_checkpoint`).
                store.conn().wal_hook(Some(note_wal_frames));
                let h = std::thread::Builder::new()
                    .name("frontdesk-checkpoint".into())
                    .spawn(move || checkpoint_loop(&path, stop_rx))
                    .map_err(StoreError::Thread)?;
                Some((stop_tx, h))
            }
            None => None,
        };
        store.trust_own_writes()?;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("frontdesk-store".into())
            .spawn(move || run(store, rx, cfg, deliver))
            .map_err(StoreError::Thread)?;
        Ok(Writer {
            tx,
            handle,
            checkpointer,
        })
    }

    /// A write, with what is delivered after it (told whether it was stored).
    pub fn write(&self, op: StoreOp, then: Option<D::Item>) {
        if self.tx.send(Job::Write(op, then)).is_err() {
            tracing::error!("store thread is gone; a write was lost");
        }
    }

    /// Delivered after everything submitted before it, with no write of its own.
    pub fn item(&self, item: D::Item) {
        if self.tx.send(Job::Item(item)).is_err() {
            tracing::error!("store thread is gone; an item was dropped");
        }
    }

    /// Runs `read` on the store thread once everything submitted before it is committed,
    /// and delivers what it returns in its place.
    pub fn read(&self, read: Read<D::Item>) {
        if self.tx.send(Job::Read(read)).is_err() {
            tracing::error!("store thread is gone; a read was dropped");
        }
    }

    /// Commits everything queued, delivers it, and stops the threads.
    pub fn shutdown(self) -> Result<WriterStats, StoreError> {
        drop(self.tx);
        let stats = self.handle.join().map_err(|_| StoreError::WriterGone);
        if let Some((stop, h)) = self.checkpointer {
            drop(stop);
            let _ = h.join();
        }
        stats
    }
}

impl Writer<Acks> {
    /// A write nobody waits for; it is still applied in order with all the others.
    pub fn submit(&self, op: StoreOp) {
        self.write(op, None);
    }

    pub fn submit_acked(&self, op: StoreOp) -> Ack {
        let (tx, rx) = oneshot::channel();
        // If the thread is gone the sender is dropped with the job and the ack reports it.
        self.write(op, Some(tx));
        rx
    }

    /// Resolves once everything submitted before it is committed.
    pub fn flush(&self) -> Ack {
        let (tx, rx) = oneshot::channel();
        self.item(tx);
        rx
    }
}

thread_local! {
    /// The WAL's length in frames after the store thread's last commit.
    static WAL_FRAMES: Cell<i64> = const { Cell::new(0) };
}

/// SQLite's WAL hook: runs in the committing thread (the store thread) after each commit.
fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(i64::from(frames));
    Ok(())
}

fn checkpoint_loop(path: &std::path::Path, stop: Receiver<()>) {
    let conn = match rusqlite::Connection::open(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the checkpointer cannot open the database; the WAL will grow until restart");
            return;
        }
    };
    let _ = conn.busy_timeout(Duration::from_secs(1));
    // Until the writer says stop (or is gone).
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
        }
    }
    // Fold the rest in and shrink the WAL on a clean stop.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

fn drain<T>(rx: &Receiver<T>, batch: &mut Vec<T>, max: usize) {
    while batch.len() < max {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

fn run<D: Deliver>(
    mut store: Store,
    rx: Receiver<Job<D::Item>>,
    cfg: WriterConfig,
    mut deliver: D,
) -> WriterStats {
    let mut stats = WriterStats::default();
    let mut batch: Vec<Job<D::Item>> = Vec::with_capacity(cfg.max_batch);
    let mut pace = Pace::new(Instant::now(), cfg.max_delay);
    let mut retention = cfg.retain_days.map(Retention::new);
    while let Some(first) = next_job(&rx, &mut retention, &mut store) {
        batch.push(first);
        // Whatever is queued already goes into this commit.
        drain(&rx, &mut batch, cfg.max_batch);
        // Under load, let more arrive before committing (see `Pace`). A plain sleep, not a
        // wait on the channel: that woke this thread for every write that came in (a context
        // switch per message, which profiles showed to be the largest cost under load).
        let wait = pace.wait(Instant::now());
        if !wait.is_zero() && batch.len() < cfg.max_batch {
            std::thread::sleep(wait);
            drain(&rx, &mut batch, cfg.max_batch);
        }
        let started = Instant::now();
        pace.committing(started, batch.len());
        let before = stats;
        let done = commit(&mut store, &mut batch, &mut stats);
        deliver.committed(CommitReport {
            writes: stats.ops - before.ops,
            failed: stats.failed_ops - before.failed_ops,
            took: started.elapsed(),
        });
        deliver.deliver(done);
        if WAL_FRAMES.get() > RESTART_WAL_FRAMES {
            WAL_FRAMES.set(0);
            finish_checkpoint(&store);
        }
    }
    stats
}

/// Rows (messages and sessions) deleted per retention transaction: a few ms, so a write that
/// arrives meanwhile waits that long at most.
const RETENTION_ROWS: u64 = 500;
const RETENTION_EVERY: Duration = Duration::from_secs(86_400);

/// The daily `retain_days` purge. It runs only while no write is queued, one short
/// transaction at a time, so the chats never wait behind it.
struct Retention {
    days: u32,
    next: Instant,
    /// The pass under way, and what it has deleted so far.
    pass: Option<(PurgeFilter, Purged)>,
}

impl Retention {
    fn new(days: u32) -> Retention {
        Retention {
            days,
            next: Instant::now(),
            pass: None,
        }
    }

    fn start(&mut self) {
        let before = retention::days_before(Timestamp::now(), self.days);
        self.pass = Some((PurgeFilter { before, site: None }, Purged::default()));
        self.next = Instant::now() + RETENTION_EVERY;
    }

    /// One chunk of the pass under way; ends the pass when nothing is left or on an error.
    fn step(&mut self, store: &mut Store) {
        let Some((filter, total)) = &mut self.pass else {
            return;
        };
        match retention::purge_chunk(store.conn_mut(), filter, RETENTION_ROWS) {
            Ok((done, more)) => {
                total.add(done);
                if more {
                    return;
                }
                tracing::info!(sessions = total.sessions, messages = total.messages, closed_before = %filter.before, "retention: deleted old closed sessions ([store] retain_days)");
            }
            Err(e) => {
                tracing::error!(error = %e, "retention purge failed; trying again tomorrow")
            }
        }
        self.pass = None;
    }
}

/// The next job; between jobs, while none is queued, the retention purge's due work.
fn next_job<T>(
    rx: &Receiver<Job<T>>,
    retention: &mut Option<Retention>,
    store: &mut Store,
) -> Option<Job<T>> {
    let Some(r) = retention else {
        return rx.recv().ok();
    };
    loop {
        if r.pass.is_some() {
            match rx.try_recv() {
                Ok(job) => return Some(job),
                Err(TryRecvError::Empty) => r.step(store),
                Err(TryRecvError::Disconnected) => return None,
            }
            continue;
        }
        match rx.recv_timeout(r.next.saturating_duration_since(Instant::now())) {
            Ok(job) => return Some(job),
            Err(RecvTimeoutError::Timeout) => r.start(),
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// Lets the WAL start over from its beginning. Under steady load the checkpointer's passive
/// checkpoints never catch up with the last commit, and SQLite only rewinds the WAL when one
/// has, so the WAL grew without bound and every write went to new file space (the kernel
/// zeroing pages for it showed as the largest cost in the store thread). Done
/// here, between batches, nothing is committed while it runs, so it copies the few frames
/// since the checkpointer's last pass and the next commit rewinds the WAL.
fn finish_checkpoint(store: &Store) {
    let t = std::time::Instant::now();
    match store
        .conn()
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        }) {
        Ok((log, done)) => tracing::debug!(
            frames = log,
            checkpointed = done,
            ms = t.elapsed().as_secs_f64() * 1000.0,
            "WAL checkpointed by the writer so that it starts over"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint failed; the WAL keeps growing until one succeeds")
        }
    }
}

/// Commits the batch's writes in one transaction (or, if that fails, one by one) and returns
/// its items with the outcome of the write each rode with.
fn commit<T>(
    store: &mut Store,
    batch: &mut Vec<Job<T>>,
    stats: &mut WriterStats,
) -> Vec<(T, Outcome)> {
    let ops: Vec<&StoreOp> = batch
        .iter()
        .filter_map(|j| match j {
            Job::Write(op, _) => Some(op),
            Job::Item(_) | Job::Read(_) => None,
        })
        .collect();
    stats.batches += 1;
    stats.ops += ops.len() as u64;
    let mut results: Vec<Outcome> = Vec::with_capacity(ops.len());
    match store.apply(ops.iter().copied()) {
        Ok(()) => results.resize(ops.len(), Outcome::Stored),
        Err(e) => {
            // One bad write must not take its neighbours down: retry each on its own.
            tracing::warn!(error = %e, writes = ops.len(), "batch failed; retrying its writes one by one");
            for op in &ops {
                match store.apply(std::iter::once(*op)) {
                    Ok(()) => results.push(Outcome::Stored),
                    Err(err) => {
                        stats.failed_ops += 1;
                        tracing::error!(op = op_kind(op), session_id = op_session(op), error = %err, "write failed");
                        results.push(Outcome::Failed(err.to_string()));
                    }
                }
            }
        }
    }
    let mut results = results.into_iter();
    let mut done = Vec::with_capacity(batch.len());
    for job in batch.drain(..) {
        match job {
            Job::Write(_, item) => {
                let r = results.next().unwrap_or(Outcome::Stored);
                if let Some(item) = item {
                    done.push((item, r));
                }
            }
            Job::Item(item) => done.push((item, Outcome::NoWrite)),
            // After the commit: it sees every write queued before it (and the batch's later
            // ones too, which a read must not depend on).
            Job::Read(read) => done.push((read(store), Outcome::NoWrite)),
        }
    }
    done
}

fn op_kind(op: &StoreOp) -> &'static str {
    match op {
        StoreOp::OpenSession(_) => "open_session",
        StoreOp::UpdateSession(_) => "update_session",
        StoreOp::AppendMessage(_) => "append_message",
        StoreOp::OccupantJoined(_) => "occupant_joined",
        StoreOp::OccupantLeft { .. } => "occupant_left",
        StoreOp::RosterAdded { .. } => "roster_added",
        StoreOp::RosterRemoved { .. } => "roster_removed",
        StoreOp::SessionDetails { .. } => "session_details",
        StoreOp::TagsAdded { .. } => "tags_added",
        StoreOp::TagsRemoved { .. } => "tags_removed",
    }
}

fn op_session(op: &StoreOp) -> i64 {
    match op {
        StoreOp::OpenSession(s) | StoreOp::UpdateSession(s) => s.id,
        StoreOp::AppendMessage(m) => m.session_id,
        StoreOp::OccupantJoined(o) => o.session_id,
        StoreOp::OccupantLeft { session_id, .. }
        | StoreOp::SessionDetails { session_id, .. }
        | StoreOp::TagsAdded { session_id, .. }
        | StoreOp::TagsRemoved { session_id, .. } => *session_id,
        // Not about a session.
        StoreOp::RosterAdded { .. } | StoreOp::RosterRemoved { .. } => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{message, session, t};
    use crate::store::{Role, SessionState};

    fn wait(ack: Ack) -> Result<(), String> {
        ack.blocking_recv()
            .unwrap_or_else(|_| Err("dropped".into()))
    }

    #[test]
    fn many_acked_writes_commit_in_order_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let w = Writer::spawn(Store::open(&path).unwrap(), WriterConfig::default(), Acks).unwrap();
        w.submit(StoreOp::OpenSession(session(1, SessionState::Active)));
        let acks: Vec<Ack> = (1..=1000)
            .map(|n| w.submit_acked(StoreOp::AppendMessage(message(1, n, Role::Visitor))))
            .collect();
        for a in acks {
            assert_eq!(wait(a), Ok(()));
        }
        let stats = w.shutdown().unwrap();
        assert_eq!(stats.ops, 1001);
        assert!(stats.batches < 1001, "writes were not batched: {stats:?}");
        let store = Store::open_read_only(&path).unwrap();
        let lines = store.transcript(1).unwrap();
        assert_eq!(lines.len(), 1000);
        assert!(lines.windows(2).all(|p| p[0].at < p[1].at), "order lost");
    }

    #[test]
    fn pace_never_holds_back_writes_that_come_slowly() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0, Duration::from_millis(1));
        // 1,000 writes per second, one per millisecond, for half a second.
        for i in 0..500u64 {
            let now = t0 + Duration::from_micros(1_000 * i + 200);
            assert_eq!(pace.wait(now), Duration::ZERO, "write {i} was held back");
            pace.committing(now, 1);
        }
    }

    /// Runs the store thread's loop against writes arriving every `gap` for `span`, each
    /// commit taking everything that arrived by the time it starts; returns the batch sizes
    /// and the longest wait, and leaves `now` at the last commit.
    fn simulate(
        pace: &mut Pace,
        now: &mut Instant,
        gap: Duration,
        span: Duration,
    ) -> (Vec<usize>, Duration) {
        let end = *now + span;
        let mut next = *now + gap;
        let (mut batches, mut longest) = (Vec::new(), Duration::ZERO);
        while next < end {
            // The thread wakes for the first write it has not committed.
            *now = (*now).max(next);
            let w = pace.wait(*now);
            longest = longest.max(w);
            *now += w;
            let mut jobs = 0;
            while next <= *now {
                jobs += 1;
                next += gap;
            }
            pace.committing(*now, jobs);
            batches.push(jobs);
        }
        (batches, longest)
    }

    #[test]
    fn pace_spaces_commits_while_writes_come_fast_and_stops_when_they_slow() {
        let interval = Duration::from_millis(1);
        let mut now = Instant::now();
        let mut pace = Pace::new(now, interval);
        // 5,000 writes per second: after the first window, ~5 writes per commit, none waiting
        // longer than the interval.
        let (batches, longest) = simulate(
            &mut pace,
            &mut now,
            Duration::from_micros(200),
            Duration::from_millis(200),
        );
        let later = &batches[batches.len() / 2..];
        let mean = later.iter().sum::<usize>() as f64 / later.len() as f64;
        assert!(mean >= 4.0, "fast writes were not batched: {later:?}");
        assert!(longest <= interval, "waited {longest:?}");
        // Right after a commit, the next one waits for the rest of the interval.
        assert_eq!(
            pace.wait(now + Duration::from_micros(300)),
            Duration::from_micros(700)
        );
        // Then 500 writes per second: once a window has passed, each is committed alone.
        let (batches, _) = simulate(
            &mut pace,
            &mut now,
            Duration::from_millis(2),
            Duration::from_millis(100),
        );
        assert!(
            batches[10..].iter().all(|&b| b == 1),
            "slow writes still paced: {batches:?}"
        );
        assert_eq!(pace.wait(now + Duration::from_micros(100)), Duration::ZERO);
    }

    #[test]
    fn a_bad_write_fails_alone() {
        let w = Writer::spawn(
            Store::open_in_memory().unwrap(),
            WriterConfig {
                max_batch: 100,
                max_delay: Duration::from_millis(50),
                retain_days: None,
            },
            Acks,
        )
        .unwrap();
        let a = w.submit_acked(StoreOp::OpenSession(session(1, SessionState::Active)));
        let bad = w.submit_acked(StoreOp::AppendMessage(message(42, 1, Role::Visitor)));
        let c = w.submit_acked(StoreOp::AppendMessage(message(1, 1, Role::Visitor)));
        assert_eq!(wait(a), Ok(()));
        assert!(wait(bad).is_err());
        assert_eq!(wait(c), Ok(()));
        assert_eq!(wait(w.flush()), Ok(()));
        assert_eq!(w.shutdown().unwrap().failed_ops, 1);
    }

    #[test]
    fn retain_days_purges_old_closed_sessions_at_start_and_keeps_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let mut store = Store::open(&path).unwrap();
        let now = Timestamp::now();
        let mut ops = Vec::new();
        // 1..=300 closed 40 days ago, 301 closed yesterday, 302 open: 2 chunks of work.
        for id in 1..=302 {
            let mut s = session(id, SessionState::Closed);
            s.closed_at = Some(retention::days_before(now, if id <= 300 { 40 } else { 1 }));
            if id == 302 {
                s.state = SessionState::Active;
                s.closed_at = None;
            }
            ops.push(StoreOp::OpenSession(s));
            ops.push(StoreOp::AppendMessage(message(id, 1, Role::Visitor)));
        }
        store.apply(ops.iter()).unwrap();
        let cfg = WriterConfig {
            retain_days: Some(30),
            ..WriterConfig::default()
        };
        let w = Writer::spawn(store, cfg, Acks).unwrap();
        let reader = Store::open_read_only(&path).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while reader.list_sessions(None, None).unwrap().len() > 2 {
            assert!(Instant::now() < deadline, "the purge did not finish");
            // Writes still go through while it runs.
            let op = StoreOp::AppendMessage(message(302, 2, Role::Staff));
            assert_eq!(wait(w.submit_acked(op)), Ok(()));
        }
        let left: Vec<i64> = reader
            .list_sessions(None, None)
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(left.len(), 2);
        assert!(left.contains(&301) && left.contains(&302), "{left:?}");
        w.shutdown().unwrap();
    }

    #[test]
    fn a_read_sees_the_writes_before_it_and_keeps_its_place() {
        let w = Writer::spawn(
            Store::open_in_memory().unwrap(),
            WriterConfig::default(),
            Acks,
        )
        .unwrap();
        w.submit(StoreOp::OpenSession(session(1, SessionState::Active)));
        for n in 1..=3 {
            w.submit(StoreOp::AppendMessage(message(1, n, Role::Visitor)));
        }
        let (tx, rx) = oneshot::channel();
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        w.read(Box::new(move |store| {
            let count = |after, max| {
                super::super::messages::said_before(store.conn(), 1, "1-3", after, max)
                    .map(|m| m.iter().map(|m| m.body.clone()).collect::<Vec<_>>())
                    .map_err(|e| e.to_string())
            };
            let _ = seen_tx.send((count(None, 10), count(Some(t(1)), 10), count(None, 1)));
            tx
        }));
        // The lines stored before "1-3"; said after t(1); the newest one.
        let (all, after, newest) = seen_rx.recv().unwrap();
        assert_eq!(all.unwrap(), ["line 1", "line 2"]);
        assert_eq!(after.unwrap(), ["line 2"]);
        assert_eq!(newest.unwrap(), ["line 2"]);
        assert_eq!(wait(rx), Ok(()));
        w.shutdown().unwrap();
    }

    #[test]
    fn shutdown_drains_what_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let w = Writer::spawn(Store::open(&path).unwrap(), WriterConfig::default(), Acks).unwrap();
        for id in 1..=50 {
            w.submit(StoreOp::OpenSession(session(id, SessionState::Inactive)));
        }
        w.shutdown().unwrap();
        assert_eq!(
            Store::open_read_only(&path)
                .unwrap()
                .list_sessions(None, None)
                .unwrap()
                .len(),
            50
        );
    }

    #[test]
    fn the_wal_starts_over_under_steady_load() {
        // Passive checkpoints alone never caught up with a writer that never pauses, and the
        // WAL grew by ~20 MB/s. Writes go on here without pause for longer than several
        // checkpoint periods; the WAL must stay bounded.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let wal = dir.path().join("wal.db-wal");
        let cfg = WriterConfig {
            max_batch: 100,
            max_delay: Duration::from_millis(1),
            retain_days: None,
        };
        let w = Writer::spawn(Store::open(&path).unwrap(), cfg, Acks).unwrap();
        assert_eq!(
            wait(w.submit_acked(StoreOp::OpenSession(session(1, SessionState::Active)))),
            Ok(())
        );
        // The rewind comes at RESTART_WAL_FRAMES (~32 MB), checked after every commit. Each
        // message is a commit of its own (2+ pages): without the rewind the WAL holds them all,
        // so go on until that would be three times the bound.
        let bound = (RESTART_WAL_FRAMES as u64 + 1000) * 4120;
        let started = std::time::Instant::now();
        let (mut n, mut largest) = (0i64, 0u64);
        while (n as u64) * 2 * 4096 < 3 * bound {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "too slow to tell: {n} messages"
            );
            n += 1;
            let ack = w.submit_acked(StoreOp::AppendMessage(message(1, n, Role::Visitor)));
            assert_eq!(wait(ack), Ok(()));
            if n % 50 == 0 {
                largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            }
        }
        w.shutdown().unwrap();
        assert!(
            largest < bound,
            "the WAL grew to {largest} bytes over {n} messages"
        );
        assert_eq!(
            Store::open_read_only(&path)
                .unwrap()
                .transcript(1)
                .unwrap()
                .len() as i64,
            n
        );
    }
}
