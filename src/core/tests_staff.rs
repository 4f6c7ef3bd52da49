//! Scenario tests of the staff side: the roster rungs, the visitor contact's presence, offers,
//! the first claim winning, the front desk's commands and the ad-hoc commands. Stanzas to bare
//! JIDs (what staff clients see from their roster) land in `staff_inbox`, MUC traffic in `inbox`.

use minidom::Element;

use super::tests::*;
use super::*;
use crate::config::{HttpUrl, RosterConfig, RosterMode};
use crate::store::{MessageRow, Role, SessionRow};

const ALICE_BARE: &str = "alice_acme@example.com";
const BOB_BARE: &str = "bob_acme@example.com";
const CAROL_BARE: &str = "carol_globex@example.com";

fn with_roster(mode: RosterMode) -> Scenario {
    let mut c = config();
    c.roster = RosterConfig {
        mode,
        ejabberd_api: Some(HttpUrl::parse("http://127.0.0.1:5280/api").unwrap()),
        remove_after_secs: 60,
        ..config().roster
    };
    Scenario::with_config(c)
}

/// Auto mode with no admin API configured: privilege if advertised, else subscriptions.
fn auto_without_api() -> Scenario {
    let mut c = config();
    c.roster = RosterConfig {
        mode: RosterMode::Auto,
        ejabberd_api: None,
        ..config().roster
    };
    Scenario::with_config(c)
}

impl Scenario {
    /// A staff-side stanza matching `xml` was sent (in any order among the staff side).
    #[track_caller]
    fn staff_gets(&mut self, xml: &str) -> Element {
        let expected = parse(xml);
        match self.staff_inbox.iter().position(|a| matches(&expected, a)) {
            Some(i) => self.staff_inbox.remove(i).unwrap_or(expected),
            None => panic!(
                "staff side never got\n  {}\ngot:\n  {}",
                show(&expected),
                self.staff_inbox
                    .iter()
                    .map(show)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
        }
    }

    /// Nothing about a visitor (from a room) went to `to` (a bare JID).
    #[track_caller]
    fn staff_nothing_to(&self, to: &str) {
        let about_visitor = |e: &&Element| {
            e.attr("to") == Some(to)
                && e.attr("from").and_then(|f| f.split('/').next()) != Some(COMPONENT)
        };
        if let Some(e) = self.staff_inbox.iter().find(about_visitor) {
            panic!("{to} got\n  {}", show(e));
        }
    }

    fn online(&mut self, full: &str, show: Option<&str>) {
        let show = show
            .map(|s| format!("<show>{s}</show>"))
            .unwrap_or_default();
        self.sends(&format!(
            "<presence from='{full}' to='{COMPONENT}'>{show}</presence>"
        ));
    }

    fn desk_command(&mut self, from: &str, text: &str) {
        self.sends(&format!(
            "<message from='{from}' to='{COMPONENT}' type='chat'><body>{text}</body></message>"
        ));
    }

    fn api_calls(&mut self) -> Vec<roster::ApiCall> {
        let (calls, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.jobs)
            .into_iter()
            .partition(|o| matches!(o, Output::Api(_)));
        self.jobs = rest;
        calls
            .into_iter()
            .filter_map(|o| match o {
                Output::Api(c) => Some(c),
                _ => None,
            })
            .collect()
    }
}

fn arg<'a>(c: &'a roster::ApiCall, k: &str) -> &'a str {
    c.arg(k).unwrap_or("")
}

// ---- roster rungs ----------------------------------------------------------------------------

