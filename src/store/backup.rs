//! `frontdesk backup`: a consistent copy of the database while frontdesk runs, with SQLite's
//! online backup API. The copy is taken from one read transaction held for the whole backup:
//! in WAL mode a reader never blocks the writer, and holding the snapshot keeps the backup from
//! restarting each time frontdesk commits (which, stepped in pages under steady traffic, it
//! otherwise would forever). The cost is that the WAL cannot be checkpointed past that snapshot
//! until the backup ends, so it grows meanwhile.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{migrations, StoreError};

/// Pages copied per step (4 MiB with 4 KiB pages), with a short pause between steps so that a
/// large backup shares the disk with frontdesk's commits.
const PAGES_PER_STEP: i32 = 1024;
const PAUSE: Duration = Duration::from_millis(2);
/// Steps in a row that copied nothing (about 10 s of pauses) before giving up.
const MAX_STALLS: u32 = 5000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub path: PathBuf,
    pub schema_version: i64,
    pub sessions: i64,
    pub messages: i64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Copies the database at `src` to `dest`. Refuses an existing `dest` unless `overwrite`.
/// Writes to a temporary file beside `dest` and moves it there, so `dest` is never half a backup.
/// The copy is in rollback-journal mode: one self-contained file, whatever opens it.
pub fn backup(src: &Path, dest: &Path, overwrite: bool) -> Result<BackupReport, StoreError> {
    backup_in_steps(src, dest, overwrite, PAGES_PER_STEP)
}

fn backup_in_steps(
    src: &Path,
    dest: &Path,
    overwrite: bool,
    pages: i32,
) -> Result<BackupReport, StoreError> {
    let started = Instant::now();
    if !src.exists() {
        return Err(StoreError::Missing {
            path: src.to_path_buf(),
        });
    }
    if dest.exists() && !overwrite {
        return Err(StoreError::BackupExists {
            path: dest.to_path_buf(),
        });
    }
    let from =
        Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| {
            StoreError::Open {
                path: src.to_path_buf(),
                source,
            }
        })?;
    from.busy_timeout(Duration::from_secs(5))?;
    let tmp = temp_beside(dest);
    let result = copy(&from, &tmp, pages);
    let report = result.and_then(|(version, sessions, messages)| {
        place(&tmp, dest, overwrite)?;
        Ok(BackupReport {
            path: dest.to_path_buf(),
            schema_version: version,
            sessions,
            messages,
            bytes: std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0),
            elapsed: started.elapsed(),
        })
    });
    if report.is_err() {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(journal_of(&tmp));
    }
    report
}

/// The copy, from one snapshot of `from`; returns its version and row counts.
fn copy(from: &Connection, tmp: &Path, pages: i32) -> Result<(i64, i64, i64), StoreError> {
    create_private(tmp)?;
    let mut to = Connection::open(tmp).map_err(|source| StoreError::Open {
        path: tmp.to_path_buf(),
        source,
    })?;
    // The snapshot: a read transaction that lasts until `from` is dropped or commits.
    from.execute_batch("BEGIN DEFERRED")?;
    let counts = counts(from)?;
    {
        let b = Backup::new(from, &mut to)?;
        let mut stalled = 0;
        loop {
            match b.step(pages)? {
                StepResult::Done => break,
                StepResult::More => stalled = 0,
                // Busy or Locked: not expected from a held snapshot and a private file, but
                // never wait for ever.
                _ => {
                    stalled += 1;
                    if stalled > MAX_STALLS {
                        return Err(StoreError::Backup(
                            "no progress for 10 s: is another program locking the database or the backup file?".into(),
                        ));
                    }
                }
            }
            std::thread::sleep(PAUSE);
        }
    }
    from.execute_batch("COMMIT")?;
    // The source's header says WAL; a single file suits a backup better.
    to.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0))?;
    let ok: String = to.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if ok != "ok" {
        return Err(StoreError::Backup(format!(
            "the copy failed its integrity check ({ok}); the database itself may be damaged: run `PRAGMA integrity_check` on it"
        )));
    }
    Ok(counts)
}

