//! The sans-I/O core: `handle(now, input) -> outputs`. Stanzas, ticks and "the link is up"
//! go in; stanzas to send and rows to store come out. It holds no sockets, no clock and no
//! `async`, so every rule here is tested by feeding it stanzas and reading what it answers.
//!
//! Each kind of stanza has its own handler module, in the manner of Prosody's mod_muc:
//! [`presence`] (joins, leaves, presence updates), [`message`] (groupchat to rooms), [`iq`]
//! (disco, ping, answers to our own pings). [`Effects`] is the one seam everything leaves through.

mod availability;
mod chat_commands;
pub mod commands;
pub mod details;
mod iq;
pub mod limits;
mod message;
pub mod metrics;
pub mod nick;
mod notes;
mod pings;
mod presence;
mod queue;
mod reconfigure;
pub mod refusal;
pub mod replay;
mod room;
mod rooms;
pub mod roster;
mod roster_items;
mod routing;
pub mod session;
mod staff;
pub mod stanzas;
mod widget;

use std::collections::{BTreeMap, BTreeSet};

use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::address::{RoomName, SiteId};
use crate::config::{Config, Limits, RosterConfig};
use crate::store::{Snapshot, StoreOp};
use crate::time::Timestamp;

use availability::Availability;
use pings::Pings;
pub use pings::PING_TIMEOUT_MS;
use refusal::Refusal;
use room::{Ctx, Kept, Room};
use rooms::Rooms;
use session::{OccupantRecord, SessionState};

/// How long a room emptied by a lost link (server restart, dead client) keeps its session open
/// for the people in it to come back.
pub const REJOIN_GRACE_MS: i64 = 120_000;
/// How long a room everyone left keeps its session before it is CLOSED.
pub const CLOSE_LINGER_MS: i64 = 5_000;

/// The part of the config the core needs, indexed for lookups.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreConfig {
    pub component: BareJid,
    pub sites: BTreeMap<SiteId, SiteInfo>,
    pub roster: RosterConfig,
    pub limits: Limits,
    /// Who sees every site in `!diag`; staff see their own sites only.
    pub admins: BTreeSet<BareJid>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SiteInfo {
    pub name: String,
    /// Ordered, so that what the core sends is the same on every run.
    pub staff: BTreeSet<BareJid>,
    /// Visitors must bring a token signed with this (see `crate::token`).
    pub token_secret: Option<crate::token::TokenSecret>,
    /// Names, avatars and caps of staff listed as tables.
    pub profiles: BTreeMap<BareJid, crate::config::StaffProfile>,
    pub desk: crate::config::DeskConfig,
}

impl SiteInfo {
    /// How many chats `staff` may have at once when taking one of this site's.
    pub fn cap_of(&self, staff: &BareJid) -> usize {
        let n = self
            .profiles
            .get(staff)
            .and_then(|p| p.max_chats)
            .unwrap_or(self.desk.max_chats_per_staff);
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// The name visitors see for `staff`, if the config gives one.
    pub fn display_name(&self, staff: &BareJid) -> Option<&str> {
        self.profiles.get(staff)?.name.as_deref()
    }

    pub fn offer_timeout_ms(&self) -> i64 {
        i64::try_from(self.desk.offer_timeout_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
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
                            profiles: s.profiles.clone(),
                            desk: s.desk.clone(),
                        },
                    )
                })
                .collect(),
            roster: c.roster.clone(),
            limits: c.limits,
            admins: c.admins.iter().cloned().collect(),
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

    /// What a room's rules need from outside it, for a room of a configured site.
    fn ctx(&self, now: Timestamp, name: &RoomName) -> Option<Ctx<'_>> {
        Some(Ctx {
            now,
            component: &self.component,
            site: self.sites.get(name.site())?,
            limits: self.limits,
        })
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
        result: commands::QueryResult,
    },
    /// A reloaded config (SIGHUP), already checked; its component address is the running one.
    Reconfigure(Box<CoreConfig>),
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

/// What happens instead when a `Persist` write fails: what the sender is told (built into
/// stanzas only then: preparing the refusal for every message went through xso's conversion of
/// the error, which cost more than the rest of the reflection), and what the core must hear
/// back (as [`Input::NotStored`]) so that memory does not keep what the disk does not.
#[derive(Debug, Clone, PartialEq)]
pub enum OrElse {
    /// A new session's row: the room is closed again, its people told why.
    SessionNotSaved { session_id: i64 },
    /// A message: its sender is told to send it again, and it leaves the room's history.
    MessageNotSaved {
        session_id: i64,
        stanza_id: String,
        room: Jid,
        to: Jid,
        id: Option<xmpp_parsers::message::Id>,
    },
    /// A staff member's note or tags: they are told it was not saved (this text instead of
    /// the confirmation). Nothing in the core depends on it.
    Tell {
        desk: Jid,
        to: commands::ReplyTo,
        text: String,
    },
}

