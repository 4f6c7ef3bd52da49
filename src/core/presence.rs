//! Presence to rooms and occupants: joining (each rule its own small check), leaving,
//! presence updates, and occupants the room lost to a dead link.

use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::muc::Muc;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::room::{Emptied, Occupant, PendingJoin, Room};
use super::stanzas::{self, Shown, NS_MUC};
use super::{nick, Core, OrElse, Out};
use crate::address::{sender_full, RoomName, Target};
use crate::store::{OccupantRow, Role, SessionRow, SessionState, StoreOp};
use crate::time::Timestamp;
use crate::token;

/// `room/nick` as a JID. Nicks arrive as the resource of a parsed JID, so this only fails on
/// input we built ourselves wrongly; callers skip rather than panic.
pub(super) fn occupant_jid(room: &BareJid, nick: &str) -> Option<FullJid> {
    room.with_resource_str(nick).ok()
}

/// A join the rules refused: the condition, its type, and text the person can act on.
struct Refusal(ErrorType, DefinedCondition, String);

impl Refusal {
    fn new(t: ErrorType, c: DefinedCondition, text: impl Into<String>) -> Refusal {
        Refusal(t, c, text.into())
    }

    fn into_error(self) -> StanzaError {
        stanzas::error(self.0, self.1, &self.2)
    }
}

/// What a join turned out to be once the rules were applied.
enum JoinDecision {
    /// Let them in; `created` when this join opens a new session.
    Admit {
        role: Role,
        created: bool,
    },
    /// A different JID claims to be this room's visitor while the bound one seems present:
    /// ask the bound one first.
    Wait,
    /// The same, with a valid token: it is the visitor (a page reload), so it takes over now.
    Replace(FullJid),
    Refuse(Refusal),
}

impl Core {
    pub(super) fn handle_presence(&mut self, now: Timestamp, p: Presence, out: &mut Out) {
        let Some(to) = p.to.clone() else { return };
        if matches!(
            Target::of(&to, &self.config.component),
            Target::Domain | Target::Room(_)
        ) && self.handle_presence_to_contact(now, &p, out)
        {
            return;
        }
        let Some(from) = sender_full(p.from.as_ref()) else {
            return;
        };
        match Target::of(&to, &self.config.component) {
            Target::Occupant(room, nick) => {
                self.handle_presence_to_occupant(now, room, nick, from, p, out)
            }
            Target::Room(_) if p.type_ == PresenceType::None => out.send(stanzas::presence_error(
                to,
                Jid::from(from),
                p.id,
                stanzas::error(
                    ErrorType::Modify,
                    DefinedCondition::JidMalformed,
                    "Join with a nickname: send your presence to room@domain/YourName.",
                ),
            )),
            Target::BadRoom(_) if p.type_ == PresenceType::None => {
                out.send(stanzas::presence_error(
                    to,
                    Jid::from(from),
                    p.id,
                    stanzas::error(
                        ErrorType::Cancel,
                        DefinedCondition::ItemNotFound,
                        "No such room: visitor rooms are named <visitor>_<site>.",
                    ),
                ))
            }
            // Presence to the domain (staff availability) belongs to the staff side; errors and
            // subscription traffic to rooms need no answer.
            _ => {}
        }
    }

    fn handle_presence_to_occupant(
        &mut self,
        now: Timestamp,
        name: RoomName,
        nick: String,
        from: FullJid,
        p: Presence,
        out: &mut Out,
    ) {
        match p.type_ {
            PresenceType::None => {
                let current = self
                    .rooms
                    .get(&name)
                    .and_then(|r| r.occupant(&from))
                    .map(|o| o.nick.clone());
                match current {
                    Some(n) if n == nick && is_join(&p) => self.rejoin(now, &name, &from, &p, out),
                    Some(n) if n == nick => self.update_presence(&name, &from, &p, out),
                    Some(_) => self.refuse_nick_change(&name, &nick, from, p, out),
                    None => self.handle_join(now, name, nick, from, p, out),
                }
            }
            PresenceType::Unavailable => self.handle_leave(now, &name, &from, out),
            // A presence error from an occupant means our presences bounce: they are gone.
            PresenceType::Error => self.occupant_lost(now, &name, &from, out),
            _ => {}
        }
    }

