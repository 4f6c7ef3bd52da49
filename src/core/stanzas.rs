//! Builders for the stanzas the core sends: errors, occupant presences, reflected and
//! history messages, the subject, disco answers. Handlers decide; these only assemble.

use std::collections::BTreeMap;

use minidom::rxml::NcName;
use minidom::{Element, ElementBuilder};
use xmpp_parsers::date::DateTime;
use xmpp_parsers::delay::Delay;
use xmpp_parsers::disco::{DiscoInfoResult, Identity};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Id, Lang, Message};
use xmpp_parsers::muc::Muc;
use xmpp_parsers::ns;
use xmpp_parsers::presence::{Presence, Show, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_parsers::stanza_id::StanzaId;

use crate::core::session::Role;
use crate::time::Timestamp;

/// Namespaces the core writes, from xmpp_parsers where it has them.
pub const NS_MUC: &str = ns::MUC;
pub const NS_CHATSTATES: &str = ns::CHATSTATES;
pub const NS_SID: &str = ns::SID;
pub const NS_PING: &str = ns::PING;
pub const NS_DISCO_INFO: &str = ns::DISCO_INFO;
pub const NS_DISCO_ITEMS: &str = ns::DISCO_ITEMS;
pub const NS_VERSION: &str = ns::VERSION;

pub fn error(type_: ErrorType, cond: DefinedCondition, text: &str) -> StanzaError {
    StanzaError::new(type_, cond, "en", text)
}

/// An error presence answering `orig_from` about `about` (the address it wrote to).
/// Join errors echo the MUC `<x/>` as XEP-0045 shows.
pub fn presence_error(about: Jid, to: Jid, id: Option<String>, err: StanzaError) -> Presence {
    let mut p = Presence::new(PresenceType::Error)
        .with_from(about)
        .with_to(to);
    p.id = id;
    p.add_payload(Muc::new());
    p.add_payload(err);
    p
}

pub fn message_error(about: Jid, to: Jid, id: Option<Id>, err: StanzaError) -> Message {
    let mut m = Message::error(Some(to));
    m.from = Some(about);
    m.id = id;
    m.with_payload(err)
}

pub fn iq_error(about: Jid, to: Jid, id: String, err: StanzaError) -> Iq {
    Iq::Error {
        from: Some(about),
        to: Some(to),
        id,
        error: err,
        payload: None,
    }
}

pub fn iq_result(about: Jid, to: Jid, id: String, payload: Option<Element>) -> Iq {
    Iq::Result {
        from: Some(about),
        to: Some(to),
        id,
        payload,
    }
}

pub fn ping(from: Jid, to: Jid, id: String) -> Iq {
    Iq::Get {
        from: Some(from),
        to: Some(to),
        id,
        payload: Element::builder("ping", NS_PING).build(),
    }
}

pub const NS_MUC_USER: &str = ns::MUC_USER;

/// The `<x xmlns='…muc#user'>` of an occupant presence. Built by hand because xmpp-parsers
/// leaves out default values (`affiliation='none'`, `role='none'`) that clients look for.
/// Staff are admins and moderators, the visitor a participant; a departure has role none.
fn muc_user(role: Role, present: bool, real_jid: Option<&FullJid>, statuses: &[u16]) -> Element {
    muc_user_renamed(role, present, real_jid, None, statuses)
}

/// The same, with the new nick of an occupant changing it (XEP-0045 §7.6).
fn muc_user_renamed(
    role: Role,
    present: bool,
    real_jid: Option<&FullJid>,
    new_nick: Option<&str>,
    statuses: &[u16],
) -> Element {
    let (affiliation, muc_role) = match role {
        Role::Staff => ("admin", "moderator"),
        _ => ("none", "participant"),
    };
    let mut item = Element::builder("item", NS_MUC_USER);
    item = attr(item, "affiliation", affiliation);
    item = attr(item, "role", if present { muc_role } else { "none" });
    if let Some(j) = real_jid {
        item = attr(item, "jid", j.as_str());
    }
    if let Some(n) = new_nick {
        item = attr(item, "nick", n);
    }
    let mut x = Element::builder("x", NS_MUC_USER).append(item.build());
    for code in statuses {
        x = x.append(
            attr(
                Element::builder("status", NS_MUC_USER),
                "code",
                &code.to_string(),
            )
            .build(),
        );
    }
    x.build()
}

pub fn attr(b: ElementBuilder, name: &str, value: &str) -> ElementBuilder {
    // Only called with literal attribute names, which are always valid NCNames.
    match NcName::try_from(name) {
        Ok(n) => b.attr(n, value),
        Err(_) => b,
    }
}

/// What an occupant shows: availability and status text, never the client's own payloads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shown {
    pub show: Option<Show>,
    pub statuses: BTreeMap<Lang, String>,
}

impl Shown {
    pub fn of(p: &Presence) -> Shown {
        Shown {
            show: p.show.clone(),
            statuses: p.statuses.clone(),
        }
    }
}