impl OrElse {
    pub fn into_stanzas(self) -> Vec<Stanza> {
        match self {
            OrElse::SessionNotSaved { .. } => vec![],
            OrElse::MessageNotSaved { room, to, id, .. } => vec![Refusal::wait(
                DefinedCondition::InternalServerError,
                "Your message could not be saved, so it was not delivered. Please send it again.",
            )
            .message(room, to, id)
            .into()],
            OrElse::Tell { desk, to, text } => vec![commands::reply_stanza(desk, &to, &text)],
        }
    }

    /// The input that tells the core the write failed, if the core needs to know.
    pub fn not_stored(&self) -> Option<Input> {
        Some(match self {
            OrElse::Tell { .. } => return None,
            OrElse::SessionNotSaved { session_id } => Input::NotStored {
                session_id: *session_id,
                stanza_id: None,
            },
            OrElse::MessageNotSaved {
                session_id,
                stanza_id,
                ..
            } => Input::NotStored {
                session_id: *session_id,
                stanza_id: Some(stanza_id.clone()),
            },
        })
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
    /// Send history older than memory holds, read from the store, in this place (replay.rs).
    Replay(replay::Replay),
}

/// The seam every output leaves through, in order; it also notes which rooms changed state,
/// for what that means to staff (see `after_state_changes`).
#[derive(Debug, Default)]
pub struct Effects {
    outputs: Vec<Output>,
    changed: Vec<RoomName>,
    counted: Vec<metrics::Counted>,
}

impl Effects {
    pub fn send(&mut self, s: impl Into<Stanza>) {
        self.outputs.push(Output::Send(s.into()));
    }

    pub fn store(&mut self, op: StoreOp) {
        self.outputs.push(Output::Store(op));
    }

    pub fn persist(&mut self, op: StoreOp, then: Vec<Stanza>, or_else: OrElse) {
        self.outputs.push(Output::Persist { op, then, or_else });
    }

    pub fn api(&mut self, call: roster::ApiCall) {
        self.outputs.push(Output::Api(call));
    }

    pub fn query(&mut self, q: commands::Query) {
        self.outputs.push(Output::Query(q));
    }

    /// An event for the monitoring counters.
    pub fn count(&mut self, c: metrics::Counted) {
        self.counted.push(c);
    }

    pub fn replay(&mut self, r: replay::Replay) {
        self.outputs.push(Output::Replay(r));
    }

    /// The room's session changed state (or was opened).
    pub fn changed(&mut self, room: &RoomName) {
        self.changed.push(room.clone());
    }

    /// The rooms that changed, each once, in name order.
    fn take_changed(&mut self) -> Vec<RoomName> {
        let mut changed = std::mem::take(&mut self.changed);
        changed.sort();
        changed.dedup();
        changed
    }
}

/// The ids of our own IQs and store reads: one counter for all of them. IQ ids are keyed
/// (HMAC of the counter), so that whoever sees one cannot guess the next: answers are matched
/// by id and by the address asked, and neither is enough alone.
#[derive(Debug)]
struct Ids {
    next: u64,
    key: [u8; 32],
}

impl Ids {
    fn next(&mut self) -> u64 {
        let n = self.next;
        self.next = self.next.saturating_add(1);
        n
    }

    /// An IQ id such as `fd-ping-3f9a0c…`.
    fn iq(&mut self, kind: &str) -> String {
        self.iq_keyed(kind).0
    }

    /// An IQ id and its [`IdKey`], for maps that hold many ids.
    fn iq_keyed(&mut self, kind: &str) -> (String, IdKey) {
        let key = self.iq_key();
        (id_text(kind, &key), key)
    }