#[test]
fn auto_picks_privilege_when_advertised_and_falls_back_to_the_api_when_it_fails() {
    let mut s = with_roster(RosterMode::Auto);
    s.feed(Input::Connected);
    // The server advertises roster access right after the handshake (ejabberd: :1).
    s.sends(&format!(
        "<message from='example.com' to='{COMPONENT}'><privilege xmlns='urn:xmpp:privilege:1'>
            <perm access='roster' type='both'/><perm access='message' type='outgoing'/></privilege></message>"
    ));
    s.receives_nothing(); // never answered
    s.after_secs(2);
    // The front desk goes into every staff roster by privileged roster set.
    let iq = s.staff_gets(&format!(
        "<iq type='set' from='{COMPONENT}' to='{ALICE_BARE}'><query xmlns='jabber:iq:roster'><item jid='{COMPONENT}' name='Front desk' subscription='both'/></query></iq>"
    ));
    s.staff_gets(&format!("<iq type='set' to='{BOB_BARE}'/>"));
    s.staff_gets(&format!("<iq type='set' to='{CAROL_BARE}'/>"));
    // ejabberd 23.01 answers internal-server-error: the same change goes through the API.
    let id = iq.attr("id").unwrap().to_string();
    s.sends(&format!(
        "<iq type='error' from='{ALICE_BARE}' to='{COMPONENT}' id='{id}'><error type='wait'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    let calls = s.api_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].command(), "add_rosteritem");
    assert_eq!(
        (arg(&calls[0], "localuser"), arg(&calls[0], "localhost")),
        ("alice_acme", "example.com")
    );
    assert_eq!(
        (
            arg(&calls[0], "host"),
            arg(&calls[0], "nick"),
            arg(&calls[0], "subs")
        ),
        (COMPONENT, "Front desk", "both")
    );
    s.stored.clear();
    s.feed(Input::ApiDone {
        id: calls[0].id(),
        result: Ok(()),
    });
    assert!(s.stored.iter().any(|op| matches!(op, StoreOp::RosterAdded { staff, contact, .. } if staff.as_str() == ALICE_BARE && contact.as_str() == COMPONENT)));
    // From now on the API rung is used directly: a visitor's join goes there.
    s.visitor_joins();
    let calls = s.api_calls();
    let staff: Vec<&str> = calls.iter().map(|c| arg(c, "localuser")).collect();
    assert_eq!(staff, vec!["alice_acme", "bob_acme"], "{calls:?}");
    assert_eq!(arg(&calls[0], "user"), "v1_acme");
    assert_eq!(arg(&calls[0], "nick"), "Ann (ACME Inc.)");
    assert_eq!(arg(&calls[0], "group"), "ACME Inc. visitors");
    assert!(
        s.core
            .diag_text(s.now, &BareJid::new(ALICE_BARE).unwrap())
            .contains("roster: ejabberd-api"),
        "{}",
        s.core.diag_text(s.now, &BareJid::new(ALICE_BARE).unwrap())
    );
}

/// ejabberd 23.01 refuses every privileged roster set; auto mode redoes each change by the API.
/// `!diag` must not report those as failures, and says the fallback is expected.
#[test]
fn diag_calls_the_expected_privilege_fallback_expected_not_failed() {
    let mut s = with_roster(RosterMode::Auto);
    s.feed(Input::Connected);
    s.sends(&format!(
        "<message from='example.com' to='{COMPONENT}'><privilege xmlns='urn:xmpp:privilege:1'>
            <perm access='roster' type='both'/></privilege></message>"
    ));
    s.after_secs(2);
    let mut ids = Vec::new();
    for staff in [ALICE_BARE, BOB_BARE, CAROL_BARE] {
        let iq = s.staff_gets(&format!("<iq type='set' to='{staff}'/>"));
        ids.push((staff, iq.attr("id").unwrap_or_default().to_string()));
    }
    for (staff, id) in &ids {
        s.sends(&format!(
            "<iq type='error' from='{staff}' to='{COMPONENT}' id='{id}'><error type='cancel'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        ));
    }
    for call in s.api_calls() {
        s.feed(Input::ApiDone {
            id: call.id(),
            result: Ok(()),
        });
    }
    let diag = s.core.diag_text(s.now, &BareJid::new(ALICE_BARE).unwrap());
    assert!(diag.contains("3 done, 0 failed"), "{diag}");
    assert!(
        diag.contains("fell back from privilege (urn:xmpp:privilege:1) (3 change(s) redone")
            && diag.contains("expected on ejabberd 23.01"),
        "{diag}"
    );
}

#[test]
fn auto_moves_up_from_subscription_requests_when_privileges_are_advertised_late() {
    let mut s = auto_without_api();
    s.feed(Input::Connected);
    s.after_secs(2);
    s.staff_gets(&format!(
        "<presence type='subscribe' from='{COMPONENT}' to='{ALICE_BARE}'/>"
    ));
    s.visitor_joins();
    s.staff_inbox.clear();
    // Prosody on a loaded machine: the advertisement comes after the 1.5 s wait.
    s.sends(&format!(
        "<message from='example.com' to='{COMPONENT}'><privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='both'/></privilege></message>"
    ));
    s.staff_gets(&format!(
        "<iq type='set' from='{COMPONENT}' to='{ALICE_BARE}'><query xmlns='jabber:iq:roster'><item jid='{COMPONENT}' subscription='both'/></query></iq>"
    ));
    s.staff_gets(&format!(
        "<iq type='set' from='{COMPONENT}' to='{BOB_BARE}'><query xmlns='jabber:iq:roster'><item jid='{ROOM}' subscription='both'/></query></iq>"
    ));
    assert!(
        s.core.roster.diag().contains("privilege"),
        "{}",
        s.core.roster.diag()
    );
    // An advertisement without roster access changes nothing.
    let mut s = auto_without_api();
    s.feed(Input::Connected);
    s.after_secs(2);
    s.sends(&format!(
        "<message from='example.com' to='{COMPONENT}'><privilege xmlns='urn:xmpp:privilege:2'><perm access='message' type='outgoing'/></privilege></message>"
    ));
    assert!(
        s.core.roster.diag().contains("subscribe"),
        "{}",
        s.core.roster.diag()
    );
}

#[test]
fn auto_without_privilege_or_api_sends_subscription_requests() {
    let mut s = auto_without_api();
    s.feed(Input::Connected);
    s.after_secs(2);
    s.staff_gets(&format!("<presence type='subscribe' from='{COMPONENT}' to='{ALICE_BARE}'><nick xmlns='http://jabber.org/protocol/nick'>Front desk</nick></presence>"));
    s.visitor_joins();
    s.staff_gets(&format!("<presence type='subscribe' from='{ROOM}' to='{BOB_BARE}'><nick xmlns='http://jabber.org/protocol/nick'>Ann (ACME Inc.)</nick></presence>"));
    s.staff_nothing_to(CAROL_BARE);
    // Staff subscribing back to the contact are approved; others are not.
    s.sends(&format!(
        "<presence type='subscribe' from='{BOB_BARE}' to='{ROOM}'/>"
    ));
    s.staff_gets(&format!(
        "<presence type='subscribed' from='{ROOM}' to='{BOB_BARE}'/>"
    ));
    s.sends(&format!(
        "<presence type='subscribe' from='{CAROL_BARE}' to='{ROOM}'/>"
    ));
    s.staff_gets(&format!(
        "<presence type='unsubscribed' from='{ROOM}' to='{CAROL_BARE}'/>"
    ));
}

#[test]
fn a_closed_visitor_leaves_staff_rosters_after_the_grace_period() {
    let mut s = with_roster(RosterMode::EjabberdApi);
    s.feed(Input::Connected);
    s.visitor_joins();
    for c in s.api_calls() {
        s.feed(Input::ApiDone {
            id: c.id(),
            result: Ok(()),
        });
    }
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.after_secs(6); // the linger after everyone left
    assert_eq!(s.state("v1_acme"), None);
    s.staff_gets(&format!(
        "<presence type='unavailable' from='{ROOM}/frontdesk' to='{ALICE_BARE}'/>"
    ));
    assert!(s.api_calls().is_empty());
    s.after_secs(61);
    let calls = s.api_calls();
    let removed: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| (c.command(), arg(c, "localuser")))
        .collect();
    assert_eq!(
        removed,
        vec![
            ("delete_rosteritem", "alice_acme"),
            ("delete_rosteritem", "bob_acme")
        ]
    );
}

// ---- the visitor contact's presence -----------------------------------------------------------

#[test]
fn the_contact_presence_follows_the_state_and_reaches_only_same_site_staff() {
    let mut s = with_roster(RosterMode::Off);
    s.visitor_joins();
    s.staff_gets(&format!("<presence from='{ROOM}/frontdesk' to='{ALICE_BARE}'><show>away</show><status>INACTIVE — browsing</status></presence>"));
    s.staff_gets(&format!(
        "<presence from='{ROOM}/frontdesk' to='{BOB_BARE}'><show>away</show></presence>"
    ));
    s.staff_nothing_to(CAROL_BARE);
    s.visitor_says("Where is my parcel?");
    s.staff_gets(&format!("<presence from='{ROOM}/frontdesk' to='{ALICE_BARE}'><show>chat</show><status>ACTIVE — Where is my parcel?</status></presence>"));
    s.alice_joins();
    s.staff_gets(&format!("<presence from='{ROOM}/frontdesk' to='{BOB_BARE}'><show>dnd</show><status>CHATTING with Alice</status></presence>"));
    // A probe gets the current state; a probe from another site's staff gets nothing useful.
    s.staff_inbox.clear();
    s.sends(&format!(
        "<presence type='probe' from='{BOB_BARE}' to='{ROOM}'/>"
    ));
    s.staff_gets(&format!("<presence from='{ROOM}/frontdesk' to='{BOB_BARE}'><show>dnd</show><status>CHATTING with Alice</status></presence>"));
    s.sends(&format!(
        "<presence type='probe' from='{CAROL_BARE}' to='{ROOM}'/>"
    ));
    s.staff_gets(&format!(
        "<presence type='unavailable' from='{ROOM}/frontdesk' to='{CAROL_BARE}'/>"
    ));
}

// ---- offers and claims ------------------------------------------------------------------------

#[test]
fn offers_go_to_available_staff_and_the_first_reply_wins() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, None);
    s.online(BOB, Some("chat"));
    s.online(CAROL, None);
    s.online("dave_acme@example.com/x", None); // not staff: no effect
    s.visitor_joins();
    s.staff_inbox.clear();
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat'><body>Hello?</body></message>"
    ));
    s.drain();
    for who in [ALICE_BARE, BOB_BARE] {
        s.staff_gets(&format!(
            "<message type='chat' from='{ROOM}' to='{who}'><body>Hello?</body></message>"
        ));
        s.staff_gets(&format!(
            "<message type='chat' from='{COMPONENT}' to='{who}'><body>Visitor Ann on ACME Inc. wants to chat (#1). Reply to them, or send !accept 1.</body></message>"
        ));
    }
    s.staff_nothing_to(CAROL_BARE);
    // Bob answers one-to-one: he has the chat. The visitor sees him join and his message.
    s.sends(&format!("<message from='{BOB}' to='{ROOM}' type='chat' id='b1'><body>Hi Ann, Bob here.</body></message>"));
    s.receives(&format!("<presence from='{ROOM}/bob_acme' to='{V1}'><x xmlns='http://jabber.org/protocol/muc#user'><item role='moderator'/></x></presence>"));
    s.receives(&format!("<message from='{ROOM}/bob_acme' to='{V1}' type='groupchat' id='b1'><body>Hi Ann, Bob here.</body></message>"));
    s.receives_nothing();
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    assert_eq!(s.last_session_row().staff.as_deref(), Some(BOB_BARE));
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{ALICE_BARE}'><body>#1 is now handled by bob_acme.</body></message>"));
    s.staff_gets(&format!("<presence from='{ROOM}/frontdesk' to='{ALICE_BARE}'><show>dnd</show><status>CHATTING with bob_acme</status></presence>"));
    // Alice is too late.
    s.sends(&format!(
        "<message from='{ALICE}' to='{ROOM}' type='chat' id='a1'><body>Hello!</body></message>"
    ));
    s.receives(&format!(
        "<message type='error' from='{ROOM}' to='{ALICE}' id='a1'><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>bob_acme is already chatting with this visitor (#1).</text></error></message>"
    ));
    // The visitor's next message reaches Bob one-to-one, typing included.
    s.staff_inbox.clear();
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat'><body>Order 42</body></message>"
    ));
    s.staff_gets(&format!(
        "<message type='chat' from='{ROOM}' to='{BOB_BARE}'><body>Order 42</body></message>"
    ));
    s.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    s.staff_gets(&format!("<message type='chat' from='{ROOM}' to='{BOB_BARE}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    let said: Vec<(Role, String, String)> = s
        .messages_stored()
        .into_iter()
        .filter(|m| m.0 != Role::System)
        .collect();
    assert_eq!(
        said,
        vec![
            (Role::Visitor, "Ann".into(), "Hello?".into()),
            (Role::Staff, "bob_acme".into(), "Hi Ann, Bob here.".into()),
            (Role::Visitor, "Ann".into(), "Order 42".into()),
        ]
    );
}

#[test]
fn away_staff_get_no_offer_and_the_visitor_hears_nobody_is_there_until_someone_comes() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, Some("away"));
    s.online(BOB, Some("dnd"));
    s.visitor_joins();
    s.staff_inbox.clear();
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat'><body>Anyone?</body></message>"
    ));
    s.receives(&format!(
        "<message from='{ROOM}/Ann' to='{V1}' type='groupchat'><body>Anyone?</body></message>"
    ));
    s.receives(&format!(
        "<message from='{ROOM}' to='{V1}' type='groupchat'><body>{}</body></message>",
        room::desk::NOBODY_TEXT
    ));
    s.visitor_says("Hello??");
    assert!(
        s.staff_inbox.iter().all(|e| e.name() != "message"),
        "no offers while away"
    );
    // Alice comes back: she gets what the visitor wrote, with its time, and the note.
    s.online(ALICE, None);
    let first = s.staff_gets(&format!("<message type='chat' from='{ROOM}' to='{ALICE_BARE}'><body>Anyone?</body><delay xmlns='urn:xmpp:delay'/></message>"));
    assert!(show(&first).contains("Anyone?"));
    s.staff_gets(&format!(
        "<message type='chat' from='{ROOM}' to='{ALICE_BARE}'><body>Hello??</body></message>"
    ));
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{ALICE_BARE}'><body>Visitor Ann on ACME Inc. wants to chat (#1). Reply to them, or send !accept 1.</body></message>"));
    s.receives_nothing(); // the visitor was told only once
}

#[test]
fn staff_of_another_site_are_refused_and_never_offered() {
    let mut s = with_roster(RosterMode::Off);
    s.online(CAROL, None);
    s.visitor_joins();
    s.visitor_says("Hi");
    s.staff_nothing_to(CAROL_BARE);
    s.sends(&format!("<message from='{CAROL}' to='{ROOM}' type='chat' id='c1'><body>Hi from Globex</body></message>"));
    s.receives(&format!("<message type='error' from='{ROOM}' to='{CAROL}' id='c1'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
    s.desk_command(CAROL, "!accept 1");
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{CAROL_BARE}'><body>There is no open chat #1 on your sites.</body></message>"));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
}

#[test]
fn one_to_one_staff_offline_too_long_give_the_chat_back() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, None);
    s.online(BOB, None);
    s.visitor_joins();
    s.visitor_says("Hi");
    s.sends(&format!(
        "<message from='{ALICE}' to='{ROOM}' type='chat'><body>Hello</body></message>"
    ));
    s.drain();
    s.staff_inbox.clear();
    // Alice's session ends; of her logout's presences only the one to the contact arrives.
    s.server_forgets(ALICE);
    s.sends(&format!(
        "<presence from='{ALICE}' to='{ROOM}' type='unavailable'/>"
    ));
    s.after_secs(60);
    assert_eq!(
        s.state("v1_acme"),
        Some(SessionState::Chatting),
        "within the grace period"
    );
    s.after_secs(61);
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/alice_acme' to='{V1}'><x xmlns='http://jabber.org/protocol/muc#user'><status code='333'/></x></presence>"));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    // Offered again to who is available (Bob), with the conversation so far.
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{BOB_BARE}'><body>Visitor Ann on ACME Inc. wants to chat (#1). Reply to them, or send !accept 1.</body></message>"));
}

