//! The numbers (`frontdesk stats`) and missed chats (`!missed`, `frontdesk sessions`), read
//! with the SQL that docs/storage.md gives web apps, so that both compute the same figures.
//!
//! A *chat* is a session in which the visitor wrote. It is *answered* once a staff line follows
//! the visitor's first line, and *missed* if it closed unanswered.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{params, Connection};

use super::{parse_time, StoreError};
use crate::time::Timestamp;

/// One row per chat: its first reply time and duration in milliseconds (NULL while none).
/// `?1`: a site or NULL; `?2`: the earliest `created_at` (`''` for all).
pub const CHATS_SQL: &str = "SELECT s.id, s.site, substr(s.created_at, 1, 10) AS day,
       s.state = 'CLOSED' AS closed,
       CAST(round((julianday(r.at) - julianday(v.at)) * 86400000) AS INTEGER) AS reply_ms,
       substr(r.from_jid, 1, instr(r.from_jid || '/', '/') - 1) AS replier,
       CAST(round((julianday(s.closed_at) - julianday(s.created_at)) * 86400000) AS INTEGER)
         AS duration_ms
FROM sessions s
JOIN messages v ON v.id = (SELECT min(id) FROM messages
                           WHERE session_id = s.id AND role = 'visitor')
LEFT JOIN messages r ON r.id = (SELECT min(id) FROM messages
                                WHERE session_id = s.id AND role = 'staff' AND id > v.id)
WHERE (?1 IS NULL OR s.site = ?1) AND s.created_at >= ?2
ORDER BY s.id";

/// Which staff members wrote in which chats (bare JIDs). Same parameters.
pub const STAFF_SQL: &str = "SELECT DISTINCT m.session_id,
       substr(m.from_jid, 1, instr(m.from_jid || '/', '/') - 1) AS staff
FROM messages m JOIN sessions s ON s.id = m.session_id
WHERE m.role = 'staff' AND (?1 IS NULL OR s.site = ?1) AND s.created_at >= ?2
  AND EXISTS (SELECT 1 FROM messages v WHERE v.session_id = s.id AND v.role = 'visitor')
ORDER BY staff, m.session_id";

/// Missed chats closed since `?1` (`''` for all), with the visitor's first line.
pub const MISSED_SQL: &str = "SELECT s.id, s.site, s.visitor, s.visitor_jid, s.created_at,
       s.closed_at, v.body
FROM sessions s
JOIN messages v ON v.id = (SELECT min(id) FROM messages
                           WHERE session_id = s.id AND role = 'visitor')
WHERE s.state = 'CLOSED' AND s.closed_at >= ?1
  AND NOT EXISTS (SELECT 1 FROM messages r
                  WHERE r.session_id = s.id AND r.role = 'staff' AND r.id > v.id)
ORDER BY s.id";

/// A missed chat, for following up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    pub id: i64,
    pub site: String,
    pub visitor: String,
    pub visitor_jid: Option<String>,
    pub created_at: Timestamp,
    pub closed_at: Timestamp,
    /// The visitor's first line, as they wrote it.
    pub first_message: String,
    /// Its tags (`tags`), alphabetical.
    pub tags: Vec<String>,
}

/// Chats closed at or after `since` (all with `None`) that nobody answered, oldest first,
/// with their tags.
pub fn missed(conn: &Connection, since: Option<Timestamp>) -> Result<Vec<Missed>, StoreError> {
    let mut rows = missed_rows(conn, since)?;
    for m in &mut rows {
        m.tags = super::tags::of_session(conn, m.id)?;
    }
    Ok(rows)
}

/// `MISSED_SQL`'s rows, without their tags.
fn missed_rows(conn: &Connection, since: Option<Timestamp>) -> Result<Vec<Missed>, StoreError> {
    let since = since.map(|t| t.to_rfc3339()).unwrap_or_default();
    let mut stmt = conn.prepare_cached(MISSED_SQL)?;
    let rows = stmt.query_map([since], |r| {
        Ok((
            (r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?),
            r.get::<_, Option<String>>(3)?,
            (r.get::<_, String>(4)?, r.get::<_, String>(5)?),
            r.get::<_, String>(6)?,
        ))
    })?;
    rows.map(|row| {
        let ((id, site, visitor), visitor_jid, (created, closed), first_message) = row?;
        Ok(Missed {
            id,
            site,
            visitor,
            visitor_jid,
            created_at: parse_time(&created)?,
            closed_at: parse_time(&closed)?,
            first_message,
            tags: Vec::new(),
        })
    })
    .collect()
}