/// An occupant's available presence as `recipient` sees it. The real JID is shown to staff and
/// to the occupant itself, never to a visitor (the room is semi-anonymous).
pub fn occupant_presence(
    from: FullJid,
    to: FullJid,
    role: Role,
    real: &FullJid,
    reveal_jid: bool,
    shown: &Shown,
    statuses: &[u16],
) -> Presence {
    let mut p = Presence::available().with_from(from).with_to(to);
    p.show = shown.show.clone();
    p.statuses = shown.statuses.clone();
    p.payloads
        .push(muc_user(role, true, reveal_jid.then_some(real), statuses));
    p
}

pub fn occupant_unavailable(
    from: FullJid,
    to: FullJid,
    real: &FullJid,
    reveal_jid: bool,
    role: Role,
    statuses: &[u16],
) -> Presence {
    let mut p = Presence::unavailable().with_from(from).with_to(to);
    p.payloads
        .push(muc_user(role, false, reveal_jid.then_some(real), statuses));
    p
}

/// An occupant's old address going away because they took `new_nick` (status 303).
pub fn occupant_renamed(
    from: FullJid,
    to: FullJid,
    real: &FullJid,
    reveal_jid: bool,
    role: Role,
    new_nick: &str,
    statuses: &[u16],
) -> Presence {
    let mut p = Presence::unavailable().with_from(from).with_to(to);
    p.payloads.push(muc_user_renamed(
        role,
        true,
        reveal_jid.then_some(real),
        Some(new_nick),
        statuses,
    ));
    p
}

/// To a visitor address another connection of the same visitor replaced (a page reload).
pub fn replaced_self(from: FullJid, to: FullJid) -> Presence {
    let mut p = Presence::unavailable().with_from(from).with_to(to);
    p.payloads.push(
        Element::builder("x", NS_MUC_USER)
            .append(
                attr(
                    attr(Element::builder("item", NS_MUC_USER), "affiliation", "none"),
                    "role",
                    "none",
                )
                .append(
                    Element::builder("reason", NS_MUC_USER)
                        .append("Replaced by a new connection of this visitor")
                        .build(),
                )
                .build(),
            )
            .append(attr(Element::builder("status", NS_MUC_USER), "code", "110").build())
            .build(),
    );
    p
}

pub fn date(t: Timestamp) -> DateTime {
    DateTime(t.to_chrono().fixed_offset())
}

/// A groupchat message from `room/nick`, as reflected live or replayed as history.
pub struct GroupchatText<'a> {
    pub from: FullJid,
    pub to: FullJid,
    pub id: Option<Id>,
    pub body: &'a str,
    pub lang: Lang,
    pub stanza_id: &'a str,
    pub room: &'a BareJid,
    /// Payloads from the sender that survive reflection (chat states, origin-id).
    pub kept: Vec<Element>,
    /// History replay: when the message was first sent.
    pub delayed: Option<Timestamp>,
}

pub fn groupchat_text(g: GroupchatText<'_>) -> Message {
    let mut m = Message::groupchat(Some(Jid::from(g.to)));
    m.from = Some(Jid::from(g.from));
    m.id = g.id;
    m.bodies.insert(g.lang, g.body.to_string());
    m.payloads = g.kept;
    if let Some(at) = g.delayed {
        m.payloads.push(
            Delay {
                from: Some(Jid::from(g.room.clone())),
                stamp: date(at),
                data: None,
            }
            .into(),
        );
    }
    // Built directly: `StanzaId::into` goes through xso, which is slow per copy.
    m.payloads.push(
        attr(
            attr(Element::builder("stanza-id", NS_SID), "id", g.stanza_id),
            "by",
            g.room.as_str(),
        )
        .build(),
    );
    m
}

/// A groupchat without a body (e.g. a chat state), reflected with only the kept payloads.
pub fn groupchat_bare(from: FullJid, to: FullJid, id: Option<Id>, kept: Vec<Element>) -> Message {
    let mut m = Message::groupchat(Some(Jid::from(to)));
    m.from = Some(Jid::from(from));
    m.id = id;
    m.payloads = kept;
    m
}

/// The subject: clients treat it as the end of the join.
pub fn subject(room: &BareJid, to: FullJid, text: &str) -> Message {
    let mut m = Message::groupchat(Some(Jid::from(to)));
    m.from = Some(Jid::from(room.clone()));
    m.subjects.insert(Lang::default(), text.to_string());
    m
}

pub fn disco_info(identity_name: &str, features: &[&str]) -> Element {
    DiscoInfoResult {
        node: None,
        identities: vec![Identity::new("conference", "text", "en", identity_name)],
        features: features.iter().map(|f| f.to_string()).collect(),
        extensions: vec![],
    }
    .into()
}

pub const NS_NICK: &str = ns::NICK;
pub const NS_ROSTER: &str = ns::ROSTER;
pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";

