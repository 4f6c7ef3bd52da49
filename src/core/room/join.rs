//! Joining a room: the room's own join rules (the service's come first, in core/presence.rs),
//! admitting, the XEP-0045 join sequence, rejoins and presence updates, and joins that wait on
//! the visitor the room is bound to.

use xmpp_parsers::jid::{FullJid, Jid};
use xmpp_parsers::muc::muc::History;
use xmpp_parsers::muc::Muc;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza_error::DefinedCondition;

use super::{leave, Arrival, Ctx, HistoryItem, Occupant, Room, HISTORY_MAX};
use crate::core::metrics::Counted;
use crate::core::refusal::Refusal;
use crate::core::replay::{history_stanza, Replay, STORED_HISTORY_MAX};
use crate::core::session::Role;
use crate::core::stanzas::{self, Shown, NS_MUC};
use crate::core::widget;
use crate::core::{Effects, OrElse};
use crate::store::StoreOp;
use crate::time::Timestamp;

/// What a join turned out to be once the rules were applied.
pub enum JoinDecision {
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

/// Joins that may wait on one room's bound visitor at once.
const MAX_WAITING: usize = 3;

/// How much of the join sequence a joiner gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Welcome {
    /// A new occupant of a new session (status 201).
    Created,
    /// A new occupant: the others see them arrive.
    Arrived,
    /// Someone already here who sent their join again: only they hear.
    Again,
}

/// The MUC `<history/>` a join asked for.
fn history_request(p: &Presence) -> Option<History> {
    p.payloads
        .iter()
        .find(|e| e.is("x", NS_MUC))
        .and_then(|e| Muc::try_from(e.clone()).ok())
        .and_then(|m| m.history)
}

pub fn is_join(p: &Presence) -> bool {
    p.payloads.iter().any(|e| e.is("x", NS_MUC))
}

impl Room {
    /// The room's join rules for someone the service's rules let through, in order.
    pub fn decide_join(
        &self,
        role: Role,
        nick: &str,
        from: &FullJid,
        uses_tokens: bool,
    ) -> JoinDecision {
        // A second visitor address waits first: it is usually the same person after a page
        // reload, under the same nick, and the nick frees up when the old address goes.
        if let Some(bound) = self.visitor().filter(|v| v.jid != *from) {
            if role == Role::Visitor {
                // With tokens the newcomer has proved it is this visitor: no need to wait.
                return if uses_tokens {
                    JoinDecision::Replace(bound.jid.clone())
                } else {
                    JoinDecision::Wait
                };
            }
        }
        if let Err(r) = self.check_nick_free(nick, from) {
            return JoinDecision::Refuse(r);
        }
        if role == Role::Staff {
            if let Err(r) = self.check_not_taken(from) {
                return JoinDecision::Refuse(r);
            }
        }
        JoinDecision::Admit {
            role,
            created: false,
        }
    }

    fn check_nick_free(&self, nick: &str, from: &FullJid) -> Result<(), Refusal> {
        match self.nick_holder(nick) {
            Some(o) if o.jid != *from => Err(Refusal::cancel(
                DefinedCondition::Conflict,
                "That nickname is already in use in this room.",
            )),
            _ => Ok(()),
        }
    }

