//! Scenario tests: stanzas in, expected stanzas out, written as transcripts in the manner of
//! Prosody's scansion tests ("Visitor sends: … Visitor receives: …").
//!
//! `receives` matches like scansion: every attribute and child written in the expected XML
//! must be there (in any order); the actual stanza may carry more (e.g. error `<text>`).

use std::collections::VecDeque;

use minidom::Element;
use xmpp_parsers::stanza::Stanza;

use super::*;
use crate::address::RoomName;
use crate::core::session::{MessageRecord, OccupantRecord, Role, SessionRecord, SessionState};
use crate::store::{SessionRow, Snapshot, StoreOp};

pub(super) const COMPONENT: &str = "chat.example.com";
pub(super) const V1: &str = "anon1@anon.example.com/r1";
pub(super) const V2: &str = "anon2@anon.example.com/r2";
pub(super) const ALICE: &str = "alice_acme@example.com/desk";
pub(super) const BOB: &str = "bob_acme@example.com/laptop";
pub(super) const CAROL: &str = "carol_globex@example.com/pc";
pub(super) const ROOM: &str = "v1_acme@chat.example.com";

pub(super) fn config() -> CoreConfig {
    let site = |name: &str, staff: &[&str]| SiteInfo {
        name: name.into(),
        staff: staff.iter().map(|s| BareJid::new(s).unwrap()).collect(),
        token_secret: None,
        profiles: Default::default(),
        desk: Default::default(),
    };
    CoreConfig {
        component: BareJid::new(COMPONENT).unwrap(),
        sites: [
            (
                SiteId::new("acme").unwrap(),
                site(
                    "ACME Inc.",
                    &["alice_acme@example.com", "bob_acme@example.com"],
                ),
            ),
            (
                SiteId::new("globex").unwrap(),
                site("Globex", &["carol_globex@example.com"]),
            ),
        ]
        .into_iter()
        .collect(),
        // The staff-side tests (tests_staff.rs) turn the roster on.
        // Visitors "all" (not the default): most staff tests watch browsing visitors.
        roster: crate::config::RosterConfig {
            mode: crate::config::RosterMode::Off,
            visitors: crate::config::RosterVisitors::All,
            ..Default::default()
        },
        limits: crate::config::Limits::default(),
        admins: Default::default(),
    }
}

pub(super) struct Scenario {
    pub(super) core: Core,
    pub(super) now: Timestamp,
    /// Stanzas to full JIDs: the MUC side (occupants, errors to senders).
    pub(super) inbox: VecDeque<Element>,
    /// Stanzas to bare JIDs: the staff side (roster presence, offers, the desk, roster pushes).
    pub(super) staff_inbox: VecDeque<Element>,
    /// Admin API calls and store reads the core asked the shell for.
    pub(super) jobs: Vec<Output>,
    pub(super) stored: Vec<StoreOp>,
    /// Stanzas that were waiting for a commit (to test the failure path).
    or_else: Vec<Element>,
    /// The server's view of staff sessions, as it answers the front desk's probes: for each
    /// bare JID, the last presence each resource sent to the front desk.
    pub(super) server:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, Element>>,
    /// Staff clients that no longer answer pings.
    frozen: std::collections::BTreeSet<String>,
    /// Whom the desk pinged, in order (staff liveness checks; answered by `answer_pings`).
    pub(super) staff_pings: Vec<(String, String)>,
}

/// A ping from the front desk (the component's bare domain) to a staff resource.
fn is_desk_ping(e: &Element) -> bool {
    e.name() == "iq"
        && e.attr("type") == Some("get")
        && e.attr("from") == Some(COMPONENT)
        && e.has_child("ping", "urn:xmpp:ping")
}

pub(super) fn parse(xml: &str) -> Element {
    // Top-level stanzas are in the component namespace unless the test says otherwise.
    let xml = xml.trim();
    let with_ns = if xml.contains("xmlns='jabber:component:accept'") {
        xml.to_string()
    } else {
        let end = xml.find([' ', '>', '/']).unwrap();
        format!(
            "{} xmlns='jabber:component:accept'{}",
            &xml[..end],
            &xml[end..]
        )
    };
    with_ns
        .parse()
        .unwrap_or_else(|e| panic!("bad test XML {xml}: {e}"))
}

/// The id of the core's `n`th IQ of this kind (the tests' cores use the all-zero key).
pub(super) fn iq_id(kind: &str, n: u64) -> String {
    keyed_id(&[0; 32], kind, n)
}

pub(super) fn to_element(s: &Stanza) -> Element {
    xso::transform(s).unwrap()
}

/// Does `actual` contain everything `expected` says?
pub(super) fn matches(expected: &Element, actual: &Element) -> bool {
    if expected.name() != actual.name() || expected.ns() != actual.ns() {
        return false;
    }
    for ((ns, name), v) in expected.attrs().iter() {
        if actual.attrs().get(ns, name) != Some(v) {
            return false;
        }
    }
    let text = expected.text();
    if !text.trim().is_empty() && text.trim() != actual.text().trim() {
        return false;
    }
    expected
        .children()
        .all(|e| actual.children().any(|a| matches(e, a)))
}

pub(super) fn show(e: &Element) -> String {
    String::from(e)
}

impl Scenario {
    pub(super) fn new() -> Scenario {
        Scenario::resume(Snapshot {
            next_session_id: 1,
            ..Default::default()
        })
    }

    pub(super) fn with_config(config: CoreConfig) -> Scenario {
        let mut s = Scenario::new();
        s.core = Core::new(
            config,
            Snapshot {
                next_session_id: 1,
                ..Default::default()
            },
            s.now,
        );
        s
    }

    pub(super) fn resume(snapshot: Snapshot) -> Scenario {
        let now = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
        Scenario {
            core: Core::new(config(), snapshot, now),
            now,
            inbox: VecDeque::new(),
            staff_inbox: VecDeque::new(),
            jobs: Vec::new(),
            stored: Vec::new(),
            or_else: Vec::new(),
            server: Default::default(),
            frozen: Default::default(),
            staff_pings: Vec::new(),
        }
    }