    /// The key of an IQ id whose text is made later (`id_text`).
    fn iq_key(&mut self) -> IdKey {
        let n = self.next();
        keyed_bytes(&self.key, n)
    }
}

/// The `n`th IQ id of this kind under `key`.
#[cfg(test)]
fn keyed_id(key: &[u8; 32], kind: &str, n: u64) -> String {
    id_text(kind, &keyed_bytes(key, n))
}

fn id_text(kind: &str, key: &IdKey) -> String {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    format!("fd-{kind}-{hex}")
}

/// The keyed part of an IQ id: 12 bytes where the id is a 31-character string.
pub(crate) type IdKey = [u8; 12];

/// The keyed bytes of the `n`th IQ id under `key`.
fn keyed_bytes(key: &[u8; 32], n: u64) -> IdKey {
    use hmac::Mac;
    let mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
        .map(|mut m| {
            m.update(&n.to_be_bytes());
            m.finalize().into_bytes()
        })
        .unwrap_or_default();
    let mut out = [0u8; 12];
    for (o, b) in out.iter_mut().zip(mac.iter()) {
        *o = *b;
    }
    out
}

/// The key of an id `Ids::iq_keyed` made for `kind`; None for any other text, so that only
/// an id of that kind, exactly as made, finds what was filed under its key.
fn id_key(id: &str, kind: &str) -> Option<IdKey> {
    let hex = id
        .strip_prefix("fd-")?
        .strip_prefix(kind)?
        .strip_prefix('-')?;
    if hex.len() != 24 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut key = [0u8; 12];
    for (k, pair) in key.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *k = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(key)
}

pub struct Core {
    config: CoreConfig,
    /// Each site's staff names as nicks compare (`nick::fold`), kept with `config`: a
    /// visitor's nick is checked against them on every join.
    staff_nicks: BTreeMap<SiteId, BTreeSet<String>>,
    rooms: Rooms,
    pings: Pings,
    staff: Availability,
    turns: routing::Turns,
    first_responses: queue::FirstResponses,
    roster: roster::RosterState,
    queries: commands::Queries,
    ids: Ids,
    /// IQ answers dropped because they matched nothing we asked of their sender.
    unmatched: u64,
    connected_at: Option<Timestamp>,
    offenders: limits::Offenders,
    rates: limits::Rates,
    counters: metrics::Counters,
}

/// How many of each open session's latest lines the core wants in the snapshot it resumes
/// from (what a room replays as history).
pub const RESUMED_HISTORY: usize = room::HISTORY_MAX;

/// Told to the people of a room whose session could not be stored.
pub const UNSAVED_TEXT: &str =
    "This chat could not be saved (the server's storage is failing), so it was closed. Please try again in a few minutes.";

impl Core {
    /// Resumes from the store's snapshot. Rooms that come back with nobody in them get the
    /// rejoin grace period from `now`.
    pub fn new(config: CoreConfig, snapshot: Snapshot, now: Timestamp) -> Core {
        let roster = roster::RosterState::new(
            config.roster.mode,
            config.roster.ejabberd_api.is_some(),
            (config.roster.remove_after_secs as i64).saturating_mul(1000),
            &snapshot.roster_items,
        );
        let mut core = Core {
            rooms: Rooms::new(snapshot.next_session_id),
            pings: Pings::default(),
            staff: Availability::default(),
            turns: routing::Turns::default(),
            first_responses: queue::FirstResponses::default(),
            roster,
            queries: commands::Queries::default(),
            ids: Ids {
                next: 1,
                key: [0; 32],
            },
            unmatched: 0,
            connected_at: None,
            offenders: limits::Offenders::default(),
            rates: limits::Rates::default(),
            counters: metrics::Counters::default(),
            staff_nicks: nick::staff_nicks(&config),
            config,
        };
        core.resume_rooms(snapshot, now);
        core
    }

    fn resume_rooms(&mut self, snapshot: Snapshot, now: Timestamp) {
        let mut kept: BTreeMap<i64, Kept> = BTreeMap::new();
        for m in snapshot.messages {
            kept.entry(m.session_id).or_default().history.push(m);
        }
        for m in snapshot.first_visitor_lines {
            let id = m.session_id;
            kept.entry(id).or_default().first_visitor_line = Some(m);
        }
        for (id, sid) in snapshot.last_stanza_ids {
            kept.entry(id).or_default().last_stanza_id = Some(sid);
        }
        for d in snapshot.details {
            kept.entry(d.session_id).or_default().details.push(d);
        }
        let mut occupants: BTreeMap<i64, Vec<OccupantRecord>> = BTreeMap::new();
        for o in snapshot.occupants {
            occupants.entry(o.session_id).or_default().push(o);
        }
        for session in snapshot.sessions {
            let Some(name) = session
                .room
                .node()
                .and_then(|n| RoomName::parse(n.as_str()).ok())
            else {
                tracing::warn!(session = session.id, room = %session.room, "stored session has an unusable room name; skipping it");
                continue;
            };
            if !self.config.sites.contains_key(name.site()) {
                tracing::warn!(session = session.id, site = %name.site(), "stored session is for a site no longer in the config; leaving it as it is");
                continue;
            }
            let id = session.id;
            let jid = name.jid(&self.config.component);
            let room = Room::resume(
                name,
                jid,
                session,
                kept.remove(&id).unwrap_or_default(),
                occupants.remove(&id).unwrap_or_default(),
                now,
            );
            let mut room = room;
            room.trim_history(self.config.limits.history_bytes);
            self.rooms.restore(room);
        }
    }