/// Moves the finished copy to `dest`. Without `overwrite`, a hard link, which fails if
/// `dest` appeared meanwhile, rather than a rename, which would replace it.
fn place(tmp: &Path, dest: &Path, overwrite: bool) -> Result<(), StoreError> {
    let err = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::AlreadyExists => StoreError::BackupExists {
            path: dest.to_path_buf(),
        },
        _ => StoreError::BackupWrite {
            path: dest.to_path_buf(),
            source,
        },
    };
    if overwrite {
        return std::fs::rename(tmp, dest).map_err(err);
    }
    std::fs::hard_link(tmp, dest).map_err(err)?;
    let _ = std::fs::remove_file(tmp);
    Ok(())
}

/// The copy holds every chat: readable by its owner only, like the database (SQLite keeps
/// the file's mode when it writes into it).
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|source| StoreError::BackupWrite {
            path: path.to_path_buf(),
            source,
        })
}

fn counts(conn: &Connection) -> Result<(i64, i64, i64), StoreError> {
    let version = migrations::version(conn)?;
    let sessions = conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?;
    let messages = conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?;
    Ok((version, sessions, messages))
}

fn temp_beside(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(format!(".partial-{}", std::process::id()));
    PathBuf::from(name)
}

fn journal_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-journal");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{message, session};
    use crate::store::{Role, SessionState, Store, StoreOp};

    fn seeded(path: &Path, sessions: i64) -> Store {
        let mut store = Store::open(path).unwrap();
        let mut ops = Vec::new();
        for id in 1..=sessions {
            ops.push(StoreOp::OpenSession(session(id, SessionState::Active)));
            ops.push(StoreOp::AppendMessage(message(id, 1, Role::Visitor)));
        }
        store.apply(ops.iter()).unwrap();
        store
    }

    #[test]
    fn a_backup_opens_read_only_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fd.db");
        let _live = seeded(&db, 3);
        let dest = dir.path().join("copy.db");
        let r = backup(&db, &dest, false).unwrap();
        assert_eq!(
            (r.sessions, r.messages, r.schema_version),
            (3, 3, migrations::LATEST)
        );
        let copy = Store::open_read_only(&dest).unwrap();
        assert_eq!(copy.transcript(2).unwrap().len(), 1);
        assert!(matches!(
            backup(&db, &dest, false),
            Err(StoreError::BackupExists { .. })
        ));
        assert!(backup(&db, &dest, true).is_ok());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the copy is readable by others: {mode:o}");
        let nowhere = dir.path().join("no/such/dir/copy.db");
        let e = backup(&db, &nowhere, false).unwrap_err().to_string();
        assert!(e.contains("no/such/dir"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn writes_during_a_backup_neither_block_nor_tear_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fd.db");
        // Enough pages that the backup takes many steps.
        let mut live = seeded(&db, 5_000);
        let dest = dir.path().join("copy.db");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bg = {
            let (db, dest, stop) = (db.clone(), dest.clone(), stop.clone());
            std::thread::spawn(move || {
                let r = backup_in_steps(&db, &dest, false, 4);
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                r
            })
        };
        let mut n = 1;
        let mut writes = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            n += 1;
            let op = StoreOp::AppendMessage(message(1, n, Role::Staff));
            let t = Instant::now();
            live.apply(std::iter::once(&op)).unwrap();
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "a commit waited {:?}",
                t.elapsed()
            );
            writes += 1;
        }
        let r = bg.join().unwrap().unwrap();
        let copy = Store::open_read_only(&dest).unwrap();
        // The copy is one snapshot: its counts are those it reported, and session 1 holds a
        // prefix of what was written, with no gap.
        let lines = copy.transcript(1).unwrap();
        assert_eq!(r.messages, 5_000 + lines.len() as i64 - 1);
        assert!(writes > 10, "only {writes} writes while the backup ran");
    }
}