    // ---- joining ---------------------------------------------------------------------------

    fn handle_join(
        &mut self,
        now: Timestamp,
        name: RoomName,
        nick: String,
        from: FullJid,
        p: Presence,
        out: &mut Out,
    ) {
        match self.decide_join(now, &name, &nick, &from, &p) {
            JoinDecision::Refuse(r) => {
                tracing::debug!(room = %name, jid = %from, reason = %r.2, "join refused");
                let about = occupant_jid(&name.jid(&self.config.component), &nick)
                    .map(Jid::from)
                    .unwrap_or_else(|| Jid::from(name.jid(&self.config.component)));
                out.send(stanzas::presence_error(
                    about,
                    Jid::from(from),
                    p.id,
                    r.into_error(),
                ));
            }
            JoinDecision::Wait => self.defer_join(now, &name, nick, from, p, out),
            JoinDecision::Replace(old) => {
                self.replace_visitor(&name, &old, out);
                self.admit(now, &name, nick, from, Role::Visitor, false, &p, out);
            }
            JoinDecision::Admit { role, created } => {
                if created {
                    self.open_room(now, &name, &from);
                }
                self.admit(now, &name, nick, from, role, created, &p, out);
                if created {
                    self.roster_add_room(now, &name, out);
                    if let Some(room) = self.rooms.get(&name) {
                        out.1.push(room.name.clone());
                    }
                }
            }
        }
    }

    /// The join rules, in order. Each answers only its own question.
    fn decide_join(
        &self,
        now: Timestamp,
        name: &RoomName,
        nick: &str,
        from: &FullJid,
        p: &Presence,
    ) -> JoinDecision {
        let role = match self.check_site_and_role(name, from) {
            Ok(role) => role,
            Err(r) => return JoinDecision::Refuse(r),
        };
        if let Err(r) = check_nick(nick, self.config.limits.nick_chars) {
            return JoinDecision::Refuse(r);
        }
        if role == Role::Visitor {
            if let Err(r) = self.check_token(now, name, p) {
                return JoinDecision::Refuse(r);
            }
            if let Err(r) = self.check_not_a_staff_name(name, nick) {
                return JoinDecision::Refuse(r);
            }
            if let Err(r) = self.check_rooms_per_visitor(name, from) {
                return JoinDecision::Refuse(r);
            }
        }
        let Some(room) = self.rooms.get(name) else {
            return match role {
                Role::Visitor => match self.check_capacity(name) {
                    Ok(()) => JoinDecision::Admit {
                        role,
                        created: true,
                    },
                    Err(r) => JoinDecision::Refuse(r),
                },
                _ => JoinDecision::Refuse(Refusal::new(
                    ErrorType::Cancel,
                    DefinedCondition::ItemNotFound,
                    "There is no open chat in this room: the visitor is not here.",
                )),
            };
        };
        // A second visitor address waits first: it is usually the same person after a page
        // reload, under the same nick, and the nick frees up when the old address goes.
        if let Some(bound) = room.visitor().filter(|v| v.jid != *from) {
            if role == Role::Visitor {
                // With tokens the newcomer has proved it is this visitor: no need to wait.
                return if self.site_uses_tokens(name) {
                    JoinDecision::Replace(bound.jid.clone())
                } else {
                    JoinDecision::Wait
                };
            }
        }
        if let Err(r) = check_nick_free(room, nick, from) {
            return JoinDecision::Refuse(r);
        }
        if role == Role::Staff {
            if let Err(r) = check_room_not_taken(room, from) {
                return JoinDecision::Refuse(r);
            }
        }
        JoinDecision::Admit {
            role,
            created: false,
        }
    }