// ---- commands -----------------------------------------------------------------------------------

#[test]
fn help_waiting_accept_status_and_finish() {
    let mut s = with_roster(RosterMode::Off);
    s.visitor_joins();
    s.visitor_says("I need help with my order");
    s.staff_inbox.clear();
    s.desk_command(ALICE, "!HELP");
    let help = s.staff_gets(&format!(
        "<message type='chat' from='{COMPONENT}' to='{ALICE_BARE}'/>"
    ));
    assert!(
        show(&help).contains("!waiting") && show(&help).contains("!finish [N]"),
        "{}",
        show(&help)
    );
    s.desk_command(ALICE, "!waiting");
    let w = s.staff_gets(&format!(
        "<message type='chat' from='{COMPONENT}' to='{ALICE_BARE}'/>"
    ));
    let text = w
        .get_child("body", "jabber:component:accept")
        .map(|b| b.text())
        .unwrap_or_default();
    assert!(
        text.contains("#1 Ann on ACME Inc. — ACTIVE for 0 s — \"I need help with my order\""),
        "{text}"
    );
    s.desk_command(ALICE, "!accept 1");
    s.receives(&format!("<presence from='{ROOM}/alice_acme' to='{V1}'/>"));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    // Alice was not offered it (she was offline): she gets the visitor's words first.
    s.staff_gets(&format!("<message type='chat' from='{ROOM}' to='{ALICE_BARE}'><body>I need help with my order</body></message>"));
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{ALICE_BARE}'><body>#1 is yours: write to {ROOM} to talk to Ann; !finish 1 when you are done.</body></message>"));
    s.desk_command(BOB, "!accept 1");
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{BOB_BARE}'><body>alice_acme is already chatting with this visitor (#1).</body></message>"));
    s.desk_command(ALICE, "!status");
    let st = s.staff_gets(&format!(
        "<message type='chat' from='{COMPONENT}' to='{ALICE_BARE}'/>"
    ));
    assert!(show(&st).contains("#1 Ann"), "{}", show(&st));
    s.desk_command(BOB, "!finish 1");
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{BOB_BARE}'><body>#1 is handled by alice_acme; only they can finish it.</body></message>"));
    s.stored.clear();
    s.desk_command(ALICE, "!finish");
    // Both sides are told; the visitor's room is gone.
    s.receives(&format!("<message from='{ROOM}' to='{V1}' type='groupchat'><body>The chat is now closed.</body></message>"));
    s.receives(&format!(
        "<presence type='unavailable' from='{ROOM}/alice_acme' to='{V1}'/>"
    ));
    s.receives(&format!(
        "<presence type='unavailable' from='{ROOM}/Ann' to='{V1}'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/><destroy><reason>The chat is now closed.</reason></destroy><status code='110'/></x></presence>"
    ));
    s.receives_nothing();
    s.staff_gets(&format!("<message type='chat' from='{ROOM}' to='{ALICE_BARE}'><body>The chat is now closed.</body></message>"));
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{ALICE_BARE}'><body>#1 is closed.</body></message>"));
    assert_eq!(s.state("v1_acme"), None);
    let row = s.last_session_row();
    assert_eq!(
        (row.state, row.staff.as_deref()),
        (SessionState::Closed, Some(ALICE_BARE))
    );
    assert!(s.messages_stored().contains(&(
        Role::System,
        String::new(),
        "The chat is now closed.".into()
    )));
}

#[test]
fn cancel_tells_the_visitor_and_closes() {
    let mut s = with_roster(RosterMode::Off);
    s.visitor_joins();
    s.visitor_says("Hi");
    s.desk_command(BOB, "!cancel 1");
    s.receives(&format!("<message from='{ROOM}' to='{V1}' type='groupchat'><body>Sorry, no one can take your chat right now. Please try again later.</body></message>"));
    s.receives(&format!("<message from='{ROOM}' to='{V1}' type='groupchat'><body>The chat is now closed.</body></message>"));
    s.eventually_receives(&format!(
        "<presence type='unavailable' from='{ROOM}/Ann' to='{V1}'/>"
    ));
    assert_eq!(s.state("v1_acme"), None);
    assert_eq!(s.last_session_row().state, SessionState::Closed);
}

