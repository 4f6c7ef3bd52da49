//! History older than a room holds in memory. A join that wants more lines than memory has
//! (and memory has dropped some) gets an [`Output::Replay`](super::Output) in the join
//! sequence, where those lines belong: after the presences, before the lines from memory and
//! the subject. The shell hands it to the store thread in its place among the writes and
//! stanzas, which reads the lines stored before the oldest one in memory and sends them (with
//! [`Replay::stanzas`]) in that place. Everything before it in the queue is committed by then,
//! and the read stops at the oldest line memory sends, so no line comes twice or not at all.

use xmpp_parsers::jid::{BareJid, FullJid};
use xmpp_parsers::stanza::Stanza;

use super::room::HistoryItem;
use super::session::MessageRecord;
use super::stanzas;
use crate::time::Timestamp;

/// The most lines a join gets from the store (a `maxstanzas` above it gets this many).
pub const STORED_HISTORY_MAX: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub session_id: i64,
    pub room: BareJid,
    pub to: FullJid,
    /// Only lines stored before this one (by its stanza-id): the oldest that memory sends.
    pub before: String,
    /// Only lines said after this instant (`<history seconds|since>`).
    pub after: Option<Timestamp>,
    /// The newest this many of them.
    pub max: usize,
}

impl Replay {
    /// The history stanzas for the stored `lines` (oldest first), as memory's would be.
    pub fn stanzas(&self, lines: Vec<MessageRecord>) -> Vec<Stanza> {
        lines
            .into_iter()
            .filter_map(HistoryItem::of_record)
            .filter_map(|item| history_stanza(&self.room, &self.to, &item))
            .collect()
    }
}

/// One line of history for `to`, from `room/nick`, with its delay stamp and stanza-id.
pub(super) fn history_stanza(room: &BareJid, to: &FullJid, item: &HistoryItem) -> Option<Stanza> {
    let from = room.with_resource_str(&item.nick).ok()?;
    Some(
        stanzas::groupchat_text(stanzas::GroupchatText {
            from,
            to: to.clone(),
            id: item.id.clone(),
            body: &item.body,
            lang: item.lang.clone(),
            stanza_id: &item.stanza_id,
            room,
            kept: vec![],
            delayed: Some(item.at),
        })
        .into(),
    )
}
