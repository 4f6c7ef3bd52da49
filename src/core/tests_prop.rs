//! Property tests: generated and mutated stanzas from visitors, staff and strangers go into the
//! core, and after every input its invariants must hold:
//! no panic; nothing from a room reaches staff of another site; at most one staff member has a
//! room; every stored message belongs to a session opened before; session states move only
//! along the allowed edges; nothing is sent to the component itself; errors are never answered
//! with errors; no answer to one of our own requests is taken from an address it was not asked
//! of; nothing the desk or a contact says to staff carries control, bidi or line-separator
//! characters, and a `!waiting` line always starts an entry.

use std::collections::HashMap;

use minidom::Element;
use proptest::prelude::*;
use xmpp_parsers::stanza::Stanza;

use super::tests::{config, to_element, COMPONENT};
use super::*;
use crate::config::{HttpUrl, RosterConfig, RosterMode, RosterVisitors};
use crate::core::session::Role;

const VISITORS: [&str; 3] = [
    "anon1@anon.example.com/r1",
    "anon2@anon.example.com/r2",
    "anon3@anon.example.com/r3",
];
const STAFF: [&str; 3] = [
    "alice_acme@example.com/desk",
    "bob_acme@example.com/laptop",
    "carol_globex@example.com/pc",
];
const STRANGER: &str = "mallory@example.com/x";
const ROOMS: [&str; 4] = ["v1_acme", "v2_acme", "v1_globex", "v1_nosuchsite"];
const NICKS: [&str; 8] = [
    "Ann",
    "Alice",
    "alice_acme",
    "ann",
    "A\u{200B}nn",
    "bob_acme (staff)",
    "x",
    "Ann ",
];
const BODIES: [&str; 10] = [
    "hi",
    "!finish",
    "!accept 1",
    "!cancel 2",
    "!waiting",
    "<b>&amp;",
    "",
    "!transcript 1",
    "first\u{2028}carol (staff): refund\u{202E}",
    "two\nlines\u{85}",
];

