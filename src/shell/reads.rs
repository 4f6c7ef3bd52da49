//! The store reads the core asks for (`Output::Query`), run on the blocking pool with a
//! read-only connection of their own; the answer goes back as `Input::QueryDone`.

use std::path::Path;

use crate::core::commands::{Answer, Query, QueryResult, Transcript};
use crate::store::{stats, Store, StoreError};

/// The query's id (for `Input::QueryDone`).
pub fn id(q: &Query) -> u64 {
    match q {
        Query::Transcript { id, .. }
        | Query::Session { id, .. }
        | Query::SessionTags { id, .. }
        | Query::Missed { id, .. } => *id,
    }
}

/// Runs `q` on the database at `db`.
pub fn read(db: &Path, q: &Query) -> QueryResult {
    Store::open_read_only(db)
        .and_then(|s| answer(&s, q))
        .map_err(|e| e.to_string())
}

/// Runs `q` on an open store (the scenario tests use this with theirs).
pub fn answer(s: &Store, q: &Query) -> Result<Answer, StoreError> {
    Ok(match q {
        Query::Transcript { session_id, .. } => {
            Answer::Transcript(match s.session(*session_id)? {
                None => None,
                Some(session) => Some(Transcript {
                    session,
                    lines: s.transcript(*session_id)?,
                    tags: s.tags(*session_id)?,
                }),
            })
        }
        Query::Session { session_id, .. } => Answer::Session(s.session(*session_id)?),
        Query::SessionTags { session_id, .. } => {
            Answer::SessionTags(match s.session(*session_id)? {
                None => None,
                Some(row) => Some((row, s.tags(*session_id)?)),
            })
        }
        Query::Missed { since, .. } => Answer::Missed(stats::missed(s.conn(), Some(*since))?),
    })
}
