//! The sans-I/O core: `handle(now, input) -> outputs`. Stanzas, ticks and "the link is up"
//! go in; stanzas to send and rows to store come out. It holds no sockets, no clock and no
//! `async`, so every rule here is tested by feeding it stanzas and reading what it answers.
//!
//! Each kind of stanza has its own handler module, in the manner of Prosody's mod_muc:
//! [`presence`] (joins, leaves, presence updates), [`message`] (groupchat to rooms), [`iq`]
//! (disco, ping, answers to our own pings). [`Out`] is the one seam everything leaves through.

pub mod commands;
mod iq;
pub mod limits;
mod message;
pub mod nick;
mod presence;
pub mod room;
pub mod roster;
mod staff;
pub mod stanzas;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use crate::address::{RoomName, SiteId};
use crate::config::{Config, Limits, RosterConfig};
use crate::store::{MessageRow, Role, SessionState, Snapshot, StoreOp};
use crate::time::Timestamp;

use room::{Emptied, HistoryItem, Occupant, Room};
use stanzas::Shown;

/// How long a room emptied by a lost link (server restart, dead client) keeps its session open
/// for the people in it to come back.
pub const REJOIN_GRACE_MS: i64 = 120_000;
/// How long a room everyone left keeps its session before it is CLOSED.
pub const CLOSE_LINGER_MS: i64 = 5_000;
/// How long we wait for an occupant to answer a ping before we decide.
pub const PING_TIMEOUT_MS: i64 = 10_000;

/// The part of the config the core needs, indexed for lookups.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub component: BareJid,
    pub sites: BTreeMap<SiteId, SiteInfo>,
    pub roster: RosterConfig,
    pub limits: Limits,
}

#[derive(Debug, Clone)]
pub struct SiteInfo {
    pub name: String,
    /// Ordered, so that what the core sends is the same on every run.
    pub staff: BTreeSet<BareJid>,
    /// Visitors must bring a token signed with this (see `crate::token`).
    pub token_secret: Option<crate::token::TokenSecret>,
}

impl CoreConfig {
    pub fn from_config(c: &Config) -> CoreConfig {
        CoreConfig {
            component: c.component.jid.clone(),
            sites: c
                .sites
                .iter()
                .map(|s| {
                    (
                        s.id.clone(),
                        SiteInfo {
                            name: s.name.clone(),
                            staff: s.staff.iter().cloned().collect(),
                            token_secret: s.token_secret.clone(),
                        },
                    )
                })
                .collect(),
            roster: c.roster.clone(),
            limits: c.limits,
        }
    }

    /// Every staff member of every site, once.
    pub fn all_staff(&self) -> Vec<BareJid> {
        let set: std::collections::BTreeSet<BareJid> = self
            .sites
            .values()
            .flat_map(|s| s.staff.iter().cloned())
            .collect();
        set.into_iter().collect()
    }

    /// Is this bare JID staff of any site other than `site`?
    fn staff_elsewhere(&self, jid: &BareJid, site: &SiteId) -> bool {
        self.sites
            .iter()
            .any(|(id, s)| id != site && s.staff.contains(jid))
    }
}

