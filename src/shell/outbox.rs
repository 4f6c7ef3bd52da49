//! Turns the core's outputs into work. Writes and stanzas go to the store thread in the order
//! the core produced them; it commits, then sends (sender.rs), so a stanza that follows a write
//! never goes out before that write is on disk. Admin API calls and store reads go to the
//! shell's helpers.

use xmpp_parsers::stanza::Stanza;

use super::sender::{Delivery, Sender};
use crate::core::replay::Replay;
use crate::core::Output;
use crate::store::{messages, Store, Writer};

/// The store thread with the link's sender behind it.
pub type LinkWriter = Writer<Sender>;

/// Work for the shell's helpers rather than the link: admin API calls and store reads.
pub enum Job {
    Api(crate::core::roster::ApiCall),
    Query(crate::core::commands::Query),
}

#[derive(Default)]
pub struct Outbox {
    /// Taken by the session loop after each push.
    pub jobs: Vec<Job>,
}

impl Outbox {
    /// Hands the core's outputs on: writes and stanzas to the store thread, the rest to `jobs`.
    pub fn push(&mut self, outputs: Vec<Output>, writer: &LinkWriter) {
        let mut sends: Vec<Stanza> = Vec::new();
        let flush = |sends: &mut Vec<Stanza>| {
            if !sends.is_empty() {
                writer.item(Delivery::Send(std::mem::take(sends)));
            }
        };
        for o in outputs {
            match o {
                Output::Send(s) => sends.push(s),
                Output::Store(op) => {
                    flush(&mut sends);
                    writer.write(op, None);
                }
                Output::Persist { op, then, or_else } => {
                    flush(&mut sends);
                    writer.write(op, Some(Delivery::AfterWrite { then, or_else }));
                }
                Output::Api(call) => self.jobs.push(Job::Api(call)),
                Output::Query(q) => self.jobs.push(Job::Query(q)),
                Output::Replay(r) => {
                    flush(&mut sends);
                    writer.read(Box::new(move |store| {
                        Delivery::Send(older_history(store, &r))
                    }));
                }
            }
        }
        flush(&mut sends);
    }
}

/// The stanzas for a [`Replay`]: on a failed read the joiner gets only what memory had.
fn older_history(store: &Store, r: &Replay) -> Vec<Stanza> {
    match messages::said_before(store.conn(), r.session_id, &r.before, r.after, r.max) {
        Ok(lines) => r.stanzas(lines),
        Err(e) => {
            tracing::warn!(session = r.session_id, error = %e, "cannot read older history; the joiner gets what memory holds");
            Vec::new()
        }
    }
}