    /// The site must be configured; staff of this site are staff, staff of another site are
    /// refused, and anyone else is the visitor.
    fn check_site_and_role(&self, name: &RoomName, from: &FullJid) -> Result<Role, Refusal> {
        let Some(site) = self.config.sites.get(name.site()) else {
            return Err(Refusal::new(
                ErrorType::Cancel,
                DefinedCondition::ItemNotFound,
                format!("There is no site \"{}\" on this service.", name.site()),
            ));
        };
        let bare = from.to_bare();
        if site.staff.contains(&bare) {
            Ok(Role::Staff)
        } else if self.config.staff_elsewhere(&bare, name.site()) {
            Err(Refusal::new(
                ErrorType::Auth,
                DefinedCondition::Forbidden,
                "You are staff of another site and cannot join this site's rooms.",
            ))
        } else {
            Ok(Role::Visitor)
        }
    }

    /// One visitor address may be in a few rooms at once, not in thousands.
    fn check_rooms_per_visitor(&self, name: &RoomName, from: &FullJid) -> Result<(), Refusal> {
        let max = self.config.limits.rooms_per_visitor;
        let inside = self
            .rooms
            .values()
            .filter(|r| r.name != *name && r.joined().any(|o| o.jid == *from))
            .count();
        if inside >= max {
            return Err(Refusal::new(
                ErrorType::Wait,
                DefinedCondition::ResourceConstraint,
                format!("You are already in {inside} chats; leave one before opening another."),
            ));
        }
        Ok(())
    }

    /// A new session must fit in the service's and the site's share.
    fn check_capacity(&self, name: &RoomName) -> Result<(), Refusal> {
        let l = self.config.limits;
        let site_open = self
            .rooms
            .values()
            .filter(|r| r.name.site() == name.site())
            .count();
        if self.rooms.len() >= l.sessions || site_open >= l.sessions_per_site {
            return Err(Refusal::new(
                ErrorType::Wait,
                DefinedCondition::ResourceConstraint,
                "The chat service is busy right now; please try again in a few minutes.",
            ));
        }
        Ok(())
    }

    fn open_room(&mut self, now: Timestamp, name: &RoomName, visitor: &FullJid) {
        let id = self.next_session_id;
        self.next_session_id += 1;
        let jid = name.jid(&self.config.component);
        let session = SessionRow {
            id,
            room: jid.to_string(),
            site: name.site().to_string(),
            visitor: name.visitor().to_string(),
            state: SessionState::Inactive,
            staff: None,
            visitor_jid: Some(visitor.to_string()),
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        tracing::info!(session = id, room = %jid, "session opened");
        self.rooms
            .insert(name.clone(), Room::new(name.clone(), jid, session));
    }

    #[allow(clippy::too_many_arguments)]
    fn admit(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        nick: String,
        from: FullJid,
        role: Role,
        created: bool,
        p: &Presence,
        out: &mut Out,
    ) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        if created {
            // Everything the room sends from now on waits for this row: a chat that cannot be
            // saved is closed again (see `Input::NotStored`) rather than held in memory only.
            out.persist(
                StoreOp::OpenSession(room.session.clone()),
                vec![],
                OrElse::Nothing,
            );
        }
        room.emptied = None;
        // Staff who took the chat one-to-one and now join the room: the joined occupant
        // replaces the one-to-one one.
        if role == Role::Staff {
            if let Some(d) = room
                .direct_staff()
                .filter(|d| d.jid.to_bare() == from.to_bare())
                .cloned()
            {
                room.remove(&d.jid);
                out.store(StoreOp::OccupantLeft {
                    session_id: room.session.id,
                    jid: d.jid.to_string(),
                });
                if let Some(dj) = occupant_jid(&room.jid, &d.nick) {
                    for o in room.joined() {
                        out.send(stanzas::occupant_unavailable(
                            dj.clone(),
                            o.jid.clone(),
                            &d.jid,
                            o.role == Role::Staff,
                            d.role,
                            &[],
                        ));
                    }
                }
            }
        }
        room.occupants.push(Occupant {
            jid: from.clone(),
            nick: nick.clone(),
            role,
            shown: Shown::of(p),
            direct: false,
            bucket: Default::default(),
            typing: Default::default(),
        });
        out.store(StoreOp::OccupantJoined(OccupantRow {
            session_id: room.session.id,
            jid: from.to_string(),
            nick: nick.clone(),
            role,
            joined_at: now,
            direct: false,
        }));
        let mut changed = false;
        if role == Role::Visitor && room.session.visitor_jid.as_deref() != Some(from.as_str()) {
            room.session.visitor_jid = Some(from.to_string());
            room.session.updated_at = now;
            changed = true;
        }
        let state = room.derived_state();
        changed |= room.set_state(state, now);
        if changed && !created {
            Self::write_session(room, out);
        }
        tracing::info!(session = room.session.id, room = %room.jid, jid = %from, role = role.as_str(), state = %room.session.state, "joined");
        let history = p
            .payloads
            .iter()
            .find(|e| e.is("x", NS_MUC))
            .and_then(|e| Muc::try_from(e.clone()).ok())
            .and_then(|m| m.history);
        let subject = self.subject_for(name);
        let Some(room) = self.rooms.get(name) else {
            return;
        };
        send_join_sequence(
            room,
            &from,
            created,
            true,
            history.as_ref(),
            now,
            &subject,
            out,
        );
        if role == Role::Staff {
            let session_id = room.session.id;
            self.system_line(session_id, now, format!("{nick} joined the chat"), out);
        }
    }

