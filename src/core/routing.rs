//! Who is offered a waiting chat. `broadcast`: every available staff member of the site under
//! their cap, at once, the first to answer has it, and the chat is announced again to them
//! every `offer_timeout_secs`. `round-robin` and `least-busy`: one at a time; the offer moves
//! on when it runs out, when its holder passes (`!pass N`) or stops being available, and
//! the round starts over once everyone had their turn. Nobody at their cap (`max_chats`) is
//! offered anything, and nobody at it can take a chat.

use std::collections::BTreeMap;

use xmpp_parsers::jid::{BareJid, Jid};

use super::room::Room;
use super::session::SessionState;
use super::{Core, Effects};
use crate::address::{RoomName, SiteId};
use crate::config::Routing;
use crate::time::Timestamp;

/// Whose turn it was last, per site (round-robin and the tie-break of least-busy).
#[derive(Debug, Default)]
pub struct Turns {
    last: BTreeMap<SiteId, BareJid>,
}

impl Turns {
    /// `staff` in the order of the next turn: those after the last one offered first.
    fn order<'a>(
        &self,
        site: &SiteId,
        staff: impl IntoIterator<Item = &'a BareJid>,
    ) -> Vec<BareJid> {
        let all: Vec<BareJid> = staff.into_iter().cloned().collect();
        let start = self
            .last
            .get(site)
            .and_then(|l| all.iter().position(|s| s > l))
            .unwrap_or(0);
        all[start..].iter().chain(&all[..start]).cloned().collect()
    }

    fn took(&mut self, site: &SiteId, staff: &BareJid) {
        self.last.insert(site.clone(), staff.clone());
    }
}

impl Core {
    /// How many chats `staff` has now, with `loads` from [`Rooms::loads`].
    fn load_of(loads: &BTreeMap<BareJid, usize>, staff: &BareJid) -> usize {
        loads.get(staff).copied().unwrap_or(0)
    }

    /// Why `staff` cannot take another chat of `site`, if they are at their cap.
    pub(super) fn at_cap(&self, staff: &BareJid, site: &SiteId) -> Option<String> {
        let info = self.config.sites.get(site)?;
        let cap = info.cap_of(staff);
        let load = Self::load_of(&self.rooms.loads(), staff);
        if load < cap {
            return None;
        }
        let whence = match info.profiles.get(staff).and_then(|p| p.max_chats) {
            Some(_) => "max_chats in your staff entry".to_string(),
            None => format!("max_chats_per_staff of {}", info.name),
        };
        let chats = if load == 1 { "chat" } else { "chats" };
        Some(format!(
            "You have {load} {chats}, your limit ({whence} is {cap}). Finish one first (!finish N)."
        ))
    }

    /// The site's staff who may be offered `room` now, in the routing's order: available,
    /// under their cap, and not passed in this round.
    fn eligible(&self, room: &Room, loads: &BTreeMap<BareJid, usize>) -> Vec<BareJid> {
        let site_id = room.name().site();
        let Some(site) = self.config.sites.get(site_id) else {
            return Vec::new();
        };
        let free = |s: &BareJid| {
            self.staff.is_available(s)
                && Self::load_of(loads, s) < site.cap_of(s)
                && !room.has_passed(s)
        };
        let mut order = self
            .turns
            .order(site_id, site.staff.iter().filter(|s| free(s)));
        if site.desk.routing == Routing::LeastBusy {
            // Stable: equal loads keep the turn order.
            order.sort_by_key(|s| Self::load_of(loads, s));
        }
        order
    }

    /// For a visitor's message about to be posted to `name`: the staff who get it and the
    /// offer (all who may, or the one whose turn it is). None while someone has the chat.
    pub(super) fn offer_targets(&self, name: &RoomName) -> Vec<BareJid> {
        let (Some(room), Some(site)) = (self.rooms.get(name), self.config.sites.get(name.site()))
        else {
            return Vec::new();
        };
        if matches!(room.state(), SessionState::Chatting | SessionState::Closed) {
            return Vec::new();
        }
        let eligible = self.eligible(room, &self.rooms.loads());
        match (site.desk.routing, room.offer_holder()) {
            (Routing::Broadcast, _) => eligible,
            (_, Some(holder)) => vec![holder.clone()],
            (_, None) => eligible.into_iter().take(1).collect(),
        }
    }

    /// After a message was posted: whose turn it was.
    pub(super) fn note_turn(&mut self, name: &RoomName) {
        if let Some(holder) = self.rooms.get(name).and_then(|r| r.offer_holder()).cloned() {
            self.turns.took(name.site(), &holder);
        }
    }

    /// Every waiting chat, oldest first: offers that ran out move on, chats nobody holds go
    /// to whoever can take them now, and broadcast chats are announced again when due.
    pub(super) fn route_waiting(&mut self, now: Timestamp, out: &mut Effects) {
        let mut waiting: Vec<(i64, RoomName)> = self
            .rooms
            .values()
            .filter(|r| r.state() == SessionState::Active)
            .map(|r| (r.session_id(), r.name().clone()))
            .collect();
        waiting.sort();
        if waiting.is_empty() {
            return;
        }
        // Offers do not change who has how many chats: counted once for every room.
        let loads = self.rooms.loads();
        for (_, name) in waiting {
            self.route(now, &name, &loads, out);
        }
    }