/// A one-to-one `type='chat'` message (offers, the front desk's answers, relays to staff who
/// took a chat from their roster).
pub fn chat(from: Jid, to: Jid, body: &str) -> Message {
    let mut m = Message::chat(Some(to));
    m.from = Some(from);
    if !body.is_empty() {
        m.bodies.insert(Lang::default(), body.to_string());
    }
    m
}

/// A one-to-one message replayed from earlier, with its original time.
pub fn chat_delayed(from: Jid, to: Jid, body: &str, at: Timestamp) -> Message {
    let m = chat(from.clone(), to, body);
    m.with_payload(Delay {
        from: Some(from),
        stamp: date(at),
        data: None,
    })
}

/// A groupchat from the room itself (no nick): system notices such as "The chat is now closed."
pub fn room_notice(room: &BareJid, to: FullJid, body: &str, stanza_id: &str) -> Message {
    let mut m = Message::groupchat(Some(Jid::from(to)));
    m.from = Some(Jid::from(room.clone()));
    m.bodies.insert(Lang::default(), body.to_string());
    m.with_payload(StanzaId {
        id: stanza_id.to_string(),
        by: Jid::from(room.clone()),
    })
}

/// The resource the roster contacts (the desk, each visitor) send their availability from.
/// Gajim 1.7 keeps presence per resource and ignores available presence from a bare JID
/// (BareContact.update_presence only updates resources it already has): with a bare `from`
/// the contact stays offline there.
pub const CONTACT_RESOURCE: &str = "frontdesk";

/// `contact/frontdesk`: where a roster contact's availability comes from.
pub fn contact_full(contact: &Jid) -> Jid {
    contact
        .to_bare()
        .with_resource_str(CONTACT_RESOURCE)
        .map(Jid::from)
        .unwrap_or_else(|_| contact.clone())
}

/// The visitor contact's (or the front desk's) presence as a staff member's roster shows it,
/// from `contact/frontdesk`.
pub fn contact_presence(from: Jid, to: Jid, show: Option<Show>, status: &str) -> Presence {
    let mut p = Presence::available()
        .with_from(contact_full(&from))
        .with_to(to);
    p.show = show;
    p.statuses.insert(Lang::default(), status.to_string());
    p
}

pub fn presence_of_type(from: Jid, to: Jid, t: PresenceType) -> Presence {
    Presence::new(t).with_from(from).with_to(to)
}

/// A subscription request from a visitor contact, for servers where we cannot write rosters.
pub fn subscribe_request(from: Jid, to: Jid, nick: &str, status: &str) -> Presence {
    let mut p = presence_of_type(from, to, PresenceType::Subscribe);
    p.statuses.insert(Lang::default(), status.to_string());
    p.payloads
        .push(Element::builder("nick", NS_NICK).append(nick).build());
    p
}

/// The last presence an occupant gets when the chat is closed: the room is gone (XEP-0045
/// §10.9 destroy), with the reason.
pub fn occupant_destroyed(from: FullJid, to: FullJid, reason: &str) -> Presence {
    let mut p = Presence::unavailable().with_from(from).with_to(to);
    let mut item = Element::builder("item", NS_MUC_USER);
    item = attr(item, "affiliation", "none");
    item = attr(item, "role", "none");
    let destroy = Element::builder("destroy", NS_MUC_USER)
        .append(
            Element::builder("reason", NS_MUC_USER)
                .append(reason)
                .build(),
        )
        .build();
    let status = attr(Element::builder("status", NS_MUC_USER), "code", "110").build();
    p.payloads.push(
        Element::builder("x", NS_MUC_USER)
            .append(item.build())
            .append(destroy)
            .append(status)
            .build(),
    );
    p
}

/// A roster push for XEP-0356 privileged roster access: one item, set or removed.
pub fn roster_set(
    from: Jid,
    to: Jid,
    id: String,
    item: &BareJid,
    name: Option<&str>,
    group: Option<&str>,
    remove: bool,
) -> Iq {
    let mut it = Element::builder("item", NS_ROSTER);
    it = attr(it, "jid", item.as_str());
    if remove {
        it = attr(it, "subscription", "remove");
    } else {
        it = attr(it, "subscription", "both");
        if let Some(n) = name {
            it = attr(it, "name", n);
        }
        if let Some(g) = group {
            it = it.append(Element::builder("group", NS_ROSTER).append(g).build());
        }
    }
    Iq::Set {
        from: Some(from),
        to: Some(to),
        id,
        payload: Element::builder("query", NS_ROSTER)
            .append(it.build())
            .build(),
    }
}

/// Builds an element with attributes given as pairs (names are literals).
pub fn element(name: &str, ns: &str, attrs: &[(&str, &str)]) -> ElementBuilder {
    let mut b = Element::builder(name, ns);
    for (k, v) in attrs {
        b = attr(b, k, v);
    }
    b
}