    pub(super) fn feed(&mut self, input: Input) {
        let mut probed = Vec::new();
        let mut pinged = Vec::new();
        for o in self.core.handle(self.now, input) {
            match o {
                Output::Send(s) => {
                    let e = to_element(&s);
                    if e.name() == "presence" && e.attr("type") == Some("probe") {
                        probed.extend(e.attr("to").map(str::to_string));
                    }
                    if is_desk_ping(&e) {
                        let attr = |a| e.attr(a).unwrap_or_default().to_string();
                        self.staff_pings.push((attr("to"), attr("id")));
                        pinged.push(e);
                        continue;
                    }
                    self.route(e)
                }
                Output::Store(op) => self.stored.push(op),
                Output::Persist { op, then, or_else } => {
                    self.stored.push(op);
                    for s in &then {
                        self.route(to_element(s));
                    }
                    self.or_else
                        .extend(or_else.into_stanzas().iter().map(to_element));
                }
                job @ (Output::Api(_) | Output::Query(_) | Output::Replay(_)) => {
                    self.jobs.push(job)
                }
            }
        }
        self.answer_probes(probed);
        self.answer_pings(pinged);
    }

    /// Staff clients answer the desk's pings, unless frozen (a client the server still
    /// lists that no longer answers).
    fn answer_pings(&mut self, pinged: Vec<Element>) {
        for ping in pinged {
            let (Some(to), Some(id)) = (ping.attr("to"), ping.attr("id")) else {
                continue;
            };
            if self.frozen.contains(to) {
                continue;
            }
            let answer = parse(&format!(
                "<iq type='result' from='{to}' to='{COMPONENT}' id='{id}'/>"
            ));
            if let Ok(stanza) = xso::transform(&answer) {
                self.feed(Input::Stanza(stanza));
            }
        }
    }

    /// A staff client stops answering (killed while the server keeps its session, or cut
    /// off); `thaw` brings it back.
    pub(super) fn freeze(&mut self, full: &str) {
        self.frozen.insert(full.to_string());
    }

    pub(super) fn thaw(&mut self, full: &str) {
        self.frozen.remove(full);
    }

    /// The server answers a probe from the front desk: each resource's last presence, or
    /// unavailable from the bare JID when none is online.
    fn answer_probes(&mut self, probed: Vec<String>) {
        for bare in probed {
            let answers: Vec<Element> = match self.server.get(&bare) {
                Some(sessions) if !sessions.is_empty() => sessions.values().cloned().collect(),
                _ => vec![parse(&format!(
                    "<presence type='unavailable' from='{bare}' to='{COMPONENT}'/>"
                ))],
            };
            for a in answers {
                if let Ok(stanza) = xso::transform(&a) {
                    self.feed(Input::Stanza(stanza));
                }
            }
        }
    }

    /// A staff session ends on the server without the component hearing of it (its presence
    /// never reached us): only a probe shows it.
    pub(super) fn server_forgets(&mut self, full: &str) {
        let bare = full.split('/').next().unwrap_or(full).to_string();
        if let Some(sessions) = self.server.get_mut(&bare) {
            sessions.remove(full);
        }
    }

    /// What the server learns from a presence a client sends to the front desk.
    fn note_session(&mut self, el: &Element) {
        let (Some(from), Some(to)) = (el.attr("from"), el.attr("to")) else {
            return;
        };
        if el.name() != "presence" || to != COMPONENT || !from.contains('/') {
            return;
        }
        let bare = from.split('/').next().unwrap_or(from).to_string();
        let sessions = self.server.entry(bare).or_default();
        match el.attr("type") {
            None => {
                sessions.insert(from.to_string(), el.clone());
            }
            Some("unavailable") => {
                sessions.remove(from);
            }
            _ => {}
        }
    }

    fn route(&mut self, e: Element) {
        let bare = e.attr("to").is_some_and(|t| !t.contains('/'));
        if bare {
            self.staff_inbox.push_back(e);
        } else {
            self.inbox.push_back(e);
        }
    }

    /// Someone sends this stanza to the component.
    pub(super) fn sends(&mut self, xml: &str) {
        let el = parse(xml);
        self.note_session(&el);
        let stanza: Stanza = xso::transform(&el)
            .unwrap_or_else(|e| panic!("test stanza does not parse: {e}: {xml}"));
        self.feed(Input::Stanza(stanza));
    }

    /// The next stanza the component sends must match.
    #[track_caller]
    pub(super) fn receives(&mut self, xml: &str) {
        let expected = parse(xml);
        let Some(actual) = self.inbox.pop_front() else {
            panic!("expected\n  {}\nbut nothing more was sent", show(&expected));
        };
        assert!(
            matches(&expected, &actual),
            "expected\n  {}\ngot\n  {}\nstill queued: {}",
            show(&expected),
            show(&actual),
            self.inbox.len()
        );
    }

    /// Skips stanzas until one matches (for long join sequences a test is not about).
    #[track_caller]
    pub(super) fn eventually_receives(&mut self, xml: &str) {
        let expected = parse(xml);
        while let Some(actual) = self.inbox.pop_front() {
            if matches(&expected, &actual) {
                return;
            }
        }
        panic!("never received {}", show(&expected));
    }

    #[track_caller]
    pub(super) fn receives_nothing(&mut self) {
        if let Some(e) = self.inbox.pop_front() {
            panic!("expected nothing more, got\n  {}", show(&e));
        }
    }

    pub(super) fn drain(&mut self) -> Vec<Element> {
        self.inbox.drain(..).collect()
    }

    /// The bodies the desk sent `staff` since the last call (and forgets them).
    pub(super) fn desk_told(&mut self, staff: &str) -> Vec<String> {
        self.told(staff, COMPONENT)
    }

    /// The bodies `from` sent `staff` since the last call (and forgets them).
    pub(super) fn told(&mut self, staff: &str, from: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.staff_inbox.retain(|e| {
            let mine = e.name() == "message"
                && e.attr("to") == Some(staff)
                && e.attr("from") == Some(from);
            if mine {
                out.push(
                    e.get_child("body", "jabber:component:accept")
                        .map(|b| b.text())
                        .unwrap_or_default(),
                );
            }
            !mine
        });
        out
    }

    pub(super) fn after_secs(&mut self, secs: i64) {
        self.now = self.now.plus_millis(secs * 1000);
        self.feed(Input::Tick);
    }

    pub(super) fn state(&self, room: &str) -> Option<SessionState> {
        self.core.room_state(&RoomName::parse(room).unwrap())
    }

    /// The sessions written, as the text the store writes them as.
    pub(super) fn sessions_written(&self) -> Vec<SessionRow> {
        self.stored
            .iter()
            .filter_map(|op| match op {
                StoreOp::OpenSession(r) | StoreOp::UpdateSession(r) => Some(SessionRow::from(r)),
                _ => None,
            })
            .collect()
    }

    pub(super) fn last_session_row(&self) -> SessionRow {
        self.sessions_written().pop().expect("no session written")
    }