    /// One staff member at a time: the room is occupied while another staff member is in it.
    pub fn check_not_taken(&self, from: &FullJid) -> Result<(), Refusal> {
        match self.staff_present() {
            Some(other) if other.jid.to_bare() != from.to_bare() => Err(Refusal::cancel(
                DefinedCondition::NotAllowed,
                format!(
                    "{} is already chatting with this visitor (#{}).",
                    other.nick, self.session.id
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Lets `a` in as `role`. A new session's row is written first: everything the room sends
    /// from now on waits for it, and a chat that cannot be saved is closed again (see
    /// `Input::NotStored`) rather than held in memory only.
    pub fn admit(&mut self, ctx: &Ctx, a: Arrival, role: Role, created: bool, out: &mut Effects) {
        if created {
            let undo = OrElse::SessionNotSaved {
                session_id: self.session.id,
            };
            out.persist(StoreOp::OpenSession(self.record()), vec![], undo);
        }
        self.emptied = None;
        out.count(Counted::Join(self.name().site().clone()));
        if role == Role::Staff {
            self.drop_direct_staff(&a.jid, out);
        }
        let occupant = Occupant::new(
            a.jid.clone(),
            a.nick.clone(),
            role,
            Shown::of(&a.presence),
            ctx.now,
        );
        out.store(StoreOp::OccupantJoined(occupant.record(self.session.id)));
        // Most rooms only ever hold their visitor: a first push would make room for four.
        if self.occupants.is_empty() {
            self.occupants.reserve_exact(1);
        }
        self.occupants.push(occupant);
        let mut changed = false;
        if role == Role::Visitor && self.session.visitor_jid.as_ref() != Some(&a.jid) {
            self.session.visitor_jid = Some(a.jid.clone());
            self.session.updated_at = ctx.now;
            changed = true;
        }
        let state = self.derived_state();
        changed |= self.set_state(state, ctx.now);
        if changed && !created {
            self.write_session(out);
        }
        if created {
            out.changed(&self.name);
        }
        tracing::info!(session = self.session.id, room = %self.jid, jid = %a.jid, role = role.as_str(), state = %self.session.state, "joined");
        let welcome = if created {
            Welcome::Created
        } else {
            Welcome::Arrived
        };
        self.welcome(
            ctx,
            &a.jid,
            welcome,
            history_request(&a.presence).as_ref(),
            out,
        );
        if role == Role::Staff {
            self.system_line(
                ctx.component,
                ctx.now,
                format!("{} joined the chat", a.nick),
                out,
            );
        }
        if role == Role::Visitor && self.told_left {
            self.tell_direct_staff_back(&a.nick, out);
        }
    }

    /// The one-to-one staff member heard the visitor left: now they hear they are back (a
    /// page reload, usually).
    fn tell_direct_staff_back(&mut self, nick: &str, out: &mut Effects) {
        self.told_left = false;
        if let Some(d) = self.direct_staff() {
            let text = format!("{nick} is back in the chat (#{}).", self.session.id);
            out.send(stanzas::chat(
                Jid::from(self.jid.clone()),
                Jid::from(d.jid.to_bare()),
                &text,
            ));
        }
    }

    /// Staff who took the chat one-to-one and now join the room: the joined occupant replaces
    /// the one-to-one one.
    fn drop_direct_staff(&mut self, staff: &FullJid, out: &mut Effects) {
        let Some(d) = self
            .direct_staff()
            .filter(|d| d.jid.to_bare() == staff.to_bare())
            .cloned()
        else {
            return;
        };
        self.remove_any(&d.jid);
        out.store(StoreOp::OccupantLeft {
            session_id: self.session.id,
            jid: d.jid.clone(),
        });
        let Some(dj) = self.occupant_jid(&d.nick) else {
            return;
        };
        for o in self.joined() {
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

    /// Someone already in the room sent a join again (e.g. their client reconnected with the
    /// same address): give them the room again without announcing a new arrival.
    pub fn rejoin(&mut self, ctx: &Ctx, from: &FullJid, p: &Presence, out: &mut Effects) {
        if let Some(o) = self.joined_occupant_mut(from) {
            o.shown = Shown::of(p);
        }
        self.welcome(ctx, from, Welcome::Again, history_request(p).as_ref(), out);
    }

    /// An occupant's new availability or status, shown to everyone joined.
    pub fn update_presence(&mut self, from: &FullJid, p: &Presence, out: &mut Effects) {
        let Some(o) = self.joined_occupant_mut(from) else {
            return;
        };
        o.shown = Shown::of(p);
        let me = o.clone();
        let Some(me_jid) = self.occupant_jid(&me.nick) else {
            return;
        };
        for other in self.joined() {
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

    /// XEP-0045 §7.6: an occupant takes another nick (the service's nick rules were checked
    /// by the caller; whether it is free is the room's). Everyone joined sees the old address
    /// leave with status 303 and the new nick, then the new address arrive.
    pub fn change_nick(
        &mut self,
        from: &FullJid,
        new: &str,
        p: &Presence,
        out: &mut Effects,
    ) -> Result<(), Refusal> {
        self.check_nick_free(new, from)?;
        let not_valid = || {
            Refusal::modify(
                DefinedCondition::JidMalformed,
                "That nickname is not valid here.",
            )
        };
        self.occupant_jid(new).ok_or_else(not_valid)?;
        let Some(me) = self.joined_occupant(from).cloned() else {
            return Err(not_valid());
        };
        let old_jid = self.occupant_jid(&me.nick).ok_or_else(not_valid)?;
        for o in self.joined() {
            let own = o.jid == me.jid;
            let codes: &[u16] = if own { &[303, 110] } else { &[303] };
            let reveal = own || o.role == Role::Staff;
            out.send(stanzas::occupant_renamed(
                old_jid.clone(),
                o.jid.clone(),
                &me.jid,
                reveal,
                me.role,
                new,
                codes,
            ));
        }
        tracing::info!(session = self.session.id, room = %self.jid, old = %me.nick, new = %new, "nick changed");
        if let Some(o) = self.joined_occupant_mut(from) {
            o.nick = new.to_string();
            o.shown = Shown::of(p);
        }
        if let Some(o) = self.joined_occupant(from) {
            out.store(StoreOp::OccupantJoined(o.record(self.session.id)));
        }
        self.update_presence(from, p, out);
        Ok(())
    }

    /// Parks a join by a second would-be visitor. Returns the bound visitor to ping, or the
    /// refusal when too many already wait.
    pub fn defer_join(&mut self, a: Arrival) -> Result<Option<FullJid>, (Refusal, Arrival)> {
        if self.pending_joins.len() >= MAX_WAITING
            && !self.pending_joins.iter().any(|j| j.jid == a.jid)
        {
            let r = Refusal::wait(
                DefinedCondition::ResourceConstraint,
                "Too many are waiting to join this chat; try again in a minute.",
            );
            return Err((r, a));
        }
        let Some(bound) = self.visitor().map(|v| v.jid.clone()) else {
            return Ok(None);
        };
        tracing::debug!(room = %self.name, jid = %a.jid, bound = %bound, "join waits: checking whether the bound visitor is still here");
        self.pending_joins.retain(|j| j.jid != a.jid);
        self.pending_joins.push(a);
        Ok(Some(bound))
    }

    /// The bound visitor answered: they are here, so waiting joins are refused.
    pub fn refuse_pending(&mut self, out: &mut Effects) {
        let r = Refusal::auth(
            DefinedCondition::Forbidden,
            "This visitor's chat is already open elsewhere.",
        );
        for pj in std::mem::take(&mut self.pending_joins) {
            out.send(r.presence(self.about(&pj.nick), Jid::from(pj.jid), pj.presence.id));
        }
    }

    /// A page reload with a valid token: the old address leaves the room at once, told why,
    /// and the others see it go.
    pub fn replace_visitor(&mut self, old: &FullJid, out: &mut Effects) {
        let Some(gone) = self.remove_any(old) else {
            return;
        };
        leave::announce_departure(self, &gone, false, out);
        if let Some(gone_jid) = self.occupant_jid(&gone.nick) {
            out.send(stanzas::replaced_self(gone_jid, gone.jid.clone()));
        }
        out.store(StoreOp::OccupantLeft {
            session_id: self.session.id,
            jid: gone.jid.clone(),
        });
        tracing::info!(session = self.session.id, room = %self.jid, old = %gone.jid, "visitor replaced by a new connection with a valid token");
    }

    /// The XEP-0045 join sequence for `joiner`: who is here, the arrival to the others (unless
    /// it is a rejoin), the self-presence (110, and 201 for a new session), history, then the
    /// subject.
    fn welcome(
        &self,
        ctx: &Ctx,
        joiner: &FullJid,
        welcome: Welcome,
        history: Option<&History>,
        out: &mut Effects,
    ) {
        let Some(me) = self.joined_occupant(joiner) else {
            return;
        };
        let Some(me_jid) = self.occupant_jid(&me.nick) else {
            return;
        };
        let me_staff = me.role == Role::Staff;
        for o in self.occupants.iter().filter(|o| o.jid != *joiner) {
            let Some(o_jid) = self.occupant_jid(&o.nick) else {
                continue;
            };
            let p = stanzas::occupant_presence(
                o_jid,
                joiner.clone(),
                o.role,
                &o.jid,
                me_staff,
                &o.shown,
                &[],
            );
            out.send(widget::with_profile(p, ctx.site, o));
        }
        if welcome != Welcome::Again {
            for o in self.joined().filter(|o| o.jid != *joiner) {
                let p = stanzas::occupant_presence(
                    me_jid.clone(),
                    o.jid.clone(),
                    me.role,
                    &me.jid,
                    o.role == Role::Staff,
                    &me.shown,
                    &[],
                );
                out.send(widget::with_profile(p, ctx.site, me));
            }
        }
        let codes: &[u16] = if welcome == Welcome::Created {
            &[110, 201]
        } else {
            &[110]
        };
        out.send(stanzas::occupant_presence(
            me_jid,
            joiner.clone(),
            me.role,
            &me.jid,
            true,
            &me.shown,
            codes,
        ));
        self.replay_history(joiner, history, ctx.now, out);
        out.send(stanzas::subject(&self.jid, joiner.clone(), &ctx.subject()));
    }

    fn replay_history(
        &self,
        joiner: &FullJid,
        req: Option<&History>,
        now: Timestamp,
        out: &mut Effects,
    ) {
        let (items, older) = self.history_to_send(req, now);
        if older > 0 {
            if let Some(oldest) = items.first() {
                out.replay(Replay {
                    session_id: self.session.id,
                    room: self.jid.clone(),
                    to: joiner.clone(),
                    before: oldest.stanza_id.clone(),
                    after: history_after(req, now),
                    max: older,
                });
            }
        }
        for item in items {
            if let Some(s) = history_stanza(&self.jid, joiner, item) {
                out.send(s);
            }
        }
    }

    /// The history a joiner asked for (XEP-0045 `<history maxstanzas|seconds|since>`) that
    /// memory holds, newest kept, and how many older lines to read from the store. With no
    /// `maxstanzas`, a join gets [`HISTORY_MAX`] lines in all; with one, up to
    /// [`STORED_HISTORY_MAX`] from the store.
    fn history_to_send(&self, req: Option<&History>, now: Timestamp) -> (Vec<&HistoryItem>, usize) {
        let (max, wanted) = match req {
            Some(h) if h.maxchars == Some(0) => (0, 0),
            Some(History {
                maxstanzas: Some(n),
                ..
            }) => (*n as usize, (*n as usize).min(STORED_HISTORY_MAX)),
            _ => (usize::MAX, HISTORY_MAX),
        };
        let after = history_after(req, now);
        let eligible: Vec<_> = self
            .history
            .iter()
            .filter(|h| after.is_none_or(|a| h.at > a))
            .collect();
        // Older lines can only qualify if every line in memory did.
        let older = if self.older_in_store && eligible.len() == self.history.len() {
            wanted.saturating_sub(eligible.len())
        } else {
            0
        };
        let skip = eligible.len().saturating_sub(max);
        (eligible.into_iter().skip(skip).collect(), older)
    }
}

/// Lines said at or before this instant are not wanted (`<history since|seconds>`).
fn history_after(req: Option<&History>, now: Timestamp) -> Option<Timestamp> {
    let since = req
        .and_then(|h| h.since.as_ref())
        .map(|d| Timestamp(d.0.timestamp_millis()));
    let seconds = req
        .and_then(|h| h.seconds)
        .map(|s| now.plus_millis(-(i64::from(s) * 1000)));
    since.max(seconds)
}
