//! IQs: disco#info/items and ping on the domain, rooms and occupants (XEP-0410 self-ping),
//! version on the domain, `service-unavailable` for everything else, and the answers to the
//! pings we send to check who is still in a room.

use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{FullJid, Jid};
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};
use xmpp_parsers::version::VersionResult;

use super::message::means_gone;
use super::pings::PendingPing;
use super::refusal::Refusal;
use super::stanzas::{self, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_SID, NS_VERSION};
use super::{Core, Effects};
use crate::address::{RoomName, Target};
use crate::time::Timestamp;

const DOMAIN_FEATURES: &[&str] = &[
    "http://jabber.org/protocol/muc",
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_PING,
    NS_VERSION,
    NS_SID,
    stanzas::NS_COMMANDS,
];

const ROOM_FEATURES: &[&str] = &[
    "http://jabber.org/protocol/muc",
    "muc_semianonymous",
    "muc_temporary",
    "muc_unmoderated",
    "muc_open",
    "muc_unsecured",
    "http://jabber.org/protocol/muc#self-ping-optimization",
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_PING,
    NS_SID,
];

type Answer = Result<Option<Element>, Refusal>;

fn unavailable() -> Refusal {
    Refusal::cancel(
        DefinedCondition::ServiceUnavailable,
        "This request is not supported here.",
    )
}

fn not_found(text: &str) -> Refusal {
    Refusal::cancel(DefinedCondition::ItemNotFound, text)
}

/// An error answer, for the log: its condition and text.
fn error_text(e: &StanzaError) -> String {
    format!(
        "{:?}: {}",
        e.defined_condition,
        e.texts.values().next().cloned().unwrap_or_default()
    )
}

fn is(payload: &Element, name: &str, ns: &str) -> bool {
    payload.is(name, ns)
}

fn empty_items() -> Element {
    Element::builder("query", NS_DISCO_ITEMS).build()
}

/// An IQ get or set, taken apart once.
struct Request {
    get: bool,
    from: Jid,
    to: Jid,
    id: String,
    payload: Element,
}

impl Core {
    pub(super) fn handle_iq(&mut self, now: Timestamp, iq: Iq, out: &mut Effects) {
        let (get, from, to, id, payload) = match iq {
            Iq::Get {
                from,
                to,
                id,
                payload,
            } => (true, from, to, id, payload),
            Iq::Set {
                from,
                to,
                id,
                payload,
            } => (false, from, to, id, payload),
            Iq::Result { from, id, .. } => {
                if !self.roster_iq_answered(now, &id, from.as_ref(), None, out)
                    && !self.ping_answered(now, &id, from.as_ref(), None, out)
                    && !self.staff_ping_answered(now, &id, from.as_ref(), false, out)
                {
                    self.unmatched_answer(now, &id, from.as_ref());
                }
                return;
            }
            Iq::Error {
                from,
                id,
                error,
                payload,
                ..
            } => {
                let echoed = payload.as_ref().is_some_and(|p| is(p, "ping", NS_PING));
                let text = error_text(&error);
                let gone = echoed && means_gone(&error);
                if !self.roster_iq_answered(now, &id, from.as_ref(), Some(text), out)
                    && !self.ping_answered(now, &id, from.as_ref(), Some((error, echoed)), out)
                    && !self.staff_ping_answered(now, &id, from.as_ref(), gone, out)
                {
                    self.unmatched_answer(now, &id, from.as_ref());
                }
                return;
            }
        };
        // Servers always stamp both; without them there is nobody to answer.
        let (Some(from), Some(to)) = (from, to) else {
            return;
        };
        self.handle_iq_request(
            now,
            Request {
                get,
                from,
                to,
                id,
                payload,
            },
            out,
        );
    }

    fn handle_iq_request(&mut self, now: Timestamp, r: Request, out: &mut Effects) {
        let target = Target::of(&r.to, &self.config.component);
        if matches!(target, Target::Domain)
            && !r.get
            && is(&r.payload, "command", stanzas::NS_COMMANDS)
        {
            self.handle_adhoc(now, r.from, r.id, &r.payload, out);
            return;
        }
        let answer = match target {
            Target::Domain => self.iq_to_domain(r.get, &r.payload, &r.from),
            Target::Room(name) => self.iq_to_room(r.get, &r.payload, &name),
            Target::Occupant(name, nick) => {
                self.iq_to_occupant(r.get, &r.payload, &name, &nick, &r.from)
            }
            Target::BadRoom(_) => Err(not_found(
                "No such room: visitor rooms are named <visitor>_<site>.",
            )),
            Target::Elsewhere => return,
        };
        match answer {
            Ok(payload) => out.send(stanzas::iq_result(r.to, r.from, r.id, payload)),
            Err(refusal) => out.send(refusal.iq(r.to, r.from, r.id)),
        }
    }

    fn iq_to_domain(&self, get: bool, payload: &Element, from: &Jid) -> Answer {
        if !get {
            return Err(unavailable());
        }
        if is(payload, "query", NS_DISCO_INFO) {
            if payload.attr("node").is_some() {
                return Err(not_found("No such node."));
            }
            Ok(Some(stanzas::disco_info("frontdesk", DOMAIN_FEATURES)))
        } else if is(payload, "query", NS_DISCO_ITEMS)
            && payload.attr("node") == Some(stanzas::NS_COMMANDS)
        {
            Ok(Some(self.adhoc_items(from)))
        } else if is(payload, "query", NS_DISCO_ITEMS) {
            // Visitor rooms are private: never list them.
            Ok(Some(empty_items()))
        } else if is(payload, "ping", NS_PING) {
            Ok(None)
        } else if is(payload, "query", NS_VERSION) {
            Ok(Some(
                VersionResult {
                    name: "frontdesk".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    os: None,
                }
                .into(),
            ))
        } else {
            Err(unavailable())
        }
    }