    pub fn handle(&mut self, now: Timestamp, input: Input) -> Vec<Output> {
        let mut out = Effects::default();
        match input {
            Input::Stanza(s) => match limits::exceeded(&s) {
                Some(limit) => self.handle_over_limit(now, s, limit, &mut out),
                None => self.handle_stanza(now, s, &mut out),
            },
            Input::Invalid(bad) => self.handle_invalid(bad, &mut out),
            Input::Tick => self.handle_tick(now, &mut out),
            Input::Connected => self.handle_connected(now, &mut out),
            Input::Disconnected => self.handle_disconnected(now),
            Input::ApiDone { id, result } => {
                self.api_answered(now, &id, result.err(), &mut out);
            }
            Input::QueryDone { id, result } => self.query_done(now, id, result, &mut out),
            Input::Reconfigure(c) => self.reconfigure(now, *c, &mut out),
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
        for c in std::mem::take(&mut out.counted) {
            self.counters.add(c);
        }
        let mut outputs = out.outputs;
        self.give_ids(&mut outputs);
        outputs
    }

    /// One-to-one messages from the desk and the contacts (offers, notes, copies, answers) get
    /// an id: clients send receipts and read markers that name it (Gajim sent `id="None"`).
    /// The same walk counts the refusals.
    fn give_ids(&mut self, outputs: &mut [Output]) {
        let counters = &mut self.counters;
        let mut give = |s: &mut Stanza| {
            counters.note_sent(s);
            if let Stanza::Message(m) = s {
                if m.id.is_none() && m.type_ == xmpp_parsers::message::MessageType::Chat {
                    m.id = Some(xmpp_parsers::message::Id(format!(
                        "fd-m{}",
                        self.ids.next()
                    )));
                }
            }
        };
        for o in outputs.iter_mut() {
            match o {
                Output::Send(s) => give(s),
                Output::Persist { then, .. } => then.iter_mut().for_each(&mut give),
                _ => {}
            }
        }
    }

    fn handle_stanza(&mut self, now: Timestamp, s: Stanza, out: &mut Effects) {
        match s {
            Stanza::Presence(p) => self.handle_presence(now, p, out),
            Stanza::Message(m) => self.handle_message(now, m, out),
            Stanza::Iq(iq) => self.handle_iq(now, iq, out),
        }
    }

    /// The key our IQ ids are made with: random per process in production (the shell's), so
    /// that ids cannot be guessed; fixed in tests, so that outputs are reproducible.
    pub fn with_id_key(mut self, key: [u8; 32]) -> Core {
        self.ids.key = key;
        self
    }

    pub fn component(&self) -> &BareJid {
        &self.config.component
    }

    /// The state of a room's open session, if it has one.
    pub fn room_state(&self, room: &RoomName) -> Option<SessionState> {
        self.rooms.get(room).map(|r| r.state())
    }

    /// IQ answers dropped because they matched nothing we asked of their sender.
    pub fn unasked_answers(&self) -> u64 {
        self.unmatched
    }

    pub fn open_rooms(&self) -> usize {
        self.rooms.len()
    }

    /// The monitoring counters (totals since start).
    pub fn counters(&self) -> &metrics::Counters {
        &self.counters
    }

    /// Open sessions by site and state, and available staff by site; every configured site
    /// and state appears, with 0 if need be, so that alert rules can compare them.
    pub fn gauges(&self) -> metrics::Gauges {
        let mut g = metrics::Gauges::default();
        for (id, site) in &self.config.sites {
            for st in [
                SessionState::Inactive,
                SessionState::Active,
                SessionState::Chatting,
            ] {
                g.sessions.insert((id.clone(), st.as_str()), 0);
            }
            let n = site
                .staff
                .iter()
                .filter(|s| self.staff.is_available(s))
                .count() as u64;
            g.staff_available.insert(id.clone(), n);
        }
        // Counted under borrowed keys: this runs every second over every room.
        let mut counts: BTreeMap<(&SiteId, &'static str), u64> = BTreeMap::new();
        for r in self.rooms.values() {
            *counts
                .entry((r.name().site(), r.state().as_str()))
                .or_default() += 1;
        }
        for ((site, state), n) in counts {
            g.sessions.insert((site.clone(), state), n);
        }
        g
    }

    /// A stanza we could not parse: answer `bad-request` when it has a sender and an id, and
    /// is not itself an error or a result (never answer an error with an error).
    fn handle_invalid(&mut self, bad: InvalidStanza, out: &mut Effects) {
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
        let r = Refusal::modify(
            DefinedCondition::BadRequest,
            "This stanza is malformed and was not processed.",
        );
        match bad.kind {
            StanzaKind::Iq => out.send(r.iq(about, from, id)),
            StanzaKind::Message => {
                out.send(r.message(about, from, Some(xmpp_parsers::message::Id(id))))
            }
            StanzaKind::Presence => {
                let mut p =
                    xmpp_parsers::presence::Presence::new(xmpp_parsers::presence::Type::Error)
                        .with_from(about)
                        .with_to(from);
                p.id = Some(id);
                p.add_payload(r.error());
                out.send(p)
            }
        }
    }

    fn handle_tick(&mut self, now: Timestamp, out: &mut Effects) {
        self.expire_pings(now, out);
        self.rates.prune(now, &self.config.limits);
        self.check_staff(now, out);
        self.expire_direct_staff(now, out);
        self.roster_tick(now, out);
        for name in self.rooms.names_where(|r| r.due_to_close(now)) {
            self.close_room(&name, now, out);
        }
        self.route_waiting(now, out);
        self.tell_positions(now, out);
        // Commands kept behind a read that was never answered.
        for staff in self.queries.parked_staff() {
            self.run_parked(now, &staff, out);
        }
    }

    /// Rooms that emptied just before the link dropped were probably emptied by the server
    /// shutting down: give their people the full grace period to come back.
    fn handle_disconnected(&mut self, now: Timestamp) {
        self.connected_at = None;
        for room in self.rooms.values_mut() {
            room.link_lost(now);
        }
    }

    /// After (re)connecting we cannot know who is still online: ask everyone.
    fn handle_connected(&mut self, now: Timestamp, out: &mut Effects) {
        self.pings.clear();
        self.connected_at = Some(now);
        // One-to-one staff are followed through their presence instead.
        let targets: Vec<(RoomName, FullJid)> = self
            .rooms
            .values()
            .flat_map(|r| r.joined().map(|o| (r.name().clone(), o.jid.clone())))
            .collect();
        for (room, jid) in targets {
            self.ping_occupant(now, &room, &jid, out);
        }
        self.staff_connected(now, out);
        self.roster_connected(now, out);
    }

    /// A refused message must not come back later in someone's history.
    fn forget_message(&mut self, session_id: i64, stanza_id: &str) {
        if let Some(room) = self.rooms.by_session_mut(session_id) {
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
    fn unsaved_session(&mut self, now: Timestamp, session_id: i64, out: &mut Effects) {
        let Some(name) = self.rooms.by_session(session_id).map(|r| r.name().clone()) else {
            return;
        };
        tracing::error!(session = session_id, room = %name, "the new session could not be stored; closing the room");
        self.close_chat(now, &name, Some(UNSAVED_TEXT), out);
    }

    /// Closes the room's session and forgets the room; the row and transcript stay.
    fn close_room(&mut self, name: &RoomName, now: Timestamp, out: &mut Effects) {
        let Some(mut room) = self.rooms.remove(name) else {
            return;
        };
        room.refuse_pending_closed(out);
        self.pings.forget_room(name);
        let told = room.close(now, out);
        if let Some(site) = self.config.sites.get(name.site()) {
            let everyone = self.config.roster.visitors == crate::config::RosterVisitors::All;
            for s in &site.staff {
                if !everyone && !self.roster.has_item(s, room.jid()) {
                    continue;
                }
                out.send(stanzas::presence_of_type(
                    stanzas::contact_full(&Jid::from(room.jid().clone())),
                    Jid::from(s.clone()),
                    xmpp_parsers::presence::Type::Unavailable,
                ));
            }
        }
        for s in told {
            self.desk_says(&s, &format!("#{} is closed.", room.session_id()), out);
        }
        self.roster_schedule_removal(now, room.jid(), name.site());
        // Someone's place under their cap may be free now (see `after_state_changes`).
        out.changed(name);
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_determinism;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_notes;
#[cfg(test)]
mod tests_prechat;
#[cfg(test)]
mod tests_prop;
#[cfg(test)]
mod tests_reload;
#[cfg(test)]
mod tests_replay;
#[cfg(test)]
mod tests_routing;
#[cfg(test)]
mod tests_staff;
#[cfg(test)]
mod tests_token;
#[cfg(test)]
mod tests_widget;