#[test]
fn commands_from_non_staff_are_refused_and_unknown_ones_explained() {
    let mut s = with_roster(RosterMode::Off);
    s.sends(&format!(
        "<message from='{V1}' to='{COMPONENT}' type='chat' id='x'><body>!help</body></message>"
    ));
    s.receives(&format!("<message type='error' from='{COMPONENT}' to='{V1}' id='x'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
    s.desk_command(ALICE, "!dance");
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{ALICE_BARE}'><body>Unknown command !dance. Send !help for the list.</body></message>"));
    s.desk_command(ALICE, "!accept twelve");
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{ALICE_BARE}'><body>\"twelve\" is not a chat number</body></message>"));
}

#[test]
fn transcript_is_read_from_the_store_and_only_for_the_sites_staff() {
    let mut s = with_roster(RosterMode::Off);
    s.desk_command(ALICE, "!transcript 7");
    let Some(Output::Query(commands::Query::Transcript { id, session_id: 7 })) = s.jobs.pop()
    else {
        panic!("expected a transcript query, got {:?}", s.jobs)
    };
    let t = |x: &str| Timestamp::parse_rfc3339(x).unwrap();
    let row = SessionRow {
        id: 7,
        room: ROOM.into(),
        site: "acme".into(),
        visitor: "v1".into(),
        state: SessionState::Closed,
        staff: Some(ALICE_BARE.into()),
        visitor_jid: None,
        created_at: t("2026-11-22T09:00:00Z"),
        updated_at: t("2026-11-22T09:05:00Z"),
        closed_at: Some(t("2026-11-22T09:05:00Z")),
    };
    let msg = MessageRow {
        session_id: 7,
        at: t("2026-11-22T09:01:00Z"),
        role: Role::Visitor,
        from_jid: V1.into(),
        nick: "Ann".into(),
        body: "Is it shipped?".into(),
        stanza_id: "7-1".into(),
        origin_id: None,
    };
    s.feed(Input::QueryDone {
        id,
        result: Ok(commands::Answer::Transcript(Some(commands::Transcript {
            session: row.clone(),
            lines: vec![msg.clone()],
            tags: vec![],
        }))),
    });
    s.staff_gets(&format!(
        "<message type='chat' from='{COMPONENT}' to='{ALICE_BARE}'><body>#7 v1 (acme), CLOSED:\n[2026-11-22 09:01] Ann (visitor): Is it shipped?</body></message>"
    ));
    s.desk_command(CAROL, "!transcript 7");
    let Some(Output::Query(commands::Query::Transcript { id, .. })) = s.jobs.pop() else {
        panic!()
    };
    s.feed(Input::QueryDone {
        id,
        result: Ok(commands::Answer::Transcript(Some(commands::Transcript {
            session: row,
            lines: vec![msg],
            tags: vec![],
        }))),
    });
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{CAROL_BARE}'><body>There is no such chat on your sites.</body></message>"));
}

#[test]
fn ad_hoc_commands_list_and_run() {
    let mut s = with_roster(RosterMode::Off);
    s.visitor_joins();
    s.visitor_says("Hi");
    s.sends(&format!("<iq type='get' from='{ALICE}' to='{COMPONENT}' id='d1'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>"));
    s.receives(&format!(
        "<iq type='result' from='{COMPONENT}' to='{ALICE}' id='d1'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'>
            <item xmlns='http://jabber.org/protocol/disco#items' node='waiting' name='Waiting chats'/>
            <item xmlns='http://jabber.org/protocol/disco#items' node='accept'/><item xmlns='http://jabber.org/protocol/disco#items' node='finish'/></query></iq>"
    ));
    // A visitor sees no commands, and cannot run one.
    s.sends(&format!("<iq type='get' from='{V1}' to='{COMPONENT}' id='d2'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>"));
    let r = s.inbox.pop_front().unwrap();
    assert_eq!(
        r.get_child("query", "http://jabber.org/protocol/disco#items")
            .map(|q| q.children().count()),
        Some(0),
        "{}",
        show(&r)
    );
    s.sends(&format!("<iq type='set' from='{V1}' to='{COMPONENT}' id='x1'><command xmlns='http://jabber.org/protocol/commands' node='waiting' action='execute'/></iq>"));
    s.receives(&format!("<iq type='error' from='{COMPONENT}' to='{V1}' id='x1'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    // waiting: one step.
    s.sends(&format!("<iq type='set' from='{ALICE}' to='{COMPONENT}' id='c1'><command xmlns='http://jabber.org/protocol/commands' node='waiting' action='execute'/></iq>"));
    let r = s.inbox.pop_front().unwrap();
    assert!(matches(&parse("<iq type='result' id='c1'><command xmlns='http://jabber.org/protocol/commands' node='waiting' status='completed'><note type='info'/></command></iq>"), &r), "{}", show(&r));
    assert!(show(&r).contains("#1 Ann"), "{}", show(&r));
    // accept: a form with the open chats, then the submission.
    s.sends(&format!("<iq type='set' from='{ALICE}' to='{COMPONENT}' id='c2'><command xmlns='http://jabber.org/protocol/commands' node='accept' action='execute'/></iq>"));
    s.receives("<iq type='result' id='c2'><command xmlns='http://jabber.org/protocol/commands' node='accept' status='executing'><x xmlns='jabber:x:data' type='form'><field var='session' type='list-single'><option><value>1</value></option></field></x></command></iq>");
    s.sends(&format!(
        "<iq type='set' from='{ALICE}' to='{COMPONENT}' id='c3'><command xmlns='http://jabber.org/protocol/commands' node='accept' sessionid='accept' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='session'><value>1</value></field></x></command></iq>"
    ));
    s.eventually_receives("<iq type='result' id='c3'><command xmlns='http://jabber.org/protocol/commands' node='accept' status='completed'/></iq>");
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
}

const NS_CMD: &str = "http://jabber.org/protocol/commands";

impl Scenario {
    /// Sends an ad-hoc `set` with this `<command/>` payload from `from`, answers any store read
    /// it asked for, and returns every IQ answer with `id` (to full or bare JIDs).
    fn adhoc(&mut self, from: &str, id: &str, command: &str) -> Vec<Element> {
        self.sends(&format!(
            "<iq type='set' from='{from}' to='{COMPONENT}' id='{id}'>{command}</iq>"
        ));
        for job in std::mem::take(&mut self.jobs) {
            if let Output::Query(commands::Query::Transcript { id, .. }) = job {
                self.feed(Input::QueryDone {
                    id,
                    result: Ok(commands::Answer::Transcript(None)),
                });
            }
        }
        let is_answer = |e: &Element| e.name() == "iq" && e.attr("id") == Some(id);
        let mut answers: Vec<Element> = self
            .inbox
            .iter()
            .filter(|e| is_answer(e))
            .cloned()
            .collect();
        answers.extend(self.staff_inbox.iter().filter(|e| is_answer(e)).cloned());
        self.inbox.retain(|e| !is_answer(e));
        self.staff_inbox.retain(|e| !is_answer(e));
        answers
    }
}

#[test]
fn ad_hoc_commands_from_a_bare_jid_are_answered() {
    let mut s = with_roster(RosterMode::Off);
    s.visitor_joins();
    // Staff: taking a chat needs the resource that will talk, so a bare JID is told why not.
    s.sends(&format!("<iq type='set' from='{ALICE_BARE}' to='{COMPONENT}' id='b1'><command xmlns='{NS_CMD}' node='accept' action='execute'/></iq>"));
    let e = s.staff_gets(&format!("<iq type='error' from='{COMPONENT}' to='{ALICE_BARE}' id='b1'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    assert!(show(&e).contains("full JID"), "{}", show(&e));
    // Not staff: forbidden, as from a full JID.
    s.sends(&format!("<iq type='set' from='dave@example.com' to='{COMPONENT}' id='b2'><command xmlns='{NS_CMD}' node='waiting' action='execute'/></iq>"));
    s.staff_gets(&format!("<iq type='error' from='{COMPONENT}' to='dave@example.com' id='b2'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Inactive));
}

#[test]
fn every_ad_hoc_request_gets_exactly_one_answer() {
    let mut s = with_roster(RosterMode::Off);
    s.visitor_joins();
    s.visitor_says("Hi");
    let form = |v: &str| {
        format!("<x xmlns='jabber:x:data' type='submit'><field var='session'><value>{v}</value></field></x>")
    };
    let payloads: Vec<String> = ["waiting", "accept", "cancel", "finish", "status", "transcript", "diag", "help", "dance", ""]
        .iter()
        .flat_map(|node| {
            [
                format!("<command xmlns='{NS_CMD}' node='{node}' action='execute'/>"),
                format!("<command xmlns='{NS_CMD}' node='{node}'/>"),
                format!("<command xmlns='{NS_CMD}' node='{node}' action='cancel'/>"),
                format!("<command xmlns='{NS_CMD}' node='{node}' action='complete'>{}</command>", form("1")),
                format!("<command xmlns='{NS_CMD}' node='{node}' action='complete'>{}</command>", form("")),
                format!("<command xmlns='{NS_CMD}' node='{node}' action='complete'>{}</command>", form("x")),
                format!("<command xmlns='{NS_CMD}' node='{node}' action='complete'><x xmlns='jabber:x:data'/></command>"),
                format!("<command xmlns='{NS_CMD}' node='{node}' action='complete'><x xmlns='jabber:x:data' type='cancel'/></command>"),
            ]
        })
        .collect();
    let senders = [ALICE, ALICE_BARE, CAROL, V1, "dave@example.com"];
    for (i, payload) in payloads.iter().enumerate() {
        for from in senders {
            let id = format!("q{i}-{from}");
            let answers = s.adhoc(from, &id, payload);
            assert_eq!(
                answers.len(),
                1,
                "{from} sent {payload}: {:?}",
                answers.iter().map(show).collect::<Vec<_>>()
            );
            let a = &answers[0];
            assert!(
                matches!(a.attr("type"), Some("result" | "error"))
                    && a.attr("to") == Some(from)
                    && a.attr("from") == Some(COMPONENT),
                "{from} sent {payload}: {}",
                show(a)
            );
        }
    }
}

#[test]
fn help_text_is_generated_from_the_table_unchanged() {
    let before = "Front desk commands:
!waiting — chats waiting on your sites
!accept N — take chat N
!pass N — leave waiting chat N to others (it stays open, unlike !cancel)
!cancel N — decline waiting chat N (the visitor is told, the chat is closed)
!finish [N] — close your chat (or chat N)
!status — your current chats
!transcript N — the transcript of chat N
!info N — what is known of chat N's visitor (signed details, page, pre-chat answers)
!note N text — add an internal note to chat N (staff see it, the visitor never does)
!tag N word… — label chat N with words, e.g. !tag 12 billing refund
!untag N word… — take tags off chat N, e.g. !untag 12 refund
!missed [D] — chats nobody answered in the last D days (default 7), to follow up
!diag — what the front desk sees (roster method, privileges, uptime, open chats)
!say [N] KEY — send canned reply KEY into your chat (or chat N)
!canned — the canned replies of your sites
!transfer N [staff] — hand chat N to another staff member (no one named: back to the queue)
To answer a visitor, write to them in your roster.";
    assert_eq!(commands::HELP.as_str(), before);
}

#[test]
fn the_ad_hoc_menu_keeps_its_order_and_names() {
    let mut s = with_roster(RosterMode::Off);
    s.sends(&format!("<iq type='get' from='{ALICE}' to='{COMPONENT}' id='d1'><query xmlns='http://jabber.org/protocol/disco#items' node='{NS_CMD}'/></iq>"));
    let r = s.inbox.pop_front().unwrap();
    let items: Vec<(&str, &str, &str)> = r
        .get_child("query", "http://jabber.org/protocol/disco#items")
        .unwrap()
        .children()
        .map(|i| {
            (
                i.attr("jid").unwrap_or(""),
                i.attr("node").unwrap_or(""),
                i.attr("name").unwrap_or(""),
            )
        })
        .collect();
    let before = [
        ("waiting", "Waiting chats"),
        ("accept", "Accept a chat"),
        ("pass", "Pass a waiting chat"),
        ("cancel", "Decline a waiting chat"),
        ("finish", "Finish a chat"),
        ("status", "My chats"),
        ("transcript", "Transcript of a chat"),
        ("info", "Visitor details"),
        ("note", "Note on a chat"),
        ("tag", "Tag a chat"),
        ("untag", "Remove tags from a chat"),
        ("missed", "Missed chats"),
        ("diag", "Diagnostics"),
        ("say", "Send a canned reply"),
        ("canned", "Canned replies"),
        ("transfer", "Transfer a chat"),
        ("help", "Help"),
    ];
    let expected: Vec<(&str, &str, &str)> =
        before.iter().map(|(n, m)| (COMPONENT, *n, *m)).collect();
    assert_eq!(items, expected);
}

#[test]
fn commands_parse_through_the_table() {
    use commands::{parse, Command};
    assert_eq!(parse("!Accept #12"), Ok(Command::Accept(12)));
    assert_eq!(parse("!finish"), Ok(Command::Finish(None)));
    assert_eq!(parse("!finish 3 extra"), Ok(Command::Finish(Some(3))));
    assert_eq!(parse("!status now"), Ok(Command::Status));
    assert_eq!(parse("!"), Ok(Command::Help));
    assert_eq!(parse("!TRANSCRIPT 7"), Ok(Command::Transcript(7)));
    assert_eq!(
        parse("!cancel"),
        Err("!cancel needs a chat number, e.g. !cancel 12".into())
    );
    assert_eq!(parse("!finish x"), Err("\"x\" is not a chat number".into()));
    assert_eq!(
        parse("!Dance 1"),
        Err("Unknown command !dance. Send !help for the list.".into())
    );
}

#[test]
fn ad_hoc_forms_are_read_with_the_same_rules_as_commands() {
    let mut s = with_roster(RosterMode::Off);
    s.visitor_joins();
    s.visitor_says("Hi");
    let submit = |node: &str, value: &str| {
        format!("<command xmlns='{NS_CMD}' node='{node}' sessionid='{node}' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='session'><value>{value}</value></field></x></command>")
    };
    let note = |a: &[Element]| {
        a.first()
            .and_then(|iq| iq.get_child("command", NS_CMD))
            .and_then(|c| c.get_child("note", NS_CMD))
            .map(|n| n.text())
            .unwrap_or_default()
    };
    // The form: the chats of Alice's sites; a number is required to accept, not to finish.
    let a = s.adhoc(
        ALICE,
        "f1",
        &format!("<command xmlns='{NS_CMD}' node='accept' action='execute'/>"),
    );
    assert!(matches(&parse("<iq type='result'><command xmlns='http://jabber.org/protocol/commands' node='accept' sessionid='accept' status='executing'><actions execute='complete'><complete/></actions><x xmlns='jabber:x:data' type='form'><title>accept: which chat?</title><field var='session' type='list-single' label='Chat'><required/><option label='#1 Ann (ACTIVE)'><value>1</value></option></field></x></command></iq>"), &a[0]), "{}", show(&a[0]));
    let f = s.adhoc(
        ALICE,
        "f2",
        &format!("<command xmlns='{NS_CMD}' node='finish' action='execute'/>"),
    );
    assert!(!show(&f[0]).contains("required"), "{}", show(&f[0]));
    // Submitted values: the same errors as !accept.
    let a = s.adhoc(ALICE, "f3", &submit("accept", ""));
    assert_eq!(note(&a), "!accept needs a chat number, e.g. !accept 12");
    let a = s.adhoc(ALICE, "f4", &submit("accept", "twelve"));
    assert_eq!(note(&a), "\"twelve\" is not a chat number");
    let a = s.adhoc(ALICE, "f5", &submit("finish", ""));
    assert_eq!(note(&a), "You have no chat to finish.");
    let a = s.adhoc(ALICE, "f6", &submit("accept", " #1 "));
    assert!(note(&a).starts_with("#1 is yours"), "{}", note(&a));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    // A form that cannot be read is a bad request; a cancelled form cancels.
    let a = s.adhoc(ALICE, "f7", &format!("<command xmlns='{NS_CMD}' node='finish' action='complete'><x xmlns='jabber:x:data' type='nonsense'/></command>"));
    assert!(matches(&parse(&format!("<iq type='error' id='f7' to='{ALICE}'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")), &a[0]), "{}", show(&a[0]));
    let a = s.adhoc(ALICE, "f8", &format!("<command xmlns='{NS_CMD}' node='finish' action='complete'><x xmlns='jabber:x:data' type='cancel'/></command>"));
    assert!(matches(&parse("<iq type='result' id='f8'><command xmlns='http://jabber.org/protocol/commands' node='finish' status='canceled'/></iq>"), &a[0]), "{}", show(&a[0]));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
}

#[test]
fn desk_advertises_commands() {
    let mut s = with_roster(RosterMode::Off);
    s.sends(&format!("<iq type='get' from='{ALICE}' to='{COMPONENT}' id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    s.receives("<iq type='result' id='i'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='http://jabber.org/protocol/commands'/></query></iq>");
}

#[test]
fn a_one_to_one_staff_member_hears_when_the_visitor_leaves_and_keeps_the_chat() {
    let mut s = with_roster(RosterMode::Off);
    s.visitor_joins();
    s.visitor_says("Hi");
    s.desk_command(ALICE, "!accept 1");
    s.drain();
    s.staff_inbox.clear();
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.drain();
    s.staff_gets(&format!(
        "<message type='chat' from='{ROOM}' to='{ALICE_BARE}'><body>Ann left the chat (#1). They may come back; send !finish 1 to close it.</body></message>"
    ));
    s.after_secs(30);
    assert_eq!(
        s.state("v1_acme"),
        Some(SessionState::Chatting),
        "the chat is still alice's"
    );
    // The visitor reloads (a new address): the same session, with alice in it.
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!("<presence from='{ROOM}/alice_acme' to='{V2}'/>"));
    s.eventually_receives(&format!("<presence from='{ROOM}/Ann' to='{V2}'><x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/></x></presence>"));
    assert_eq!(s.last_session_row().id, 1);
    // Alice, who heard the visitor left, hears they are back.
    s.staff_gets(&format!(
        "<message type='chat' from='{ROOM}' to='{ALICE_BARE}'><body>Ann is back in the chat (#1).</body></message>"
    ));
}

#[test]
fn one_to_one_staff_who_join_the_room_replace_their_one_to_one_presence() {
    let mut s = with_roster(RosterMode::Off);
    s.visitor_joins();
    s.visitor_says("Hi");
    s.sends(&format!(
        "<message from='{ALICE}' to='{ROOM}' type='chat'><body>Hello</body></message>"
    ));
    s.drain();
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!(
        "<presence type='unavailable' from='{ROOM}/alice_acme' to='{V1}'/>"
    ));
    s.eventually_receives(&format!("<presence from='{ROOM}/Alice' to='{V1}'/>"));
    let drained = s.drain();
    // Her earlier message stays in the history under the old nick, but nobody sees her twice.
    let twice = drained
        .iter()
        .any(|e| e.name() == "presence" && e.attr("from") == Some(&format!("{ROOM}/alice_acme")));
    assert!(!twice, "{:?}", drained.iter().map(show).collect::<Vec<_>>());
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    // Her messages now come from the joined occupant.
    s.sends(&format!(
        "<message from='{ALICE}' to='{ROOM}' type='groupchat'><body>Still here</body></message>"
    ));
    s.eventually_receives(&format!(
        "<message from='{ROOM}/Alice' to='{V1}' type='groupchat'><body>Still here</body></message>"
    ));
}

#[test]
fn privileged_roster_sets_lost_with_the_link_are_sent_again() {
    let mut s = with_roster(RosterMode::Privilege);
    s.feed(Input::Connected);
    s.sends(&format!("<message from='example.com' to='{COMPONENT}'><privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='both'/></privilege></message>"));
    s.staff_gets(&format!("<iq type='set' to='{ALICE_BARE}'><query xmlns='jabber:iq:roster'><item jid='{COMPONENT}'/></query></iq>"));
    s.staff_inbox.clear();
    s.feed(Input::Disconnected);
    s.feed(Input::Connected);
    s.staff_gets(&format!("<iq type='set' to='{ALICE_BARE}'><query xmlns='jabber:iq:roster'><item jid='{COMPONENT}'/></query></iq>"));
}

/// What the store kept of a scenario's writes, as a restarted frontdesk would read it back
/// (with history cut to `history` lines, so the first line can fall out of it).
fn restarted(s: &Scenario, history: usize) -> Scenario {
    let mut store = crate::store::Store::open_in_memory().unwrap();
    store.apply(&s.stored).unwrap();
    Scenario::resume(store.snapshot(history).unwrap())
}

#[test]
fn after_a_restart_an_active_chat_still_shows_the_visitors_first_line() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("My order 42 never arrived");
    s.visitor_says("Anyone there?");
    s.visitor_says("Hello?");
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    // The restart: only the last two lines come back as history.
    let mut s = restarted(&s, 2);
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    s.feed(Input::Connected);
    s.staff_gets(&format!(
        "<presence from='{ROOM}/frontdesk' to='alice_acme@example.com'><show>chat</show><status>ACTIVE — My order 42 never arrived</status></presence>"
    ));
    s.staff_inbox.clear();
    s.desk_command(ALICE, "!waiting");
    let reply = s.staff_gets(&format!(
        "<message from='{COMPONENT}' to='alice_acme@example.com' type='chat'/>"
    ));
    assert!(
        show(&reply).contains("#1 Ann on ACME Inc. — ACTIVE")
            && show(&reply).contains("\"My order 42 never arrived\""),
        "{}",
        show(&reply)
    );
    // Staff taking it and leaving again still finds it ACTIVE (the visitor wrote).
    s.alice_joins();
    s.sends(&format!(
        "<presence from='{ALICE}' to='{ROOM}/Alice' type='unavailable'/>"
    ));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
}

#[test]
fn after_a_restart_stanza_ids_never_repeat_and_a_crafted_one_cannot_overflow() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.alice_joins();
    // Alice's join wrote a transcript-only line after the visitor's: the next id follows it.
    let ids = |s: &Scenario| -> Vec<String> {
        s.stored
            .iter()
            .filter_map(|op| match op {
                StoreOp::AppendMessage(m) => Some(m.stanza_id.clone()),
                _ => None,
            })
            .collect()
    };
    let before = ids(&s);
    let mut store = crate::store::Store::open_in_memory().unwrap();
    store.apply(&s.stored).unwrap();
    let mut s = Scenario::resume(store.snapshot(100).unwrap());
    s.visitor_says("still there?");
    let after = ids(&s);
    assert_eq!(after.len(), 1);
    assert!(
        !before.contains(&after[0]),
        "{after:?} repeats one of {before:?}"
    );

    // A database edited by hand: the largest sequence number there is.
    store.apply(&s.stored).unwrap();
    let mut snapshot = store.snapshot(100).unwrap();
    for m in &mut snapshot.messages {
        m.stanza_id = format!("{}-{}", m.session_id, u64::MAX);
    }
    let mut s = Scenario::resume(snapshot);
    s.visitor_says("and now?");
    assert!(s
        .stored
        .iter()
        .any(|op| matches!(op, StoreOp::AppendMessage(m) if m.body == "and now?")));
}

// ---- staff availability -------------------------------------------------------------------------

/// Did `staff` get any message (an offer, the visitor's words) so far?
fn offered(s: &Scenario, staff: &str) -> bool {
    s.staff_inbox
        .iter()
        .any(|e| e.name() == "message" && e.attr("to") == Some(staff))
}

/// The server removing a closed visitor's roster item sends an unavailable presence from each
/// of the staff member's resources to that contact. Alice stays online all the while.
#[test]
fn a_removed_visitor_item_does_not_make_staff_offline() {
    let mut s = with_roster(RosterMode::Subscribe);
    s.online(ALICE, None);
    s.visitor_joins();
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.after_secs(6);
    assert_eq!(s.state("v1_acme"), None, "the chat closed");
    s.after_secs(61);
    // The item is removed; the server tells the contact Alice is gone, as ejabberd does.
    s.sends(&format!(
        "<presence from='{ALICE}' to='{ROOM}' type='unavailable'/>"
    ));
    s.sends(&format!(
        "<presence from='{ALICE}' to='{ROOM}' type='unsubscribe'/>"
    ));
    s.after_secs(10);
    s.drain();
    s.staff_inbox.clear();
    // The next visitor is offered to Alice and is not told that nobody is there.
    let room2 = format!("v2_acme@{COMPONENT}");
    s.sends(&format!("<presence from='{V2}' to='{room2}/Bo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.sends(&format!(
        "<message from='{V2}' to='{room2}' type='groupchat'><body>Hi there</body></message>"
    ));
    s.staff_gets(&format!(
        "<message type='chat' from='{room2}' to='{ALICE_BARE}'><body>Hi there</body></message>"
    ));
    assert!(
        !s.drain()
            .iter()
            .any(|e| show(e).contains("No one is available")),
        "the visitor was told nobody is there"
    );
    s.staff_inbox.clear();
    s.desk_command(ALICE, "!diag");
    let diag = s.staff_gets(&format!(
        "<message from='{COMPONENT}' to='{ALICE_BARE}' type='chat'/>"
    ));
    assert!(
        show(&diag).contains("staff online: 1, available: 1"),
        "{}",
        show(&diag)
    );
}

/// A staff session the server ended without the component hearing of it (its presence never
/// reached the front desk) is found out by the periodic probe.
#[test]
fn staff_who_left_unnoticed_are_found_out_by_a_probe() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, None);
    s.server_forgets(ALICE);
    s.after_secs(61); // the sweep's probe goes out; the server has no session to answer with
    s.after_secs(6);
    s.staff_inbox.clear();
    s.desk_command(BOB, "!diag");
    let diag = s.staff_gets(&format!(
        "<message from='{COMPONENT}' to='{BOB_BARE}' type='chat'/>"
    ));
    assert!(
        show(&diag).contains("staff online: 0, available: 0"),
        "{}",
        show(&diag)
    );
    s.visitor_joins();
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat'><body>Anyone?</body></message>"
    ));
    assert!(
        s.drain()
            .iter()
            .any(|e| show(e).contains("No one is available")),
        "the visitor must hear that nobody is there"
    );
    assert!(!offered(&s, ALICE_BARE));
}

/// `!diag`'s staff line, as `bob` sees it.
fn diag_staff_line(s: &mut Scenario) -> String {
    s.staff_inbox.clear();
    s.desk_command(BOB, "!diag");
    let diag = s.staff_gets(&format!(
        "<message from='{COMPONENT}' to='{BOB_BARE}' type='chat'/>"
    ));
    show(&diag)
        .split("staff online: ")
        .nth(1)
        .and_then(|t| t.split(['\n', '<']).next())
        .unwrap_or_default()
        .to_string()
}

/// A client killed while the server keeps its session for resumption (XEP-0198), or cut off
/// without the connection closing: the server still answers probes for it, so only a ping
/// to the client itself shows it is not there.
#[test]
fn a_staff_client_that_stops_answering_pings_gets_no_offers_until_it_answers_again() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, None);
    s.online(BOB, None);
    s.freeze(ALICE);
    s.after_secs(61); // the sweep: the server answers the probe for alice; her client is silent
    assert!(
        s.staff_pings.iter().any(|(to, _)| to == ALICE),
        "{:?}",
        s.staff_pings
    );
    s.after_secs(16);
    assert_eq!(
        diag_staff_line(&mut s),
        "2, available: 1, not answering pings: 1"
    );
    s.staff_inbox.clear();
    s.visitor_joins();
    s.visitor_says("Hello?");
    assert!(offered(&s, BOB_BARE), "bob is there");
    assert!(!offered(&s, ALICE_BARE), "alice's client is not");

    // The server answering another probe for her does not revive her.
    s.sends(&format!("<presence from='{ALICE}' to='{COMPONENT}'/>"));
    s.after_secs(16);
    assert!(!offered(&s, ALICE_BARE));

    // Her client answers again (its session resumed): the waiting chat is offered to her.
    s.thaw(ALICE);
    s.after_secs(61);
    assert!(
        offered(&s, ALICE_BARE),
        "alice is offered the waiting chat once she answers"
    );
    assert_eq!(
        diag_staff_line(&mut s),
        "2, available: 2, not answering pings: 0"
    );
}

