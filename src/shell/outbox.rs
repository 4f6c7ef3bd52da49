//! Outgoing stanzas in the order the core produced them. A stanza that follows a `Persist`
//! waits until that write is committed, so nobody sees a message that is not on disk; the
//! writes themselves are handed to the store thread at once, so many commits share a batch.

use std::collections::VecDeque;

use xmpp_parsers::stanza::Stanza;

use crate::core::Output;
use crate::store::{Ack, Writer};

enum Item {
    Send(Stanza),
    Wait {
        ack: Ack,
        then: Vec<Stanza>,
        or_else: Vec<Stanza>,
        committed: Option<bool>,
        /// Told back to the core if the write fails: (session id, the message's stanza id,
        /// or None for the session's own row).
        undo: Option<(i64, Option<String>)>,
    },
}

/// Work for the shell's helpers rather than the link: admin API calls and store reads.
pub enum Job {
    Api(crate::core::roster::ApiCall),
    Query(crate::core::commands::Query),
}

#[derive(Default)]
pub struct Outbox {
    queue: VecDeque<Item>,
    /// Taken by the session loop after each push.
    pub jobs: Vec<Job>,
    /// Writes that failed (session id, stanza id or None for a session row): the core is told.
    pub not_stored: Vec<(i64, Option<String>)>,
}

impl Outbox {
    /// Takes the core's outputs: writes go to the store thread now, stanzas queue up.
    pub fn push(&mut self, outputs: Vec<Output>, writer: &Writer) {
        for o in outputs {
            match o {
                Output::Send(s) => self.queue.push_back(Item::Send(s)),
                Output::Store(op) => writer.submit(op),
                Output::Persist { op, then, or_else } => {
                    let undo = match &op {
                        crate::store::StoreOp::AppendMessage(row) => {
                            Some((row.session_id, Some(row.stanza_id.clone())))
                        }
                        crate::store::StoreOp::OpenSession(row) => Some((row.id, None)),
                        _ => None,
                    };
                    let ack = writer.submit_acked(op);
                    self.queue.push_back(Item::Wait {
                        ack,
                        then,
                        or_else,
                        committed: None,
                        undo,
                    });
                }
                Output::Api(call) => self.jobs.push(Job::Api(call)),
                Output::Query(q) => self.jobs.push(Job::Query(q)),
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Stanzas that may go out now, in order: everything up to the first unfinished write.
    pub fn ready(&mut self) -> Vec<Stanza> {
        let mut out = Vec::new();
        while let Some(front) = self.queue.front_mut() {
            match front {
                Item::Send(_) => {}
                Item::Wait { ack, committed, .. } => {
                    if committed.is_none() {
                        match ack.try_recv() {
                            Ok(r) => *committed = Some(log_failure(r)),
                            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => break,
                            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                                *committed = Some(false)
                            }
                        }
                    }
                }
            }
            match self.queue.pop_front() {
                Some(Item::Send(s)) => out.push(s),
                Some(Item::Wait {
                    then,
                    or_else,
                    committed,
                    undo,
                    ..
                }) => {
                    if committed == Some(true) {
                        out.extend(then)
                    } else {
                        self.not_stored.extend(undo);
                        out.extend(or_else)
                    }
                }
                None => break,
            }
        }
        out
    }

    /// Resolves when the write at the head of the queue is decided (never, if there is none).
    /// Cancel-safe: the receiver stays in the queue if this future is dropped.
    pub async fn head_decided(&mut self) {
        match self.queue.front_mut() {
            Some(Item::Wait { ack, committed, .. }) if committed.is_none() => {
                let r = ack.await;
                *committed = Some(match r {
                    Ok(r) => log_failure(r),
                    Err(_) => false,
                });
            }
            _ => std::future::pending::<()>().await,
        }
    }

    /// Dropped on disconnect: whatever was not sent cannot be sent on a new stream.
    pub fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        n
    }
}

fn log_failure(r: Result<(), String>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "a message could not be stored; the sender is told and nobody else sees it");
            false
        }
    }
}
