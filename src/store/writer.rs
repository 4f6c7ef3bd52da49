//! The store thread. It takes the core's writes in order and commits them in batches: whatever
//! is queued when it is free (up to `max_batch`), and, while busy, whatever more arrives within
//! `max_delay`. So under load many messages share one commit, at low load nobody waits for a
//! batch to fill, and SQLite never blocks the socket reader.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Store, StoreError, StoreOp};

/// Resolves when the write is committed (`Ok`) or has failed (`Err` with the reason).
pub type Ack = oneshot::Receiver<Result<(), String>>;

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub max_batch: usize,
    pub max_delay: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch: 100,
            // Only waited for under load (see `run`). Measured (docs/benchmark.md): always
            // waiting 2 ms added 2 ms to every message at low load; never waiting made commits
            // so small under load that their fixed cost saturated the CPU sooner.
            max_delay: Duration::from_millis(1),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub batches: u64,
    pub ops: u64,
    pub failed_ops: u64,
}

enum Job {
    Write(StoreOp, Option<oneshot::Sender<Result<(), String>>>),
    Flush(oneshot::Sender<Result<(), String>>),
}

pub struct Writer {
    tx: Sender<Job>,
    handle: JoinHandle<WriterStats>,
    checkpointer: Option<(std::sync::mpsc::Sender<()>, JoinHandle<()>)>,
}

/// How often the checkpointer folds the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

impl Writer {
    pub fn spawn(store: Store, cfg: WriterConfig) -> Result<Writer, StoreError> {
        // SQLite's automatic checkpoint runs inside a commit, and it stalled the commit (and
        // the messages waiting on it) for several ms every 1000 pages: the p99 of every
        // message. A checkpointer thread with its own connection does it beside the writer
        // (PASSIVE never blocks it). In-memory databases have no WAL and need none.
        let checkpointer = match store.path() {
            Some(path) => {
                store.disable_autocheckpoint()?;
                let (stop_tx, stop_rx) = mpsc::channel::<()>();
                let h = std::thread::Builder::new()
                    .name("frontdesk-checkpoint".into())
                    .spawn(move || checkpoint_loop(&path, stop_rx))
                    .map_err(StoreError::Thread)?;
                Some((stop_tx, h))
            }
            None => None,
        };
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("frontdesk-store".into())
            .spawn(move || run(store, rx, cfg))
            .map_err(StoreError::Thread)?;
        Ok(Writer {
            tx,
            handle,
            checkpointer,
        })
    }

    /// A write nobody waits for; it is still applied in order with all the others.
    pub fn submit(&self, op: StoreOp) {
        if self.tx.send(Job::Write(op, None)).is_err() {
            tracing::error!("store thread is gone; a write was lost");
        }
    }

    pub fn submit_acked(&self, op: StoreOp) -> Ack {
        let (tx, rx) = oneshot::channel();
        // If the thread is gone the sender is dropped with the job and the ack reports it.
        let _ = self.tx.send(Job::Write(op, Some(tx)));
        rx
    }

    /// Resolves once everything submitted before it is committed.
    pub fn flush(&self) -> Ack {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Job::Flush(tx));
        rx
    }

    /// Commits everything queued and stops the threads.
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

fn run(mut store: Store, rx: Receiver<Job>, cfg: WriterConfig) -> WriterStats {
    let mut stats = WriterStats::default();
    let mut batch: Vec<Job> = Vec::with_capacity(cfg.max_batch);
    let mut busy = false;
    while let Ok(first) = rx.recv() {
        batch.push(first);
        // Whatever is queued already goes into this commit.
        while batch.len() < cfg.max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Under load (the last commit had company) wait briefly for more, so that commits are
        // fewer and larger; when idle, nobody waits.
        if busy && !cfg.max_delay.is_zero() {
            let deadline = Instant::now() + cfg.max_delay;
            while batch.len() < cfg.max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(job) => batch.push(job),
                    Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        busy = batch.len() > 1;
        commit(&mut store, &mut batch, &mut stats);
    }
    stats
}

fn commit(store: &mut Store, batch: &mut Vec<Job>, stats: &mut WriterStats) {
    let ops: Vec<StoreOp> = batch
        .iter()
        .filter_map(|j| match j {
            Job::Write(op, _) => Some(op.clone()),
            Job::Flush(_) => None,
        })
        .collect();
    stats.batches += 1;
    stats.ops += ops.len() as u64;
    let all = store.apply(&ops);
    let mut results: Vec<Result<(), String>> = Vec::with_capacity(ops.len());
    match all {
        Ok(()) => results.resize(ops.len(), Ok(())),
        Err(e) => {
            // One bad write must not take its neighbours down: retry each on its own.
            tracing::warn!(error = %e, writes = ops.len(), "batch failed; retrying its writes one by one");
            for op in &ops {
                let r = store
                    .apply(std::slice::from_ref(op))
                    .map_err(|e| e.to_string());
                if let Err(err) = &r {
                    stats.failed_ops += 1;
                    tracing::error!(op = op_kind(op), session_id = op_session(op), error = %err, "write failed");
                }
                results.push(r);
            }
        }
    }
    let mut results = results.into_iter();
    for job in batch.drain(..) {
        match job {
            Job::Write(_, ack) => {
                let r = results.next().unwrap_or(Ok(()));
                if let Some(ack) = ack {
                    let _ = ack.send(r);
                }
            }
            Job::Flush(ack) => {
                let _ = ack.send(Ok(()));
            }
        }
    }
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
    }
}

fn op_session(op: &StoreOp) -> i64 {
    match op {
        StoreOp::OpenSession(s) | StoreOp::UpdateSession(s) => s.id,
        StoreOp::AppendMessage(m) => m.session_id,
        StoreOp::OccupantJoined(o) => o.session_id,
        StoreOp::OccupantLeft { session_id, .. } => *session_id,
        // Not about a session.
        StoreOp::RosterAdded { .. } | StoreOp::RosterRemoved { .. } => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{message, session};
    use crate::store::{Role, SessionState};

    fn wait(ack: Ack) -> Result<(), String> {
        ack.blocking_recv()
            .unwrap_or_else(|_| Err("dropped".into()))
    }

    #[test]
    fn many_acked_writes_commit_in_order_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let w = Writer::spawn(Store::open(&path).unwrap(), WriterConfig::default()).unwrap();
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
    fn a_bad_write_fails_alone() {
        let w = Writer::spawn(
            Store::open_in_memory().unwrap(),
            WriterConfig {
                max_batch: 100,
                max_delay: Duration::from_millis(50),
            },
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
    fn shutdown_drains_what_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let w = Writer::spawn(Store::open(&path).unwrap(), WriterConfig::default()).unwrap();
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
}