    pub(super) fn messages_stored(&self) -> Vec<(Role, String, String)> {
        self.stored
            .iter()
            .filter_map(|op| match op {
                StoreOp::AppendMessage(m) => Some((m.role, m.nick.clone(), m.body.clone())),
                _ => None,
            })
            .collect()
    }

    // Common moves, each itself checked.

    pub(super) fn visitor_joins(&mut self) {
        self.sends(&format!("<presence from='{V1}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        self.eventually_receives(&format!("<message from='{ROOM}' to='{V1}' type='groupchat'><subject>Chat with ACME Inc.</subject></message>"));
        self.receives_nothing();
    }

    pub(super) fn visitor_says(&mut self, body: &str) {
        self.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat' id='m-{body}'><body>{body}</body></message>"));
        self.drain();
    }

    pub(super) fn alice_joins(&mut self) {
        self.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        self.eventually_receives(&format!(
            "<message from='{ROOM}' to='{ALICE}' type='groupchat'><subject/></message>"
        ));
        self.receives_nothing();
    }
}

const MUC_USER: &str = "http://jabber.org/protocol/muc#user";

#[test]
fn visitor_joins_a_new_room() {
    let mut s = Scenario::new();
    // Visitor sends:
    s.sends(&format!("<presence from='{V1}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    // Visitor receives its own presence (110: this is you; 201: the room is new) and the subject.
    s.receives(&format!(
        "<presence from='{ROOM}/Ann' to='{V1}'><x xmlns='{MUC_USER}'>
            <item affiliation='none' role='participant' jid='{V1}'/>
            <status code='110'/><status code='201'/></x></presence>"
    ));
    s.receives(&format!("<message from='{ROOM}' to='{V1}' type='groupchat'><subject>Chat with ACME Inc.</subject></message>"));
    s.receives_nothing();
    assert_eq!(s.state("v1_acme"), Some(SessionState::Inactive));
    let row = s.last_session_row();
    assert_eq!(
        (
            row.id,
            row.room.as_str(),
            row.site.as_str(),
            row.visitor.as_str()
        ),
        (1, ROOM, "acme", "v1")
    );
    assert_eq!(row.visitor_jid.as_deref(), Some(V1));
    assert!(
        matches!(&s.stored[1], StoreOp::OccupantJoined(o) if o.jid.as_str() == V1 && o.role == Role::Visitor)
    );
}

#[test]
fn visitor_message_is_stored_then_reflected_and_makes_the_session_active() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.stored.clear();
    s.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat' id='abc'><body>Hello?</body><active xmlns='http://jabber.org/protocol/chatstates'/><stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='{ROOM}'/><html xmlns='http://jabber.org/protocol/xhtml-im'/></message>"));
    s.receives(&format!(
        "<message from='{ROOM}/Ann' to='{V1}' type='groupchat' id='abc'><body>Hello?</body>
            <active xmlns='http://jabber.org/protocol/chatstates'/>
            <stanza-id xmlns='urn:xmpp:sid:0' id='1-1' by='{ROOM}'/></message>"
    ));
    // No staff member is online: the room says so, once.
    s.receives(&format!(
        "<message from='{ROOM}' to='{V1}' type='groupchat'><body>{}</body></message>",
        room::desk::NOBODY_TEXT
    ));
    s.receives_nothing();
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    // The session row is written before the message, and the message carries its stanza-id.
    assert!(matches!(&s.stored[0], StoreOp::UpdateSession(r) if r.state == SessionState::Active));
    assert!(
        matches!(&s.stored[1], StoreOp::AppendMessage(m) if m.stanza_id == "1-1" && m.origin_id.as_deref() == Some("abc") && m.from_jid.as_str() == V1)
    );
    // The forged stanza-id and the XHTML did not survive reflection.
    let reflected = s.core.handle(s.now, Input::Tick);
    assert!(reflected.is_empty());
}

#[test]
fn reflection_waits_for_the_commit_and_failure_tells_the_sender() {
    let mut s = Scenario::new();
    s.visitor_joins();
    let outs = s.core.handle(
        s.now,
        Input::Stanza(xso::transform(&parse(&format!("<message from='{V1}' to='{ROOM}' type='groupchat' id='x1'><body>hi</body></message>"))).unwrap()),
    );
    let persist = outs.into_iter().find_map(|o| match o {
        Output::Persist { op, then, or_else } => Some((op, then, or_else)),
        _ => None,
    });
    let (op, then, or_else) = persist.expect("a message must be persisted before it is reflected");
    assert!(matches!(op, StoreOp::AppendMessage(_)));
    // The reflection and, nobody being online, the room's notice: both wait for the commit.
    assert_eq!(then.len(), 2);
    let err = to_element(&or_else.into_stanzas()[0]);
    assert!(matches(
        &parse(&format!("<message type='error' from='{ROOM}' to='{V1}' id='x1'><error type='wait'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")),
        &err
    ), "{}", show(&err));
}

#[test]
fn staff_joins_and_the_room_is_chatting() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.stored.clear();
    // Alice sends:
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    // Alice receives the visitor's presence, with the real JID because she is staff:
    s.receives(&format!("<presence from='{ROOM}/Ann' to='{ALICE}'><x xmlns='{MUC_USER}'><item role='participant' jid='{V1}'/></x></presence>"));
    // The visitor receives Alice's arrival, without her real JID:
    s.receives(&format!("<presence from='{ROOM}/Alice' to='{V1}'><x xmlns='{MUC_USER}'><item affiliation='admin' role='moderator'/></x></presence>"));
    // Alice receives her own presence, the history, and the subject:
    s.receives(&format!("<presence from='{ROOM}/Alice' to='{ALICE}'><x xmlns='{MUC_USER}'><item role='moderator' jid='{ALICE}'/><status code='110'/></x></presence>"));
    s.receives(&format!("<message from='{ROOM}/Ann' to='{ALICE}' type='groupchat'><body>Hello?</body><delay xmlns='urn:xmpp:delay' from='{ROOM}' stamp='2026-11-22T10:00:00+00:00'/><stanza-id xmlns='urn:xmpp:sid:0' id='1-1' by='{ROOM}'/></message>"));
    s.receives(&format!("<message from='{ROOM}' to='{ALICE}' type='groupchat'><subject>Chat with ACME Inc.</subject></message>"));
    s.receives_nothing();
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    let row = s.last_session_row();
    assert_eq!(row.staff.as_deref(), Some("alice_acme@example.com"));
    assert!(s.messages_stored().contains(&(
        Role::System,
        String::new(),
        "Alice joined the chat".into()
    )));
}

#[test]
fn the_visitor_never_sees_a_staff_members_real_jid() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.alice_joins();
    s.sends(&format!(
        "<presence from='{ALICE}' to='{ROOM}/Alice'><show>away</show></presence>"
    ));
    s.sends(&format!(
        "<message from='{ALICE}' to='{ROOM}' type='groupchat'><body>hi</body></message>"
    ));
    s.sends(&format!(
        "<presence from='{ALICE}' to='{ROOM}/Alice' type='unavailable'/>"
    ));
    let to_visitor: Vec<String> = s
        .drain()
        .iter()
        .filter(|e| e.attr("to") == Some(V1))
        .map(show)
        .collect();
    assert!(to_visitor.len() >= 3, "{to_visitor:?}");
    for x in &to_visitor {
        assert!(!x.contains("alice_acme@example.com"), "leaked: {x}");
    }
}

#[test]
fn a_conversation_both_ways() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.alice_joins();
    // Alice sends; both receive it from her nick.
    s.sends(&format!("<message from='{ALICE}' to='{ROOM}' type='groupchat' id='a1'><body>How can I help?</body></message>"));
    s.receives(&format!("<message from='{ROOM}/Alice' to='{V1}' type='groupchat' id='a1'><body>How can I help?</body></message>"));
    s.receives(&format!("<message from='{ROOM}/Alice' to='{ALICE}' type='groupchat' id='a1'><body>How can I help?</body></message>"));
    // The visitor answers.
    s.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat' id='v1'><body>My order is late</body></message>"));
    s.receives(&format!("<message from='{ROOM}/Ann' to='{V1}' type='groupchat' id='v1'><body>My order is late</body></message>"));
    s.receives(&format!("<message from='{ROOM}/Ann' to='{ALICE}' type='groupchat' id='v1'><body>My order is late</body></message>"));
    s.receives_nothing();
    // Writing while CHATTING does not change the state.
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    let said: Vec<_> = s
        .messages_stored()
        .into_iter()
        .filter(|m| m.0 != Role::System)
        .collect();
    assert_eq!(
        said,
        vec![
            (
                Role::Staff,
                "Alice".to_string(),
                "How can I help?".to_string()
            ),
            (
                Role::Visitor,
                "Ann".to_string(),
                "My order is late".to_string()
            ),
        ]
    );
}