/// One thing that happened.
#[derive(Debug, PartialEq)]
pub enum Input {
    Stanza(Stanza),
    /// A stanza the parser rejected; only its header survived.
    Invalid(InvalidStanza),
    /// Time passed (the shell ticks about once a second).
    Tick,
    /// The link to the server is (again) up: re-check who is still in the rooms.
    Connected,
    /// The link to the server went down.
    Disconnected,
    /// The shell made an [`roster::ApiCall`]; `Err` carries what went wrong.
    ApiDone {
        id: String,
        result: Result<(), String>,
    },
    /// A write the core asked to be persisted failed: a message (refused instead of
    /// reflected: forget it) or, with no `stanza_id`, the row of a new session (close it).
    NotStored {
        session_id: i64,
        stanza_id: Option<String>,
    },
    /// The store answered a [`commands::Query`].
    QueryDone {
        id: u64,
        result: commands::TranscriptResult,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StanzaKind {
    Iq,
    Message,
    Presence,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStanza {
    pub kind: StanzaKind,
    pub from: Option<String>,
    pub to: Option<String>,
    pub id: Option<String>,
    pub type_: Option<String>,
    /// Why the parser refused it (for the log).
    pub reason: String,
}

/// What goes out instead when a `Persist` write fails. Built into stanzas only then: preparing
/// the refusal for every message cost ~16,000 instructions each (xso's conversion of the error).
#[derive(Debug, Clone, PartialEq)]
pub enum OrElse {
    Nothing,
    /// The sender's message could not be saved: tell them, so they can send it again.
    MessageNotSaved {
        room: Jid,
        to: Jid,
        id: Option<xmpp_parsers::message::Id>,
    },
}

impl OrElse {
    pub fn into_stanzas(self) -> Vec<Stanza> {
        match self {
            OrElse::Nothing => vec![],
            OrElse::MessageNotSaved { room, to, id } => vec![stanzas::message_error(
                room,
                to,
                id,
                stanzas::error(
                    xmpp_parsers::stanza_error::ErrorType::Wait,
                    xmpp_parsers::stanza_error::DefinedCondition::InternalServerError,
                    "Your message could not be saved, so it was not delivered. Please send it again.",
                ),
            )
            .into()],
        }
    }
}

/// One thing to do.
#[derive(Debug, PartialEq)]
pub enum Output {
    Send(Stanza),
    /// Write this; order matters, waiting for it does not.
    Store(StoreOp),
    /// Commit `op`, and only then send `then`; if the commit fails send `or_else` instead.
    /// This is how a reflected message is never lost: it is on disk before anyone sees it.
    Persist {
        op: StoreOp,
        then: Vec<Stanza>,
        or_else: OrElse,
    },
    /// Call ejabberd's admin API (off the socket reader) and report back with `Input::ApiDone`.
    Api(roster::ApiCall),
    /// Read from the store and report back with `Input::QueryDone`.
    Query(commands::Query),
}

/// The seam every output leaves through, in order; it also notes which rooms changed state,
/// for what that means to staff (see `after_state_changes`).
#[derive(Debug, Default)]
pub struct Out(Vec<Output>, Vec<RoomName>);

impl Out {
    pub fn send(&mut self, s: impl Into<Stanza>) {
        self.0.push(Output::Send(s.into()));
    }

    pub fn store(&mut self, op: StoreOp) {
        self.0.push(Output::Store(op));
    }

    pub fn persist(&mut self, op: StoreOp, then: Vec<Stanza>, or_else: OrElse) {
        self.0.push(Output::Persist { op, then, or_else });
    }
}

/// Why we pinged someone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingPing {
    room: RoomName,
    jid: FullJid,
    sent: Timestamp,
}

pub struct Core {
    config: CoreConfig,
    rooms: HashMap<RoomName, Room>,
    next_session_id: i64,
    pings: HashMap<String, PendingPing>,
    next_iq: u64,
    next_system: u64,
    staff: HashMap<BareJid, staff::StaffPresence>,
    roster: roster::RosterState,
    connected_at: Option<Timestamp>,
    queries: HashMap<u64, (BareJid, commands::ReplyTo)>,
    next_query: u64,
    offenders: limits::Offenders,
}

/// Told to the people of a room whose session could not be stored.
pub const UNSAVED_TEXT: &str =
    "This chat could not be saved (the server's storage is failing), so it was closed. Please try again in a few minutes.";

impl Core {
    /// Resumes from the store's snapshot. Rooms that come back with nobody in them get the
    /// rejoin grace period from `now`.
    pub fn new(config: CoreConfig, snapshot: Snapshot, now: Timestamp) -> Core {
        let mut core = Core {
            rooms: HashMap::new(),
            next_session_id: snapshot.next_session_id.max(1),
            pings: HashMap::new(),
            next_iq: 1,
            next_system: 1,
            staff: HashMap::new(),
            roster: roster::RosterState::new(
                config.roster.mode,
                config.roster.ejabberd_api.is_some(),
                (config.roster.remove_after_secs as i64).saturating_mul(1000),
                snapshot.roster_items.clone(),
            ),
            connected_at: None,
            queries: HashMap::new(),
            next_query: 1,
            offenders: limits::Offenders::default(),
            config,
        };
        let mut messages: HashMap<i64, Vec<MessageRow>> = HashMap::new();
        for m in snapshot.messages {
            messages.entry(m.session_id).or_default().push(m);
        }
        for session in snapshot.sessions {
            let Some(name) = Jid::new(&session.room)
                .ok()
                .and_then(|j| j.node().map(|n| n.as_str().to_string()))
                .and_then(|n| RoomName::parse(&n).ok())
            else {
                tracing::warn!(session = session.id, room = %session.room, "stored session has an unusable room name; skipping it");
                continue;
            };
            if !core.config.sites.contains_key(name.site()) {
                tracing::warn!(session = session.id, site = %name.site(), "stored session is for a site no longer in the config; leaving it as it is");
                continue;
            }
            let jid = name.jid(&core.config.component);
            let id = session.id;
            let mut room = Room::new(name.clone(), jid, session);
            for m in messages.remove(&id).unwrap_or_default() {
                let Ok(from) = FullJid::new(&m.from_jid) else {
                    continue;
                };
                if let Some(seq) = m
                    .stanza_id
                    .rsplit('-')
                    .next()
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    room.seq = room.seq.max(seq + 1);
                }
                room.visitor_wrote |= m.role == Role::Visitor;
                room.remember(HistoryItem {
                    at: m.at,
                    nick: m.nick,
                    role: m.role,
                    from,
                    body: m.body,
                    lang: Default::default(),
                    id: m.origin_id.map(xmpp_parsers::message::Id),
                    stanza_id: m.stanza_id,
                });
            }
            room.visitor_wrote |= room.session.state == SessionState::Active;
            core.rooms.insert(name, room);
        }
        for o in snapshot.occupants {
            let Ok(jid) = FullJid::new(&o.jid) else {
                continue;
            };
            if let Some(room) = core
                .rooms
                .values_mut()
                .find(|r| r.session.id == o.session_id)
            {
                room.occupants.push(Occupant {
                    jid,
                    nick: o.nick,
                    role: o.role,
                    shown: Shown::default(),
                    direct: o.direct,
                    bucket: Default::default(),
                    typing: Default::default(),
                });
            }
        }
        for room in core.rooms.values_mut() {
            if room.occupants.is_empty() {
                room.emptied = Some(Emptied::Lost(now));
            }
        }
        core
    }

    pub fn handle(&mut self, now: Timestamp, input: Input) -> Vec<Output> {
        let mut out = Out::default();
        let input = match input {
            Input::Stanza(s) => match limits::exceeded(&s) {
                Some(limit) => {
                    self.handle_over_limit(now, s, limit, &mut out);
                    self.after_state_changes(now, &mut out);
                    return out.0;
                }
                None => Input::Stanza(s),
            },
            other => other,
        };
        match input {
            Input::Stanza(Stanza::Presence(p)) => self.handle_presence(now, p, &mut out),
            Input::Stanza(Stanza::Message(m)) => self.handle_message(now, m, &mut out),
            Input::Stanza(Stanza::Iq(iq)) => self.handle_iq(now, iq, &mut out),
            Input::Invalid(bad) => self.handle_invalid(bad, &mut out),
            Input::Tick => self.handle_tick(now, &mut out),
            Input::Connected => self.handle_connected(now, &mut out),
            Input::Disconnected => self.handle_disconnected(now),
            Input::ApiDone { id, result } => {
                self.roster_answered(now, &id, result.err(), &mut out);
            }
            Input::QueryDone { id, result } => self.transcript_ready(id, result, &mut out),
            Input::NotStored {
                session_id,
                stanza_id: Some(stanza_id),
            } => self.forget_message(session_id, &stanza_id),
            Input::NotStored {
                session_id,
                stanza_id: None,
            } => self.unsaved_session(now, session_id, &mut out),
        }
        self.after_state_changes(now, &mut out);
        out.0
    }

    pub fn component(&self) -> &BareJid {
        &self.config.component
    }

    /// The state of a room's open session, if it has one.
    pub fn room_state(&self, room: &RoomName) -> Option<SessionState> {
        self.rooms.get(room).map(|r| r.session.state)
    }

    pub fn open_rooms(&self) -> usize {
        self.rooms.len()
    }

    /// A stanza we could not parse: answer `bad-request` when it has a sender and an id, and
    /// is not itself an error or a result (never answer an error with an error).
    fn handle_invalid(&mut self, bad: InvalidStanza, out: &mut Out) {
        let Some(from) = bad.from.as_deref().and_then(|f| Jid::new(f).ok()) else {
            return;
        };
        let Some(id) = bad.id.clone() else { return };
        if matches!(bad.type_.as_deref(), Some("error") | Some("result")) {
            return;
        }
        let about = bad
            .to
            .as_deref()
            .and_then(|t| Jid::new(t).ok())
            .filter(|t| t.domain() == self.config.component.domain())
            .unwrap_or_else(|| Jid::from(self.config.component.clone()));
        let err = stanzas::error(
            ErrorType::Modify,
            DefinedCondition::BadRequest,
            "This stanza is malformed and was not processed.",
        );
        match bad.kind {
            StanzaKind::Iq => out.send(stanzas::iq_error(about, from, id, err)),
            StanzaKind::Message => out.send(stanzas::message_error(
                about,
                from,
                Some(xmpp_parsers::message::Id(id)),
                err,
            )),
            StanzaKind::Presence => {
                let mut p =
                    xmpp_parsers::presence::Presence::new(xmpp_parsers::presence::Type::Error)
                        .with_from(about)
                        .with_to(from);
                p.id = Some(id);
                p.add_payload(err);
                out.send(p)
            }
        }
    }

    fn handle_tick(&mut self, now: Timestamp, out: &mut Out) {
        self.expire_pings(now, out);
        self.expire_direct_staff(now, out);
        self.roster_tick(now, out);
        let expired: Vec<RoomName> = self
            .rooms
            .values()
            .filter(|r| r.occupants.is_empty() && r.emptied.is_some_and(|e| e.closes_at() <= now))
            .map(|r| r.name.clone())
            .collect();
        for name in expired {
            self.close_room(&name, now, out);
        }
    }

    /// Rooms that emptied just before the link dropped were probably emptied by the server
    /// shutting down: give their people the full grace period to come back.
    fn handle_disconnected(&mut self, now: Timestamp) {
        self.connected_at = None;
        for room in self.rooms.values_mut() {
            if let Some(Emptied::Left(_)) = room.emptied {
                room.emptied = Some(Emptied::Lost(now));
            }
        }
    }

    /// After (re)connecting we cannot know who is still online: ask everyone.
    fn handle_connected(&mut self, now: Timestamp, out: &mut Out) {
        self.pings.clear();
        self.connected_at = Some(now);
        // One-to-one staff are followed through their presence instead.
        let targets: Vec<(RoomName, FullJid)> = self
            .rooms
            .values()
            .flat_map(|r| r.joined().map(|o| (r.name.clone(), o.jid.clone())))
            .collect();
        for (room, jid) in targets {
            self.ping_occupant(now, &room, &jid, out);
        }
        self.staff_connected(out);
        self.roster_connected(now, out);
    }

    /// A refused message must not come back later in someone's history.
    fn forget_message(&mut self, session_id: i64, stanza_id: &str) {
        if let Some(room) = self.rooms.values_mut().find(|r| r.session.id == session_id) {
            room.forget(stanza_id);
            tracing::warn!(
                session = session_id,
                stanza_id,
                "message not stored: refused and left out of the history"
            );
        }
    }

    /// A new session's row could not be written: rather than a chat that exists only in
    /// memory, the room is closed at once and its people told why.
    fn unsaved_session(&mut self, now: Timestamp, session_id: i64, out: &mut Out) {
        let Some(name) = self
            .rooms
            .values()
            .find(|r| r.session.id == session_id)
            .map(|r| r.name.clone())
        else {
            return;
        };
        tracing::error!(session = session_id, room = %name, "the new session could not be stored; closing the room");
        self.close_chat(now, &name, Some(UNSAVED_TEXT), out);
    }

    fn new_iq_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}-{}", self.next_iq);
        self.next_iq += 1;
        id
    }

    /// Writes a transcript-only line (not sent to the room) for events such as staff joining.
    fn system_line(&mut self, session_id: i64, now: Timestamp, body: String, out: &mut Out) {
        let stanza_id = format!("{session_id}-sys-{}", self.next_system);
        self.next_system += 1;
        out.store(StoreOp::AppendMessage(MessageRow {
            session_id,
            at: now,
            role: Role::System,
            from_jid: self.config.component.to_string(),
            nick: String::new(),
            body,
            stanza_id,
            origin_id: None,
        }));
    }

    fn write_session(room: &Room, out: &mut Out) {
        out.store(StoreOp::UpdateSession(room.session.clone()));
        out.1.push(room.name.clone());
    }

    /// Closes the room's session and forgets the room; the row and transcript stay.
    fn close_room(&mut self, name: &RoomName, now: Timestamp, out: &mut Out) {
        let Some(mut room) = self.rooms.remove(name) else {
            return;
        };
        for pending in std::mem::take(&mut room.pending_joins) {
            out.send(stanzas::presence_error(
                Jid::from(room.jid.clone()),
                Jid::from(pending.jid),
                pending.presence.id.clone(),
                stanzas::error(
                    ErrorType::Wait,
                    DefinedCondition::ServiceUnavailable,
                    "The chat closed; please join again.",
                ),
            ));
        }
        self.pings.retain(|_, p| &p.room != name);
        if room.set_state(SessionState::Closed, now) {
            tracing::info!(session = room.session.id, room = %room.jid, "session closed");
            out.store(StoreOp::UpdateSession(room.session.clone()));
        }
        if let Some(site) = self.config.sites.get(room.name.site()) {
            for s in &site.staff {
                out.send(stanzas::presence_of_type(
                    Jid::from(room.jid.clone()),
                    Jid::from(s.clone()),
                    xmpp_parsers::presence::Type::Unavailable,
                ));
            }
        }
        for s in std::mem::take(&mut room.offered) {
            if Some(s.to_string()) != room.session.staff {
                self.desk_says(&s, &format!("#{} is closed.", room.session.id), out);
            }
        }
        self.roster_schedule_removal(now, &room.jid, room.name.site());
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_prop;
#[cfg(test)]
mod tests_staff;
#[cfg(test)]
mod tests_token;