    fn iq_to_room(&self, get: bool, payload: &Element, name: &RoomName) -> Answer {
        let Some(site) = self.config.sites.get(name.site()) else {
            return Err(not_found(&format!(
                "There is no site \"{}\" on this service.",
                name.site()
            )));
        };
        if !get {
            return Err(unavailable());
        }
        if is(payload, "query", NS_DISCO_INFO) && payload.attr("node").is_none() {
            let title = format!("{} — visitor {}", site.name, name.visitor());
            let mut info = stanzas::disco_info(&title, ROOM_FEATURES);
            let available = site.staff.iter().any(|s| self.staff.is_available(s));
            info.append_child(super::widget::room_form(available, &site.desk.prechat));
            Ok(Some(info))
        } else if is(payload, "query", NS_DISCO_ITEMS) {
            Ok(Some(empty_items()))
        } else if is(payload, "ping", NS_PING) {
            Ok(None)
        } else {
            Err(unavailable())
        }
    }

    /// XEP-0410: a client pinging its own occupant address learns whether it is still joined.
    fn iq_to_occupant(
        &self,
        get: bool,
        payload: &Element,
        name: &RoomName,
        nick: &str,
        from: &Jid,
    ) -> Answer {
        let me = self
            .rooms
            .get(name)
            .and_then(|r| from.try_as_full().ok().and_then(|f| r.joined_occupant(f)));
        if get && is(payload, "ping", NS_PING) {
            return match me {
                Some(o) if o.nick == nick => Ok(None),
                Some(_) => Err(unavailable()),
                None => Err(Refusal::modify(
                    DefinedCondition::NotAcceptable,
                    "You are not in this room.",
                )),
            };
        }
        Err(unavailable())
    }

    /// Asks an occupant's client whether it is still there (at most one ping in flight each).
    pub(super) fn ping_occupant(
        &mut self,
        now: Timestamp,
        room: &RoomName,
        jid: &FullJid,
        out: &mut Effects,
    ) {
        if self.pings.in_flight(room, jid) {
            return;
        }
        let id = self.ids.iq("ping");
        let from = Jid::from(room.jid(&self.config.component));
        out.send(stanzas::ping(from, Jid::from(jid.clone()), id.clone()));
        self.pings.sent(
            id,
            PendingPing {
                room: room.clone(),
                jid: jid.clone(),
                sent: now,
            },
        );
    }

    /// An answer to one of our pings (with, for an error, whether it carries our ping back, as
    /// a server answering for a session that no longer exists does). Returns false if it was
    /// not the answer to one of our pings.
    ///
    /// An occupant is gone when the answer says so. But when the ping decides whether a second
    /// address may take a visitor's room, only the server's own answer counts: a client that
    /// does not implement ping may answer `service-unavailable` itself, and must not lose its
    /// room to a stranger for it.
    fn ping_answered(
        &mut self,
        now: Timestamp,
        id: &str,
        from: Option<&Jid>,
        error: Option<(StanzaError, bool)>,
        out: &mut Effects,
    ) -> bool {
        let Some(p) = self.pings.answered(id, from) else {
            return false;
        };
        let blocks_join = self
            .rooms
            .get(&p.room)
            .is_some_and(|r| r.join_waits_on(&p.jid));
        match error {
            Some((e, echoed)) if means_gone(&e) && (echoed || !blocks_join) => {
                self.occupant_lost(now, &p.room, &p.jid, out)
            }
            _ => {
                if blocks_join {
                    tracing::info!(room = %p.room, jid = %p.jid, "the bound visitor's client answered a ping: the waiting join is refused");
                }
                if let Some(room) = self.rooms.get_mut(&p.room) {
                    if room.visitor().map(|v| &v.jid) == Some(&p.jid) {
                        room.refuse_pending(out);
                    }
                }
            }
        }
        true
    }

    /// A result or error nobody here asked for, or from an address it was not asked of:
    /// dropped, counted, and its sender logged (once a minute each).
    fn unmatched_answer(&mut self, now: Timestamp, id: &str, from: Option<&Jid>) {
        self.unmatched = self.unmatched.saturating_add(1);
        let Some(from) = from else { return };
        if self.offenders.should_log(&from.to_bare(), now) {
            tracing::warn!(from = %from, id = %id.chars().take(64).collect::<String>(), "an IQ answer that matches nothing we asked of that address; dropped (logged once a minute per sender)");
        }
    }

    /// Unanswered pings: silence from an occupant that blocks a waiting join is not proof
    /// that anyone is gone (a client whose answer never reaches us, such as
    /// Strophe.js answering without a `to`): the waiting join is refused, the bound visitor
    /// keeps the room. The server sends their unavailable presence when their session ends.
    pub(super) fn expire_pings(&mut self, now: Timestamp, out: &mut Effects) {
        for p in self.pings.expired(now) {
            let Some(room) = self.rooms.get_mut(&p.room) else {
                continue;
            };
            if room.join_waits_on(&p.jid) {
                tracing::info!(room = %p.room, jid = %p.jid, "bound visitor did not answer a ping; the waiting join is refused, the room stays theirs");
                room.refuse_pending(out);
            }
        }
    }
}