    fn subject_for(&self, name: &RoomName) -> String {
        let site = self
            .config
            .sites
            .get(name.site())
            .map(|s| s.name.as_str())
            .unwrap_or(name.site().as_str());
        format!("Chat with {site}")
    }

    /// Someone already in the room sent a join again (e.g. their client reconnected with the
    /// same address): give them the room again without announcing a new arrival.
    fn rejoin(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        from: &FullJid,
        p: &Presence,
        out: &mut Out,
    ) {
        let subject = self.subject_for(name);
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        if let Some(o) = room.occupant_mut(from) {
            o.shown = Shown::of(p);
        }
        let history = p
            .payloads
            .iter()
            .find(|e| e.is("x", NS_MUC))
            .and_then(|e| Muc::try_from(e.clone()).ok())
            .and_then(|m| m.history);
        let room = &*room;
        send_join_sequence(
            room,
            from,
            false,
            false,
            history.as_ref(),
            now,
            &subject,
            out,
        );
    }

    fn update_presence(&mut self, name: &RoomName, from: &FullJid, p: &Presence, out: &mut Out) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let Some(o) = room.occupant_mut(from) else {
            return;
        };
        o.shown = Shown::of(p);
        let me = o.clone();
        let Some(me_jid) = occupant_jid(&room.jid, &me.nick) else {
            return;
        };
        for other in room.joined() {
            let statuses: &[u16] = if other.jid == me.jid { &[110] } else { &[] };
            out.send(stanzas::occupant_presence(
                me_jid.clone(),
                other.jid.clone(),
                me.role,
                &me.jid,
                other.role == Role::Staff || other.jid == me.jid,
                &me.shown,
                statuses,
            ));
        }
    }

    fn refuse_nick_change(
        &mut self,
        name: &RoomName,
        nick: &str,
        from: FullJid,
        p: Presence,
        out: &mut Out,
    ) {
        let room_jid = name.jid(&self.config.component);
        let about = occupant_jid(&room_jid, nick)
            .map(Jid::from)
            .unwrap_or(Jid::from(room_jid));
        out.send(stanzas::presence_error(
            about,
            Jid::from(from),
            p.id,
            stanzas::error(
                ErrorType::Cancel,
                DefinedCondition::NotAcceptable,
                "Changing your nickname is not supported in this room.",
            ),
        ));
    }

    /// Parks a join by a second would-be visitor and pings the one the room is bound to.
    fn defer_join(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        nick: String,
        from: FullJid,
        p: Presence,
        out: &mut Out,
    ) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let Some(bound) = room.visitor().map(|v| v.jid.clone()) else {
            return;
        };
        room.pending_joins.retain(|j| j.jid != from);
        room.pending_joins.push(PendingJoin {
            jid: from.clone(),
            nick,
            presence: p,
            since: now,
        });
        tracing::debug!(room = %name, jid = %from, bound = %bound, "join waits: checking whether the bound visitor is still here");
        self.ping_occupant(now, name, &bound, out);
    }

    /// The bound visitor answered: they are here, so waiting joins are refused.
    pub(super) fn refuse_pending(&mut self, name: &RoomName, out: &mut Out) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        for pj in std::mem::take(&mut room.pending_joins) {
            let about = occupant_jid(&room.jid, &pj.nick)
                .map(Jid::from)
                .unwrap_or(Jid::from(room.jid.clone()));
            out.send(stanzas::presence_error(
                about,
                Jid::from(pj.jid),
                pj.presence.id.clone(),
                stanzas::error(
                    ErrorType::Auth,
                    DefinedCondition::Forbidden,
                    "This visitor's chat is already open elsewhere.",
                ),
            ));
        }
    }

    // ---- leaving ---------------------------------------------------------------------------

    fn handle_leave(&mut self, now: Timestamp, name: &RoomName, from: &FullJid, out: &mut Out) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let waiting = room.pending_joins.len();
        room.pending_joins.retain(|j| &j.jid != from);
        if room.pending_joins.len() != waiting {
            return;
        }
        if room.occupant(from).is_none() {
            return;
        }
        let Some(gone) = room.remove(from) else {
            return;
        };
        announce_departure(room, &gone, true, out);
        self.after_departure(now, name, gone, true, out);
    }

    /// An occupant whose client is gone without saying so (bounced stanzas, failed ping).
    pub(super) fn occupant_lost(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        jid: &FullJid,
        out: &mut Out,
    ) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let Some(gone) = room.remove(jid) else { return };
        tracing::info!(session = room.session.id, room = %room.jid, jid = %jid, "occupant is gone (lost link)");
        announce_departure(room, &gone, false, out);
        self.after_departure(now, name, gone, false, out);
    }

    /// What a departure does to the session. An emptied room keeps its session as it is until
    /// [`Emptied::closes_at`]: briefly when people left, longer when the link was lost.
    fn after_departure(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        gone: Occupant,
        voluntary: bool,
        out: &mut Out,
    ) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let session_id = room.session.id;
        out.store(StoreOp::OccupantLeft {
            session_id,
            jid: gone.jid.to_string(),
        });
        tracing::info!(session = session_id, room = %room.jid, jid = %gone.jid, role = gone.role.as_str(), "left");
        let pending = if gone.role == Role::Visitor {
            std::mem::take(&mut room.pending_joins)
        } else {
            Vec::new()
        };
        if gone.role == Role::Staff {
            self.system_line(session_id, now, format!("{} left the chat", gone.nick), out);
        }
        // A visitor who reloaded the page was waiting for exactly this.
        for pj in pending {
            self.handle_join(now, name.clone(), pj.nick, pj.jid, pj.presence, out);
        }
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        // A one-to-one staff member cannot see the room: tell them the visitor went (they may
        // come back, e.g. after a reload; the chat stays theirs until they finish it).
        if gone.role == Role::Visitor && room.visitor().is_none() {
            if let Some(d) = room.direct_staff() {
                let text = format!(
                    "{} left the chat (#{}). They may come back; send !finish {} to close it.",
                    gone.nick, session_id, session_id
                );
                out.send(stanzas::chat(
                    Jid::from(room.jid.clone()),
                    Jid::from(d.jid.to_bare()),
                    &text,
                ));
            }
        }
        if room.occupants.is_empty() {
            room.emptied = Some(if voluntary {
                Emptied::Left(now)
            } else {
                Emptied::Lost(now)
            });
        } else {
            let state = room.derived_state();
            if room.set_state(state, now) {
                Self::write_session(room, out);
            }
        }
    }
}

