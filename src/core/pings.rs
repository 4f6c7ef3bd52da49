//! The pings we send to occupants to learn whether they are still there (after a reconnect,
//! and when a second visitor address wants the room), by IQ id.

use std::collections::BTreeMap;

use xmpp_parsers::jid::{FullJid, Jid};

use crate::address::RoomName;
use crate::time::Timestamp;

/// How long we wait for an occupant to answer a ping before we decide.
pub const PING_TIMEOUT_MS: i64 = 10_000;

/// Why we pinged someone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPing {
    pub room: RoomName,
    pub jid: FullJid,
    pub sent: Timestamp,
}

#[derive(Debug, Default)]
pub struct Pings {
    by_id: BTreeMap<String, PendingPing>,
}

impl Pings {
    /// Is a ping to `jid` about `room` already in flight?
    pub fn in_flight(&self, room: &RoomName, jid: &FullJid) -> bool {
        self.by_id
            .values()
            .any(|p| &p.room == room && &p.jid == jid)
    }

    pub fn sent(&mut self, id: String, ping: PendingPing) {
        self.by_id.insert(id, ping);
    }

    /// The ping this answers, if `from` is the address we pinged (the server stamps `from`,
    /// so an answer from anyone else is not theirs).
    pub fn answered(&mut self, id: &str, from: Option<&Jid>) -> Option<PendingPing> {
        let p = self.by_id.get(id)?;
        if from.and_then(|f| f.try_as_full().ok()) != Some(&p.jid) {
            return None;
        }
        self.by_id.remove(id)
    }

    /// Pings unanswered for [`PING_TIMEOUT_MS`], oldest id first.
    pub fn expired(&mut self, now: Timestamp) -> Vec<PendingPing> {
        let ids: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, p)| now.millis().saturating_sub(p.sent.millis()) >= PING_TIMEOUT_MS)
            .map(|(id, _)| id.clone())
            .collect();
        ids.iter().filter_map(|id| self.by_id.remove(id)).collect()
    }

    pub fn forget_room(&mut self, room: &RoomName) {
        self.by_id.retain(|_, p| &p.room != room);
    }

    pub fn forget_jid(&mut self, jid: &FullJid) {
        self.by_id.retain(|_, p| &p.jid != jid);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn clear(&mut self) {
        self.by_id.clear();
    }
}
