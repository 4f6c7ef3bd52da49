//! SQL for the `roster_items` table: which visitor contacts (and the front desk) we put into
//! which staff rosters, so that they are removed again even across a restart.

use rusqlite::{params, Connection};

use super::StoreError;
use crate::time::Timestamp;

pub fn insert(
    conn: &Connection,
    staff: &str,
    contact: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO roster_items (staff, contact, added_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![staff, contact, at.to_rfc3339()])?;
    Ok(())
}

pub fn delete(conn: &Connection, staff: &str, contact: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM roster_items WHERE staff = ?1 AND contact = ?2")?
        .execute(params![staff, contact])?;
    Ok(())
}

pub fn all(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT staff, contact FROM roster_items ORDER BY staff, contact")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