#[test]
fn a_second_staff_member_is_refused_with_who_has_the_room() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.alice_joins();
    s.sends(&format!("<presence from='{BOB}' to='{ROOM}/Bob' id='j1'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!("<presence type='error' from='{ROOM}/Bob' to='{BOB}' id='j1'><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Alice is already chatting with this visitor (#1).</text></error></presence>"));
    s.receives_nothing();
    assert_eq!(
        s.last_session_row().staff.as_deref(),
        Some("alice_acme@example.com")
    );
}

#[test]
fn staff_of_another_site_are_forbidden() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.sends(&format!("<presence from='{CAROL}' to='{ROOM}/Carol'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!("<presence type='error' from='{ROOM}/Carol' to='{CAROL}'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    s.receives_nothing();
    // Even into a room that has no session yet: staff elsewhere are never visitors here.
    s.sends(&format!("<presence from='{CAROL}' to='v9_acme@chat.example.com/Carol'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives("<presence type='error'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
    assert_eq!(s.state("v9_acme"), None);
}

#[test]
fn unknown_sites_and_bad_room_names_are_not_found() {
    let mut s = Scenario::new();
    s.sends(&format!("<presence from='{V1}' to='v1_nosuch@chat.example.com/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!("<presence type='error' from='v1_nosuch@chat.example.com/Ann' to='{V1}'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    s.sends(&format!("<presence from='{V1}' to='lobby@chat.example.com/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives("<presence type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
    // Joining without a nick is malformed.
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    ));
    s.receives("<presence type='error'><error type='modify'><jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
    s.receives_nothing();
    assert!(s.stored.is_empty());
}

#[test]
fn staff_cannot_open_a_room_without_a_visitor() {
    let mut s = Scenario::new();
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives("<presence type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
    assert_eq!(s.state("v1_acme"), None);
}

#[test]
fn nick_rules() {
    let mut s = Scenario::new();
    s.visitor_joins();
    // "alice" is not free when "Ann" ... but "ANN" is Ann, case-folded.
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/ANN'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives("<presence type='error'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Al\u{3164}ice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives("<presence type='error'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
    s.receives_nothing();
    // Changing nick once in (XEP-0045 §7.6): the old address leaves with 303 and the new nick.
    s.sends(&format!("<presence from='{V1}' to='{ROOM}/Annie'/>"));
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/Ann' to='{V1}'><x xmlns='{MUC_USER}'><item nick='Annie'/><status code='303'/><status code='110'/></x></presence>"));
    s.receives(&format!("<presence from='{ROOM}/Annie' to='{V1}'><x xmlns='{MUC_USER}'><status code='110'/></x></presence>"));
    s.receives_nothing();
    // The same rules as for joining: not a staff member's name, not an invalid one.
    s.sends(&format!("<presence from='{V1}' to='{ROOM}/alice_acme'/>"));
    s.receives(&format!("<presence type='error' from='{ROOM}/alice_acme' to='{V1}'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Al\u{3164}ice'/>"
    ));
    s.receives("<presence type='error'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
    s.receives_nothing();
}

#[test]
fn a_nick_change_is_seen_by_staff_and_taken_by_nobody_else() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.alice_joins();
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Ann'/>"));
    s.receives(&format!("<presence type='error' from='{ROOM}/Ann' to='{ALICE}'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Annie'><status>brb</status></presence>"
    ));
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/Ann' to='{V1}'><x xmlns='{MUC_USER}'><item nick='Annie'/><status code='303'/></x></presence>"));
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/Ann' to='{ALICE}'><x xmlns='{MUC_USER}'><item nick='Annie' jid='{V1}'/><status code='303'/></x></presence>"));
    s.receives(&format!(
        "<presence from='{ROOM}/Annie' to='{V1}'><status>brb</status></presence>"
    ));
    s.receives(&format!("<presence from='{ROOM}/Annie' to='{ALICE}'><status>brb</status><x xmlns='{MUC_USER}'><item jid='{V1}'/></x></presence>"));
    s.receives_nothing();
    // Staff see the new name in what they are offered and in the transcript from now on.
    s.visitor_says("Me again");
    assert!(s
        .messages_stored()
        .iter()
        .any(|(_, nick, body)| nick == "Annie" && body == "Me again"));
}

#[test]
fn groupchat_from_a_non_occupant_is_not_acceptable() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.sends(&format!(
        "<message from='{V2}' to='{ROOM}' type='groupchat' id='x'><body>let me in</body></message>"
    ));
    s.receives(&format!("<message type='error' from='{ROOM}' to='{V2}' id='x'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
    // Also for a room with no session at all.
    s.sends(&format!("<message from='{V2}' to='v7_acme@chat.example.com' type='groupchat' id='y'><body>hello</body></message>"));
    s.receives("<message type='error' id='y'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    s.receives_nothing();
    assert!(s.messages_stored().is_empty());
}

#[test]
fn staff_leaving_puts_the_session_back_to_active() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.alice_joins();
    s.sends(&format!(
        "<presence from='{ALICE}' to='{ROOM}/Alice' type='unavailable'/>"
    ));
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/Alice' to='{V1}'><x xmlns='{MUC_USER}'><item role='none'/></x></presence>"));
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/Alice' to='{ALICE}'><x xmlns='{MUC_USER}'><item role='none'/><status code='110'/></x></presence>"));
    s.receives_nothing();
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    let row = s.last_session_row();
    assert_eq!((row.state, row.staff), (SessionState::Active, None));
    // Once it closes, the session names who last had it.
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.after_secs(5);
    let row = s.last_session_row();
    assert_eq!(
        (row.state, row.staff.as_deref()),
        (SessionState::Closed, Some("alice_acme@example.com"))
    );
    s.drain();
    s.visitor_joins();
    s.visitor_says("Anyone?");
    // Now Bob can take it.
    s.sends(&format!("<presence from='{BOB}' to='{ROOM}/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.eventually_receives(&format!("<presence from='{ROOM}/Bob' to='{BOB}'><x xmlns='{MUC_USER}'><status code='110'/></x></presence>"));
    assert_eq!(
        s.last_session_row().staff.as_deref(),
        Some("bob_acme@example.com")
    );
}

#[test]
fn staff_leaving_a_silent_visitor_goes_back_to_inactive() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.alice_joins();
    s.sends(&format!(
        "<presence from='{ALICE}' to='{ROOM}/Alice' type='unavailable'/>"
    ));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Inactive));
}

#[test]
fn everyone_leaving_closes_the_session_and_a_return_opens_a_new_one() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/Ann' to='{V1}'><x xmlns='{MUC_USER}'><status code='110'/></x></presence>"));
    s.receives_nothing();
    // The session lingers a few seconds (a reload comes straight back), then closes.
    s.after_secs(4);
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    s.after_secs(1);
    assert_eq!(s.state("v1_acme"), None);
    let row = s.last_session_row();
    assert_eq!(row.state, SessionState::Closed);
    assert_eq!(row.closed_at, Some(s.now));
    assert_eq!(row.updated_at, s.now);
    // The visitor comes back: a new session (#2) in the same room, created anew, no old history.
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!("<presence from='{ROOM}/Ann' to='{V2}'><x xmlns='{MUC_USER}'><status code='110'/><status code='201'/></x></presence>"));
    s.receives(&format!(
        "<message from='{ROOM}' to='{V2}' type='groupchat'><subject/></message>"
    ));
    assert_eq!(s.last_session_row().id, 2);
    assert_eq!(s.state("v1_acme"), Some(SessionState::Inactive));
}

#[test]
fn a_reloaded_visitor_rejoins_with_history_while_staff_stays() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.alice_joins();
    s.sends(&format!(
        "<message from='{ALICE}' to='{ROOM}' type='groupchat'><body>Hi Ann</body></message>"
    ));
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.drain();
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    // The page reloads: a new anonymous JID joins and gets Alice, itself, the history, the subject.
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!("<presence from='{ROOM}/Alice' to='{V2}'/>"));
    s.receives(&format!("<presence from='{ROOM}/Ann' to='{ALICE}'/>"));
    s.receives(&format!("<presence from='{ROOM}/Ann' to='{V2}'><x xmlns='{MUC_USER}'><status code='110'/></x></presence>"));
    s.receives(&format!("<message from='{ROOM}/Ann' to='{V2}' type='groupchat'><body>Hello?</body><delay xmlns='urn:xmpp:delay'/></message>"));
    s.receives(&format!("<message from='{ROOM}/Alice' to='{V2}' type='groupchat'><body>Hi Ann</body><delay xmlns='urn:xmpp:delay'/></message>"));
    s.receives(&format!(
        "<message from='{ROOM}' to='{V2}' type='groupchat'><subject/></message>"
    ));
    s.receives_nothing();
    assert_eq!(s.last_session_row().visitor_jid.as_deref(), Some(V2));
    assert_eq!(s.last_session_row().id, 1);
}

#[test]
fn a_second_visitor_jid_waits_for_the_bound_one_to_answer_a_ping() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann2' id='j2'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    // The component asks the bound visitor whether it is still there.
    s.receives(&format!(
        "<iq type='get' from='{ROOM}' to='{V1}' id='{p1}'><ping xmlns='urn:xmpp:ping'/></iq>",
        p1 = iq_id("ping", 1)
    ));
    s.receives_nothing();
    // It is: the newcomer is refused.
    s.sends(&format!(
        "<iq type='result' from='{V1}' to='{ROOM}' id='{p1}'/>",
        p1 = iq_id("ping", 1)
    ));
    s.receives(&format!("<presence type='error' from='{ROOM}/Ann2' to='{V2}' id='j2'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    s.receives_nothing();
}

#[test]
fn a_second_visitor_jid_replaces_a_bound_one_that_is_gone() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.alice_joins();
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann' id='j2'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!(
        "<iq type='get' to='{V1}' id='{p1}'/>",
        p1 = iq_id("ping", 1)
    ));
    // A stranger cannot answer for V1.
    s.sends(&format!("<iq type='error' from='{V2}' to='{ROOM}' id='{p1}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", p1 = iq_id("ping", 1)));
    s.receives_nothing();
    // The server answers for the dead session (ejabberd gives our ping back with its error).
    s.sends(&format!("<iq type='error' from='{V1}' to='{ROOM}' id='{p1}'><ping xmlns='urn:xmpp:ping'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>User session not found</text></error></iq>", p1 = iq_id("ping", 1)));
    // Alice sees the old visitor removed (333), then the new one arrive.
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/Ann' to='{ALICE}'><x xmlns='{MUC_USER}'><status code='333'/></x></presence>"));
    s.receives(&format!("<presence from='{ROOM}/Alice' to='{V2}'/>"));
    s.receives(&format!("<presence from='{ROOM}/Ann' to='{ALICE}'><x xmlns='{MUC_USER}'><item jid='{V2}'/></x></presence>"));
    s.eventually_receives(&format!(
        "<message from='{ROOM}' to='{V2}'><subject/></message>"
    ));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    assert_eq!(s.last_session_row().visitor_jid.as_deref(), Some(V2));
}

#[test]
fn an_unanswered_ping_keeps_the_room_for_the_bound_visitor() {
    // Strophe.js answers a ping it has no handler for without a `to`: the answer never reaches
    // the room. Silence is no proof the visitor is gone, so a stranger waiting is refused.
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann' id='j2'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.drain();
    s.after_secs(5);
    s.receives_nothing();
    s.after_secs(6);
    s.receives(&format!("<presence type='error' from='{ROOM}/Ann' to='{V2}' id='j2'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    // (Ann has waited 11 s for staff: she hears her place in line.)
    s.receives(&format!("<message from='{ROOM}' to='{V1}' type='groupchat'><body>You are next in line.</body></message>"));
    s.receives_nothing();
    assert_eq!(s.last_session_row().visitor_jid.as_deref(), Some(V1));
    // The visitor still has their room and their history went to nobody else.
    s.visitor_says("Still here");
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
}

#[test]
fn a_clients_own_error_to_a_ping_does_not_give_its_room_away() {
    // A client without XEP-0199 may answer service-unavailable itself (without our ping).
    let mut s = Scenario::new();
    s.visitor_joins();
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann' id='j2'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!(
        "<iq type='get' to='{V1}' id='{p1}'/>",
        p1 = iq_id("ping", 1)
    ));
    s.sends(&format!("<iq type='error' from='{V1}' to='{ROOM}' id='{p1}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", p1 = iq_id("ping", 1)));
    s.receives(&format!("<presence type='error' to='{V2}' id='j2'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    s.receives_nothing();
    assert_eq!(s.last_session_row().visitor_jid.as_deref(), Some(V1));
}

#[test]
fn waiting_joins_are_bounded_per_room_and_count_per_address() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.drain();
    let mut refused = 0;
    for i in 0..6 {
        s.sends(&format!("<presence from='stranger{i}@anon.example.com/r' to='{ROOM}/Ann' id='w{i}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        refused += s
            .drain()
            .iter()
            .filter(|e| show(e).contains("Too many are waiting"))
            .count();
    }
    assert_eq!(refused, 3);
    // One address waiting on three rooms' visitors is at its rooms-per-visitor limit.
    let mut s = Scenario::new();
    for r in 1..=4 {
        let who = format!("owner{r}@anon.example.com/r");
        s.sends(&format!("<presence from='{who}' to='v{r}_acme@{COMPONENT}/O{r}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    }
    s.drain();
    for r in 1..=4 {
        s.sends(&format!("<presence from='{V2}' to='v{r}_acme@{COMPONENT}/O{r}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    }
    let out = s.drain();
    assert_eq!(
        out.iter()
            .filter(|e| show(e).contains("already in 3 chats"))
            .count(),
        1,
        "{:?}",
        out.iter().map(show).collect::<Vec<_>>()
    );
}

#[test]
fn after_reconnecting_occupants_are_pinged_and_the_gone_ones_removed() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.alice_joins();
    s.feed(Input::Connected);
    s.receives(&format!(
        "<iq type='get' from='{ROOM}' to='{V1}' id='{p1}'><ping xmlns='urn:xmpp:ping'/></iq>",
        p1 = iq_id("ping", 1)
    ));
    s.receives(&format!(
        "<iq type='get' from='{ROOM}' to='{ALICE}' id='{p2}'><ping xmlns='urn:xmpp:ping'/></iq>",
        p2 = iq_id("ping", 2)
    ));
    s.receives_nothing();
    // Alice is still there; the visitor's old session is gone.
    s.sends(&format!(
        "<iq type='result' from='{ALICE}' to='{ROOM}' id='{p2}'/>",
        p2 = iq_id("ping", 2)
    ));
    s.sends(&format!("<iq type='error' from='{V1}' to='{ROOM}' id='{p1}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", p1 = iq_id("ping", 1)));
    s.receives(&format!(
        "<presence type='unavailable' from='{ROOM}/Ann' to='{ALICE}'/>"
    ));
    s.receives_nothing();
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
}

#[test]
fn a_room_emptied_by_a_lost_link_waits_for_its_people_then_closes() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.feed(Input::Connected);
    s.drain();
    s.sends(&format!("<iq type='error' from='{V1}' to='{ROOM}' id='{p1}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", p1 = iq_id("ping", 1)));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    s.after_secs(60);
    // The visitor comes back within the grace period: same session, with history.
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!("<presence from='{ROOM}/Ann' to='{V2}'><x xmlns='{MUC_USER}'><status code='110'/></x></presence>"));
    s.receives(&format!(
        "<message from='{ROOM}/Ann' to='{V2}'><body>Hello?</body></message>"
    ));
    assert_eq!(s.last_session_row().id, 1);
    // Lost again, and this time nobody returns.
    s.feed(Input::Connected);
    s.drain();
    s.sends(&format!("<iq type='error' from='{V2}' to='{ROOM}' id='{p2}'><error type='cancel'><recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", p2 = iq_id("ping", 2)));
    s.after_secs(119);
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    s.after_secs(1);
    assert_eq!(s.state("v1_acme"), None);
    assert_eq!(s.last_session_row().state, SessionState::Closed);
}

#[test]
fn bounced_room_stanzas_remove_the_occupant() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.alice_joins();
    s.sends(&format!("<message type='error' from='{V1}' to='{ROOM}/Alice'><error type='cancel'><recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/Ann' to='{ALICE}'><x xmlns='{MUC_USER}'><status code='333'/></x></presence>"));
    s.receives_nothing();
    // A bounce that is not about being gone changes nothing.
    s.sends(&format!("<message type='error' from='{ALICE}' to='{ROOM}'><error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
    s.receives_nothing();
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
}

#[test]
fn malformed_stanzas_get_bad_request_once_and_errors_are_never_answered() {
    let mut s = Scenario::new();
    let bad = |kind, id: Option<&str>, type_: Option<&str>| InvalidStanza {
        kind,
        from: Some(V1.into()),
        to: Some(COMPONENT.into()),
        id: id.map(String::from),
        type_: type_.map(String::from),
        reason: "test".into(),
    };
    s.feed(Input::Invalid(bad(
        StanzaKind::Iq,
        Some("bad1"),
        Some("get"),
    )));
    s.receives(&format!("<iq type='error' from='{COMPONENT}' to='{V1}' id='bad1'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    s.feed(Input::Invalid(bad(StanzaKind::Presence, Some("p1"), None)));
    s.receives(&format!("<presence type='error' to='{V1}' id='p1'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    s.feed(Input::Invalid(bad(
        StanzaKind::Message,
        Some("m1"),
        Some("bogus"),
    )));
    s.receives(&format!("<message type='error' to='{V1}' id='m1'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
    s.feed(Input::Invalid(bad(StanzaKind::Presence, None, None)));
    s.feed(Input::Invalid(bad(
        StanzaKind::Iq,
        Some("e1"),
        Some("error"),
    )));
    s.feed(Input::Invalid(bad(
        StanzaKind::Iq,
        Some("r1"),
        Some("result"),
    )));
    s.feed(Input::Invalid(InvalidStanza {
        from: Some("not a jid@@".into()),
        ..bad(StanzaKind::Iq, Some("x"), Some("get"))
    }));
    s.receives_nothing();
    // A message error from a stranger to the domain is not answered either.
    s.sends(&format!("<message type='error' from='{V1}' to='{COMPONENT}'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
    s.receives_nothing();
}

#[test]
fn disco_ping_and_other_iqs() {
    let mut s = Scenario::new();
    s.sends(&format!("<iq type='get' from='{V1}' to='{COMPONENT}' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    s.receives(&format!("<iq type='result' from='{COMPONENT}' to='{V1}' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'>
        <identity category='conference' type='text'/>
        <feature var='http://jabber.org/protocol/disco#info'/>
        <feature var='http://jabber.org/protocol/muc'/>
        <feature var='urn:xmpp:ping'/></query></iq>"));
    s.sends(&format!(
        "<iq type='get' from='{V1}' to='{COMPONENT}' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    s.receives(&format!(
        "<iq type='result' from='{COMPONENT}' to='{V1}' id='p1'/>"
    ));
    s.sends(&format!("<iq type='get' from='{V1}' to='{COMPONENT}' id='i1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"));
    s.receives(
        "<iq type='result' id='i1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
    );
    s.sends(&format!("<iq type='get' from='{V1}' to='{ROOM}' id='d2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    s.receives(&format!("<iq type='result' from='{ROOM}' to='{V1}' id='d2'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='conference' type='text' name='ACME Inc. — visitor v1'/><feature var='http://jabber.org/protocol/muc'/></query></iq>"));
    s.sends(&format!(
        "<iq type='get' from='{V1}' to='{COMPONENT}' id='u1'><query xmlns='jabber:iq:last'/></iq>"
    ));
    s.receives(&format!("<iq type='error' from='{COMPONENT}' to='{V1}' id='u1'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    s.sends(&format!("<iq type='set' from='{V1}' to='{ROOM}' id='u2'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"));
    s.receives("<iq type='error' id='u2'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    s.sends(&format!("<iq type='get' from='{V1}' to='v1_nosuch@{COMPONENT}' id='u3'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    s.receives("<iq type='error' id='u3'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    // Results nobody asked for are dropped.
    s.sends(&format!(
        "<iq type='result' from='{V1}' to='{COMPONENT}' id='whatever'/>"
    ));
    s.receives_nothing();
}

#[test]
fn self_ping_tells_a_client_whether_it_is_joined() {
    let mut s = Scenario::new();
    s.sends(&format!(
        "<iq type='get' from='{V1}' to='{ROOM}/Ann' id='s1'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    s.receives("<iq type='error' id='s1'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    s.visitor_joins();
    s.sends(&format!(
        "<iq type='get' from='{V1}' to='{ROOM}/Ann' id='s2'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    s.receives(&format!(
        "<iq type='result' from='{ROOM}/Ann' to='{V1}' id='s2'/>"
    ));
}

#[test]
fn chat_states_are_relayed_to_the_others_and_not_stored() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.alice_joins();
    s.stored.clear();
    s.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    s.receives(&format!("<message from='{ROOM}/Ann' to='{ALICE}' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    s.receives_nothing();
    assert!(s.stored.is_empty());
    // Typing does not make a session ACTIVE; writing does.
    assert_eq!(
        s.core.room_state(&RoomName::parse("v1_acme").unwrap()),
        Some(SessionState::Chatting)
    );
}

#[test]
fn private_messages_headlines_subjects_and_long_bodies() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}/Alice' type='chat' id='pm'><body>psst</body></message>"
    ));
    s.receives("<message type='error' id='pm'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='headline'><body>news</body></message>"
    ));
    s.receives_nothing();
    s.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat' id='sub'><subject>pwned</subject></message>"));
    s.receives("<message type='error' id='sub'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    let long = "x".repeat(crate::config::Limits::default().body_chars + 1);
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat' id='long'><body>{long}</body></message>"
    ));
    s.receives("<message type='error' id='long'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    s.receives_nothing();
    assert!(s.messages_stored().is_empty());
    assert_eq!(s.state("v1_acme"), Some(SessionState::Inactive));
}

#[test]
fn history_can_be_declined() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("one");
    s.visitor_says("two");
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='1'/></x></presence>"));
    let bodies: Vec<String> = s
        .drain()
        .iter()
        .filter(|e| e.attr("to") == Some(ALICE))
        .filter_map(|e| {
            e.get_child("body", "jabber:component:accept")
                .map(|b| b.text())
        })
        .collect();
    assert_eq!(bodies, vec!["two".to_string()]);
}

#[test]
fn presence_updates_are_broadcast() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.alice_joins();
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann'><show>away</show></presence>"
    ));
    s.receives(&format!("<presence from='{ROOM}/Ann' to='{V1}'><show>away</show><x xmlns='{MUC_USER}'><status code='110'/></x></presence>"));
    s.receives(&format!("<presence from='{ROOM}/Ann' to='{ALICE}'><show>away</show><x xmlns='{MUC_USER}'><item jid='{V1}'/></x></presence>"));
    s.receives_nothing();
}

#[test]
fn a_rejoin_from_the_same_address_replays_the_room_without_a_new_arrival() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("hello");
    s.alice_joins();
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!("<presence from='{ROOM}/Ann' to='{ALICE}'/>"));
    s.receives(&format!("<presence from='{ROOM}/Alice' to='{ALICE}'><x xmlns='{MUC_USER}'><status code='110'/></x></presence>"));
    s.receives(&format!(
        "<message from='{ROOM}/Ann' to='{ALICE}'><body>hello</body></message>"
    ));
    s.receives(&format!(
        "<message from='{ROOM}' to='{ALICE}'><subject/></message>"
    ));
    s.receives_nothing();
}

#[test]
fn resuming_from_the_store_keeps_sessions_history_and_checks_occupants() {
    let t = Timestamp::parse_rfc3339("2026-11-22T09:00:00Z").unwrap();
    let session = SessionRecord {
        id: 7,
        room: BareJid::new(ROOM).unwrap(),
        site: SiteId::new("acme").unwrap(),
        visitor: "v1".into(),
        state: SessionState::Chatting,
        staff: Some(BareJid::new("alice_acme@example.com").unwrap()),
        visitor_jid: Some(FullJid::new(V1).unwrap()),
        created_at: t,
        updated_at: t,
        closed_at: None,
    };
    let occ = |jid: &str, nick: &str, role| OccupantRecord {
        session_id: 7,
        jid: FullJid::new(jid).unwrap(),
        nick: nick.into(),
        role,
        joined_at: t,
        direct: false,
    };
    let msg = MessageRecord {
        session_id: 7,
        at: t,
        role: Role::Visitor,
        from_jid: Jid::new(V1).unwrap(),
        nick: "Ann".into(),
        body: "before the restart".into(),
        stanza_id: "7-4".into(),
        origin_id: None,
    };
    let mut s = Scenario::resume(Snapshot {
        roster_items: vec![],
        next_session_id: 8,
        sessions: vec![session],
        occupants: vec![
            occ(V1, "Ann", Role::Visitor),
            occ(ALICE, "Alice", Role::Staff),
        ],
        messages: vec![msg],
        ..Default::default()
    });
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    s.feed(Input::Connected);
    s.receives(&format!(
        "<iq type='get' to='{V1}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    s.receives(&format!(
        "<iq type='get' to='{ALICE}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    // The chat goes on: the next stanza-id follows the stored ones.
    s.sends(&format!(
        "<message from='{ALICE}' to='{ROOM}' type='groupchat'><body>still here</body></message>"
    ));
    s.receives(&format!("<message from='{ROOM}/Alice' to='{V1}'><body>still here</body><stanza-id xmlns='urn:xmpp:sid:0' id='7-5'/></message>"));
    s.drain();
    // A newcomer gets the stored history too.
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.eventually_receives(&format!("<message from='{ROOM}/Ann' to='{ALICE}'><body>before the restart</body><delay xmlns='urn:xmpp:delay' stamp='2026-11-22T09:00:00+00:00'/></message>"));
    // New sessions continue the numbering.
    s.sends(&format!("<presence from='{V2}' to='v2_acme@{COMPONENT}/Bo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    assert_eq!(s.last_session_row().id, 8);
}

/// A database edited by hand: a room that is not a JID and one that is not a visitor room
/// are left out when resuming (each with a warning), and the other rooms come back.
#[test]
fn resuming_leaves_out_stored_rooms_that_do_not_parse_and_keeps_the_rest() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    for (n, v) in [(2, V2), (3, "anon3@anon.example.com/r3")] {
        s.sends(&format!("<presence from='{v}' to='v{n}_acme@{COMPONENT}/V{n}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    }
    s.drain();
    let mut store = crate::store::Store::open_in_memory().unwrap();
    store.apply(&s.stored).unwrap();
    store
        .conn()
        .execute_batch(
            "UPDATE sessions SET room = '@chat.example.com' WHERE id = 2;
             UPDATE sessions SET room = 'lobby@chat.example.com' WHERE id = 3;",
        )
        .unwrap();
    let s = Scenario::resume(store.snapshot(100).unwrap());
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    assert_eq!(s.state("v2_acme"), None);
    assert_eq!(s.state("v3_acme"), None);
    assert_eq!(s.core.open_rooms(), 1);
}

#[test]
fn a_visitor_alone_who_reloads_keeps_the_session() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.drain();
    s.after_secs(2);
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!("<presence from='{ROOM}/Ann' to='{V2}'><x xmlns='{MUC_USER}'><status code='110'/></x></presence>"));
    s.receives(&format!(
        "<message from='{ROOM}/Ann' to='{V2}'><body>Hello?</body></message>"
    ));
    s.after_secs(10);
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    assert!(s
        .sessions_written()
        .iter()
        .all(|r| r.id == 1 && r.state != SessionState::Closed));
}

#[test]
fn a_server_shutdown_that_sends_everyones_leave_first_does_not_end_the_chat() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.alice_joins();
    // The server, going down, sends both unavailable presences, then drops the link.
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.sends(&format!(
        "<presence from='{ALICE}' to='{ROOM}/Alice' type='unavailable'/>"
    ));
    s.feed(Input::Disconnected);
    s.drain();
    s.now = s.now.plus_millis(60_000);
    s.feed(Input::Connected);
    s.receives_nothing();
    // Both come back after the restart: the same session, with its history.
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.eventually_receives(&format!(
        "<message from='{ROOM}/Ann' to='{ALICE}'><body>Hello?</body></message>"
    ));
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.eventually_receives(&format!(
        "<message from='{ROOM}/Ann' to='{V2}'><body>Hello?</body></message>"
    ));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    assert_eq!(s.last_session_row().id, 1);
}

#[test]
fn a_leave_keeps_its_status_text_for_the_others() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.alice_joins();
    s.sends(&format!("<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'><status>Thanks, bye!</status></presence>"));
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/Ann' to='{ALICE}'><status>Thanks, bye!</status></presence>"));
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/Ann' to='{V1}'><status>Thanks, bye!</status><x xmlns='{MUC_USER}'><status code='110'/></x></presence>"));
}

#[test]
fn a_join_to_the_bare_room_is_jid_malformed_for_staff_too() {
    let mut s = Scenario::new();
    s.visitor_joins();
    for who in [ALICE, V2] {
        s.sends(&format!("<presence from='{who}' to='{ROOM}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        s.receives(&format!("<presence type='error' from='{ROOM}' to='{who}'><error type='modify'><jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    }
    s.receives_nothing();
}

#[test]
fn an_id_key_is_found_only_from_an_id_of_its_kind_as_made() {
    let id = iq_id("api", 7);
    let key = id_key(&id, "api").unwrap();
    assert_eq!(id_text("api", &key), id);
    assert_ne!(id_key(&iq_id("api", 8), "api"), Some(key));
    assert_eq!(id_key(&id, "roster"), None);
    let hex = id.trim_start_matches("fd-api-");
    for other in [
        format!("fd-roster-{hex}"),
        format!("fd-api-{}", hex.to_uppercase()),
        format!("fd-api-{}", &hex[1..]),
        format!("fd-api-{hex}0"),
        format!("fd-api-{}g", &hex[1..]),
        format!("x{id}"),
        String::new(),
    ] {
        assert_eq!(id_key(&other, "api"), None, "{other}");
    }
}