/// A presence from a silent client is checked at once with a ping, not at the next sweep.
#[test]
fn presence_from_a_silent_client_is_checked_at_once() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, None);
    s.online(BOB, None);
    s.freeze(ALICE);
    s.after_secs(61);
    s.after_secs(16);
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.staff_inbox.clear();
    s.thaw(ALICE);
    let pings = s.staff_pings.len();
    s.sends(&format!(
        "<presence from='{ALICE}' to='{COMPONENT}'><show>chat</show></presence>"
    ));
    assert_eq!(
        s.staff_pings.len(),
        pings + 1,
        "one ping to the silent client"
    );
    assert!(
        offered(&s, ALICE_BARE),
        "answered at once: offered the waiting chat"
    );
}

/// One silent resource among several does not make the staff member unavailable.
#[test]
fn a_silent_second_client_leaves_the_first_taking_chats() {
    let mut s = with_roster(RosterMode::Off);
    let phone = "alice_acme@example.com/phone";
    s.online(ALICE, None);
    s.online(phone, None);
    s.online(BOB, None);
    s.freeze(phone);
    s.after_secs(61);
    s.after_secs(16);
    assert_eq!(
        diag_staff_line(&mut s),
        "2, available: 2, not answering pings: 1"
    );
    s.staff_inbox.clear();
    s.visitor_joins();
    s.visitor_says("Hello?");
    assert!(offered(&s, ALICE_BARE));
}