fn is_join(p: &Presence) -> bool {
    p.payloads.iter().any(|e| e.is("x", NS_MUC))
}

fn check_nick(nick: &str, max_chars: usize) -> Result<(), Refusal> {
    nick::check(nick, max_chars).map_err(|e| {
        let cond = match e {
            nick::NickError::Empty => DefinedCondition::JidMalformed,
            _ => DefinedCondition::NotAcceptable,
        };
        Refusal::new(ErrorType::Modify, cond, e.text())
    })
}

impl Core {
    fn site_uses_tokens(&self, name: &RoomName) -> bool {
        self.config
            .sites
            .get(name.site())
            .is_some_and(|s| s.token_secret.is_some())
    }

    /// On a site with a `token_secret`, a visitor's join carries a token for exactly this
    /// visitor id and site in the MUC `<password>`.
    fn check_token(&self, now: Timestamp, name: &RoomName, p: &Presence) -> Result<(), Refusal> {
        let Some(secret) = self
            .config
            .sites
            .get(name.site())
            .and_then(|s| s.token_secret.as_ref())
        else {
            return Ok(());
        };
        let password = p
            .payloads
            .iter()
            .find(|e| e.is("x", NS_MUC))
            .and_then(|x| x.get_child("password", NS_MUC))
            .map(|e| e.text());
        token::verify(
            secret,
            name.visitor(),
            name.site().as_str(),
            password.as_deref(),
            now.millis().div_euclid(1000),
        )
        .map_err(|e| {
            let text = match e {
                token::TokenError::Missing => {
                    "This chat needs a sign-in token from the website; reload the page."
                }
                token::TokenError::Expired => {
                    "Your sign-in token has expired; reload the page to get a new one."
                }
                token::TokenError::Malformed | token::TokenError::BadSignature => {
                    "Your sign-in token is not valid for this chat; reload the page."
                }
            };
            Refusal::new(ErrorType::Auth, DefinedCondition::NotAuthorized, text)
        })
    }