#[derive(Debug, Clone)]
enum Act {
    Join(usize, usize, usize),
    Leave(usize, usize, usize),
    Say(usize, usize, usize),
    Chat(usize, usize, usize),
    Typing(usize, usize),
    Desk(usize, usize),
    Online(usize, Option<&'static str>),
    Offline(usize),
    Probe(usize, usize),
    Subscribe(usize, usize),
    Iq(usize, usize, usize),
    Bounce(usize, usize),
    Advert,
    Tick(i64),
    Connected,
    Disconnected,
    ApiDone(bool),
    /// An answer, from sender `w`, to the `k`th of the requests the core has sent so far.
    Answer(usize, usize, bool),
    /// One of the above, mutated byte-wise.
    Mutated(Box<Act>, usize, usize),
}

/// Senders: 0-2 visitors, 3-5 staff (alice, bob of acme; carol of globex), 6 a stranger.
fn sender(i: usize) -> &'static str {
    match i {
        0..=2 => VISITORS[i],
        3..=5 => STAFF[i - 3],
        _ => STRANGER,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

fn room(i: usize) -> String {
    format!("{}@{COMPONENT}", ROOMS[i % ROOMS.len()])
}

fn xml_of(a: &Act) -> Option<String> {
    Some(match a {
        Act::Join(w, r, n) => format!(
            "<presence from='{}' to='{}/{}'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
            sender(*w), room(*r), esc(NICKS[n % NICKS.len()])
        ),
        Act::Leave(w, r, n) => format!("<presence type='unavailable' from='{}' to='{}/{}'/>", sender(*w), room(*r), esc(NICKS[n % NICKS.len()])),
        Act::Say(w, r, b) => format!(
            "<message type='groupchat' from='{}' to='{}' id='m{b}'><body>{}</body></message>",
            sender(*w), room(*r), esc(BODIES[b % BODIES.len()])
        ),
        Act::Chat(w, r, b) => format!(
            "<message type='chat' from='{}' to='{}'><body>{}</body></message>",
            sender(*w), room(*r), esc(BODIES[b % BODIES.len()])
        ),
        Act::Typing(w, r) => format!(
            "<message type='groupchat' from='{}' to='{}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
            sender(*w), room(*r)
        ),
        Act::Desk(w, b) => format!("<message type='chat' from='{}' to='{COMPONENT}'><body>{}</body></message>", sender(*w), esc(BODIES[b % BODIES.len()])),
        Act::Online(w, show) => {
            let show = show.map(|s| format!("<show>{s}</show>")).unwrap_or_default();
            format!("<presence from='{}' to='{COMPONENT}'>{show}</presence>", sender(*w))
        }
        Act::Offline(w) => format!("<presence type='unavailable' from='{}' to='{COMPONENT}'/>", sender(*w)),
        Act::Probe(w, r) => format!("<presence type='probe' from='{}' to='{}'/>", sender(*w), room(*r)),
        Act::Subscribe(w, r) => format!("<presence type='subscribe' from='{}' to='{}'/>", sender(*w), room(*r)),
        Act::Iq(w, r, k) => {
            let to = if k % 2 == 0 { room(*r) } else { COMPONENT.to_string() };
            let payload = match k % 4 {
                0 => "<query xmlns='http://jabber.org/protocol/disco#info'/>".to_string(),
                1 => "<command xmlns='http://jabber.org/protocol/commands' node='finish' action='execute'/>".to_string(),
                2 => "<ping xmlns='urn:xmpp:ping'/>".to_string(),
                _ => "<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>".to_string(),
            };
            let t = if k % 3 == 0 { "get" } else { "set" };
            format!("<iq type='{t}' id='q{k}' from='{}' to='{to}'>{payload}</iq>", sender(*w))
        }
        Act::Bounce(w, r) => format!(
            "<message type='error' from='{}' to='{}'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
            sender(*w), room(*r)
        ),
        Act::Advert => format!(
            "<message from='example.com' to='{COMPONENT}'><privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='both'/></privilege></message>"
        ),
        Act::Mutated(inner, at, what) => {
            let base = xml_of(inner)?;
            let snippets = ["<x/>", "type='error'", "&amp;", "<body>", "'", "<", "id='", "</presence>", "\u{202E}", "<show>sleepy</show>", "<priority>999</priority>"];
            let mut chars: Vec<char> = base.chars().collect();
            let i = at % (chars.len() + 1);
            if what % 3 == 0 && i < chars.len() {
                let end = (i + 1 + what % 7).min(chars.len());
                chars.drain(i..end);
            } else {
                for (k, c) in snippets[what % snippets.len()].chars().enumerate() {
                    chars.insert(i + k, c);
                }
            }
            chars.into_iter().collect()
        }
        _ => return None,
    })
}

fn act() -> impl Strategy<Value = Act> {
    let leaf = prop_oneof![
        (0..7usize, 0..4usize, 0..8usize).prop_map(|(w, r, n)| Act::Join(w, r, n)),
        (0..7usize, 0..4usize, 0..8usize).prop_map(|(w, r, n)| Act::Leave(w, r, n)),
        (0..7usize, 0..4usize, 0..BODIES.len()).prop_map(|(w, r, b)| Act::Say(w, r, b)),
        (0..7usize, 0..4usize, 0..BODIES.len()).prop_map(|(w, r, b)| Act::Chat(w, r, b)),
        (0..7usize, 0..4usize).prop_map(|(w, r)| Act::Typing(w, r)),
        (0..7usize, 0..BODIES.len()).prop_map(|(w, b)| Act::Desk(w, b)),
        (
            0..7usize,
            prop::option::of(prop::sample::select(vec!["away", "chat", "dnd", "xa"]))
        )
            .prop_map(|(w, s)| Act::Online(w, s)),
        (0..7usize).prop_map(Act::Offline),
        (0..7usize, 0..4usize).prop_map(|(w, r)| Act::Probe(w, r)),
        (0..7usize, 0..4usize).prop_map(|(w, r)| Act::Subscribe(w, r)),
        (0..7usize, 0..4usize, 0..12usize).prop_map(|(w, r, k)| Act::Iq(w, r, k)),
        (0..7usize, 0..4usize).prop_map(|(w, r)| Act::Bounce(w, r)),
        Just(Act::Advert),
        (1..200i64).prop_map(Act::Tick),
        Just(Act::Connected),
        Just(Act::Disconnected),
        any::<bool>().prop_map(Act::ApiDone),
        (0..7usize, 0..50usize, any::<bool>()).prop_map(|(w, k, e)| Act::Answer(w, k, e)),
    ];
    leaf.prop_flat_map(|a| {
        prop_oneof![
            4 => Just(a.clone()),
            1 => (0..400usize, 0..100usize).prop_map(move |(at, what)| Act::Mutated(Box::new(a.clone()), at, what)),
        ]
    })
}

/// What the invariants remember between inputs.
#[derive(Default)]
struct Seen {
    states: HashMap<i64, SessionState>,
}

fn allowed(from: SessionState, to: SessionState) -> bool {
    use SessionState::*;
    from == to
        || matches!(
            (from, to),
            (Inactive, Active)
                | (Inactive, Chatting)
                | (Inactive, Closed)
                | (Active, Chatting)
                | (Active, Closed)
                | (Chatting, Active)
                | (Chatting, Inactive)
                | (Chatting, Closed)
        )
}

fn site_of_room_jid(jid: &str) -> Option<String> {
    let (node, rest) = jid.split_once('@')?;
    let domain = rest.split('/').next()?;
    if domain != COMPONENT {
        return None;
    }
    RoomName::parse(node).ok().map(|r| r.site().to_string())
}

fn staff_sites(cfg: &CoreConfig, bare: &str) -> Vec<String> {
    cfg.sites
        .iter()
        .filter(|(_, s)| s.staff.iter().any(|j| j.as_str() == bare))
        .map(|(id, _)| id.to_string())
        .collect()
}

fn check(
    cfg: &CoreConfig,
    core: &Core,
    sender: Option<&str>,
    input_was_error: Option<&str>,
    outs: &[Output],
    seen: &mut Seen,
) -> Result<(), String> {
    let mut stanzas: Vec<Element> = Vec::new();
    for o in outs {
        match o {
            Output::Send(s) => stanzas.push(to_element(s)),
            Output::Persist { op, then, or_else } => {
                stanzas.extend(
                    then.iter()
                        .chain(or_else.clone().into_stanzas().iter())
                        .map(to_element),
                );
                check_op(op, seen)?;
            }
            Output::Store(op) => check_op(op, seen)?,
            Output::Api(_) | Output::Query(_) | Output::Replay(_) => {}
        }
    }
    for s in &stanzas {
        check_text_for_staff(s)?;
        let to = s.attr("to").unwrap_or("");
        let from = s.attr("from").unwrap_or("");
        let to_bare = to.split('/').next().unwrap_or("");
        if to_bare.rsplit('@').next() == Some(COMPONENT) || to_bare == COMPONENT {
            return Err(format!("sent to ourselves: {}", String::from(s)));
        }
        // A refusal answering what someone sent (an error, an `unsubscribed`, `unavailable`
        // for a probe) tells them nothing about the room's people.
        let sender_bare = sender.map(|f| f.split('/').next().unwrap_or(""));
        // (The answer to their own IQ too: a room's disco#info is the same whether or not
        // anyone is in it, and its items are always empty.)
        let refusal = matches!(
            s.attr("type"),
            Some("error" | "unsubscribed" | "unavailable")
        ) || (s.name() == "iq" && s.attr("type") == Some("result"));
        let reply_to_sender = refusal && Some(to_bare) == sender_bare;
        if let Some(site) = site_of_room_jid(from).filter(|_| !reply_to_sender) {
            let sites = staff_sites(cfg, to_bare);
            if !sites.is_empty() && !sites.contains(&site) {
                return Err(format!(
                    "room of site {site} reached staff of {sites:?}: {}",
                    String::from(s)
                ));
            }
        }
        if let Some(err_from) = input_was_error {
            if s.attr("type") == Some("error") && to == err_from {
                return Err(format!(
                    "answered an error with an error: {}",
                    String::from(s)
                ));
            }
        }
    }
    for room in core.rooms.values() {
        let mut staff: Vec<String> = room
            .occupants()
            .filter(|o| o.role == Role::Staff)
            .map(|o| o.jid.to_bare().to_string())
            .collect();
        staff.sort();
        staff.dedup();
        if staff.len() > 1 {
            return Err(format!("room {} has staff {staff:?}", room.jid()));
        }
        for o in room.occupants() {
            if o.role == Role::Staff
                && !staff_sites(cfg, o.jid.to_bare().as_str())
                    .contains(&room.name().site().to_string())
            {
                return Err(format!(
                    "{} is staff in {} of another site",
                    o.jid,
                    room.jid()
                ));
            }
        }
    }
    Ok(())
}

/// What the desk says and what a contact shows staff is rendered: no control, bidi or
/// line-separator characters (a desk message's own lines aside), and every `!waiting` line
/// starts an entry.
fn check_text_for_staff(s: &Element) -> Result<(), String> {
    let from = s.attr("from").unwrap_or("");
    let desk = from == COMPONENT || from == format!("{COMPONENT}/frontdesk");
    let contact = from.ends_with("/frontdesk");
    if !desk && !contact {
        return Ok(());
    }
    let bad = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    for child in s
        .children()
        .filter(|c| c.name() == "body" || c.name() == "status")
    {
        let text = child.text();
        if text.chars().any(bad) || (contact && text.contains('\n')) {
            return Err(format!("raw text to staff: {}", String::from(s)));
        }
        if text.contains("open request(s):") {
            if let Some(line) = text.lines().skip(1).find(|l| !l.starts_with('#')) {
                return Err(format!("a !waiting line that starts no entry: {line:?}"));
            }
        }
    }
    Ok(())
}

fn check_op(op: &StoreOp, seen: &mut Seen) -> Result<(), String> {
    match op {
        StoreOp::OpenSession(r) if seen.states.insert(r.id, r.state).is_some() => {
            return Err(format!("session {} opened twice", r.id));
        }
        StoreOp::UpdateSession(r) => {
            let Some(prev) = seen.states.get(&r.id).copied() else {
                return Err(format!("update of session {} that was never opened", r.id));
            };
            if !allowed(prev, r.state) {
                return Err(format!("session {}: {prev} -> {}", r.id, r.state));
            }
            seen.states.insert(r.id, r.state);
        }
        StoreOp::AppendMessage(m) => match seen.states.get(&m.session_id) {
            None => {
                return Err(format!(
                    "message for session {} that was never opened",
                    m.session_id
                ))
            }
            Some(SessionState::Closed) => {
                return Err(format!("message stored in CLOSED session {}", m.session_id))
            }
            Some(_) => {}
        },
        _ => {}
    }
    Ok(())
}

/// The input, who sent it, and (if it was an error) to whom no error may go back.
fn input_of(a: &Act, api: &mut Vec<String>) -> Option<(Input, Option<String>, Option<String>)> {
    match a {
        Act::Tick(_) => Some((Input::Tick, None, None)),
        Act::Connected => Some((Input::Connected, None, None)),
        Act::Disconnected => Some((Input::Disconnected, None, None)),
        Act::ApiDone(ok) => {
            let id = api.pop()?;
            let result = if *ok { Ok(()) } else { Err("403".into()) };
            Some((Input::ApiDone { id, result }, None, None))
        }
        _ => parse_input(xml_of(a)?),
    }
}

/// An answer from sender `w` to the `k`th request we saw (a result, or a "gone" error), and
/// whether it comes from an address other than the one asked.
fn answer_to(
    asked: &[(String, String, String)],
    w: usize,
    k: usize,
    err: bool,
) -> Option<(String, bool)> {
    if asked.is_empty() {
        return None;
    }
    let (id, to, by) = &asked[k % asked.len()];
    let from = sender(w);
    let xml = if err {
        format!("<iq type='error' id='{id}' from='{from}' to='{by}'><ping xmlns='urn:xmpp:ping'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    } else {
        format!("<iq type='result' id='{id}' from='{from}' to='{by}'/>")
    };
    Some((
        xml,
        from != to.as_str() && from.split('/').next() != Some(to.as_str()),
    ))
}

/// A stanza as the shell would hand it to the core: parsed, or its header if it does not parse.
fn parse_input(xml: String) -> Option<(Input, Option<String>, Option<String>)> {
    {
        {
            let with_ns = match xml.find([' ', '>', '/']) {
                Some(end) if xml.starts_with('<') => format!(
                    "{} xmlns='jabber:component:accept'{}",
                    &xml[..end],
                    &xml[end..]
                ),
                _ => return None,
            };
            let el: Element = with_ns.parse().ok()?;
            let err_from = (el.attr("type") == Some("error"))
                .then(|| el.attr("from").unwrap_or("").to_string());
            let from = el.attr("from").map(str::to_string);
            match xso::transform::<Stanza, _>(&el) {
                Ok(s) => Some((Input::Stanza(s), from, err_from)),
                Err(e) => {
                    let kind = match el.name() {
                        "iq" => StanzaKind::Iq,
                        "message" => StanzaKind::Message,
                        "presence" => StanzaKind::Presence,
                        _ => return None,
                    };
                    let get = |k: &str| el.attr(k).map(str::to_string);
                    Some((
                        Input::Invalid(InvalidStanza {
                            kind,
                            from: get("from"),
                            to: get("to"),
                            id: get("id"),
                            type_: get("type"),
                            reason: e.to_string(),
                        }),
                        from,
                        err_from,
                    ))
                }
            }
        }
    }
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=20000 for a longer hunt.
    #![proptest_config(ProptestConfig { max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_input(acts in prop::collection::vec(act(), 1..60), waiting in any::<bool>()) {
        let mut cfg = config();
        cfg.roster = RosterConfig {
            mode: RosterMode::Auto,
            ejabberd_api: Some(HttpUrl::parse("http://127.0.0.1:5280/api").unwrap()),
            remove_after_secs: 30,
            visitors: if waiting { RosterVisitors::Waiting } else { RosterVisitors::All },
            ..RosterConfig::default()
        };
        let mut now = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
        let mut core = Core::new(cfg.clone(), Snapshot { next_session_id: 1, ..Default::default() }, now);
        let mut seen = Seen::default();
        let mut api: Vec<String> = Vec::new();
        // Our requests so far: (id, the address asked, the address asking).
        let mut asked: Vec<(String, String, String)> = Vec::new();
        for a in &acts {
            if let Act::Tick(secs) = a {
                now = now.plus_millis(secs * 1000);
            }
            let (parsed, wrong_address) = match a {
                Act::Answer(w, k, err) => match answer_to(&asked, *w, *k, *err) {
                    Some((xml, wrong)) => (parse_input(xml), wrong),
                    None => continue,
                },
                _ => (input_of(a, &mut api), false),
            };
            let Some((input, from, err_from)) = parsed else { continue };
            let dropped_before = core.unmatched;
            let outs = core.handle(now, input);
            for o in &outs {
                if let Output::Api(c) = o {
                    api.push(c.id());
                }
                if let Output::Send(s) = o {
                    let e = to_element(s);
                    if e.name() == "iq" && matches!(e.attr("type"), Some("get" | "set")) {
                        let attr = |k: &str| e.attr(k).unwrap_or("").to_string();
                        asked.push((attr("id"), attr("to"), attr("from")));
                    }
                }
            }
            if wrong_address {
                prop_assert_eq!(core.unmatched, dropped_before + 1, "after {:?}: an answer from an address we did not ask was taken", a);
            }
            if let Err(e) = check(&cfg, &core, from.as_deref(), err_from.as_deref(), &outs, &mut seen) {
                prop_assert!(false, "after {a:?}: {e}");
            }
            // The index of who has which chat agrees with the rooms themselves.
            let mut recount = std::collections::BTreeMap::new();
            for r in core.rooms.values().filter(|r| r.state() == SessionState::Chatting) {
                if let Some(h) = r.handler() {
                    *recount.entry(h).or_insert(0usize) += 1;
                }
            }
            prop_assert_eq!(core.rooms.loads(), recount, "after {:?}: the chats per staff member drifted", a);
        }
    }
}
