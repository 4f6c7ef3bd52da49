//! SQL for the `tags` table: staff's labels on sessions (`!tag`, `!untag`), one row per
//! (session, tag) that the session has now.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use xmpp_parsers::jid::BareJid;

use super::StoreError;
use crate::time::Timestamp;

/// Adds a tag; a tag the session already has stays as it was (first added wins).
pub fn insert(
    conn: &Connection,
    session_id: i64,
    tag: &str,
    by: &BareJid,
    at: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO tags (session_id, tag, added_by, added_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![session_id, tag, by.as_str(), at.to_rfc3339()])?;
    Ok(())
}

/// Removes a tag (`!untag`); removing one the session does not have changes nothing.
pub fn delete(conn: &Connection, session_id: i64, tag: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM tags WHERE session_id = ?1 AND tag = ?2")?
        .execute(params![session_id, tag])?;
    Ok(())
}

/// One session's tags, in alphabetical order.
pub fn of_session(conn: &Connection, session_id: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT tag FROM tags WHERE session_id = ?1 ORDER BY tag")?;
    let rows = stmt.query_map([session_id], |r| r.get::<_, String>(0))?;
    rows.map(|r| r.map_err(StoreError::from)).collect()
}

/// Every session's tags (sessions without tags are not in the map).
pub fn all(conn: &Connection) -> Result<BTreeMap<i64, Vec<String>>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT session_id, tag FROM tags ORDER BY session_id, tag")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut map: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for row in rows {
        let (id, tag) = row?;
        map.entry(id).or_default().push(tag);
    }
    Ok(map)
}