/// Only the pinged resource can answer its ping: a forged result from a visitor, another
/// staff member or another resource of the same account (right id, wrong address) revives
/// nothing, and is counted as unasked.
#[test]
fn a_forged_ping_answer_does_not_revive_a_silent_client() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, None);
    s.online(BOB, None);
    s.freeze(ALICE);
    s.after_secs(61);
    let id = s
        .staff_pings
        .iter()
        .rev()
        .find(|(to, _)| to == ALICE)
        .map(|(_, id)| id.clone())
        .unwrap();
    for forger in [V1, BOB, "alice_acme@example.com/other", ALICE_BARE, CAROL] {
        s.sends(&format!(
            "<iq type='result' from='{forger}' to='{COMPONENT}' id='{id}'/>"
        ));
    }
    s.after_secs(16);
    assert_eq!(
        diag_staff_line(&mut s),
        "2, available: 1, not answering pings: 1"
    );
    s.staff_inbox.clear();
    s.visitor_joins();
    s.visitor_says("Hello?");
    assert!(!offered(&s, ALICE_BARE));
    // The real client's late answer to that (expired) ping is not taken either.
    s.sends(&format!(
        "<iq type='result' from='{ALICE}' to='{COMPONENT}' id='{id}'/>"
    ));
    assert!(!offered(&s, ALICE_BARE));
}

/// The server answering our ping for a session that no longer exists (the ping echoed back
/// with `service-unavailable`) ends that resource at once.
#[test]
fn the_servers_answer_for_a_dead_session_ends_the_resource() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, None);
    s.online(BOB, None);
    s.freeze(ALICE);
    s.server_forgets(ALICE);
    s.after_secs(61);
    let id = s
        .staff_pings
        .iter()
        .rev()
        .find(|(to, _)| to == ALICE)
        .map(|(_, id)| id.clone())
        .unwrap();
    s.sends(&format!(
        "<iq type='error' from='{ALICE}' to='{COMPONENT}' id='{id}'><ping xmlns='urn:xmpp:ping'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    assert_eq!(
        diag_staff_line(&mut s),
        "1, available: 1, not answering pings: 0"
    );
}

#[test]
fn a_probe_answer_keeps_the_resources_that_answer_and_drops_the_rest() {
    let mut s = with_roster(RosterMode::Off);
    let laptop = "alice_acme@example.com/laptop";
    s.online(ALICE, Some("away"));
    s.online(laptop, None);
    // The laptop's session ends unseen; the desk resource stays (away).
    s.server_forgets(laptop);
    s.after_secs(61);
    s.after_secs(6);
    s.staff_inbox.clear();
    s.desk_command(BOB, "!diag");
    let diag = s.staff_gets(&format!(
        "<message from='{COMPONENT}' to='{BOB_BARE}' type='chat'/>"
    ));
    assert!(
        show(&diag).contains("staff online: 1, available: 0"),
        "{}",
        show(&diag)
    );
}

#[test]
fn negative_priority_or_busy_resources_get_no_offers() {
    let mut s = with_roster(RosterMode::Off);
    s.sends(&format!(
        "<presence from='{ALICE}' to='{COMPONENT}'><priority>-1</priority></presence>"
    ));
    s.online(BOB, Some("dnd"));
    s.visitor_joins();
    s.visitor_says("Hello?");
    assert!(!offered(&s, ALICE_BARE) && !offered(&s, BOB_BARE));
    // Bob's other resource is free: he gets it.
    s.online("bob_acme@example.com/phone", Some("chat"));
    s.staff_gets(&format!("<message type='chat' from='{COMPONENT}' to='{BOB_BARE}'><body>Visitor Ann on ACME Inc. wants to chat (#1). Reply to them, or send !accept 1.</body></message>"));
}

