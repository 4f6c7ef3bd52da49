//! SQL for the `session_details` table: what is known of each session's visitor (details the
//! web app signed in their token, the page and pre-chat answers the widget sent).

use rusqlite::{params, Connection};

use super::StoreError;
use crate::core::session::DetailRecord;

/// Replaces what is stored of `session_id`'s visitor with `details`.
pub fn replace(
    conn: &Connection,
    session_id: i64,
    details: &[DetailRecord],
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM session_details WHERE session_id = ?1")?
        .execute(params![session_id])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO session_details (session_id, key, value, signed) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for d in details {
        insert.execute(params![session_id, d.key, d.value, d.signed])?;
    }
    Ok(())
}

/// The details of every session that is not CLOSED, in the order they were written.
pub fn of_open_sessions(conn: &Connection) -> Result<Vec<DetailRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.session_id, d.key, d.value, d.signed FROM session_details d
         JOIN sessions s ON s.id = d.session_id
         WHERE s.state != 'CLOSED' ORDER BY d.session_id, d.rowid",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(DetailRecord {
            session_id: r.get(0)?,
            key: r.get(1)?,
            value: r.get(2)?,
            signed: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The details of one session (open or closed), for `!info` and the CLI.
pub fn of_session(conn: &Connection, session_id: i64) -> Result<Vec<DetailRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT session_id, key, value, signed FROM session_details WHERE session_id = ?1 ORDER BY rowid",
    )?;
    let rows = stmt.query_map(params![session_id], |r| {
        Ok(DetailRecord {
            session_id: r.get(0)?,
            key: r.get(1)?,
            value: r.get(2)?,
            signed: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
