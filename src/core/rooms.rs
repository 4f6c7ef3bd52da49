//! The open rooms, by name. Ordered, so that whatever is sent room by room goes out in the same
//! order on every run; the session numbers (`#N`) are handed out here.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

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
    /// Open rooms per site, so that the capacity check on every join does not walk them all.
    per_site: BTreeMap<SiteId, usize>,
    /// Every room an address asked to join (admitted or waiting), by a hash of the address,
    /// and the same pairs by room: a superset of where it is, checked against the room when
    /// asked (so a hash collision only adds a room to check), so that counting a visitor's
    /// rooms does not walk every room. See [`Rooms::note_join`].
    /// The room keeps its own hashes ([`Room::join_hashes`]), for its removal.
    joins: BTreeMap<u64, Vec<RoomName>>,
    next_session_id: i64,
}

impl Rooms {
    pub fn new(next_session_id: i64) -> Rooms {
        Rooms {
            by_name: BTreeMap::new(),
            handled: BTreeMap::new(),
            per_site: BTreeMap::new(),
            joins: BTreeMap::new(),
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

    /// How many addresses and (address, room) pairs the join index holds.
    #[cfg(test)]
    pub fn noted(&self) -> (usize, usize) {
        let pairs = self.joins.values().map(Vec::len).sum();
        debug_assert_eq!(
            pairs,
            self.values().map(|r| r.join_hashes().len()).sum::<usize>()
        );
        (self.joins.len(), pairs)
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
        let occupants: Vec<FullJid> = room.occupants().map(|o| o.jid.clone()).collect();
        match self.by_name.insert(name.clone(), room) {
            Some(old) => self.unnote_all(&old),
            None => *self.per_site.entry(name.site().clone()).or_default() += 1,
        }
        for jid in &occupants {
            self.note_join(jid, &name);
        }
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
                let old = e.insert(room);
                for h in old.join_hashes() {
                    unnote(&mut self.joins, *h, name);
                }
                e.into_mut()
            }
            Entry::Vacant(e) => {
                *self.per_site.entry(name.site().clone()).or_default() += 1;
                e.insert(room)
            }
        }
    }

    pub fn remove(&mut self, name: &RoomName) -> Option<Room> {
        self.handled.remove(name);
        let room = self.by_name.remove(name)?;
        self.unnote_all(&room);
        if let Entry::Occupied(mut e) = self.per_site.entry(name.site().clone()) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        Some(room)
    }

    /// `jid` asked to join `name` and was not refused. Every join the room admits or parks
    /// must pass here (and the rooms restored from the store do, in `restore`): the count in
    /// `joined_elsewhere` only looks at the rooms noted.
    pub fn note_join(&mut self, jid: &FullJid, name: &RoomName) {
        let h = jid_hash(jid);
        let Some(room) = self.by_name.get_mut(name) else {
            return;
        };
        if room.add_join_hash(h) {
            self.joins.entry(h).or_default().push(name.clone());
        }
    }

    /// `jid` left `name`: forget the pair unless the room still has an occupant under the
    /// same hash, or parks a join of `jid`.
    pub fn note_leave(&mut self, jid: &FullJid, name: &RoomName) {
        let h = jid_hash(jid);
        let Some(room) = self.by_name.get_mut(name) else {
            return;
        };
        if room.occupants().any(|o| jid_hash(&o.jid) == h) || room.is_waiting(jid) {
            return;
        }
        room.remove_join_hash(h);
        self.unnote(h, name);
    }

    fn unnote(&mut self, h: u64, name: &RoomName) {
        unnote(&mut self.joins, h, name);
    }

    /// A room leaves (or is replaced): none of its pairs stay in the index.
    fn unnote_all(&mut self, room: &Room) {
        for h in room.join_hashes() {
            unnote(&mut self.joins, *h, room.name());
        }
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
        let n = self.per_site.get(site).copied().unwrap_or(0);
        debug_assert_eq!(n, self.values().filter(|r| r.name().site() == site).count());
        n
    }

    /// How many rooms other than `except` this address has joined (or waits to join).
    pub fn joined_elsewhere(&self, jid: &FullJid, except: &RoomName) -> usize {
        let inside = |r: &Room| {
            r.name() != except && (r.joined_occupant(jid).is_some() || r.is_waiting(jid))
        };
        let n = self
            .joins
            .get(&jid_hash(jid))
            .into_iter()
            .flatten()
            .filter_map(|name| self.by_name.get(name))
            .filter(|r| inside(r))
            .count();
        debug_assert_eq!(n, self.values().filter(|r| inside(r)).count());
        n
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

/// The join index's key: fixed (`DefaultHasher::new` has fixed keys), so runs are the same.
fn jid_hash(jid: &FullJid) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    jid.as_str().hash(&mut h);
    h.finish()
}

fn unnote(joins: &mut BTreeMap<u64, Vec<RoomName>>, h: u64, name: &RoomName) {
    if let Entry::Occupied(mut e) = joins.entry(h) {
        e.get_mut().retain(|n| n != name);
        if e.get().is_empty() {
            e.remove();
        }
    }
}
