//! The open rooms, by name. Ordered, so that whatever is sent room by room goes out in the same
//! order on every run; the session numbers (`#N`) are handed out here.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use xmpp_parsers::jid::{BareJid, FullJid};

use super::room::Room;
use crate::address::{RoomName, SiteId};
use crate::time::Timestamp;

#[derive(Debug)]
pub struct Rooms {
    by_name: BTreeMap<RoomName, Room>,
    /// Who has each CHATTING room, so that counting a staff member's chats does not walk
    /// every room (most are visitors browsing). Kept by [`Rooms::note_handler`].
    handled: BTreeMap<RoomName, BareJid>,
    next_session_id: i64,
}

impl Rooms {
    pub fn new(next_session_id: i64) -> Rooms {
        Rooms {
            by_name: BTreeMap::new(),
            handled: BTreeMap::new(),
            next_session_id: next_session_id.max(1),
        }
    }

    pub fn get(&self, name: &RoomName) -> Option<&Room> {
        self.by_name.get(name)
    }

    pub fn get_mut(&mut self, name: &RoomName) -> Option<&mut Room> {
        self.by_name.get_mut(name)
    }

    /// In name order.
    pub fn values(&self) -> impl Iterator<Item = &Room> {
        self.by_name.values()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Room> {
        self.by_name.values_mut()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The room of an open session.
    pub fn by_session(&self, session_id: i64) -> Option<&Room> {
        self.values().find(|r| r.session_id() == session_id)
    }

    pub fn by_session_mut(&mut self, session_id: i64) -> Option<&mut Room> {
        self.values_mut().find(|r| r.session_id() == session_id)
    }

    /// A room restored from the store.
    pub fn restore(&mut self, room: Room) {
        self.next_session_id = self
            .next_session_id
            .max(room.session_id().saturating_add(1));
        let name = room.name().clone();
        self.by_name.insert(name.clone(), room);
        self.note_handler(&name);
    }

    /// Opens a new session in a new room for `visitor`.
    pub fn open(
        &mut self,
        name: &RoomName,
        component: &BareJid,
        visitor: &FullJid,
        now: Timestamp,
    ) -> &mut Room {
        let id = self.next_session_id;
        self.next_session_id = self.next_session_id.saturating_add(1);
        let room = Room::open(id, name.clone(), name.jid(component), visitor, now);
        tracing::info!(session = id, room = %room.jid(), "session opened");
        match self.by_name.entry(name.clone()) {
            Entry::Occupied(mut e) => {
                e.insert(room);
                e.into_mut()
            }
            Entry::Vacant(e) => e.insert(room),
        }
    }

    pub fn remove(&mut self, name: &RoomName) -> Option<Room> {
        self.handled.remove(name);
        self.by_name.remove(name)
    }

    /// The room's state or staff may have changed: who has it now, if anyone.
    pub fn note_handler(&mut self, name: &RoomName) {
        let handler = self
            .by_name
            .get(name)
            .filter(|r| r.state() == crate::core::session::SessionState::Chatting)
            .and_then(|r| r.handler());
        match handler {
            Some(h) => {
                self.handled.insert(name.clone(), h);
            }
            None => {
                self.handled.remove(name);
            }
        }
    }

    /// Open sessions on one site.
    pub fn on_site(&self, site: &SiteId) -> usize {
        self.values().filter(|r| r.name().site() == site).count()
    }

    /// How many rooms other than `except` this address has joined.
    pub fn joined_elsewhere(&self, jid: &FullJid, except: &RoomName) -> usize {
        self.values()
            .filter(|r| {
                r.name() != except && (r.joined_occupant(jid).is_some() || r.is_waiting(jid))
            })
            .count()
    }

    /// Names of the rooms that satisfy `pred`, in name order (to act on them one by one).
    pub fn names_where(&self, pred: impl Fn(&Room) -> bool) -> Vec<RoomName> {
        self.values()
            .filter(|r| pred(r))
            .map(|r| r.name().clone())
            .collect()
    }

    /// How many chats each staff member has (CHATTING rooms they handle), on every site.
    pub fn loads(&self) -> BTreeMap<BareJid, usize> {
        let mut loads = BTreeMap::new();
        for (name, h) in &self.handled {
            // An entry can outlive its handler without a state change (the room emptied and
            // waits to close): only a room that has them now counts.
            let live = self.by_name.get(name).is_some_and(|r| {
                r.state() == crate::core::session::SessionState::Chatting
                    && r.handler().as_ref() == Some(h)
            });
            if live {
                *loads.entry(h.clone()).or_insert(0) += 1;
            }
        }
        loads
    }
}