#[test]
fn a_reconnect_rebuilds_availability_from_the_servers_answers() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, None);
    s.online(BOB, None);
    s.feed(Input::Disconnected);
    s.server_forgets(BOB); // Bob logged out while the link was down
    s.feed(Input::Connected);
    s.staff_inbox.clear();
    s.desk_command(ALICE, "!diag");
    let diag = s.staff_gets(&format!(
        "<message from='{COMPONENT}' to='{ALICE_BARE}' type='chat'/>"
    ));
    assert!(
        show(&diag).contains("staff online: 1, available: 1"),
        "{}",
        show(&diag)
    );
}

#[test]
fn waiting_counts_from_the_visitors_first_message() {
    let mut s = with_roster(RosterMode::Off);
    s.visitor_joins();
    s.after_secs(600);
    s.visitor_says("Now I have a question");
    s.after_secs(30);
    s.staff_inbox.clear();
    s.desk_command(ALICE, "!waiting");
    let reply = s.staff_gets(&format!(
        "<message from='{COMPONENT}' to='{ALICE_BARE}' type='chat'/>"
    ));
    assert!(show(&reply).contains("ACTIVE for 30 s"), "{}", show(&reply));
}

// ---- answers are matched by id and by the address asked ------------------------------------------

#[test]
fn forged_answers_to_our_roster_calls_change_nothing() {
    let mut s = with_roster(RosterMode::Auto);
    s.feed(Input::Connected);
    s.after_secs(2); // no advertisement: the admin API rung
    s.online(ALICE, None);
    let desk_calls = s.api_calls();
    assert!(!desk_calls.is_empty());
    s.visitor_joins();
    let calls = s.api_calls();
    assert!(
        !calls.is_empty(),
        "the visitor's roster items go through the API"
    );
    // The visitor, and staff of another site, forge errors for every id they could know.
    for c in desk_calls.iter().chain(&calls) {
        for from in [V1, CAROL, CAROL_BARE, ALICE_BARE] {
            s.sends(&format!(
                "<iq type='error' from='{from}' to='{COMPONENT}' id='{}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
                c.id()
            ));
        }
    }
    s.drain();
    s.staff_inbox.clear();
    // Nothing fell back: the next visitor still goes through the API, and no subscription
    // request went out.
    let room2 = format!("v2_acme@{COMPONENT}");
    s.sends(&format!("<presence from='{V2}' to='{room2}/Bo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    assert!(s
        .api_calls()
        .iter()
        .any(|c| c.command() == "add_rosteritem"));
    assert!(!s
        .staff_inbox
        .iter()
        .any(|e| e.attr("type") == Some("subscribe")));
    s.staff_inbox.clear();
    s.desk_command(ALICE, "!diag");
    let diag = s.staff_gets(&format!(
        "<message from='{COMPONENT}' to='{ALICE_BARE}' type='chat'/>"
    ));
    assert!(
        show(&diag).contains("roster: ejabberd-api"),
        "{}",
        show(&diag)
    );
}

#[test]
fn a_privileged_roster_answer_counts_only_from_the_staff_member_asked() {
    let mut s = with_roster(RosterMode::Privilege);
    s.feed(Input::Connected);
    s.sends(&format!(
        "<message from='example.com' to='{COMPONENT}'><privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='both'/></privilege></message>"
    ));
    let iq = s.staff_gets(&format!(
        "<iq type='set' from='{COMPONENT}' to='{ALICE_BARE}'/>"
    ));
    let id = iq.attr("id").unwrap().to_string();
    assert!(
        !id.contains("-1") && id.len() > 20,
        "ids must not be guessable: {id}"
    );
    s.stored.clear();
    // Bob's and Carol's servers cannot answer for Alice's roster.
    for from in [BOB_BARE, CAROL_BARE, ALICE] {
        s.sends(&format!(
            "<iq type='result' from='{from}' to='{COMPONENT}' id='{id}'/>"
        ));
    }
    assert!(!s
        .stored
        .iter()
        .any(|op| matches!(op, StoreOp::RosterAdded { .. })));
    s.sends(&format!(
        "<iq type='result' from='{ALICE_BARE}' to='{COMPONENT}' id='{id}'/>"
    ));
    assert!(s.stored.iter().any(
        |op| matches!(op, StoreOp::RosterAdded { staff, .. } if staff.as_str() == ALICE_BARE)
    ));
}

/// Sends Alice's privileged roster set (privileges advertised) and returns its id.
fn privileged_set_id(s: &mut Scenario) -> String {
    s.feed(Input::Connected);
    s.sends(&format!(
        "<message from='example.com' to='{COMPONENT}'><privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='both'/></privilege></message>"
    ));
    let iq = s.staff_gets(&format!(
        "<iq type='set' from='{COMPONENT}' to='{ALICE_BARE}'/>"
    ));
    iq.attr("id").unwrap().to_string()
}

/// Answers the privileged set `after_ms` after it was sent: was the item stored, and were we
/// warned that answers come late?
fn privileged_answer_after(after_ms: i64) -> (bool, bool) {
    let mut s = with_roster(RosterMode::Privilege);
    let id = privileged_set_id(&mut s);
    s.now = s.now.plus_millis(after_ms);
    s.sends(&format!(
        "<iq type='result' from='{ALICE_BARE}' to='{COMPONENT}' id='{id}'/>"
    ));
    let stored = s
        .stored
        .iter()
        .any(|op| matches!(op, StoreOp::RosterAdded { .. }));
    (stored, s.core.roster.warned_late())
}

#[test]
fn a_privileged_roster_answer_in_time_is_not_warned_about() {
    let (stored, warned) = privileged_answer_after(roster::PRIVILEGE_LATE_MS - 1);
    assert!(stored);
    assert!(!warned);
}

#[test]
fn a_privileged_roster_answer_that_comes_late_is_warned_about() {
    let (stored, warned) = privileged_answer_after(roster::PRIVILEGE_LATE_MS);
    assert!(stored);
    assert!(warned);
}

#[test]
fn iq_ids_depend_on_the_key_and_do_not_count_up_visibly() {
    let now = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let ids = |key: [u8; 32]| -> Vec<String> {
        let mut c = Core::new(config(), Snapshot::default(), now).with_id_key(key);
        let mut s = Scenario::new();
        std::mem::swap(&mut s.core, &mut c);
        s.visitor_joins();
        s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        s.feed(Input::Connected);
        s.drain()
            .iter()
            .filter(|e| e.name() == "iq")
            .filter_map(|e| e.attr("id").map(str::to_string))
            .collect()
    };
    let (a, b) = (ids([1; 32]), ids([2; 32]));
    assert!(a.len() >= 2, "{a:?}");
    assert!(a.iter().all(|id| !b.contains(id)), "{a:?} {b:?}");
    assert!(
        a.iter().all(|id| id.len() == "fd-ping-".len() + 24),
        "{a:?}"
    );
}

#[test]
fn diag_shows_only_the_senders_sites_unless_they_are_an_admin() {
    let mut c = config();
    c.admins = [BareJid::new("boss@example.com").unwrap()]
        .into_iter()
        .collect();
    let mut s = Scenario::with_config(c);
    s.online(ALICE, None);
    s.online(CAROL, None);
    s.visitor_joins();
    s.visitor_says("Hello?");
    let globex = format!("v9_globex@{COMPONENT}");
    s.sends(&format!("<presence from='{V2}' to='{globex}/Gus'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.staff_inbox.clear();
    s.desk_command(CAROL, "!diag");
    let diag = s.staff_gets(&format!(
        "<message from='{COMPONENT}' to='{CAROL_BARE}' type='chat'/>"
    ));
    let text = show(&diag);
    assert!(text.contains("your sites: globex"), "{text}");
    assert!(
        text.contains("open sessions: 1 (INACTIVE 1, ACTIVE 0, CHATTING 0)"),
        "{text}"
    );
    assert!(text.contains("staff online: 1, available: 1"), "{text}");
    // The configured admin (not staff anywhere) sees both sites.
    s.sends(&format!(
        "<message from='boss@example.com/pc' to='{COMPONENT}' type='chat'><body>!diag</body></message>"
    ));
    let all = s
        .staff_inbox
        .iter()
        .map(show)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        all.contains("all sites") && all.contains("open sessions: 2"),
        "{all}"
    );
}

// ---- the contact's own address (Gajim keeps presence per resource) -------------------------------

#[test]
fn the_contact_speaks_from_its_own_resource_and_a_reply_there_claims_the_chat() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, None);
    s.visitor_joins();
    s.staff_gets(&format!(
        "<presence from='{ROOM}/frontdesk' to='{ALICE_BARE}'><show>away</show></presence>"
    ));
    s.visitor_says("Hello?");
    // Offers and the visitor's words still come from the contact's bare JID.
    s.staff_gets(&format!(
        "<message type='chat' from='{ROOM}' to='{ALICE_BARE}'><body>Hello?</body></message>"
    ));
    // A client that answers the full JID the presence came from claims the chat all the same.
    s.sends(&format!("<message from='{ALICE}' to='{ROOM}/frontdesk' type='chat'><body>Hi, Alice here</body></message>"));
    s.eventually_receives(&format!("<message from='{ROOM}/alice_acme' to='{V1}' type='groupchat'><body>Hi, Alice here</body></message>"));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    // Nobody can take the contact's resource as a nick.
    s.sends(&format!("<presence from='{V2}' to='v2_acme@{COMPONENT}/FrontDesk'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!("<presence type='error' to='{V2}'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    // And a groupchat message to it is still refused as a private message.
    s.sends(&format!("<message from='{V1}' to='{ROOM}/frontdesk' type='groupchat' id='g'><body>x</body></message>"));
    s.receives(&format!(
        "<message type='error' from='{ROOM}/frontdesk' to='{V1}' id='g'/>"
    ));
}

#[test]
fn visitor_text_reaches_staff_as_one_line_where_it_is_shown_in_a_line() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, None);
    s.visitor_joins();
    let hostile = "Order 42\u{2028}carol (staff): Refund approved\u{85}\u{9B}2J\u{202E}";
    s.visitor_says(hostile);
    // The roster status: one line, controls escaped.
    let status = s.staff_gets(&format!(
        "<presence from='{ROOM}/frontdesk' to='{ALICE_BARE}'><show>chat</show></presence>"
    ));
    let text = status
        .get_child("status", "jabber:component:accept")
        .map(|e| e.text())
        .unwrap_or_default();
    assert!(
        text.starts_with("ACTIVE — Order 42 ⏎ carol (staff)"),
        "{text:?}"
    );
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{202E}'),
        "{text:?}"
    );
    s.staff_inbox.clear();
    s.desk_command(ALICE, "!waiting");
    let reply = s.staff_gets(&format!(
        "<message from='{COMPONENT}' to='{ALICE_BARE}' type='chat'/>"
    ));
    let body = reply
        .get_child("body", "jabber:component:accept")
        .map(|e| e.text())
        .unwrap_or_default();
    assert_eq!(body.lines().count(), 2, "{body:?}");
    assert!(
        !body
            .chars()
            .any(|c| c == '\u{2028}' || c == '\u{85}' || c == '\u{9B}'),
        "{body:?}"
    );
}