    /// A page reload with a valid token: the old address leaves the room at once, told why,
    /// and the others see it go.
    fn replace_visitor(&mut self, name: &RoomName, old: &FullJid, out: &mut Out) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let Some(gone) = room.remove(old) else { return };
        announce_departure(room, &gone, false, out);
        if let Some(gone_jid) = occupant_jid(&room.jid, &gone.nick) {
            out.send(stanzas::replaced_self(gone_jid, gone.jid.clone()));
        }
        self.pings.retain(|_, ping| &ping.jid != old);
        out.store(StoreOp::OccupantLeft {
            session_id: room.session.id,
            jid: gone.jid.to_string(),
        });
        tracing::info!(session = room.session.id, room = %room.jid, old = %gone.jid, "visitor replaced by a new connection with a valid token");
    }

    /// A visitor may not take a staff member's account name (the nick staff get when they
    /// answer one-to-one), in any case or width.
    fn check_not_a_staff_name(&self, name: &RoomName, nick: &str) -> Result<(), Refusal> {
        let folded = nick::fold(nick);
        let taken = self
            .config
            .sites
            .get(name.site())
            .into_iter()
            .flat_map(|s| s.staff.iter())
            .filter_map(|j| j.node())
            .any(|local| nick::fold(local.as_str()) == folded);
        if taken {
            return Err(Refusal::new(
                ErrorType::Cancel,
                DefinedCondition::Conflict,
                "That nickname belongs to a member of staff; please choose another.",
            ));
        }
        Ok(())
    }
}

fn check_nick_free(room: &Room, nick: &str, from: &FullJid) -> Result<(), Refusal> {
    match room.nick_holder(nick) {
        Some(o) if o.jid != *from => Err(Refusal::new(
            ErrorType::Cancel,
            DefinedCondition::Conflict,
            "That nickname is already in use in this room.",
        )),
        _ => Ok(()),
    }
}

/// One staff member at a time: the room is occupied while another staff member is in it.
fn check_room_not_taken(room: &Room, from: &FullJid) -> Result<(), Refusal> {
    match room.staff_present() {
        Some(other) if other.jid.to_bare() != from.to_bare() => Err(Refusal::new(
            ErrorType::Cancel,
            DefinedCondition::NotAllowed,
            format!(
                "{} is already chatting with this visitor (#{}).",
                other.nick, room.session.id
            ),
        )),
        _ => Ok(()),
    }
}