/// The ids of every missed chat.
pub fn missed_ids(conn: &Connection) -> Result<BTreeSet<i64>, StoreError> {
    Ok(missed_rows(conn, None)?.into_iter().map(|m| m.id).collect())
}

/// One chat as `CHATS_SQL` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub id: i64,
    pub site: String,
    /// The UTC day it opened, `YYYY-MM-DD`.
    pub day: String,
    pub closed: bool,
    pub reply_ms: Option<i64>,
    /// Who wrote the first reply (bare JID).
    pub replier: Option<String>,
    pub duration_ms: Option<i64>,
}

impl Chat {
    pub fn answered(&self) -> bool {
        self.reply_ms.is_some()
    }

    pub fn missed(&self) -> bool {
        self.closed && !self.answered()
    }
}

/// Which chats to count: one site or all, and those opened on or after a UTC day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub site: Option<String>,
    /// `YYYY-MM-DD`.
    pub since: Option<String>,
}

pub fn chats(conn: &Connection, f: &Filter) -> Result<Vec<Chat>, StoreError> {
    let since = f.since.clone().unwrap_or_default();
    let mut stmt = conn.prepare_cached(CHATS_SQL)?;
    let rows = stmt.query_map(params![f.site, since], |r| {
        Ok(Chat {
            id: r.get(0)?,
            site: r.get(1)?,
            day: r.get(2)?,
            closed: r.get(3)?,
            reply_ms: r.get(4)?,
            replier: r.get(5)?,
            duration_ms: r.get(6)?,
        })
    })?;
    rows.map(|r| r.map_err(StoreError::from)).collect()
}

/// (session id, staff bare JID) for every staff member who wrote in a chat.
pub fn staff_in_chats(conn: &Connection, f: &Filter) -> Result<Vec<(i64, String)>, StoreError> {
    let since = f.since.clone().unwrap_or_default();
    let mut stmt = conn.prepare_cached(STAFF_SQL)?;
    let rows = stmt.query_map(params![f.site, since], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.map(|r| r.map_err(StoreError::from)).collect()
}

/// The nearest-rank percentile: the value at 1-based rank ⌈p·n/100⌉ of the sorted values.
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub chats: usize,
    pub answered: usize,
    pub missed: usize,
}

impl Counts {
    fn add(&mut self, c: &Chat) {
        self.chats += 1;
        self.answered += usize::from(c.answered());
        self.missed += usize::from(c.missed());
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaffStats {
    /// Chats they wrote in.
    pub chats: usize,
    /// Chats whose first reply was theirs, and its time (ms), sorted.
    pub first_replies: Vec<i64>,
}

/// Everything `frontdesk stats` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub total: Counts,
    /// First reply times of the answered chats (ms), sorted.
    pub reply_ms: Vec<i64>,
    /// Durations of the closed chats (ms), sorted.
    pub duration_ms: Vec<i64>,
    pub staff: BTreeMap<String, StaffStats>,
    pub days: BTreeMap<String, Counts>,
}

pub fn stats(conn: &Connection, f: &Filter) -> Result<Stats, StoreError> {
    let chats = chats(conn, f)?;
    let mut s = Stats::default();
    for c in &chats {
        s.total.add(c);
        s.days.entry(c.day.clone()).or_default().add(c);
        if c.closed {
            s.duration_ms.extend(c.duration_ms);
        }
        if let (Some(ms), Some(who)) = (c.reply_ms, &c.replier) {
            s.reply_ms.push(ms);
            s.staff
                .entry(who.clone())
                .or_default()
                .first_replies
                .push(ms);
        }
    }
    for (_, who) in staff_in_chats(conn, f)? {
        s.staff.entry(who).or_default().chats += 1;
    }
    s.reply_ms.sort_unstable();
    s.duration_ms.sort_unstable();
    s.staff
        .values_mut()
        .for_each(|st| st.first_replies.sort_unstable());
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/storage.md gives web apps these queries: they must be the ones we run.
    #[test]
    fn the_documented_sql_is_the_sql_we_run() {
        let doc = include_str!("../../docs/storage.md");
        for sql in [CHATS_SQL, STAFF_SQL, MISSED_SQL] {
            assert!(
                doc.contains(&format!("```sql\n{sql}\n```")),
                "not in docs/storage.md:\n{sql}"
            );
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 90), Some(4));
        assert_eq!(percentile(&[1, 2, 3, 4, 5], 50), Some(3));
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 90), Some(9));
    }
}
