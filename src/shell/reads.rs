//! The store reads the core asks for (`Output::Query`), run on the blocking pool with a
//! read-only connection of their own once the writes before them are committed; the answer
//! goes back as `Input::QueryDone`.

use std::path::{Path, PathBuf};

use crate::core::commands::{Answer, Query, QueryResult, Transcript};
use crate::core::Input;
use crate::store::writer::Deliver;
use crate::store::{stats, Store, StoreError, Writer};

/// Asks `q` once every write submitted to `writer` before it is committed, so that a
/// `!tag` right before `!untag` (or a `!note` before `!transcript`) is seen; `nothing` is what
/// the store thread delivers in the read's place. The read itself runs on `pool`, not on
/// the store thread: a long transcript must not hold up the commits behind it.
pub fn after_writes<D: Deliver>(
    writer: &Writer<D>,
    nothing: D::Item,
    pool: tokio::runtime::Handle,
    db: PathBuf,
    q: Query,
    answer: impl FnOnce(Input) + Send + 'static,
) {
    writer.read(Box::new(move |_store| {
        pool.spawn_blocking(move || {
            let id = id(&q);
            let result = read(&db, &q);
            answer(Input::QueryDone { id, result });
        });
        nothing
    }));
}

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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::store::tests::{session, t};
    use crate::store::writer::Acks;
    use crate::store::{SessionState, StoreOp, WriterConfig};

    /// `!untag` right after `!tag`: the read waits for the tag's commit, however slow the
    /// store thread is, and does not run on it.
    #[test]
    fn a_read_sees_the_writes_asked_before_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let w = Writer::spawn(Store::open(&path).unwrap(), WriterConfig::default(), Acks).unwrap();
        let opened = w.submit_acked(StoreOp::OpenSession(session(1, SessionState::Active)));
        assert_eq!(opened.blocking_recv(), Ok(Ok(())));
        // Hold the store thread, then queue the tag behind it.
        let (release, held) = mpsc::channel::<()>();
        let (nothing, _) = tokio::sync::oneshot::channel();
        w.read(Box::new(move |_| {
            let _ = held.recv_timeout(Duration::from_secs(30));
            nothing
        }));
        w.submit(StoreOp::TagsAdded {
            session_id: 1,
            tags: vec!["vip".into()],
            by: xmpp_parsers::jid::BareJid::new("alice@example.com").unwrap(),
            at: t(1),
        });
        let (answers, answered) = mpsc::channel();
        let (nothing, _) = tokio::sync::oneshot::channel();
        let q = Query::SessionTags {
            id: 7,
            session_id: 1,
        };
        after_writes(
            &w,
            nothing,
            rt.handle().clone(),
            path.clone(),
            q,
            move |i| {
                let _ = answers.send(i);
            },
        );
        // While the tag is not committed, no answer (before, the read ran at once without it).
        assert!(
            answered.recv_timeout(Duration::from_millis(300)).is_err(),
            "the read ran before the write asked before it was committed"
        );
        release.send(()).unwrap();
        let got = answered.recv_timeout(Duration::from_secs(10)).unwrap();
        let Input::QueryDone { id, result } = got else {
            panic!("not an answer: {got:?}");
        };
        assert_eq!(id, 7);
        let Ok(Answer::SessionTags(Some((row, tags)))) = result else {
            panic!("no session and tags: {result:?}");
        };
        assert_eq!((row.id, tags), (1, vec!["vip".to_string()]));
        w.shutdown().unwrap();
    }
}