/// The XEP-0045 join sequence for `joiner`: who is here, the arrival to the others (unless it
/// is a rejoin), the self-presence (110, and 201 for a new session), history, then the subject.
#[allow(clippy::too_many_arguments)]
fn send_join_sequence(
    room: &Room,
    joiner: &FullJid,
    created: bool,
    announce: bool,
    history: Option<&xmpp_parsers::muc::muc::History>,
    now: Timestamp,
    subject: &str,
    out: &mut Out,
) {
    let Some(me) = room.occupant(joiner) else {
        return;
    };
    let Some(me_jid) = occupant_jid(&room.jid, &me.nick) else {
        return;
    };
    let me_staff = me.role == Role::Staff;
    for o in room.occupants.iter().filter(|o| o.jid != *joiner) {
        let Some(o_jid) = occupant_jid(&room.jid, &o.nick) else {
            continue;
        };
        out.send(stanzas::occupant_presence(
            o_jid,
            joiner.clone(),
            o.role,
            &o.jid,
            me_staff,
            &o.shown,
            &[],
        ));
    }
    if announce {
        for o in room.joined().filter(|o| o.jid != *joiner) {
            out.send(stanzas::occupant_presence(
                me_jid.clone(),
                o.jid.clone(),
                me.role,
                &me.jid,
                o.role == Role::Staff,
                &me.shown,
                &[],
            ));
        }
    }
    let mut codes = vec![110];
    if created {
        codes.push(201);
    }
    out.send(stanzas::occupant_presence(
        me_jid,
        joiner.clone(),
        me.role,
        &me.jid,
        true,
        &me.shown,
        &codes,
    ));
    for item in history_to_send(room, history, now) {
        let Some(from) = occupant_jid(&room.jid, &item.nick) else {
            continue;
        };
        out.send(stanzas::groupchat_text(stanzas::GroupchatText {
            from,
            to: joiner.clone(),
            id: item.id.clone(),
            body: &item.body,
            lang: item.lang.clone(),
            stanza_id: &item.stanza_id,
            room: &room.jid,
            kept: vec![],
            delayed: Some(item.at),
        }));
    }
    out.send(stanzas::subject(&room.jid, joiner.clone(), subject));
}

/// The history a joiner asked for (XEP-0045 `<history maxstanzas|seconds|since>`), newest kept.
fn history_to_send<'r>(
    room: &'r Room,
    req: Option<&xmpp_parsers::muc::muc::History>,
    now: Timestamp,
) -> impl Iterator<Item = &'r super::room::HistoryItem> {
    let max = req
        .and_then(|h| h.maxstanzas)
        .map(|n| n as usize)
        .unwrap_or(usize::MAX);
    let max = if req.and_then(|h| h.maxchars) == Some(0) {
        0
    } else {
        max
    };
    let since = req
        .and_then(|h| h.since.as_ref())
        .map(|d| Timestamp(d.0.timestamp_millis()));
    let seconds = req
        .and_then(|h| h.seconds)
        .map(|s| now.plus_millis(-(i64::from(s) * 1000)));
    let after = since.max(seconds);
    let eligible: Vec<_> = room
        .history
        .iter()
        .filter(|h| after.is_none_or(|a| h.at > a))
        .collect();
    let skip = eligible.len().saturating_sub(max);
    eligible.into_iter().skip(skip)
}

/// Tells everyone still in the room (and the leaver, when they left themselves) that an
/// occupant is gone. A lost occupant is announced with status 333.
fn announce_departure(room: &Room, gone: &Occupant, voluntary: bool, out: &mut Out) {
    let Some(gone_jid) = occupant_jid(&room.jid, &gone.nick) else {
        return;
    };
    let codes: &[u16] = if voluntary { &[] } else { &[333] };
    for o in room.joined() {
        out.send(stanzas::occupant_unavailable(
            gone_jid.clone(),
            o.jid.clone(),
            &gone.jid,
            o.role == Role::Staff,
            gone.role,
            codes,
        ));
    }
    if voluntary {
        out.send(stanzas::occupant_unavailable(
            gone_jid,
            gone.jid.clone(),
            &gone.jid,
            true,
            gone.role,
            &[110],
        ));
    }
}
