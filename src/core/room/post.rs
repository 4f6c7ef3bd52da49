//! Messages in a room: a message with a body is committed, then reflected to everyone joined;
//! chat states (typing notifications) are reflected only.

use minidom::Element;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Id, Lang};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::DefinedCondition;

use super::{Ctx, HistoryItem, Occupant, Room};
use crate::core::refusal::Refusal;
use crate::core::session::{MessageRecord, Role};
use crate::core::stanzas::{self, NS_CHATSTATES, NS_SID};
use crate::core::Effects;
use crate::core::OrElse;

/// XEP-0333 chat markers: relayed like chat states (and rate-limited with them).
pub const NS_MARKERS: &str = "urn:xmpp:chat-markers:0";

/// The payloads a reflected message keeps: chat states, chat markers and the sender's
/// origin-id. Anything else (a forged `<stanza-id>` or `<delay>`, XHTML, unknown extensions)
/// is dropped.
pub fn kept_payloads(payloads: &[Element]) -> Vec<Element> {
    payloads
        .iter()
        .filter(|e| {
            e.ns() == NS_CHATSTATES || is_marker(e) || (e.ns() == NS_SID && e.name() == "origin-id")
        })
        .cloned()
        .collect()
}

fn is_marker(e: &Element) -> bool {
    e.ns() == NS_MARKERS
        && matches!(
            e.name(),
            "markable" | "received" | "displayed" | "acknowledged"
        )
}

/// A message with a body, from an occupant (joined, or one-to-one staff).
pub struct Said {
    pub author: Occupant,
    pub body: String,
    pub lang: Lang,
    pub id: Option<Id>,
    /// What survives reflection (see [`kept_payloads`]).
    pub kept: Vec<Element>,
    /// Who hears it if it could not be saved (where the message came from).
    pub reply_to: Jid,
}

impl Said {
    /// What `author` said in `m`, if it has a body that is not blank; else the author back.
    /// The body and id are moved out of `m` (each was a copy per message).
    pub fn of(
        author: Occupant,
        m: &mut xmpp_parsers::message::Message,
        reply_to: Jid,
    ) -> Result<Said, Occupant> {
        let lang = m
            .get_best_body(vec![])
            .filter(|(_, b)| !b.trim().is_empty())
            .map(|(lang, _)| lang);
        let Some(lang) = lang else {
            return Err(author);
        };
        Ok(Said {
            author,
            body: m.bodies.remove(&lang).unwrap_or_default(),
            lang,
            id: m.id.take(),
            kept: kept_payloads(&m.payloads),
            reply_to,
        })
    }
}

/// A message ready to be committed: its record, and the stanzas that wait for the commit.
pub struct Posted {
    pub record: MessageRecord,
    pub reflections: Vec<Stanza>,
    pub or_else: OrElse,
}

impl Room {
    /// The refusal for a visitor over the message rate.
    pub fn too_fast() -> Refusal {
        Refusal::wait(
            DefinedCondition::ResourceConstraint,
            "You are sending messages too fast; wait a moment and send it again.",
        )
    }

    /// Gives the message its stanza-id, moves the session (a visitor's first message makes it
    /// ACTIVE), remembers it for history, and returns the write with the stanzas that wait for
    /// it: the reflections, and for a visitor's message the copies staff get.
    pub fn post(
        &mut self,
        ctx: &Ctx,
        targets: &[BareJid],
        said: Said,
        out: &mut Effects,
    ) -> Option<Posted> {
        let now = ctx.now;
        let from_nick = self.occupant_jid(&said.author.nick)?;
        let stanza_id = self.next_stanza_id();
        if said.author.role == Role::Visitor && self.first_message.is_none() {
            self.first_message = Some((said.body.clone(), now));
        }
        let state = self.derived_state();
        if self.set_state(state, now) {
            tracing::info!(session = self.session.id, room = %self.jid, state = %self.session.state, "state changed");
            self.write_session(out);
        }
        let mut reflections = self.reflections(from_nick, &stanza_id, &said);
        tracing::debug!(session = self.session.id, room = %self.jid, role = said.author.role.as_str(), stanza_id = %stanza_id, "message");
        tracing::trace!(body = %said.body, "message body");
        self.remember_said(&said, &stanza_id, ctx);
        let or_else = OrElse::MessageNotSaved {
            session_id: self.session.id,
            stanza_id: stanza_id.clone(),
            room: Jid::from(self.jid.clone()),
            to: said.reply_to,
            id: said.id.clone(),
        };
        if said.author.role == Role::Visitor {
            let copies = self
                .copies_of_visitor_message(ctx, targets, &said.body, &said.kept, &stanza_id, out);
            reflections.extend(copies);
        }
        let record = MessageRecord {
            session_id: self.session.id,
            at: now,
            role: said.author.role,
            from_jid: Jid::from(said.author.jid),
            nick: said.author.nick,
            body: said.body,
            stanza_id,
            origin_id: said.id.map(|i| i.0),
        };
        Some(Posted {
            record,
            reflections,
            or_else,
        })
    }

    /// Keeps the message for history on join.
    fn remember_said(&mut self, said: &Said, stanza_id: &str, ctx: &Ctx) {
        let item = HistoryItem {
            at: ctx.now,
            nick: said.author.nick.clone(),
            role: said.author.role,
            body: said.body.clone(),
            lang: said.lang.clone(),
            id: said.id.clone(),
            stanza_id: stanza_id.to_string(),
        };
        self.remember(item, ctx.limits.history_bytes);
    }

    /// The message as each joined occupant gets it (one-to-one staff do not see their own).
    /// The copies differ only in `to`: one is built and the others are clones of it.
    fn reflections(&self, from_nick: FullJid, stanza_id: &str, said: &Said) -> Vec<Stanza> {
        let author = &said.author;
        let to: Vec<&FullJid> = self
            .joined()
            .filter(|o| !(author.direct && o.jid.to_bare() == author.jid.to_bare()))
            .map(|o| &o.jid)
            .collect();
        let Some((last, rest)) = to.split_last() else {
            return Vec::new();
        };
        let built = stanzas::groupchat_text(stanzas::GroupchatText {
            from: from_nick,
            to: (*last).clone(),
            id: said.id.clone(),
            body: &said.body,
            lang: said.lang.clone(),
            stanza_id,
            room: &self.jid,
            kept: said.kept.clone(),
            delayed: None,
        });
        let mut out: Vec<Stanza> = rest
            .iter()
            .map(|to| {
                let mut m = built.clone();
                m.to = Some(Jid::from((*to).clone()));
                m.into()
            })
            .collect();
        out.push(built.into());
        out
    }

    /// Chat states and the like from `author`: reflected to the others, not stored. A
    /// one-to-one staff member gets the visitor's as `type='chat'`.
    pub fn relay_chat_state(&self, author: &Occupant, payloads: &[Element], out: &mut Effects) {
        let kept = kept_payloads(payloads);
        if kept.is_empty() {
            return;
        }
        let Some(from_nick) = self.occupant_jid(&author.nick) else {
            return;
        };
        for o in self.joined().filter(|o| o.jid != author.jid) {
            out.send(stanzas::groupchat_bare(
                from_nick.clone(),
                o.jid.clone(),
                None,
                kept.clone(),
            ));
        }
        if let Some(d) = self.direct_staff().filter(|d| d.jid != author.jid) {
            let mut m = stanzas::chat(Jid::from(self.jid.clone()), Jid::from(d.jid.to_bare()), "");
            m.payloads = kept;
            out.send(m);
        }
    }
}