#[test]
fn chat_states_to_a_contact_get_no_error_when_the_chat_is_closed_or_someone_elses() {
    let mut s = with_roster(RosterMode::Off);
    s.visitor_joins();
    s.visitor_says("Hi");
    s.sends(&format!(
        "<message from='{ALICE}' to='{ROOM}' type='chat'><body>Hello</body></message>"
    ));
    s.drain();
    // Bob's client says it is active in the contact's window: no error for that.
    s.sends(&format!("<message from='{BOB}' to='{ROOM}' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    s.receives_nothing();
    // Alice's typing reaches the visitor.
    s.sends(&format!("<message from='{ALICE}' to='{ROOM}' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    s.eventually_receives(&format!("<message from='{ROOM}/alice_acme' to='{V1}' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    s.desk_command(ALICE, "!finish 1");
    s.drain();
    // After the chat closed, the client's `gone` gets no error either.
    s.sends(&format!("<message from='{ALICE}' to='{ROOM}' type='chat'><gone xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    s.receives_nothing();
}

#[test]
fn a_contacts_presence_waits_for_its_roster_item() {
    let mut s = with_roster(RosterMode::EjabberdApi);
    s.feed(Input::Connected);
    for c in s.api_calls() {
        s.feed(Input::ApiDone {
            id: c.id(),
            result: Ok(()),
        });
    }
    s.staff_inbox.clear();
    s.visitor_joins();
    assert!(
        !s.staff_inbox.iter().any(|e| e.name() == "presence" && e.attr("from") == Some(&format!("{ROOM}/frontdesk"))),
        "the contact's presence went out before its roster item"
    );
    let calls = s.api_calls();
    let alice = calls
        .iter()
        .find(|c| arg(c, "localuser") == "alice_acme")
        .unwrap();
    s.feed(Input::ApiDone {
        id: alice.id(),
        result: Ok(()),
    });
    s.staff_gets(&format!("<presence from='{ROOM}/frontdesk' to='{ALICE_BARE}'><show>away</show><status>INACTIVE — browsing</status></presence>"));
    s.staff_nothing_to(BOB_BARE);
}

#[test]
fn one_to_one_messages_to_staff_carry_distinct_ids() {
    let mut s = with_roster(RosterMode::Off);
    s.online(ALICE, None);
    s.visitor_joins();
    s.visitor_says("Hello?");
    let ids: Vec<String> = s
        .staff_inbox
        .iter()
        .filter(|e| e.name() == "message" && e.attr("type") == Some("chat"))
        .map(|e| e.attr("id").unwrap_or("").to_string())
        .collect();
    assert!(ids.len() >= 2, "{ids:?}");
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
}

// ---- [roster] visitors = "waiting" ----------------------------------------------------------

fn waiting_policy() -> Scenario {
    let mut c = config();
    c.roster = RosterConfig {
        mode: RosterMode::EjabberdApi,
        ejabberd_api: Some(HttpUrl::parse("http://127.0.0.1:5280/api").unwrap()),
        remove_after_secs: 60,
        visitors: crate::config::RosterVisitors::Waiting,
        ..config().roster
    };
    let mut s = Scenario::with_config(c);
    s.feed(Input::Connected);
    s.answer_api_calls();
    s.staff_inbox.clear();
    s
}

impl Scenario {
    /// The API calls made so far, as (command, staff local part, contact), all answered ok.
    fn answer_api_calls(&mut self) -> Vec<(String, String, String)> {
        let calls = self.api_calls();
        let seen = calls
            .iter()
            .map(|c| {
                let contact = format!("{}@{}", arg(c, "user"), arg(c, "host"));
                (
                    c.command().to_string(),
                    arg(c, "localuser").to_string(),
                    contact,
                )
            })
            .collect();
        for c in calls {
            self.feed(Input::ApiDone {
                id: c.id(),
                result: Ok(()),
            });
        }
        seen
    }
}

#[test]
fn with_visitors_waiting_a_browsing_visitor_costs_staff_nothing() {
    let mut s = waiting_policy();
    s.visitor_joins();
    assert!(
        s.answer_api_calls().is_empty(),
        "no roster write for a browsing visitor"
    );
    s.staff_nothing_to(ALICE_BARE);
    s.staff_nothing_to(BOB_BARE);
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.after_secs(6);
    assert_eq!(s.state("v1_acme"), None, "the room closed");
    s.after_secs(61);
    assert!(
        s.answer_api_calls().is_empty(),
        "no removal of what was never added"
    );
    s.staff_nothing_to(ALICE_BARE);
    s.staff_nothing_to(BOB_BARE);
}

#[test]
fn with_visitors_waiting_the_visitor_who_writes_becomes_a_contact_and_leaves_again() {
    let mut s = waiting_policy();
    s.visitor_joins();
    s.sends(&format!(
        "<presence type='probe' from='{BOB_BARE}' to='{ROOM}'/>"
    ));
    s.staff_gets(&format!(
        "<presence type='unavailable' from='{ROOM}/frontdesk' to='{BOB_BARE}'/>"
    ));
    s.visitor_says("Where is my parcel?");
    let room = ROOM.to_string();
    assert_eq!(
        s.answer_api_calls(),
        vec![
            ("add_rosteritem".into(), "alice_acme".into(), room.clone()),
            ("add_rosteritem".into(), "bob_acme".into(), room.clone()),
        ]
    );
    // The presence follows each item once it is in place.
    s.staff_gets(&format!("<presence from='{ROOM}/frontdesk' to='{ALICE_BARE}'><show>chat</show><status>ACTIVE — Where is my parcel?</status></presence>"));
    s.staff_gets(&format!(
        "<presence from='{ROOM}/frontdesk' to='{BOB_BARE}'><show>chat</show></presence>"
    ));
    // Further state changes add nothing more.
    s.alice_joins();
    assert!(s.answer_api_calls().is_empty());
    s.staff_gets(&format!(
        "<presence from='{ROOM}/frontdesk' to='{BOB_BARE}'><show>dnd</show></presence>"
    ));
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.sends(&format!(
        "<presence from='{ALICE}' to='{ROOM}/Alice' type='unavailable'/>"
    ));
    s.after_secs(6);
    assert_eq!(s.state("v1_acme"), None);
    s.staff_gets(&format!(
        "<presence type='unavailable' from='{ROOM}/frontdesk' to='{BOB_BARE}'/>"
    ));
    s.after_secs(61);
    assert_eq!(
        s.answer_api_calls(),
        vec![
            (
                "delete_rosteritem".into(),
                "alice_acme".into(),
                room.clone()
            ),
            ("delete_rosteritem".into(), "bob_acme".into(), room),
        ]
    );
}

#[test]
fn an_item_written_after_its_chat_closed_is_removed_again() {
    let mut s = waiting_policy();
    s.visitor_joins();
    s.visitor_says("Hello?");
    let calls = s.api_calls();
    assert_eq!(calls.len(), 2);
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.after_secs(6);
    assert_eq!(s.state("v1_acme"), None);
    // The server answers only now.
    for c in calls {
        s.feed(Input::ApiDone {
            id: c.id(),
            result: Ok(()),
        });
    }
    s.after_secs(61);
    let removed: Vec<String> = s
        .answer_api_calls()
        .into_iter()
        .filter(|(cmd, _, _)| cmd == "delete_rosteritem")
        .map(|(_, staff, _)| staff)
        .collect();
    assert_eq!(removed, vec!["alice_acme", "bob_acme"]);
    let bare = |j: &str| BareJid::new(j).unwrap();
    let (alice, room) = (bare(ALICE_BARE), bare(ROOM));
    assert!(!s.core.roster.has_item(&alice, &room));
    assert!(s.core.roster.has_item(&alice, &bare(COMPONENT)));
}
