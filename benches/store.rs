//! Criterion micro-benchmarks of the store's commit, the largest single cost on the message path
//! (docs/benchmark-notes.md, round 5): a file database in WAL mode set up as the store thread
//! sets up its own, transcript lines committed one per transaction and ten per transaction.
//! `cargo bench --bench store`. The WAL is checkpointed outside the timed part, as the
//! checkpointer thread does beside the writer in production.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xmpp_parsers::jid::{BareJid, FullJid, Jid};

use frontdesk::address::SiteId;
use frontdesk::store::{MessageRecord, Role, SessionRecord, SessionState, Store, StoreOp};
use frontdesk::time::Timestamp;

const SESSIONS: i64 = 50;

fn open(dir: &tempfile::TempDir) -> Store {
    let mut store = Store::open(&dir.path().join("bench.sqlite3")).expect("open the database");
    store.disable_autocheckpoint().expect("pragma");
    store.trust_own_writes().expect("pragma");
    let at = Timestamp(1_795_000_000_000);
    let sessions: Vec<StoreOp> = (1..=SESSIONS)
        .map(|id| {
            StoreOp::OpenSession(SessionRecord {
                id,
                room: BareJid::new(&format!("v{id}_acme")).expect("a room"),
                site: SiteId::new("acme").expect("a site"),
                visitor: format!("v{id}"),
                state: SessionState::Chatting,
                staff: Some(BareJid::new("alice_acme@example.com").expect("a JID")),
                visitor_jid: Some(
                    FullJid::new(&format!("{id}@anon.example.com/web")).expect("a JID"),
                ),
                created_at: at,
                updated_at: at,
                closed_at: None,
            })
        })
        .collect();
    store.apply(sessions.iter()).expect("open the sessions");
    store
}

fn line(n: u64) -> StoreOp {
    let session_id = (n as i64 % SESSIONS) + 1;
    StoreOp::AppendMessage(MessageRecord {
        session_id,
        at: Timestamp(1_795_000_000_000 + n as i64),
        role: Role::Visitor,
        from_jid: Jid::new(&format!("v{session_id}_acme@chat.example.com/visitor")).expect("a JID"),
        nick: "visitor".into(),
        body: "Hello, I have a question about my order from last week.".into(),
        stanza_id: format!("6f1c2a3b-{n:012x}"),
        origin_id: Some(format!("o-{n}")),
    })
}

fn commits(c: &mut Criterion) {
    let mut g = c.benchmark_group("store/commit");
    for per_commit in [1u64, 10] {
        g.throughput(Throughput::Elements(per_commit));
        g.bench_function(format!("{per_commit} message(s) per commit"), |b| {
            let dir = tempfile::tempdir().expect("temporary directory");
            let mut store = open(&dir);
            let mut n = 0u64;
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for i in 0..iters {
                    let ops: Vec<StoreOp> = (0..per_commit).map(|k| line(n + k)).collect();
                    n += per_commit;
                    let t = Instant::now();
                    store.apply(ops.iter()).expect("commit");
                    timed += t.elapsed();
                    if i % 2000 == 1999 {
                        let _ =
                            store
                                .conn()
                                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                    }
                }
                timed
            });
        });
    }
    g.finish();
}

criterion_group!(benches, commits);
criterion_main!(benches);