    /// One waiting chat: see [`Core::route_waiting`]. `loads` from [`Rooms::loads`].
    pub(super) fn route(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        loads: &BTreeMap<BareJid, usize>,
        out: &mut Effects,
    ) {
        let Some(site) = self.config.sites.get(name.site()) else {
            return;
        };
        let (routing, timeout) = (site.desk.routing, site.offer_timeout_ms());
        let Some(room) = self.rooms.get(name) else {
            return;
        };
        if room.state() != SessionState::Active {
            return;
        }
        let eligible = self.eligible(room, loads);
        if routing == Routing::Broadcast {
            return self.announce(now, name, &eligible, timeout, out);
        }
        if let Some(holder) = room.offer_holder().cloned() {
            let ran_out = room.offer_ran_out(now, timeout);
            if !ran_out && self.staff.is_available(&holder) {
                return;
            }
            let n = room.session_id();
            if let Some(r) = self.rooms.get_mut(name) {
                r.pass(&holder);
            }
            if ran_out {
                self.desk_says(&holder, &format!("#{n} went to the next person: no answer in {} s. You can still take it: !accept {n}.", timeout / 1000), out);
            }
        }
        self.offer_next(now, name, timeout, loads, out);
    }

    /// Gives the offer of `name` (held by nobody now) to the next eligible staff member,
    /// starting a new round once everyone passed and the last offer is `timeout` old.
    fn offer_next(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        timeout: i64,
        loads: &BTreeMap<BareJid, usize>,
        out: &mut Effects,
    ) {
        let Some(room) = self.rooms.get(name) else {
            return;
        };
        let mut next = self.eligible(room, loads).into_iter().next();
        if next.is_none() && room.announced_before(now, timeout) {
            if let Some(r) = self.rooms.get_mut(name) {
                r.new_round();
            }
            next = self
                .rooms
                .get(name)
                .and_then(|r| self.eligible(r, loads).into_iter().next());
        }
        let Some(next) = next else {
            return;
        };
        self.offer_or_remind(now, name, &next, out);
        if let Some(r) = self.rooms.get_mut(name) {
            r.hold_offer(&next, now);
        }
        self.turns.took(name.site(), &next);
    }

    /// Broadcast: the chat to every eligible staff member not offered it yet, and a reminder to
    /// those who were, every `timeout`.
    fn announce(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        eligible: &[BareJid],
        timeout: i64,
        out: &mut Effects,
    ) {
        let Some(room) = self.rooms.get(name) else {
            return;
        };
        let fresh: Vec<BareJid> = eligible
            .iter()
            .filter(|s| !room.was_offered_to(s))
            .cloned()
            .collect();
        let remind = room.announced_before(now, timeout);
        let mut told = false;
        for s in eligible {
            if fresh.contains(s) || remind {
                self.offer_or_remind(now, name, s, out);
                told = true;
            }
        }
        if let (true, Some(r)) = (told || remind, self.rooms.get_mut(name)) {
            r.announced(now);
        }
    }

    /// The full offer to someone who has not had it, a reminder to someone who has.
    fn offer_or_remind(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        staff: &BareJid,
        out: &mut Effects,
    ) {
        let desk = Jid::from(self.config.component.clone());
        let Some(site) = self.config.sites.get(name.site()) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        if room.was_offered_to(staff) {
            let note = room.reminder_note(&site.name, now);
            out.send(super::stanzas::chat(desk, Jid::from(staff.clone()), &note));
        } else {
            let note = room.offer_note(&site.name);
            room.offer_to(&desk, staff, &note, out);
        }
    }

    /// `!pass N`: the sender leaves waiting chat N to others.
    pub(super) fn pass_chat(
        &mut self,
        now: Timestamp,
        staff: &BareJid,
        name: &RoomName,
        out: &mut Effects,
    ) -> String {
        let Some(room) = self.rooms.get_mut(name) else {
            return "That chat is closed.".into();
        };
        let n = room.session_id();
        if room.state() != SessionState::Active {
            return match room.staff_present() {
                Some(h) => format!("#{n} is not waiting: {} has it.", h.nick),
                None => format!("#{n} is not waiting: the visitor has not written yet."),
            };
        }
        let held = room.offer_holder() == Some(staff);
        room.pass(staff);
        let routing = self.config.sites.get(name.site()).map(|s| s.desk.routing);
        if routing == Some(Routing::Broadcast) {
            return format!(
                "#{n} passed: you get no more reminders of it (!accept {n} still takes it)."
            );
        }
        if held {
            let loads = self.rooms.loads();
            let timeout = self
                .config
                .sites
                .get(name.site())
                .map_or(0, |s| s.offer_timeout_ms());
            self.offer_next(now, name, timeout, &loads, out);
        }
        match self.rooms.get(name).and_then(|r| r.offer_holder()) {
            Some(h) if h != staff => format!("#{n} passed: it is offered to the next person."),
            _ => {
                format!("#{n} passed: nobody else can take it now; it waits and is offered again.")
            }
        }
    }
}
