//! Deleting old CLOSED sessions and their transcripts: `frontdesk purge` and `[store]
//! retain_days`. Only CLOSED sessions are ever touched (frontdesk never writes to one again),
//! and never the newest session of all: the next session number is `max(id) + 1`, so keeping
//! it means a purged number is never given out again.

use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};

use super::StoreError;
use crate::time::Timestamp;

/// Which sessions a purge deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeFilter {
    /// Sessions closed before this instant.
    pub before: Timestamp,
    /// Only this site's, if set.
    pub site: Option<String>,
}

/// What a purge deleted (or, for a dry run, would delete).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    pub messages: u64,
}

impl Purged {
    pub fn add(&mut self, other: Purged) {
        self.sessions += other.sessions;
        self.messages += other.messages;
    }
}

const MATCHING: &str = "FROM sessions WHERE state = 'CLOSED' AND closed_at IS NOT NULL
    AND closed_at < ?1 AND (?2 IS NULL OR site = ?2)
    AND id < (SELECT max(id) FROM sessions)";

/// What [`purge_chunk`] would delete in all, without deleting anything.
pub fn count(conn: &Connection, f: &PurgeFilter) -> Result<Purged, StoreError> {
    let sql = format!(
        "SELECT count(*), (SELECT count(*) FROM messages WHERE session_id IN (SELECT id {MATCHING})) {MATCHING}"
    );
    let (sessions, messages): (i64, i64) =
        conn.query_row(&sql, params![f.before.to_rfc3339(), f.site], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok(Purged {
        sessions: sessions.max(0) as u64,
        messages: messages.max(0) as u64,
    })
}

/// Deletes up to `rows` rows (messages, and the sessions they emptied) of the oldest
/// matching sessions, in one transaction: a session with a long transcript takes several. BEGIN
/// IMMEDIATE takes the write lock before choosing them, so a running frontdesk's writer waits
/// for this short transaction (its busy timeout is 5 s) rather than failing. Returns what it
/// deleted and whether anything is left.
pub fn purge_chunk(
    conn: &mut Connection,
    f: &PurgeFilter,
    rows: u64,
) -> Result<(Purged, bool), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ids: Vec<i64> = {
        let sql = format!("SELECT id {MATCHING} ORDER BY id LIMIT ?3");
        let mut stmt = tx.prepare(&sql)?;
        let found = stmt.query_map(params![f.before.to_rfc3339(), f.site, rows as i64], |r| {
            r.get(0)
        })?;
        found.collect::<Result<_, _>>()?
    };
    let mut done = Purged::default();
    let mut budget = rows;
    for id in &ids {
        let gone = tx.execute(
            "DELETE FROM messages WHERE id IN
               (SELECT id FROM messages WHERE session_id = ?1 ORDER BY id LIMIT ?2)",
            params![id, budget as i64],
        )? as u64;
        done.messages += gone;
        budget = budget.saturating_sub(gone);
        if budget == 0 {
            break; // this session may have more lines: the next chunk goes on with it
        }
        tx.execute("DELETE FROM occupants WHERE session_id = ?1", [id])?;
        done.sessions += tx.execute("DELETE FROM sessions WHERE id = ?1", [id])? as u64;
        budget -= 1;
    }
    tx.commit()?;
    let more = budget == 0;
    Ok((done, more))
}

/// The least pause between two purge transactions from another process (see `purge_all`).
const YIELD: Duration = Duration::from_millis(25);

/// Deletes every matching session, `rows` rows per transaction, pausing between them at least
/// as long as each took. A writer waiting for the lock (frontdesk's) retries at growing
/// intervals, and without the pause the purge took the lock again first: a commit waited
/// 2.2 s once while 400,000 lines were purged (docs/storage.md).
pub fn purge_all(conn: &mut Connection, f: &PurgeFilter, rows: u64) -> Result<Purged, StoreError> {
    let mut total = Purged::default();
    loop {
        let started = Instant::now();
        let (done, more) = purge_chunk(conn, f, rows)?;
        total.add(done);
        if !more {
            return Ok(total);
        }
        std::thread::sleep(started.elapsed().max(YIELD));
    }
}

/// The instant `days` whole days before `now`.
pub fn days_before(now: Timestamp, days: u32) -> Timestamp {
    now.plus_millis(-(i64::from(days) * 86_400_000))
}

/// A `YYYY-MM-DD` date as midnight UTC at its start.
pub fn parse_date(s: &str) -> Option<Timestamp> {
    if s.len() != 10 {
        return None;
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let t = d.and_hms_opt(0, 0, 0)?.and_utc();
    Some(Timestamp(t.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{message, session, t};
    use crate::store::{Role, SessionState, Store, StoreOp};

    /// Sessions 1..=4: 1 and 2 closed at t(100) and t(200) (site acme), 3 open, 4 closed
    /// at t(50) but the newest of all; 3 messages each.
    fn store() -> Store {
        let mut store = Store::open_in_memory().unwrap();
        let mut ops = Vec::new();
        for (id, closed) in [(1, Some(100)), (2, Some(200)), (3, None), (4, Some(50))] {
            let mut s = session(id, SessionState::Closed);
            match closed {
                Some(c) => s.closed_at = Some(t(c)),
                None => {
                    s.state = SessionState::Active;
                    s.closed_at = None;
                }
            }
            ops.push(StoreOp::OpenSession(s));
            for n in 1..=3 {
                ops.push(StoreOp::AppendMessage(message(id, n, Role::Visitor)));
            }
        }
        store.apply(ops.iter()).unwrap();
        store
    }

    fn ids(store: &Store) -> Vec<i64> {
        store
            .list_sessions(None, None)
            .unwrap()
            .iter()
            .map(|s| s.id)
            .rev()
            .collect()
    }

    #[test]
    fn only_closed_sessions_before_the_date_go_and_never_the_newest() {
        let mut store = store();
        let f = PurgeFilter {
            before: t(1000),
            site: None,
        };
        let want = Purged {
            sessions: 2,
            messages: 6,
        };
        assert_eq!(count(store.conn(), &f).unwrap(), want);
        // One row per transaction: a transcript spans several.
        assert_eq!(purge_all(store.conn_mut(), &f, 1).unwrap(), want);
        let mut left = ids(&store);
        left.sort();
        assert_eq!(left, vec![3, 4]);
        assert_eq!(store.transcript(3).unwrap().len(), 3);
        assert_eq!(count(store.conn(), &f).unwrap(), Purged::default());
    }

    #[test]
    fn the_date_and_the_site_narrow_it() {
        let mut store = store();
        let globex = PurgeFilter {
            before: t(1000),
            site: Some("globex".into()),
        };
        assert_eq!(
            purge_all(store.conn_mut(), &globex, 10).unwrap().sessions,
            1
        );
        let early = PurgeFilter {
            before: t(100),
            site: None,
        };
        assert_eq!(
            purge_all(store.conn_mut(), &early, 10).unwrap(),
            Purged::default()
        );
        let mut left = ids(&store);
        left.sort();
        assert_eq!(left, vec![1, 3, 4]);
    }

    #[test]
    fn dates_are_whole_utc_days() {
        assert_eq!(
            parse_date("2026-03-01").unwrap().to_rfc3339(),
            "2026-03-01T00:00:00.000Z"
        );
        for bad in [
            "2026-02-30",
            "2026-3-1",
            "26-03-01",
            "2026-03-01T00:00:00Z",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(days_before(t(86_400 * 3), 2), t(86_400));
    }
}
